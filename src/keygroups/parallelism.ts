import { InvalidArgumentError } from '../core/errors.js';

/** The largest allowed `maxParallelism` (number of key groups), as in Flink: 2^15. */
export const UPPER_BOUND_MAX_PARALLELISM = 32768;

/** The smallest `maxParallelism` that `defaultMaxParallelism` picks. */
export const DEFAULT_LOWER_BOUND_MAX_PARALLELISM = 128;

/**
 * Flink's default `maxParallelism` for a parallelism p:
 * `min(max(roundUpToPowerOfTwo(p + floor(p / 2)), 128), 32768)`. The 1.5x headroom lets the
 * job scale out later; the result can never change once the job has state.
 * @throws InvalidArgumentError (`EDDY_INVALID_PARALLELISM`) unless p is an integer >= 1.
 * @example
 * defaultMaxParallelism(100); // 256
 */
export const defaultMaxParallelism = (parallelism: number): number => {
  checkParallelism(parallelism);
  const wanted = parallelism + Math.floor(parallelism / 2);
  // Clamp before rounding: 1 << 31 and beyond overflow int32.
  if (wanted >= UPPER_BOUND_MAX_PARALLELISM) return UPPER_BOUND_MAX_PARALLELISM;
  return Math.max(roundUpToPowerOfTwo(wanted), DEFAULT_LOWER_BOUND_MAX_PARALLELISM);
};

/** The smallest power of two >= x, for 1 <= x <= 2^30. */
const roundUpToPowerOfTwo = (x: number): number => 1 << (32 - Math.clz32(x - 1));

/**
 * Checks a parallelism against a maxParallelism, with advice in the message.
 * @throws InvalidArgumentError (`EDDY_INVALID_PARALLELISM`) unless parallelism is an integer
 *   >= 1, maxParallelism an integer in [1, 32768], and parallelism <= maxParallelism.
 * @example
 * validateParallelism(300, 256); // throws: parallelism 300 exceeds maxParallelism 256: ...
 */
export const validateParallelism = (parallelism: number, maxParallelism: number): void => {
  checkParallelism(parallelism);
  checkMaxParallelism(maxParallelism);
  if (parallelism > maxParallelism) {
    throw invalidParallelism(
      `parallelism ${parallelism} exceeds maxParallelism ${maxParallelism}: raise ` +
        `--max-parallelism to at least ${parallelism}, or lower the parallelism`,
    );
  }
};

/**
 * Checks the parallelism of an operator whose state (restored from a checkpoint) has
 * `maxParallelism` key groups: that number is fixed, so only the parallelism can change.
 * @throws InvalidArgumentError (`EDDY_INVALID_PARALLELISM`) if parallelism > maxParallelism.
 */
export const validateParallelismWithState = (
  what: string,
  parallelism: number,
  maxParallelism: number,
): void => {
  checkParallelism(parallelism);
  if (parallelism > maxParallelism) {
    throw invalidParallelism(
      `${what}: parallelism ${parallelism} exceeds maxParallelism ${maxParallelism}, which is ` +
        `fixed once the job has state (its state has ${maxParallelism} key groups): choose a ` +
        `parallelism <= ${maxParallelism}`,
    );
  }
};

/**
 * Checks a maxParallelism (the number of key groups) alone.
 * @throws InvalidArgumentError (`EDDY_INVALID_PARALLELISM`) unless it is an integer in [1, 32768].
 */
export const checkMaxParallelism = (maxParallelism: number): void => {
  if (isIntegerIn(maxParallelism, 1, UPPER_BOUND_MAX_PARALLELISM)) return;
  throw invalidParallelism(
    `maxParallelism must be an integer in [1, ${UPPER_BOUND_MAX_PARALLELISM}], got ` +
      `${show(maxParallelism)}: set --max-parallelism within that range (it is the number of ` +
      'key groups and is fixed once the job has state)',
  );
};

const checkParallelism = (parallelism: number): void => {
  if (isIntegerIn(parallelism, 1, Number.MAX_SAFE_INTEGER)) return;
  throw invalidParallelism(
    `parallelism must be an integer >= 1, got ${show(parallelism)}: set --parallelism to a ` +
      'positive whole number',
  );
};

/** True when `value` is an integer in [min, max]; safe on values of any type. */
export const isIntegerIn = (value: unknown, min: number, max: number): value is number =>
  typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max;

/** A short rendering of an argument of unknown type, for error messages. */
export const show = (value: unknown): string => {
  const type = typeof value;
  if (type === 'number' || type === 'bigint' || type === 'boolean') return String(value);
  if (type === 'string') return JSON.stringify(value);
  return value === null ? 'null' : `a value of type ${type}`;
};

const invalidParallelism = (message: string): InvalidArgumentError =>
  new InvalidArgumentError(message, 'EDDY_INVALID_PARALLELISM');
