import fc from 'fast-check';
import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { blockCrc, MsgpackWriter, packBlock, unpackBlock } from './block-codec.js';
import { stateValue } from './checkpoint.testkit.js';

describe('blocks', () => {
  it('each decodes on its own, in any order, with a fresh decoder', () => {
    fc.assert(
      fc.property(fc.array(stateValue, { minLength: 1, maxLength: 8 }), (values) => {
        const blocks = values.map((v) => Uint8Array.from(packBlock(v)));
        for (let i = blocks.length - 1; i >= 0; i--) {
          expect(new Packr({ moreTypes: true }).unpack(blocks[i]!)).toEqual(values[i]);
          expect(unpackBlock(blocks[i]!)).toEqual(values[i]);
        }
      }),
    );
  });

  it('keep Maps, Sets, Dates, bigints and typed arrays as they were', () => {
    const value = {
      m: new Map<unknown, unknown>([
        [1, 'a'],
        ['1', { x: 2n ** 80n }],
      ]),
      s: new Set([1, 2]),
      d: new Date(5),
      b: new Uint8Array([1, 2, 3]),
      u: undefined,
    };
    expect(unpackBlock(packBlock(value))).toEqual(value);
  });

  it('checksum with the zlib CRC-32', () => {
    expect(blockCrc(Buffer.from('123456789'))).toBe(0xcbf43926);
  });
});

/** Values the fast writer covers, and strings that stress its UTF-8 and header rules. */
const tricky = fc.oneof(
  fc.string({ maxLength: 70, unit: 'binary' }), // lone surrogates, astral characters
  fc.string({ minLength: 28, maxLength: 300, unit: 'grapheme' }), // header size fix-ups
  fc.constantFrom('x'.repeat(0x1f), 'é'.repeat(0x10), 'é'.repeat(0x80), '\ud800'.repeat(0x3f)),
);
const fastNumber = fc.oneof(
  fc.integer({ min: -70_000, max: 70_000 }),
  fc.integer(),
  fc.constantFrom(0x3f, 0x40, 0x7f, 0x80, 0xff, 0x100, 0xffff, 0x10000, 2 ** 32 - 1, 2 ** 32),
  fc.constantFrom(-0x20, -0x21, -0x80, -0x81, -0x8000, -0x8001, -(2 ** 31), -(2 ** 31) - 1),
  fc.double(),
  fc.maxSafeInteger(),
);
const fastValue: fc.Arbitrary<unknown> = fc.letrec<{ v: unknown }>((tie) => ({
  v: fc.oneof(
    { depthSize: 'small' },
    fastNumber,
    tricky,
    fc.boolean(),
    fc.constant(null),
    fc.array(tie('v'), { maxLength: 20 }),
  ),
})).v;

describe('MsgpackWriter', () => {
  it("writes exactly Packr's bytes for arrays, strings, numbers, booleans and null", () => {
    fc.assert(
      fc.property(fastValue, (value) => {
        const w = new MsgpackWriter(16); // tiny: every value makes it grow
        expect(w.value(value)).toBe(true);
        expect(Buffer.from(w.bytes())).toEqual(Buffer.from(packBlock(value)));
      }),
      { numRuns: 200 },
    );
    // The str16 and str32 headers, and a header fixed up across the 0x10000 boundary.
    for (const s of ['é'.repeat(0x7fff), 'é'.repeat(0x8000), 'x'.repeat(0x10000)]) {
      const w = new MsgpackWriter(16);
      w.string(s);
      expect(Buffer.from(w.bytes())).toEqual(Buffer.from(packBlock(s)));
    }
  });

  it('reports the values it does not cover (the caller falls back to Packr)', () => {
    const w = new MsgpackWriter();
    const holey: unknown[] = [];
    holey[1] = 1; // a hole at 0
    for (const v of [undefined, 1n, { a: 1 }, new Map(), new Date(0), [1, [undefined]], holey]) {
      w.reset();
      expect(w.value(v)).toBe(false);
    }
    // Deep nesting is left to Packr (bounded recursion).
    let deep: unknown = 1;
    for (let i = 0; i < 20; i++) deep = [deep];
    expect(w.value(deep)).toBe(false);
  });

  it('appends, truncates and hands out views of what it wrote', () => {
    const w = new MsgpackWriter(4);
    w.value('abc');
    const mark = w.length;
    w.value([1, 2, 3]);
    expect(Buffer.from(w.bytes(mark))).toEqual(Buffer.from(packBlock([1, 2, 3])));
    w.truncate(mark);
    w.raw(packBlock('tail'));
    expect(unpackBlock(w.bytes(mark))).toBe('tail');
    expect(w.length).toBe(mark + packBlock('tail').length);
  });
});
