import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { anyLeaf, anyString, keyOf } from './arbitraries.testkit.js';
import { assignToKeyGroup, keyGroupForHash } from './assign.js';
import { javaStringHashCode, keyHashCode } from './hash.js';
import { murmurHashInt } from './murmur.js';

const maxParallelism = fc.integer({ min: 1, max: 32768 });

describe('assignToKeyGroup', () => {
  it('is always an integer in [0, maxParallelism)', () => {
    fc.assert(
      fc.property(keyOf(anyLeaf), maxParallelism, (key, maxP) => {
        const kg = assignToKeyGroup(key, maxP);
        return Number.isInteger(kg) && kg >= 0 && kg < maxP;
      }),
      { numRuns: 2000 },
    );
  });

  it('int32 keys go to murmur(key) % maxP, as Flink assigns Integer keys', () => {
    fc.assert(
      fc.property(fc.integer(), maxParallelism, (n, maxP) => {
        expect(assignToKeyGroup(n, maxP)).toBe(murmurHashInt(n) % maxP);
      }),
    );
  });

  it('a string lands where the int equal to its Java hashCode lands', () => {
    fc.assert(
      fc.property(anyString, maxParallelism, (s, maxP) => {
        expect(assignToKeyGroup(s, maxP)).toBe(assignToKeyGroup(javaStringHashCode(s), maxP));
      }),
    );
  });

  it('-0 and 0 share a key group', () => {
    fc.assert(
      fc.property(
        maxParallelism,
        (maxP) => assignToKeyGroup(-0, maxP) === assignToKeyGroup(0, maxP),
      ),
    );
  });

  it('equals keyGroupForHash(keyHashCode(key))', () => {
    fc.assert(
      fc.property(keyOf(anyLeaf), maxParallelism, (key, maxP) => {
        expect(assignToKeyGroup(key, maxP)).toBe(keyGroupForHash(keyHashCode(key), maxP));
      }),
    );
  });

  it('rejects an invalid maxParallelism', () => {
    for (const maxP of [0, 32769, 1.5]) {
      expect(() => assignToKeyGroup('a', maxP)).toThrow(
        expect.objectContaining({ code: 'EDDY_INVALID_PARALLELISM' }),
      );
    }
  });
});
