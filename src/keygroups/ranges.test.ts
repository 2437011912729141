import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../core/errors.js';
import {
  computeKeyGroupRange,
  intersectKeyGroupRanges,
  type KeyGroupRange,
  keyGroupRangeContains,
  keyGroupRangeSize,
  operatorIndexForKeyGroup,
  operatorIndexForKeyGroupUnchecked,
} from './ranges.js';

const rangesFor = (maxP: number, p: number): KeyGroupRange[] =>
  Array.from({ length: p }, (_, i) => computeKeyGroupRange(maxP, p, i));

/*
 * The layout checks run millions of times, so they compare plainly and return a description of
 * the first violation (or undefined), and the tests make one assertion on that.
 */

/** Ranges are non-empty, contiguous, disjoint and cover [0, maxP); owners agree with ranges. */
const layoutViolation = (maxP: number, p: number): string | undefined => {
  let next = 0;
  for (const [i, r] of rangesFor(maxP, p).entries()) {
    const where = `maxP ${maxP}, p ${p}, subtask ${i} [${r.start}, ${r.end}]`;
    if (r.start !== next) return `${where}: gap or overlap, expected start ${next}`;
    if (r.end < r.start) return `${where}: empty`;
    const owners = [r.start, r.end].map((kg) => operatorIndexForKeyGroup(maxP, p, kg));
    if (owners.some((o) => o !== i)) return `${where}: owned by ${owners}`;
    next = r.end + 1;
  }
  return next === maxP ? undefined : `maxP ${maxP}, p ${p}: ranges end at ${next - 1}`;
};

/** Every key group is owned by the subtask whose range contains it. */
const ownerViolation = (maxP: number, p: number): string | undefined => {
  const ranges = rangesFor(maxP, p);
  for (let kg = 0; kg < maxP; kg++) {
    const owner = operatorIndexForKeyGroupUnchecked(maxP, p, kg);
    const range = ranges[owner];
    if (range === undefined || !keyGroupRangeContains(range, kg)) {
      return `maxP ${maxP}, p ${p}: key group ${kg} is not in the range of its owner ${owner}`;
    }
  }
  return undefined;
};

const firstViolation = (
  check: (maxP: number, p: number) => string | undefined,
  maxPs: Iterable<number>,
): string | undefined => {
  for (const maxP of maxPs) {
    for (let p = 1; p <= maxP; p++) {
      const violation = check(maxP, p);
      if (violation !== undefined) return violation;
    }
  }
  return undefined;
};

const upTo = (n: number) => Array.from({ length: n }, (_, i) => i + 1);

describe('computeKeyGroupRange and operatorIndexForKeyGroup', () => {
  it('tile [0, maxP) for every p, exhaustively for maxP <= 256', () => {
    expect(firstViolation(layoutViolation, upTo(256))).toBeUndefined();
  });

  it('agree on every key group, exhaustively for maxP <= 256', () => {
    expect(firstViolation(ownerViolation, upTo(256))).toBeUndefined();
  });

  it('tile [0, maxP) for random maxP up to 32768 and sampled p', () => {
    const maxAndP = fc
      .integer({ min: 1, max: 32768 })
      .chain((maxP) => fc.tuple(fc.constant(maxP), fc.integer({ min: 1, max: maxP })));
    fc.assert(
      fc.property(maxAndP, ([maxP, p]) => {
        expect(layoutViolation(maxP, p)).toBeUndefined();
        expect(ownerViolation(maxP, p)).toBeUndefined();
      }),
      { numRuns: 60 },
    );
  });

  it('agree at the extreme maxP = p = 32768', () => {
    for (const p of [1, 2, 3, 32767, 32768]) {
      expect(layoutViolation(32768, p)).toBeUndefined();
      expect(ownerViolation(32768, p)).toBeUndefined();
    }
  });

  it('reject an operatorIndex outside [0, parallelism)', () => {
    expect(() => computeKeyGroupRange(128, 4, 4)).toThrow(
      'operatorIndex must be an integer in [0, parallelism 4), got 4',
    );
    expect(() => computeKeyGroupRange(128, 4, -1)).toThrow(InvalidArgumentError);
    expect(() => computeKeyGroupRange(128, 4, 0.5)).toThrow(InvalidArgumentError);
  });

  it('reject a keyGroup outside [0, maxParallelism)', () => {
    expect(() => operatorIndexForKeyGroup(128, 4, 128)).toThrow(
      'keyGroup must be an integer in [0, maxParallelism 128), got 128',
    );
    expect(() => operatorIndexForKeyGroup(128, 4, -1)).toThrow(InvalidArgumentError);
  });

  it('reject invalid parallelisms with EDDY_INVALID_PARALLELISM', () => {
    for (const call of [
      () => computeKeyGroupRange(128, 129, 0),
      () => operatorIndexForKeyGroup(0, 1, 0),
    ]) {
      expect(call).toThrow(expect.objectContaining({ code: 'EDDY_INVALID_PARALLELISM' }));
    }
  });
});

describe('range helpers', () => {
  it('size and contains', () => {
    const r = { start: 43, end: 85 };
    expect(keyGroupRangeSize(r)).toBe(43);
    expect(keyGroupRangeSize({ start: 5, end: 4 })).toBe(0);
    expect([42, 43, 85, 86].map((kg) => keyGroupRangeContains(r, kg))).toEqual([
      false,
      true,
      true,
      false,
    ]);
  });

  it('intersection', () => {
    expect(intersectKeyGroupRanges({ start: 0, end: 63 }, { start: 43, end: 85 })).toEqual({
      start: 43,
      end: 63,
    });
    expect(intersectKeyGroupRanges({ start: 0, end: 42 }, { start: 43, end: 85 })).toBeUndefined();
  });

  it('intersection holds exactly the key groups both ranges contain', () => {
    const range = fc
      .tuple(fc.integer({ min: 0, max: 40 }), fc.integer({ min: 0, max: 40 }))
      .map(([a, b]) => ({ start: Math.min(a, b), end: Math.max(a, b) }));
    fc.assert(
      fc.property(range, range, (a, b) => {
        const both = intersectKeyGroupRanges(a, b);
        for (let kg = 0; kg <= 40; kg++) {
          const inBoth = keyGroupRangeContains(a, kg) && keyGroupRangeContains(b, kg);
          expect(both !== undefined && keyGroupRangeContains(both, kg)).toBe(inBoth);
        }
      }),
    );
  });

  it('rescaling: each new range is covered by its intersections with the old ranges', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 4096 }), fc.nat(), fc.nat(), (maxP, a, b) => {
        const oldRanges = rangesFor(maxP, (a % Math.min(maxP, 64)) + 1);
        for (const fresh of rangesFor(maxP, (b % Math.min(maxP, 64)) + 1)) {
          const parts = oldRanges.map((old) => intersectKeyGroupRanges(old, fresh));
          const covered = parts.reduce((n, part) => n + (part ? keyGroupRangeSize(part) : 0), 0);
          expect(covered).toBe(keyGroupRangeSize(fresh));
        }
      }),
      { numRuns: 200 },
    );
  });
});
