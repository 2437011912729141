import type { Key } from './hash.js';

/**
 * The kind of a key, for telling two inputs' keys apart: `string`, `number`, `bigint`,
 * `boolean`, `Date`, or a tuple of kinds such as `[string, number]`. Two key selectors that
 * must meet (connect, joins) have to produce keys of one kind: `1` and `'1'` are different
 * keys, so records keyed by one never meet records keyed by the other.
 */
export const keyKind = (key: Key): string => {
  if (Array.isArray(key)) return `[${key.map((k: Key) => keyKind(k)).join(', ')}]`;
  if (key instanceof Date) return 'Date';
  return typeof key;
};
