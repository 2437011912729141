import fc from 'fast-check';
import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { packValue, unpackValue, unpackValueAt } from './value-codec.js';

const reference = new Packr({ moreTypes: true });

describe('disk value codec', () => {
  it('decodes scalars exactly as msgpackr does (the fast path)', () => {
    const edges = [0, 1, 0x3f, 0x40, 0x7f, 0xff, 0x100, 0xffff, 0x10000, 2 ** 32 - 1, 2 ** 32];
    const ints = edges.flatMap((x) => [x, -x, x - 1, -x - 1]);
    fc.assert(
      fc.property(
        fc.oneof(
          fc.constantFrom(...ints, null, true, false, Number.NaN, -0, Infinity),
          fc.integer(),
          fc.double(),
        ),
        (v) => {
          const bytes = packValue(v).slice();
          expect(Object.is(unpackValue(bytes), reference.unpack(bytes))).toBe(true);
          expect(unpackValue(bytes)).toEqual(v === 0 ? 0 : v);
        },
      ),
    );
  });

  it('round-trips what the checkpoint codec accepts (a Map stays a Map)', () => {
    fc.assert(
      fc.property(fc.anything({ withMap: true, withBigInt: true, withDate: true }), (v) => {
        const bytes = packValue(v).slice();
        expect(unpackValue(bytes)).toEqual(reference.unpack(bytes));
      }),
    );
    const m = new Map<unknown, unknown>([[1, { a: [1n, 'x'] }]]);
    expect(unpackValue(packValue(m).slice())).toEqual(m);
  });

  it('decodes a value inside a larger buffer by offsets as it decodes it alone', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.integer(), fc.double(), fc.anything({ withMap: true })),
        fc.uint8Array({ maxLength: 5 }),
        fc.uint8Array({ maxLength: 5 }),
        (v, before, after) => {
          const bytes = packValue(v).slice();
          const buf = Buffer.concat([before, bytes, after]);
          const at = before.length;
          const got = unpackValueAt(buf, at, at + bytes.length);
          const alone = unpackValue(bytes);
          if (typeof alone === 'object' && alone !== null) expect(got).toEqual(alone);
          else expect(Object.is(got, alone)).toBe(true);
        },
      ),
    );
  });
});
