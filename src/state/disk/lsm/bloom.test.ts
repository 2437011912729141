/**
 * The Bloom filter and its hashes: no false negatives for any key set and any bits per key,
 * a false-positive rate near its design (about 1.2% at 10 bits per key, checked below 3% on
 * 100,000 absent keys), and `hashBytes` equal to `hashKey` of the bytes' latin1 string (a run
 * built by a compaction hashes bytes, a point read hashes the string: they must agree).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BloomFilter, hashBytes, hashKey } from './bloom.js';

const latin1 = (b: Uint8Array): string => Buffer.from(b).toString('latin1');

/** A deterministic generator (xorshift32): the same keys on every run, no flaky rate. */
const rng = (seed: number) => {
  let x = seed >>> 0 || 1;
  return (): number => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
};

/** Keys shaped like the disk backend's: a big-endian key group, a state id, a serialized key. */
const structuredKey = (keyGroup: number, state: number, n: number): string => {
  const b = Buffer.alloc(2 + 1 + 8);
  b.writeUInt16BE(keyGroup, 0);
  b.writeUInt8(state, 2);
  b.writeBigUInt64BE(BigInt(n), 3);
  return b.toString('latin1');
};

const randomKey = (next: () => number): string => {
  const len = 1 + (next() % 24);
  const b = Buffer.alloc(len);
  for (let i = 0; i < len; i++) b[i] = next() & 0xff;
  return b.toString('latin1');
};

const falsePositiveRate = (added: readonly string[], absent: readonly string[], bits: number) => {
  const f = new BloomFilter(added.length, bits);
  for (const k of added) f.add(hashKey(k));
  for (const k of added) expect(f.mayHave(hashKey(k))).toBe(true);
  let fp = 0;
  for (const k of absent) if (f.mayHave(hashKey(k))) fp++;
  return fp / absent.length;
};

describe('hashes', () => {
  it('hashBytes(bytes) equals hashKey(latin1 string of bytes)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        expect(hashBytes(bytes)).toBe(hashKey(latin1(bytes)));
        // A view with an offset into a larger buffer hashes its own bytes only.
        const big = new Uint8Array(bytes.length + 7);
        big.set(bytes, 3);
        expect(hashBytes(big.subarray(3, 3 + bytes.length))).toBe(hashKey(latin1(bytes)));
      }),
      { numRuns: 500 },
    );
  });

  it('is an unsigned 32-bit FNV-1a (known values)', () => {
    // FNV-1a 32 reference values.
    expect(hashKey('')).toBe(0x811c9dc5);
    expect(hashKey('a')).toBe(0xe40c292c);
    expect(hashKey('foobar')).toBe(0xbf9cf968);
    expect(hashBytes(Buffer.from([0xff, 0x00, 0x80]))).toBe(hashKey('\xff\x00\x80'));
    expect(hashKey('\xff\xff\xff\xff')).toBeGreaterThanOrEqual(0);
  });
});

describe('BloomFilter', () => {
  it('has no false negatives (any keys, any bits per key)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 12 }), { maxLength: 300 }),
        fc.integer({ min: 1, max: 16 }),
        fc.integer({ min: 0, max: 400 }),
        (keys, bits, expectedExtra) => {
          // The filter may be sized for fewer or more keys than it gets.
          const f = new BloomFilter(Math.max(0, keys.length - 200 + expectedExtra), bits);
          for (const k of keys) f.add(hashBytes(k));
          for (const k of keys) expect(f.mayHave(hashKey(latin1(k)))).toBe(true);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('answers false for absent keys when empty, and sizes its memory by bits per key', () => {
    const empty = new BloomFilter(0, 10);
    expect(empty.mayHave(hashKey('x'))).toBe(false);
    expect(empty.bytes).toBe(64); // one 512-bit block at least
    expect(new BloomFilter(100_000, 10).bytes).toBe(Math.ceil((100_000 * 10) / 512) * 64);
  });

  it('keeps its false-positive rate below 3% at 10 bits per key (random keys)', () => {
    const next = rng(12345);
    const added = new Set<string>();
    while (added.size < 20_000) added.add(randomKey(next));
    const absent: string[] = [];
    while (absent.length < 100_000) {
      const k = randomKey(next);
      if (!added.has(k)) absent.push(k);
    }
    const rate = falsePositiveRate([...added], absent, 10);
    expect(rate).toBeLessThan(0.03);
    expect(rate).toBeGreaterThan(0); // measured, not vacuous
  });

  it('keeps its false-positive rate below 3% at 10 bits per key (structured keys)', () => {
    // Similar keys (a counter under few key groups) are where weak hashing shows.
    const added: string[] = [];
    for (let i = 0; i < 20_000; i++) added.push(structuredKey(i % 128, 1, i));
    const absent: string[] = [];
    for (let i = 0; i < 100_000; i++) absent.push(structuredKey(i % 128, 1, 20_000 + i));
    expect(falsePositiveRate(added, absent, 10)).toBeLessThan(0.03);
  });

  it('has more false positives with fewer bits per key (bits are used)', () => {
    const next = rng(999);
    const added = new Set<string>();
    while (added.size < 5_000) added.add(randomKey(next));
    const absent: string[] = [];
    while (absent.length < 20_000) {
      const k = randomKey(next);
      if (!added.has(k)) absent.push(k);
    }
    const at2 = falsePositiveRate([...added], absent, 2);
    const at10 = falsePositiveRate([...added], absent, 10);
    expect(at2).toBeGreaterThan(at10);
  });
});
