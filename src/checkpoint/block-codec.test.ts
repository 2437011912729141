import fc from 'fast-check';
import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { blockCrc, packBlock, unpackBlock } from './block-codec.js';
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
