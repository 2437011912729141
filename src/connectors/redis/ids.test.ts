import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compareIds, ID_ZERO, isEntryId, nextId } from './ids.js';

const MAX = '18446744073709551615';

describe('redis entry ids', () => {
  it('validates ids', () => {
    expect(isEntryId('0-0')).toBe(true);
    expect(isEntryId(`${MAX}-${MAX}`)).toBe(true);
    for (const bad of [
      '',
      '$',
      '>',
      '1',
      '1-',
      '-1',
      '01-0',
      '1-01',
      'a-b',
      `1-${MAX}0`,
      '18446744073709551616-0',
      3,
    ]) {
      expect(isEntryId(bad), String(bad)).toBe(false);
    }
  });

  it('compares numerically, not as strings', () => {
    expect(compareIds('9-0', '10-0')).toBeLessThan(0);
    expect(compareIds('10-0', '9-0')).toBeGreaterThan(0);
    expect(compareIds('5-9', '5-10')).toBeLessThan(0);
    expect(compareIds('5-10', '5-10')).toBe(0);
    expect(compareIds(ID_ZERO, '0-1')).toBeLessThan(0);
    expect(compareIds(`${MAX}-0`, '1-0')).toBeGreaterThan(0);
    expect(() => compareIds('x', '1-0')).toThrow(/not a Redis stream entry id: 'x'/);
  });

  it('orders as BigInt pairs do (property)', () => {
    const part = fc.bigInt({ min: 0n, max: 2n ** 64n - 1n });
    fc.assert(
      fc.property(part, part, part, part, (a, b, c, d) => {
        const expected = a === c ? Math.sign(Number(b - d)) : a < c ? -1 : 1;
        expect(Math.sign(compareIds(`${a}-${b}`, `${c}-${d}`))).toBe(expected);
      }),
    );
  });

  it('increments, carrying into the millisecond part', () => {
    expect(nextId('5-1')).toBe('5-2');
    expect(nextId('5-9')).toBe('5-10');
    expect(nextId('199-99')).toBe('199-100');
    expect(nextId(`5-${MAX}`)).toBe('6-0');
    expect(nextId(`${MAX}-${MAX}`)).toBeUndefined();
    fc.assert(
      fc.property(
        fc.bigInt({ min: 0n, max: 2n ** 64n - 2n }),
        fc.bigInt({ min: 0n, max: 2n ** 64n - 2n }),
        (a, b) => {
          const id = `${a}-${b}`;
          expect(nextId(id)).toBe(`${a}-${b + 1n}`);
          expect(compareIds(nextId(id)!, id)).toBeGreaterThan(0);
        },
      ),
    );
  });
});
