/**
 * Redis stream entry ids (`<ms>-<seq>`, two unsigned 64-bit decimals) as plain strings:
 * compared and incremented without BigInt or Number, so ids past 2^53 (explicit ids a
 * producer chose) keep their order. Redis never writes leading zeros, so a longer decimal is
 * the larger one and equal lengths compare as strings.
 */

/** The id before every entry: `XREAD ... 0-0` reads a stream from its first entry. */
export const ID_ZERO = '0-0';

const MAX_U64 = '18446744073709551615';
const DECIMAL = /^(0|[1-9][0-9]{0,19})$/;

/** Splits a valid id into its decimal parts; undefined for anything else. */
const parts = (id: string): [string, string] | undefined => {
  const dash = id.indexOf('-');
  if (dash <= 0) return undefined;
  const ms = id.slice(0, dash);
  const seq = id.slice(dash + 1);
  if (!DECIMAL.test(ms) || !DECIMAL.test(seq)) return undefined;
  if (compareDecimals(ms, MAX_U64) > 0 || compareDecimals(seq, MAX_U64) > 0) return undefined;
  return [ms, seq];
};

/** Compares two non-negative decimals without leading zeros. */
const compareDecimals = (a: string, b: string): number => {
  if (a.length !== b.length) return a.length < b.length ? -1 : 1;
  return a < b ? -1 : a > b ? 1 : 0;
};

/**
 * True for a complete entry id `<ms>-<seq>` (both parts below 2^64).
 *
 * @example
 * isEntryId('1700000000000-3'); // true
 * isEntryId('$'); // false
 */
export const isEntryId = (id: unknown): id is string =>
  typeof id === 'string' && parts(id) !== undefined;

/**
 * Orders two entry ids: negative when `a` comes first, 0 when equal, positive after.
 * Throws on a malformed id (callers validate ids from state and from the server).
 *
 * @example
 * compareIds('9-0', '10-0'); // < 0 (numeric, not string order)
 */
export const compareIds = (a: string, b: string): number => {
  const pa = parts(a);
  const pb = parts(b);
  if (pa === undefined || pb === undefined) {
    throw new TypeError(`not a Redis stream entry id: '${pa === undefined ? a : b}'`);
  }
  return compareDecimals(pa[0], pb[0]) || compareDecimals(pa[1], pb[1]);
};

/** Adds one to a decimal string. */
const incrementDecimal = (d: string): string => {
  const digits = d.split('');
  let i = digits.length - 1;
  while (i >= 0 && digits[i] === '9') digits[i--] = '0';
  if (i < 0) return `1${digits.join('')}`;
  digits[i] = String(Number(digits[i]) + 1);
  return digits.join('');
};

/**
 * The smallest id after `id` (for an inclusive range start that excludes `id`); undefined
 * after the largest possible id.
 *
 * @example
 * nextId('5-1'); // '5-2'
 * nextId('5-18446744073709551615'); // '6-0'
 */
export const nextId = (id: string): string | undefined => {
  const p = parts(id);
  if (p === undefined) throw new TypeError(`not a Redis stream entry id: '${id}'`);
  const [ms, seq] = p;
  if (seq !== MAX_U64) return `${ms}-${incrementDecimal(seq)}`;
  if (ms !== MAX_U64) return `${incrementDecimal(ms)}-0`;
  return undefined;
};
