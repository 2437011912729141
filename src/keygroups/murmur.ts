/**
 * Flink's `MathUtils.murmurHash(int)`: the MurmurHash3 (x86, 32-bit) finaliser applied to a
 * single 4-byte block with seed 0, then made non-negative.
 *
 * Every step must wrap at 32 bits exactly like Java `int` arithmetic, hence `Math.imul` and the
 * bitwise operators (which coerce to int32) instead of plain `*` and `+`.
 *
 * @param code - an int32 hash (e.g. from `keyHashCode`); other numbers are coerced with
 *   ToInt32 like any bitwise operand.
 * @returns a value in [0, 2^31 - 1]. `Integer.MIN_VALUE` maps to 0 because it has no positive
 *   counterpart in int32.
 * @example
 * murmurHashInt(0) % 128; // 94, the key group Flink gives the string "" and the int 0
 */
export const murmurHashInt = (code: number): number => {
  let k = Math.imul(code, 0xcc9e2d51);
  k = rotl32(k, 15);
  k = Math.imul(k, 0x1b873593);
  let h = rotl32(k, 13);
  h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  h ^= 4; // the block length in bytes
  h = fmix32(h);
  if (h >= 0) return h;
  return h === INT32_MIN ? 0 : -h;
};

const INT32_MIN = -2147483648;

const rotl32 = (x: number, r: number): number => (x << r) | (x >>> (32 - r));

const fmix32 = (h: number): number => {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
};
