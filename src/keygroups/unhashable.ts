import { UnhashableKeyError } from '../core/errors.js';

/**
 * How deeply tuple keys may nest. Real composite keys nest once or twice; the limit turns a
 * self-containing array (which would recurse forever) into a clear error instead of a
 * `RangeError: Maximum call stack size exceeded`.
 */
export const MAX_KEY_DEPTH = 32;

const ADVICE =
  'return a string, number, bigint, boolean, Date or a tuple (array) of these from the keyBy selector';

/** The error for a value that is not a `Key`; `inTuple` says it was found inside a tuple key. */
export const unhashableKey = (value: unknown, inTuple: boolean): UnhashableKeyError => {
  const where = inTuple ? 'a tuple key element' : 'a key';
  return new UnhashableKeyError(`cannot use ${describeType(value)} as ${where}: ${ADVICE}`);
};

/** The error for a Date whose time is NaN: it has no stable value to hash or compare. */
export const invalidDateKey = (): UnhashableKeyError =>
  new UnhashableKeyError(`cannot use an invalid Date (its time is NaN) as a key: ${ADVICE}`);

/** The error for tuple keys nested deeper than {@link MAX_KEY_DEPTH} (or containing themselves). */
export const tooDeepKey = (): UnhashableKeyError =>
  new UnhashableKeyError(
    `cannot use a tuple key nested more than ${MAX_KEY_DEPTH} levels deep (or one that contains ` +
      `itself): ${ADVICE}`,
  );

const describeType = (value: unknown): string => {
  if (value === null) return 'null';
  const type = typeof value;
  if (type === 'object') return describeObject(value as object);
  if (type === 'function') return 'a function';
  return type === 'undefined' ? 'undefined' : `a value of type ${type}`;
};

const describeObject = (value: object): string => {
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto === null || proto === Object.prototype) return 'a plain object';
  const name = (value.constructor as { name?: unknown } | undefined)?.name;
  return typeof name === 'string' && name !== '' ? `an object of class ${name}` : 'an object';
};
