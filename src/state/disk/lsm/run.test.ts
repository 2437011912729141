/**
 * Run files on their own (RunWriter and Run): every key found by a point read (values, empty
 * values, deletions, values larger than a block or than the write chunk), absent keys answer
 * ABSENT, cursors start at the first key ≥ their start wherever it falls, the bytes path
 * (a compaction's) writes the same file as the string path, keys out of order throw, and the
 * file is deleted only when its last holder releases it.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { hashKey } from './bloom.js';
import type { MemValue } from './memtable.js';
import { ABSENT, type Run, RunWriter } from './run.js';

let dir: string;
let n = 0;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'eddy-run-test-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

const nextPath = () => join(dir, `run-${++n}.dat`);

type Entry = readonly [key: string, value: MemValue];

/** Byte order of latin1 strings is string order: sort and dedupe. */
const sortedUnique = (keys: Iterable<string>): string[] =>
  [...new Set(keys)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));

const write = (entries: readonly Entry[], blockBytes: number, bitsPerKey = 10): Run => {
  const w = new RunWriter(nextPath(), entries.length, blockBytes, bitsPerKey);
  for (const [k, v] of entries) w.add(k, v);
  return w.finish();
};

const writeBytes = (entries: readonly Entry[], blockBytes: number, bitsPerKey = 10): Run => {
  const w = new RunWriter(nextPath(), entries.length, blockBytes, bitsPerKey);
  for (const [k, v] of entries) {
    w.addBytes(Buffer.from(k, 'latin1'), v === null ? null : Buffer.from(v, 'latin1'));
  }
  return w.finish();
};

/** A point read, decoded at once (the answer is a view of the run's scratch buffer). */
const get = (run: Run, key: string): string | null | typeof ABSENT => {
  const r = run.get(key, Buffer.from(key, 'latin1'), hashKey(key));
  return r === ABSENT || r === null ? r : r.toString('latin1');
};

/** All entries from `start` on, decoded as the cursor goes. */
const scan = (run: Run, start: string | undefined): Entry[] => {
  const out: Entry[] = [];
  const c = run.cursor(start);
  while (c.buf !== undefined) {
    const key = c.buf.toString('latin1', c.kOff, c.kOff + c.kLen);
    out.push([key, c.vLen < 0 ? null : c.buf.toString('latin1', c.vOff, c.vOff + c.vLen)]);
    c.next();
  }
  return out;
};

/** The expected scan: entries with key ≥ start. */
const from = (entries: readonly Entry[], start: string | undefined): Entry[] =>
  start === undefined ? [...entries] : entries.filter(([k]) => k >= start);

/** A deterministic generator (xorshift32). */
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

const randomBytes = (next: () => number, len: number): string => {
  const b = Buffer.alloc(len);
  for (let i = 0; i < len; i++) b[i] = next() & 0xff;
  return b.toString('latin1');
};

