import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { UnhashableKeyError } from '../core/errors.js';
import { anyLeaf, anyString, keyOf } from './arbitraries.testkit.js';
import { javaStringHashCode, type Key, keyHashCode } from './hash.js';
import { MAX_KEY_DEPTH } from './unhashable.js';

/*
 * Independent references, in BigInt arithmetic on exact values and bit patterns, written from
 * the Java API docs rather than from the implementation.
 */
const int = (x: bigint) => Number(BigInt.asIntN(32, x));
const refString = (s: string) =>
  int(
    [...Array(s.length).keys()].reduce(
      (h, i) => BigInt.asIntN(32, 31n * h + BigInt(s.charCodeAt(i))),
      0n,
    ),
  );
const doubleBits = (x: number) =>
  Number.isNaN(x) ? 0x7ff8000000000000n : new BigUint64Array(new Float64Array([x]).buffer)[0]!;
const refDouble = (x: number) => int(doubleBits(x) ^ (doubleBits(x) >> 32n));
const refLong = (v: bigint) => int(BigInt.asUintN(64, v) ^ (BigInt.asUintN(64, v) >> 32n));
const refBigInteger = (v: bigint) => {
  const hex = (v < 0n ? -v : v).toString(16);
  const padded = hex.padStart(Math.ceil(hex.length / 8) * 8, '0');
  let h = 0n;
  for (let i = 0; i < padded.length; i += 8) {
    h = BigInt.asIntN(32, 31n * h + BigInt(`0x${padded.slice(i, i + 8)}`));
  }
  return int(v < 0n ? -h : h);
};
const refDate = (ms: number) =>
  int(BigInt.asIntN(32, BigInt(ms)) ^ BigInt.asIntN(32, BigInt(ms) >> 32n));

describe('known Java values', () => {
  // Printed by jshell (OpenJDK) for the Java expressions named in each case.
  it.each([
    ['Double.hashCode(1.5)', 1.5, 1073217536],
    ['Double.hashCode(0.1)', 0.1, -1507852285],
    ['Double.hashCode(Double.NaN)', Number.NaN, 2146959360],
    ['Double.hashCode(Math.pow(2, 40))', 2 ** 40, 1114636288],
    ['Double.hashCode(-1e300)', -1e300, 1983353248],
    ['Boolean.hashCode(true)', true, 1231],
    ['Boolean.hashCode(false)', false, 1237],
    ['Long.hashCode(1L << 40)', 2n ** 40n, 256],
    ['Long.hashCode(-5L)', -5n, 4],
    ['Long.hashCode(Long.MIN_VALUE)', -(2n ** 63n), -2147483648],
    ['new BigInteger("2^63").hashCode()', 2n ** 63n, -2147483648],
    [
      'new BigInteger("123456789012345678901234567890").hashCode()',
      123456789012345678901234567890n,
      1915528825,
    ],
    [
      'new BigInteger("-123456789012345678901234567890").hashCode()',
      -123456789012345678901234567890n,
      -1915528825,
    ],
    ['List.of("a", 1).hashCode()', ['a', 1], 3969],
    ['new Date(-1L).hashCode()', new Date(-1), 0],
    ['new Date(1700000000123L).hashCode()', new Date(1700000000123), -807048720],
    ['new Date(-8640000000000000L).hashCode()', new Date(-8.64e15), -1027256841],
  ] as [string, Key, number][])('%s = %i', (_java, key, expected) => {
    expect(keyHashCode(key)).toBe(expected);
  });

  it('List.hashCode(["a", 1]) = 31 * (31 * 1 + 97) + 1', () => {
    expect(keyHashCode(['a', 1])).toBe(31 * (31 * 1 + 97) + 1);
  });

  it('empty list hashes to 1, as in Java', () => {
    expect(keyHashCode([])).toBe(1);
  });
});

describe('javaStringHashCode', () => {
  it('matches the reference on strings of arbitrary UTF-16 code units', () => {
    fc.assert(fc.property(anyString, (s) => javaStringHashCode(s) === refString(s)));
  });

  it('is what keyHashCode uses for strings', () => {
    fc.assert(fc.property(anyString, (s) => keyHashCode(s) === javaStringHashCode(s)));
  });

  it('wraps at 32 bits on long strings', () => {
    const s = 'x'.repeat(10_000);
    expect(javaStringHashCode(s)).toBe(refString(s));
  });
});

