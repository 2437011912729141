import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { UnhashableKeyError } from '../core/errors.js';
import {
  anyLeaf,
  cloneKey,
  keyOf,
  sameKey,
  sameValueZero,
  smallLeaf,
  tupleOf,
} from './arbitraries.testkit.js';
import { type Key, keyHashCode } from './hash.js';
import { denormalizeKey, normalizeKey } from './normalize.js';

describe('normalizeKey', () => {
  it('returns strings, booleans, bigints and numbers as they are', () => {
    expect(normalizeKey('user-42')).toBe('user-42');
    expect(normalizeKey(true)).toBe(true);
    expect(normalizeKey(12n)).toBe(12n);
    expect(normalizeKey(1.5)).toBe(1.5);
    expect(normalizeKey(Number.NaN)).toBeNaN();
  });

  it('turns -0 into 0', () => {
    expect(Object.is(normalizeKey(-0), 0)).toBe(true);
  });

  it('normalizes equal keys equally (fresh Dates, 0 vs -0)', () => {
    fc.assert(
      fc.property(keyOf(anyLeaf), (k) => sameValueZero(normalizeKey(k), normalizeKey(cloneKey(k)))),
    );
  });

  it('is injective on random tuples: same normalized form exactly when same key', () => {
    fc.assert(
      fc.property(fc.array(tupleOf(smallLeaf), { minLength: 2, maxLength: 12 }), (tuples) => {
        const normalized = tuples.map(normalizeKey);
        for (let i = 0; i < tuples.length; i++) {
          for (let j = 0; j < tuples.length; j++) {
            const same = sameKey(tuples[i]!, tuples[j]!);
            expect(sameValueZero(normalized[i], normalized[j])).toBe(same);
          }
        }
      }),
      { numRuns: 500 },
    );
  });

  it('is injective across key types (strings that look like encodings included)', () => {
    fc.assert(
      fc.property(keyOf(smallLeaf), keyOf(smallLeaf), (a, b) => {
        expect(sameValueZero(normalizeKey(a), normalizeKey(b))).toBe(sameKey(a, b));
      }),
      { numRuns: 2000 },
    );
  });

  it('is injective on tuples over full domains', () => {
    fc.assert(
      fc.property(tupleOf(anyLeaf), tupleOf(anyLeaf), (a, b) => {
        expect(sameValueZero(normalizeKey(a), normalizeKey(b))).toBe(sameKey(a, b));
      }),
    );
  });

  it('keeps a string key apart from the encoding of a Date or tuple key', () => {
    const date = new Date(5);
    const tuple: Key = ['a'];
    expect(normalizeKey(String(normalizeKey(date)))).not.toBe(normalizeKey(date));
    expect(normalizeKey(String(normalizeKey(tuple)))).not.toBe(normalizeKey(tuple));
  });

  it('groups keys by value in a Map', () => {
    const counts = new Map<unknown, number>();
    for (const k of [['a', 1], ['a', 1], [new Date(3)], [new Date(3)], -0, 0] as Key[]) {
      const n = normalizeKey(k);
      counts.set(n, (counts.get(n) ?? 0) + 1);
    }
    expect([...counts.values()]).toEqual([2, 2, 2]);
  });

  it('equal normalized forms imply equal hashes, so equal keys share a key group', () => {
    fc.assert(
      fc.property(keyOf(smallLeaf), keyOf(smallLeaf), (a, b) => {
        if (sameValueZero(normalizeKey(a), normalizeKey(b))) {
          expect(keyHashCode(a)).toBe(keyHashCode(b));
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('rejects what keyHashCode rejects', () => {
    for (const bad of [null, undefined, { a: 1 }, ['a', null], new Date(Number.NaN)]) {
      expect(() => normalizeKey(bad as Key)).toThrow(UnhashableKeyError);
    }
    const cyclic: unknown[] = [];
    cyclic.push(cyclic);
    expect(() => normalizeKey(cyclic as Key)).toThrow(UnhashableKeyError);
  });
});

describe('denormalizeKey', () => {
  it('gives back the key of every normalized form (any key, nested tuples, escaped strings)', () => {
    fc.assert(
      fc.property(keyOf(anyLeaf), (key) => {
        const back = denormalizeKey(normalizeKey(key));
        expect(sameKey(back, key)).toBe(true);
        expect(normalizeKey(back)).toEqual(normalizeKey(key));
      }),
      { numRuns: 500 },
    );
  });

  it('decodes strings that start with U+0000, Dates and tuples of every leaf kind', () => {
    expect(denormalizeKey(normalizeKey('\u0000x'))).toBe('\u0000x');
    expect((denormalizeKey(normalizeKey(new Date(5))) as Date).getTime()).toBe(5);
    const tuple: Key = ['a:b;', 1.5, -2n, true, false, new Date(-1), ['', [7]]];
    expect(sameKey(denormalizeKey(normalizeKey(tuple)), tuple)).toBe(true);
  });
});
