import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { murmurHashInt } from './murmur.js';

// An independent reference in BigInt arithmetic, written from the MurmurHash3 description.
const u32 = (x: bigint) => BigInt.asUintN(32, x);
const rotl = (x: bigint, r: bigint) => u32((x << r) | (x >> (32n - r)));
const referenceMurmur = (code: number): number => {
  let k = u32(BigInt(code) * 0xcc9e2d51n);
  k = u32(rotl(k, 15n) * 0x1b873593n);
  let h = u32(rotl(k, 13n) * 5n + 0xe6546b64n) ^ 4n;
  h = u32((h ^ (h >> 16n)) * 0x85ebca6bn);
  h = u32((h ^ (h >> 13n)) * 0xc2b2ae35n);
  const signed = Number(BigInt.asIntN(32, h ^ (h >> 16n)));
  return signed === -(2 ** 31) ? 0 : Math.abs(signed);
};

describe('murmurHashInt', () => {
  it('agrees with a BigInt reference on every int32', () => {
    fc.assert(
      fc.property(fc.integer(), (code) => {
        expect(murmurHashInt(code)).toBe(referenceMurmur(code));
      }),
      { numRuns: 2000 },
    );
  });

  it('agrees with the reference at the int32 edges', () => {
    for (const code of [0, 1, -1, 2 ** 31 - 1, -(2 ** 31)]) {
      expect(murmurHashInt(code)).toBe(referenceMurmur(code));
    }
  });

  it('is never negative', () => {
    fc.assert(fc.property(fc.integer(), (code) => murmurHashInt(code) >= 0));
  });
});