describe('Run: 10,000 entries', () => {
  const next = rng(42);
  const unique = new Set<string>();
  while (unique.size < 10_000) unique.add(randomBytes(next, 1 + (next() % 10)));
  const keys = sortedUnique(unique);
  const entries: Entry[] = keys.map((k, i) => {
    if (i % 11 === 3) return [k, null]; // a deletion
    if (i % 13 === 5) return [k, '']; // an empty value (not a deletion)
    const len = next() % 9 === 0 ? 1000 + (next() % 3000) : next() % 100;
    return [k, randomBytes(next, len)];
  });
  const blockBytes = 512; // many values are larger than a block

  // 1 bit per key: most absent keys pass the filter and are searched for in their block.
  it.each([10, 1])('finds every key and answers ABSENT for absent ones (%i bits/key)', (bits) => {
    expect(keys.length).toBe(10_000);
    const run = write(entries, blockBytes, bits);
    try {
      expect(run.entries).toBe(10_000);
      expect(run.bytes).toBe(statSync(run.path).size);
      expect(run.lastKey).toBe(keys[keys.length - 1]);
      for (const [k, v] of entries) expect(get(run, k)).toBe(v);
      // In a random order too (one scratch buffer reused across blocks).
      for (let i = 0; i < 2000; i++) {
        const [k, v] = entries[next() % entries.length]!;
        expect(get(run, k)).toBe(v);
      }
      // Absent keys: before the first, after the last, between keys, prefixes and extensions.
      const present = new Set(keys);
      const absent = ['', '\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00', '\xff'.repeat(11)];
      for (let i = 0; i < 3000; i++) absent.push(randomBytes(next, 1 + (next() % 11)));
      for (const k of keys.slice(0, 500)) absent.push(`${k}\x00`, k.slice(0, -1));
      let checked = 0;
      for (const k of absent) {
        if (present.has(k)) continue;
        expect(get(run, k)).toBe(ABSENT);
        checked++;
      }
      expect(checked).toBeGreaterThan(3000);
    } finally {
      run.release();
    }
  });

  it('cursors start at the first key ≥ start (before the first, in the middle, after the last)', () => {
    const run = write(entries, blockBytes);
    try {
      expect(scan(run, undefined)).toEqual(entries);
      expect(scan(run, '')).toEqual(entries);
      expect(scan(run, keys[0])).toEqual(entries);
      const mid = keys[5000]!;
      expect(scan(run, mid)).toEqual(entries.slice(5000));
      // A start between two keys (absent): the next key on.
      const between = `${mid}\x00`;
      expect(keys.includes(between)).toBe(false);
      expect(scan(run, between)).toEqual(from(entries, between));
      expect(scan(run, keys[keys.length - 1])).toEqual(entries.slice(-1));
      expect(scan(run, `${keys[keys.length - 1]}\x00`)).toEqual([]);
      expect(scan(run, '\xff'.repeat(12))).toEqual([]);
      // Starts at many places, including each block's neighbourhood.
      for (let i = 0; i < 40; i++) {
        const k = keys[next() % keys.length]!;
        const start = next() % 2 === 0 ? k : k.slice(0, Math.max(0, k.length - 1));
        const got = scan(run, start);
        const want = from(entries, start);
        expect(got.length).toBe(want.length);
        expect(got.slice(0, 50)).toEqual(want.slice(0, 50));
      }
    } finally {
      run.release();
    }
  });

  it('writes the same file from bytes (addBytes, the compaction path) as from strings', () => {
    const a = write(entries, blockBytes);
    const b = writeBytes(entries, blockBytes);
    try {
      expect(readFileSync(b.path).equals(readFileSync(a.path))).toBe(true);
      expect(b.entries).toBe(a.entries);
      expect(b.bytes).toBe(a.bytes);
      expect(b.lastKey).toBe(a.lastKey);
      for (const [k, v] of entries) expect(get(b, k)).toBe(v);
      expect(scan(b, keys[1234])).toEqual(entries.slice(1234));
    } finally {
      a.release();
      b.release();
    }
  });
});

