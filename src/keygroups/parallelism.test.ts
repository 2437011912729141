import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../core/errors.js';
import {
  checkMaxParallelism,
  defaultMaxParallelism,
  UPPER_BOUND_MAX_PARALLELISM,
  validateParallelism,
} from './parallelism.js';

const thrown = (f: () => unknown): InvalidArgumentError => {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(InvalidArgumentError);
    expect((e as InvalidArgumentError).code).toBe('EDDY_INVALID_PARALLELISM');
    return e as InvalidArgumentError;
  }
  throw new Error('expected an InvalidArgumentError');
};

describe('validateParallelism', () => {
  it('accepts 1 <= parallelism <= maxParallelism <= 32768', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: UPPER_BOUND_MAX_PARALLELISM }), fc.nat(), (maxP, n) => {
        validateParallelism((n % maxP) + 1, maxP);
      }),
    );
  });

  it('names both numbers and what to do when parallelism exceeds maxParallelism', () => {
    expect(thrown(() => validateParallelism(300, 256)).message).toBe(
      'parallelism 300 exceeds maxParallelism 256: raise --max-parallelism to at least 300, ' +
        'or lower the parallelism',
    );
  });

  it.each([0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY])('rejects parallelism %s', (p) => {
    const message = thrown(() => validateParallelism(p, 128)).message;
    expect(message).toContain(`parallelism must be an integer >= 1, got ${p}`);
    expect(message).toContain('--parallelism');
  });

  it.each([0, 32769, 2.5, Number.NaN])('rejects maxParallelism %s', (maxP) => {
    const message = thrown(() => validateParallelism(1, maxP)).message;
    expect(message).toContain(`maxParallelism must be an integer in [1, 32768], got ${maxP}`);
    expect(message).toContain('--max-parallelism');
  });

  it('describes arguments of the wrong type', () => {
    expect(thrown(() => validateParallelism('4' as unknown as number, 128)).message).toContain(
      'got "4"',
    );
    expect(thrown(() => checkMaxParallelism(undefined as unknown as number)).message).toContain(
      'got a value of type undefined',
    );
  });
});

describe('defaultMaxParallelism', () => {
  it('is a power of two in [128, 32768] with 1.5x headroom when it fits', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 100_000 }), (p) => {
        const maxP = defaultMaxParallelism(p);
        expect(maxP & (maxP - 1)).toBe(0);
        expect(maxP).toBeGreaterThanOrEqual(128);
        expect(maxP).toBeLessThanOrEqual(32768);
        if (maxP < 32768) expect(maxP).toBeGreaterThanOrEqual(p + Math.floor(p / 2));
        if (maxP > 128) expect(maxP / 2).toBeLessThan(p + Math.floor(p / 2));
      }),
    );
  });

  it('clamps huge parallelisms without int32 overflow', () => {
    expect(defaultMaxParallelism(2 ** 31)).toBe(32768);
    expect(defaultMaxParallelism(Number.MAX_SAFE_INTEGER)).toBe(32768);
  });

  it('rejects a parallelism below 1', () => {
    thrown(() => defaultMaxParallelism(0));
  });
});
