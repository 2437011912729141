import { InvalidArgumentError } from '../core/errors.js';
import { isIntegerIn, show, validateParallelism } from './parallelism.js';

/**
 * A contiguous, inclusive range of key groups `[start, end]`. Ranges built here are never
 * empty (`start <= end`); an empty intersection is `undefined` rather than a range.
 */
export interface KeyGroupRange {
  readonly start: number;
  readonly end: number;
}

/*
 * Checked vs unchecked: the exported functions validate their arguments (a few integer
 * comparisons) and throw InvalidArgumentError with advice. `operatorIndexForKeyGroupUnchecked`
 * skips that for per-record routing, where the arguments were validated once when the job was
 * built; with bad arguments it returns garbage instead of throwing.
 */

/**
 * The key groups owned by subtask `operatorIndex` of an operator with `parallelism` subtasks:
 * `start = ceil(i * maxP / p)`, `end = floor(((i + 1) * maxP - 1) / p)` (Flink's formula). The
 * ranges of subtasks 0..p-1 are non-empty, contiguous and cover `[0, maxParallelism)`.
 * @throws InvalidArgumentError if the parallelisms are invalid (see `validateParallelism`) or
 *   operatorIndex is not an integer in [0, parallelism).
 * @example
 * computeKeyGroupRange(128, 3, 1); // { start: 43, end: 85 }
 */
export const computeKeyGroupRange = (
  maxParallelism: number,
  parallelism: number,
  operatorIndex: number,
): KeyGroupRange => {
  validateParallelism(parallelism, maxParallelism);
  checkIndex('operatorIndex', operatorIndex, parallelism, 'parallelism');
  // Products stay below 2^30 (maxParallelism <= 2^15, p <= maxP), so plain arithmetic is exact.
  return {
    start: Math.floor((operatorIndex * maxParallelism + parallelism - 1) / parallelism),
    end: Math.floor(((operatorIndex + 1) * maxParallelism - 1) / parallelism),
  };
};

/**
 * The subtask that owns `keyGroup`: `floor(keyGroup * parallelism / maxParallelism)`, the inverse
 * of {@link computeKeyGroupRange}.
 * @throws InvalidArgumentError if the parallelisms are invalid (see `validateParallelism`) or
 *   keyGroup is not an integer in [0, maxParallelism).
 * @example
 * operatorIndexForKeyGroup(128, 3, 43); // 1
 */
export const operatorIndexForKeyGroup = (
  maxParallelism: number,
  parallelism: number,
  keyGroup: number,
): number => {
  validateParallelism(parallelism, maxParallelism);
  checkIndex('keyGroup', keyGroup, maxParallelism, 'maxParallelism');
  return operatorIndexForKeyGroupUnchecked(maxParallelism, parallelism, keyGroup);
};

/**
 * {@link operatorIndexForKeyGroup} without argument checks, for the per-record hot path.
 * The caller guarantees `1 <= parallelism <= maxParallelism <= 32768` and
 * `0 <= keyGroup < maxParallelism`, all integers.
 */
export const operatorIndexForKeyGroupUnchecked = (
  maxParallelism: number,
  parallelism: number,
  keyGroup: number,
): number => Math.floor((keyGroup * parallelism) / maxParallelism);

/** The number of key groups in the range (0 if `end < start`). */
export const keyGroupRangeSize = (range: KeyGroupRange): number =>
  Math.max(0, range.end - range.start + 1);

/** True when `keyGroup` lies in the range. */
export const keyGroupRangeContains = (range: KeyGroupRange, keyGroup: number): boolean =>
  keyGroup >= range.start && keyGroup <= range.end;

/**
 * The key groups two ranges share, or `undefined` when they share none. On rescaling, the
 * intersection of an old subtask's range with a new one is what the new subtask must read.
 * @example
 * intersectKeyGroupRanges({ start: 0, end: 63 }, { start: 43, end: 85 }); // { start: 43, end: 63 }
 */
export const intersectKeyGroupRanges = (
  a: KeyGroupRange,
  b: KeyGroupRange,
): KeyGroupRange | undefined => {
  const start = Math.max(a.start, b.start);
  const end = Math.min(a.end, b.end);
  return start <= end ? { start, end } : undefined;
};

const checkIndex = (name: string, value: number, bound: number, boundName: string): void => {
  if (isIntegerIn(value, 0, bound - 1)) return;
  throw new InvalidArgumentError(
    `${name} must be an integer in [0, ${boundName} ${bound}), got ${show(value)}`,
  );
};