describe('Run: shapes', () => {
  it('holds a value larger than the write chunk (1 MiB) next to small ones', () => {
    const big = `${'x'.repeat(1.5 * 1024 * 1024 - 3)}\xff\x00\x80`;
    const entries: Entry[] = [
      ['a', 'small'],
      ['b', big],
      ['c', null],
      ['d', big.slice(0, 70_000)],
      ['e', ''],
    ];
    for (const run of [write(entries, 64), writeBytes(entries, 64)]) {
      try {
        for (const [k, v] of entries) expect(get(run, k)).toBe(v);
        expect(scan(run, undefined)).toEqual(entries);
        expect(scan(run, 'b\x00')).toEqual(entries.slice(2));
        expect(run.bytes).toBe(statSync(run.path).size);
      } finally {
        run.release();
      }
    }
  });

  it('an empty run: nothing found, cursors at the end, no last key', () => {
    const run = write([], 64);
    try {
      expect(run.entries).toBe(0);
      expect(run.lastKey).toBeUndefined();
      expect(get(run, '')).toBe(ABSENT);
      expect(get(run, 'a')).toBe(ABSENT);
      expect(run.cursor(undefined).buf).toBeUndefined();
      expect(run.cursor('a').buf).toBeUndefined();
    } finally {
      run.release();
    }
    expect(readdirSync(dir)).toEqual([]);
  });

  it('the empty key, keys that are prefixes of others, bytes 0x00 and 0xff', () => {
    const entries: Entry[] = [
      ['', 'empty key'],
      ['\x00', 'zero'],
      ['\x00\x00', null],
      ['\x00\xff', ''],
      ['a', '1'],
      ['ab', '2'],
      ['abc', '3'],
      ['\x7f', '7f'],
      ['\x80', '80'],
      ['\xff', 'ff'],
      ['\xff\xff', null],
    ];
    for (const blockBytes of [1, 16, 4096]) {
      for (const run of [write(entries, blockBytes), writeBytes(entries, blockBytes)]) {
        try {
          for (const [k, v] of entries) expect(get(run, k)).toBe(v);
          for (const k of ['\x00\x00\x00', 'aa', 'abcd', '\x81', '\xff\xff\xff', 'b']) {
            expect(get(run, k)).toBe(ABSENT);
          }
          for (const [k] of entries) expect(scan(run, k)).toEqual(from(entries, k));
          expect(run.lastKey).toBe('\xff\xff');
        } finally {
          run.release();
        }
      }
    }
  });

  it('any sorted entries at any block size: point reads and cursors (property)', () => {
    const key = fc
      .array(fc.constantFrom(0x00, 0x01, 0x61, 0x80, 0xff), { maxLength: 4 })
      .map((b) => Buffer.from(b).toString('latin1'));
    const value = fc.option(
      fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b).toString('latin1')),
      { freq: 4 },
    );
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.tuple(key, value), { selector: ([k]) => k, maxLength: 80 }),
        fc.integer({ min: 1, max: 256 }),
        fc.integer({ min: 1, max: 12 }),
        fc.boolean(),
        fc.array(key, { maxLength: 10 }),
        (raw, blockBytes, bits, bytes, probes) => {
          const entries = [...raw].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
          const run = (bytes ? writeBytes : write)(entries, blockBytes, bits);
          try {
            const map = new Map(entries);
            for (const [k, v] of entries) expect(get(run, k)).toBe(v);
            for (const k of probes) expect(get(run, k)).toBe(map.has(k) ? map.get(k) : ABSENT);
            expect(scan(run, undefined)).toEqual(entries);
            for (const k of [...probes, ...entries.map(([e]) => e)]) {
              expect(scan(run, k)).toEqual(from(entries, k));
            }
            expect(run.lastKey).toBe(entries.at(-1)?.[0]);
          } finally {
            run.release();
          }
        },
      ),
      { numRuns: 150 },
    );
  });
});

describe('RunWriter: order', () => {
  it('throws on keys out of order or repeated (both paths); abandon() deletes the file', () => {
    const path = nextPath();
    const w = new RunWriter(path, 4, 64, 10);
    w.add('b', '1');
    expect(() => w.add('a', '2')).toThrow(/out of order/);
    expect(() => w.add('b', '2')).toThrow(/out of order/);
    w.abandon();
    expect(existsSync(path)).toBe(false);

    const path2 = nextPath();
    const w2 = new RunWriter(path2, 4, 64, 10);
    w2.addBytes(Buffer.from('b'), Buffer.from('1'));
    expect(() => w2.addBytes(Buffer.from('a'), null)).toThrow(/out of order/);
    expect(() => w2.addBytes(Buffer.from('b'), null)).toThrow(/out of order/);
    // A prefix sorts first: out of order after its extension.
    w2.addBytes(Buffer.from('ba'), null);
    expect(() => w2.addBytes(Buffer.from('b'), null)).toThrow(/out of order/);
    w2.abandon();
    expect(existsSync(path2)).toBe(false);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('the order check in addBytes survives a chunk flush (the last key is kept)', () => {
    const w = new RunWriter(nextPath(), 4, 64, 10);
    w.addBytes(Buffer.from('m'), Buffer.alloc(1024 * 1024 - 10)); // fills the chunk
    w.addBytes(Buffer.from('n'), Buffer.from('x')); // flushes it first
    expect(() => w.addBytes(Buffer.from('m'), null)).toThrow(/out of order/);
    const run = w.finish();
    try {
      expect(get(run, 'n')).toBe('x');
      expect(run.lastKey).toBe('n');
    } finally {
      run.release();
    }
  });
});

describe('Run: holders', () => {
  it('deletes the file at the last release only, and reads while held', () => {
    const run = write(
      [
        ['a', '1'],
        ['b', '2'],
      ],
      16,
    );
    run.retain();
    run.retain();
    run.release();
    expect(existsSync(run.path)).toBe(true);
    expect(get(run, 'b')).toBe('2');
    run.release();
    expect(existsSync(run.path)).toBe(true);
    expect(scan(run, undefined)).toEqual([
      ['a', '1'],
      ['b', '2'],
    ]);
    run.release();
    expect(existsSync(run.path)).toBe(false);
    expect(readdirSync(dir)).toEqual([]);
  });
});
