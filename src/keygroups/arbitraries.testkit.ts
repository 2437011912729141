/**
 * fast-check arbitraries and an independent key-equality oracle, shared by the keygroups tests.
 * Test-only (imports fast-check, a dev dependency); nothing outside tests imports it.
 */
import fc from 'fast-check';
import type { Key } from './hash.js';

/** Any UTF-16 code unit, lone surrogates and U+0000 included. */
const codeUnit = fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c));

/** Characters the normalized encoding uses, to provoke look-alike strings. */
const encodingChar = fc.constantFrom('\u0000', 'T', 'D', 'S', 'a', 's', 'n', 'd', ':', ';', '1');

/** Strings of arbitrary code units, biased towards ones that resemble encoded keys. */
export const anyString = fc.string({ unit: fc.oneof(codeUnit, encodingChar), maxLength: 12 });

const anyDate = fc.date({ noInvalidDate: true });

/** Leaf keys over the full domains of each type. */
export const anyLeaf: fc.Arbitrary<Key> = fc.oneof(
  anyString,
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.bigInt(),
  anyDate,
);

/** Leaf keys over tiny domains, so that random keys are often equal. */
export const smallLeaf: fc.Arbitrary<Key> = fc.oneof(
  fc.constantFrom('', 'a', 'ab', '\u0000', '\u0000T', '1', 'n1;', 's1:a'),
  fc.constantFrom(0, -0, 1, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 40),
  fc.boolean(),
  fc.constantFrom(0n, 1n, -1n, 2n ** 64n),
  fc.constantFrom(0, 1, -1).map((ms) => new Date(ms)),
);

/** Keys, tuples nested up to a few levels, built from `leaf`. */
export const keyOf = (leaf: fc.Arbitrary<Key>, maxLength = 4): fc.Arbitrary<Key> =>
  fc.letrec<{ key: Key }>((tie) => ({
    key: fc.oneof({ depthSize: 'small' }, leaf, fc.array(tie('key'), { maxLength })),
  })).key;

/** Tuple keys only. */
export const tupleOf = (leaf: fc.Arbitrary<Key>): fc.Arbitrary<readonly Key[]> =>
  fc.array(keyOf(leaf), { maxLength: 4 });

/** Map key equality: like `===` but NaN equals NaN (and 0 equals -0, as `===` already has). */
export const sameValueZero = (a: unknown, b: unknown): boolean =>
  a === b || (Number.isNaN(a) && Number.isNaN(b));

/**
 * The intended key equality, written independently of `normalizeKey`: same type, numbers by
 * SameValueZero, Dates by time, tuples element by element.
 */
export const sameKey = (a: Key, b: Key): boolean => {
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    return a.every((e: Key, i: number) => sameKey(e, b[i] as Key));
  }
  if (a instanceof Date || b instanceof Date) {
    return a instanceof Date && b instanceof Date && a.getTime() === b.getTime();
  }
  return sameValueZero(a, b);
};

/** A deep copy of a key with fresh Date objects and every 0 replaced by -0. */
export const cloneKey = (key: Key): Key => {
  if (Array.isArray(key)) return key.map(cloneKey);
  if (key instanceof Date) return new Date(key.getTime());
  return key === 0 ? -0 : key;
};
