/**
 * Byte comparison and copy for the store's hot loops. Keys and values here are mostly a few
 * dozen bytes, where Buffer's `compare`/`copy` with offsets spend more time checking their
 * arguments and crossing into C++ than working: plain loops are several times faster.
 */

/** Longer than this, a copy goes to `TypedArray.set` (memcpy). */
const LOOP_MAX = 64;

/** Compares a[aStart, aEnd) with b[bStart, bEnd) as unsigned bytes: < 0, 0 or > 0. */
export const compareBytes = (
  a: Uint8Array,
  aStart: number,
  aEnd: number,
  b: Uint8Array,
  bStart: number,
  bEnd: number,
): number => {
  const aLen = aEnd - aStart;
  const bLen = bEnd - bStart;
  const n = aLen < bLen ? aLen : bLen;
  for (let i = 0; i < n; i++) {
    const d = a[aStart + i]! - b[bStart + i]!;
    if (d !== 0) return d;
  }
  return aLen - bLen;
};

/** Copies src[start, end) to dst at `at`; returns the bytes copied. */
export const copyBytes = (
  src: Uint8Array,
  start: number,
  end: number,
  dst: Uint8Array,
  at: number,
): number => {
  const n = end - start;
  if (n > LOOP_MAX) {
    dst.set(src.subarray(start, end), at);
    return n;
  }
  for (let i = 0; i < n; i++) dst[at + i] = src[start + i]!;
  return n;
};
