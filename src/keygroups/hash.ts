import { invalidDateKey, MAX_KEY_DEPTH, tooDeepKey, unhashableKey } from './unhashable.js';

/**
 * A value a `keyBy` selector may return. Tuples (arrays) of keys, nested or not, form
 * composite keys; two keys are the same key when their `normalizeKey` forms are equal.
 */
export type Key = string | number | bigint | boolean | Date | readonly Key[];

/*
 * keyHashCode, per key type. "Java" means the result equals Java's hashCode of the analogous
 * boxed value, so the key group equals the one Flink assigns to that Java key.
 *
 *   JS key                          | hash                                  | Java analogue
 *   --------------------------------+---------------------------------------+-----------------------
 *   string                          | h = 31*h + c over UTF-16 code units   | String.hashCode
 *   number, integer in int32 (-0=0) | the number itself                     | Integer.hashCode
 *   any other number (fractions,    | (int)(bits ^ (bits >>> 32)), bits the | Double.hashCode
 *     |n| >= 2^31, NaN, +-Infinity) |   IEEE 754 pattern, NaN canonical     |
 *   boolean                         | 1231 (true) / 1237 (false)            | Boolean.hashCode
 *   bigint in [-2^63, 2^63)         | (int)(v ^ (v >>> 32))                 | Long.hashCode
 *   bigint outside int64            | 31-polynomial over the big-endian     | BigInteger.hashCode
 *                                   |   32-bit words of |v|, times sign     |
 *   Date (valid)                    | (int) ms ^ (int)(ms >> 32)            | java.util.Date.hashCode
 *   tuple (array)                   | h = 1; h = 31*h + hash(e)             | List.hashCode
 *
 * Caveat: a JS number is a double, so 2**40 hashes as Double 2^40, not as Long 2^40; use a
 * bigint (2n ** 40n) when the Java side keys by long.
 */

/**
 * Java's `String.hashCode`: `h = 31*h + c` over the UTF-16 code units, wrapping at 32 bits.
 * Allocation-free.
 * @example
 * javaStringHashCode('a'); // 97
 */
export const javaStringHashCode = (s: string): number => {
  let h = 0;
  for (let i = 0; i < s.length; i++) h = (Math.imul(31, h) + s.charCodeAt(i)) | 0;
  return h;
};

/**
 * The int32 hash of a key, Java-compatible where Java has an analogous type (see the table in
 * this file): strings as `String.hashCode`, int32 numbers as themselves, other numbers as
 * `Double.hashCode` (with -0 hashed as 0, since a JS Map treats them as one key), booleans as
 * `Boolean.hashCode`, bigints as `Long.hashCode` (or `BigInteger.hashCode` beyond int64), Dates as
 * `java.util.Date.hashCode` of their epoch milliseconds, tuples as `List.hashCode`.
 *
 * The string and int32 paths do not allocate.
 *
 * @throws UnhashableKeyError for anything else (null, undefined, objects, symbols, functions),
 *   for an invalid Date, and for tuples nested deeper than `MAX_KEY_DEPTH`.
 * @example
 * keyHashCode(['a', 1]); // 3969, like Java's List.of("a", 1).hashCode()
 */
export const keyHashCode = (key: Key): number => hashAt(key, 0);

const hashAt = (key: unknown, depth: number): number => {
  switch (typeof key) {
    case 'string':
      return javaStringHashCode(key);
    case 'number':
      // `| 0` also turns -0 into 0, so -0 never reaches the double path.
      return (key | 0) === key ? key | 0 : javaDoubleHashCode(key);
    case 'boolean':
      return key ? 1231 : 1237;
    case 'bigint':
      return bigintHashCode(key);
    case 'object':
      if (Array.isArray(key)) return tupleHashCode(key, depth);
      if (key instanceof Date) return dateHashCode(key);
  }
  throw unhashableKey(key, depth > 0);
};

const tupleHashCode = (tuple: readonly unknown[], depth: number): number => {
  if (depth >= MAX_KEY_DEPTH) throw tooDeepKey();
  let h = 1;
  for (let i = 0; i < tuple.length; i++) h = (Math.imul(31, h) + hashAt(tuple[i], depth + 1)) | 0;
  return h;
};

// Scratch for reading a double's bits. Explicit little-endian reads keep the result
// independent of the platform's byte order.
const scratch = new DataView(new ArrayBuffer(8));

const javaDoubleHashCode = (value: number): number => {
  // Java's doubleToLongBits maps every NaN to 0x7ff8000000000000; JS NaNs may carry any payload.
  if (Number.isNaN(value)) return 0x7ff80000;
  scratch.setFloat64(0, value, true);
  return scratch.getInt32(0, true) ^ scratch.getInt32(4, true);
};

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

const bigintHashCode = (value: bigint): number =>
  value >= INT64_MIN && value <= INT64_MAX
    ? javaLongHashCode(value)
    : javaBigIntegerHashCode(value);

// Low word XOR high word: the low 32 bits of `v ^ (v >>> 32)`. The arithmetic shift differs
// from Java's logical one only in bits the cast to int discards.
const javaLongHashCode = (value: bigint): number =>
  Number(BigInt.asIntN(32, value)) ^ Number(BigInt.asIntN(32, value >> 32n));

// Java BigInteger.hashCode: h = 31*h + word over the magnitude's 32-bit words, most
// significant first, then times the sign.
const javaBigIntegerHashCode = (value: bigint): number => {
  const sign = value < 0n ? -1 : 1;
  let magnitude = value < 0n ? -value : value;
  const words: number[] = [];
  for (; magnitude > 0n; magnitude >>= 32n) words.push(Number(magnitude & 0xffffffffn));
  let h = 0;
  for (let i = words.length - 1; i >= 0; i--) h = (Math.imul(31, h) + words[i]!) | 0;
  return Math.imul(h, sign);
};

const dateHashCode = (date: Date): number => {
  const ms = date.getTime();
  if (Number.isNaN(ms)) throw invalidDateKey();
  // ms is an integer below 2^53 in magnitude: `| 0` takes its low 32 bits (two's complement),
  // and floor-division by 2^32 is the arithmetic shift `ms >> 32`.
  return (ms | 0) ^ (Math.floor(ms / 2 ** 32) | 0);
};