describe('keyHashCode on numbers', () => {
  it('int32 numbers hash to themselves (Integer.hashCode)', () => {
    fc.assert(fc.property(fc.integer(), (n) => keyHashCode(n) === n));
  });

  it('an int32 computed through double arithmetic hashes like the literal int', () => {
    fc.assert(
      fc.property(fc.integer(), (n) => {
        const viaDouble = new Float64Array([n])[0]!;
        const viaText = Number.parseFloat(n.toFixed(3));
        const viaScaling = (n * 0.5) / 0.5;
        expect(keyHashCode(viaDouble)).toBe(n);
        expect(keyHashCode(viaText)).toBe(n);
        expect(keyHashCode(viaScaling)).toBe(n);
      }),
    );
  });

  it('-0 hashes like 0, at top level and inside tuples', () => {
    expect(keyHashCode(-0)).toBe(keyHashCode(0));
    expect(keyHashCode(['a', -0])).toBe(keyHashCode(['a', 0]));
  });

  it('other numbers hash like Java Double.hashCode', () => {
    const nonInt32 = fc.double().filter((x) => (x | 0) !== x);
    fc.assert(
      fc.property(nonInt32, (x) => keyHashCode(x) === refDouble(x)),
      { numRuns: 2000 },
    );
  });

  it('integers just outside int32 take the Double path', () => {
    for (const x of [2 ** 31, -(2 ** 31) - 1, 2 ** 53, -(2 ** 53), Number.MAX_VALUE]) {
      expect(keyHashCode(x)).toBe(refDouble(x));
    }
  });

  it('every NaN hashes as the canonical NaN; infinities as Java does', () => {
    const payloadNaN = new Float64Array(new BigUint64Array([0xfff8000000000123n]).buffer)[0]!;
    expect(Number.isNaN(payloadNaN)).toBe(true);
    expect(keyHashCode(payloadNaN)).toBe(keyHashCode(Number.NaN));
    expect(keyHashCode(Number.POSITIVE_INFINITY)).toBe(refDouble(Number.POSITIVE_INFINITY));
    expect(keyHashCode(Number.NEGATIVE_INFINITY)).toBe(refDouble(Number.NEGATIVE_INFINITY));
  });
});

describe('keyHashCode on bigints, Dates and tuples', () => {
  it('bigints in int64 hash like Long.hashCode', () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
        (v) => keyHashCode(v) === refLong(v),
      ),
    );
  });

  it('bigints outside int64 hash like BigInteger.hashCode', () => {
    const huge = fc.bigInt({ min: 2n ** 63n, max: 2n ** 300n });
    fc.assert(
      fc.property(huge, fc.boolean(), (v, negate) => {
        const value = negate ? -v - 1n : v; // -v - 1n reaches down to -2^63 - 1
        return keyHashCode(value) === refBigInteger(value);
      }),
    );
  });

  it('Dates hash like java.util.Date.hashCode of their epoch milliseconds', () => {
    fc.assert(
      fc.property(fc.date({ noInvalidDate: true }), (d) => keyHashCode(d) === refDate(d.getTime())),
    );
  });

  it('tuples hash like List.hashCode over the element hashes', () => {
    const refList = (t: readonly Key[]) =>
      int(t.reduce<bigint>((h, e) => BigInt.asIntN(32, 31n * h + BigInt(keyHashCode(e))), 1n));
    fc.assert(fc.property(fc.array(keyOf(anyLeaf)), (t) => keyHashCode(t) === refList(t)));
  });

  it('always returns an int32', () => {
    fc.assert(fc.property(keyOf(anyLeaf), (k) => (keyHashCode(k) | 0) === keyHashCode(k)));
  });
});

describe('unhashable keys', () => {
  const expectUnhashable = (key: unknown, typeWords: string) => {
    let error: unknown;
    try {
      keyHashCode(key as Key);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(UnhashableKeyError);
    expect((error as UnhashableKeyError).code).toBe('EDDY_UNHASHABLE_KEY');
    expect((error as Error).message).toContain(typeWords);
    expect((error as Error).message).toContain('from the keyBy selector');
  };

  it.each([
    [null, 'null'],
    [undefined, 'undefined'],
    [{ a: 1 }, 'a plain object'],
    [Object.create(null), 'a plain object'],
    [new Map(), 'an object of class Map'],
    [Symbol('k'), 'a value of type symbol'],
    [() => 1, 'a function'],
    [new String('boxed'), 'an object of class String'],
  ])('rejects %s', (key, typeWords) => {
    expectUnhashable(key, typeWords);
  });

  it('rejects unhashable tuple elements, saying they are inside a tuple', () => {
    expectUnhashable(['a', null], 'cannot use null as a tuple key element');
    expectUnhashable([['a', { b: 1 }]], 'a plain object as a tuple key element');
    // biome-ignore lint/suspicious/noSparseArray: a hole reads as undefined
    expectUnhashable([1, , 2], 'undefined as a tuple key element');
  });

  it('rejects an invalid Date', () => {
    expectUnhashable(new Date(Number.NaN), 'invalid Date');
  });

  it('rejects a self-containing tuple instead of overflowing the stack', () => {
    const cyclic: unknown[] = ['a'];
    cyclic.push(cyclic);
    expectUnhashable(cyclic, `more than ${MAX_KEY_DEPTH} levels deep`);
  });
});
