import type { Key } from './hash.js';
import { invalidDateKey, MAX_KEY_DEPTH, tooDeepKey, unhashableKey } from './unhashable.js';

/** A key after normalisation (see {@link normalizeKey}): usable as a Map key by value. */
export type NormalizedKey = string | number | boolean | bigint;

/*
 * Encoded keys are strings that start with U+0000 and a tag: 'D' Date, 'T' tuple, 'S' a string
 * key that itself starts with U+0000 (escaped so it cannot collide with an encoded key).
 * Any other string is its own normalized form, so the common string path never allocates.
 *
 * Tuple elements are encoded prefix-free, so their concatenation decodes one way only:
 *   string   s<length>:<code units>      number  n<String(n)>;   (-0 as 0; String(n) has no ';')
 *   boolean  t | f                        bigint  b<decimal>;
 *   Date     d<epoch ms>;                 tuple   a<element count>:<elements>
 */
const ENCODED = '\u0000';

/**
 * A form of the key usable as a JS `Map` key *by value*: two keys normalize equal exactly when
 * they are the same key. Strings (except those starting with U+0000), booleans and bigints are
 * returned as they are; numbers too, with -0 turned into 0; Dates and tuples become tagged
 * strings.
 *
 * Injective across all key types: distinct keys never share a normalized form, even a string key
 * and a Date or tuple key. Equal normalized forms imply equal `keyHashCode`s.
 *
 * Hazard: hash the original key, never its normalized form; a Date or tuple key and its encoded
 * string hash differently and would land in different key groups.
 *
 * @throws UnhashableKeyError for values that are not a `Key` (same rules as `keyHashCode`).
 * @example
 * normalizeKey(['a', 1]) === normalizeKey(['a', 1]); // true
 */
export const normalizeKey = (key: Key): NormalizedKey => {
  switch (typeof key) {
    case 'string':
      return key.charCodeAt(0) === 0 ? `${ENCODED}S${key}` : key;
    case 'number':
      return key === 0 ? 0 : key;
    case 'boolean':
    case 'bigint':
      return key;
    case 'object':
      if (Array.isArray(key)) return `${ENCODED}T${encodeTuple(key, 0)}`;
      if (key instanceof Date) return `${ENCODED}D${dateMillis(key)}`;
  }
  throw unhashableKey(key, false);
};

const encodeTuple = (tuple: readonly unknown[], depth: number): string => {
  if (depth >= MAX_KEY_DEPTH) throw tooDeepKey();
  let out = `a${tuple.length}:`;
  for (let i = 0; i < tuple.length; i++) out += encodeElement(tuple[i], depth + 1);
  return out;
};

const encodeElement = (value: unknown, depth: number): string => {
  switch (typeof value) {
    case 'string':
      return `s${value.length}:${value}`;
    case 'number':
      return `n${value};`; // String(-0) is '0'
    case 'boolean':
      return value ? 't' : 'f';
    case 'bigint':
      return `b${value};`;
    case 'object':
      if (Array.isArray(value)) return encodeTuple(value, depth);
      if (value instanceof Date) return `d${dateMillis(value)};`;
  }
  throw unhashableKey(value, true);
};

const dateMillis = (date: Date): number => {
  const ms = date.getTime();
  if (Number.isNaN(ms)) throw invalidDateKey();
  return ms;
};

/**
 * The key a normalized form came from (the inverse of {@link normalizeKey}, which is
 * injective): for handing keys back to user code that only the state backend kept, e.g.
 * `applyToKeyedState`. Dates come back as new `Date` objects, tuples as new arrays.
 */
export const denormalizeKey = (normalized: NormalizedKey): Key => {
  if (typeof normalized !== 'string' || normalized.charCodeAt(0) !== 0) return normalized;
  const tag = normalized[1];
  const body = normalized.slice(2);
  if (tag === 'S') return body;
  if (tag === 'D') return new Date(Number(body));
  return new TupleDecoder(body).tuple();
};

class TupleDecoder {
  private at = 0;
  constructor(private readonly s: string) {}

  tuple(): Key[] {
    const colon = this.s.indexOf(':', this.at);
    const n = Number(this.s.slice(this.at + 1, colon));
    this.at = colon + 1;
    const out: Key[] = [];
    for (let i = 0; i < n; i++) out.push(this.element());
    return out;
  }

  private element(): Key {
    const tag = this.s[this.at]!;
    if (tag === 'a') return this.tuple();
    if (tag === 't' || tag === 'f') {
      this.at++;
      return tag === 't';
    }
    if (tag === 's') {
      const colon = this.s.indexOf(':', this.at);
      const len = Number(this.s.slice(this.at + 1, colon));
      this.at = colon + 1 + len;
      return this.s.slice(colon + 1, this.at);
    }
    const end = this.s.indexOf(';', this.at);
    const text = this.s.slice(this.at + 1, end);
    this.at = end + 1;
    if (tag === 'n') return Number(text);
    if (tag === 'b') return BigInt(text);
    return new Date(Number(text));
  }
}
