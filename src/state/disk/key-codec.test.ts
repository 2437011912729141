import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { NormalizedKey } from '../types.js';
import {
  cursor,
  KeyWriter,
  keyGroupOf,
  prefixEnd,
  readKey,
  readUserKey,
  stateIdOf,
} from './key-codec.js';

const normalizedKey: fc.Arbitrary<NormalizedKey> = fc.oneof(
  fc.string(),
  fc.string({ unit: 'binary' }), // lone surrogates included
  fc.double(),
  fc.integer(),
  fc.boolean(),
  fc.bigInt(),
);

const userKey: fc.Arbitrary<unknown> = fc.oneof(
  normalizedKey,
  fc.constant(undefined),
  fc.constant(null),
  fc.array(fc.oneof(fc.string(), fc.integer()), { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 3 }), fc.integer(), { maxKeys: 3 }),
);

/** The value a JS Map would treat as the same key (-0 is 0). */
const mapKey = (k: unknown): unknown => (k === 0 ? 0 : k);

const encode = (kg: number, id: number, key: NormalizedKey, uk?: { k: unknown }) => {
  const w = new KeyWriter().header(kg, id).key(key);
  if (uk !== undefined) w.userKey(uk.k);
  return w.copy();
};

describe('disk key codec', () => {
  it('round-trips keys and user keys, reading back where each ends', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 0xffff }),
        fc.integer({ min: 0, max: 0xffff }),
        normalizedKey,
        userKey,
        (kg, id, key, uk) => {
          const bytes = encode(kg, id, key, { k: uk });
          expect(keyGroupOf(bytes)).toBe(kg);
          expect(stateIdOf(bytes)).toBe(id);
          expect(readKey(bytes, 4)).toEqual(mapKey(key));
          expect(readUserKey(bytes, cursor.pos)).toEqual(mapKey(uk));
          expect(cursor.pos).toBe(bytes.length);
        },
      ),
    );
  });

  it('is injective (equal bytes iff equal as Map keys) and prefix-free', () => {
    fc.assert(
      fc.property(normalizedKey, normalizedKey, (a, b) => {
        const ea = encode(1, 2, a);
        const eb = encode(1, 2, b);
        expect(ea.equals(eb)).toBe(Object.is(mapKey(a), mapKey(b)));
        if (!ea.equals(eb)) {
          // Neither is a prefix of the other: a key's user keys stay in its own range.
          const n = Math.min(ea.length, eb.length);
          expect(ea.subarray(0, n).equals(eb.subarray(0, n))).toBe(false);
        }
      }),
    );
  });

  it('keeps lone surrogates, -0 as 0 and NaN as one key', () => {
    for (const s of ['\uD800', 'a\uDFFFb', '\uDC00\uD800', 'é€😀']) {
      expect(readKey(encode(0, 0, s), 4)).toBe(s);
    }
    expect(encode(0, 0, -0).equals(encode(0, 0, 0))).toBe(true);
    expect(encode(0, 0, Number.NaN).equals(encode(0, 0, 0 / 0))).toBe(true);
    expect(readKey(encode(0, 0, Number.NaN), 4)).toBeNaN();
    expect(readKey(encode(0, 0, 2n ** 80n), 4)).toBe(2n ** 80n);
  });

  it('orders by key group first: a key group is one contiguous range', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 0xfffe }),
        fc.integer({ min: 0, max: 0xffff }),
        normalizedKey,
        normalizedKey,
        (kg, id, a, b) => {
          const lo = Buffer.from([kg >> 8, kg & 0xff]);
          const hi = prefixEnd(lo)!;
          const inside = encode(kg, id, a);
          expect(Buffer.compare(lo, inside)).toBeLessThan(0);
          expect(Buffer.compare(inside, hi)).toBeLessThan(0);
          expect(Buffer.compare(encode(kg + 1, 0, b), hi)).toBeGreaterThanOrEqual(0);
          expect(Buffer.compare(encode(kg, id, b), encode(kg + 1, 0, a))).toBeLessThan(0);
        },
      ),
    );
  });

  it('orders numbers numerically (map state iterates them ascending)', () => {
    fc.assert(
      fc.property(fc.double({ noNaN: true }), fc.double({ noNaN: true }), (a, b) => {
        const c = Buffer.compare(encode(0, 0, a), encode(0, 0, b));
        expect(Math.sign(c)).toBe(a === b ? 0 : a < b ? -1 : 1);
      }),
    );
  });

  it('rejects functions and symbols as user keys', () => {
    expect(() =>
      new KeyWriter()
        .header(0, 0)
        .key('k')
        .userKey(() => 1),
    ).toThrow(/function/);
    expect(() => new KeyWriter().header(0, 0).key('k').userKey(Symbol('s'))).toThrow(/symbol/);
  });

  it('prefixEnd is the least upper bound of a prefix (none for all 0xff)', () => {
    expect(prefixEnd(Buffer.from([1, 2, 0xff]))).toEqual(Buffer.from([1, 3]));
    expect(prefixEnd(Buffer.from([0xff, 0xff]))).toBeUndefined();
  });
});
