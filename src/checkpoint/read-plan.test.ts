import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { coalesceBlocks } from './read-plan.js';

const layout = fc
  .array(fc.record({ length: fc.integer({ min: 1, max: 50 }), gap: fc.constantFrom(0, 0, 0, 7) }), {
    maxLength: 30,
  })
  .map((items) => {
    let offset = 0;
    return items.map(({ length, gap }) => {
      offset += gap;
      const b = { offset, length, crc32: 0 };
      offset += length;
      return b;
    });
  });

describe('coalesceBlocks', () => {
  it('covers every block exactly once, never reads a gap, respects the cap', () => {
    fc.assert(
      fc.property(layout, fc.integer({ min: 1, max: 200 }), (blocks, cap) => {
        const reads = coalesceBlocks(blocks, cap);
        expect(reads.flatMap((r) => r.blocks)).toEqual(blocks);
        for (const r of reads) {
          expect(r.offset).toBe(r.blocks[0]!.offset);
          expect(r.length).toBe(r.blocks.reduce((s, b) => s + b.length, 0));
          if (r.blocks.length > 1) expect(r.length).toBeLessThanOrEqual(cap);
          r.blocks.slice(1).forEach((b, i) => {
            expect(b.offset).toBe(r.blocks[i]!.offset + r.blocks[i]!.length);
          });
        }
      }),
    );
  });

  it('joins touching blocks and splits at gaps', () => {
    const blocks = [
      { offset: 0, length: 5, crc32: 0 },
      { offset: 5, length: 5, crc32: 0 },
      { offset: 20, length: 5, crc32: 0 },
    ];
    expect(coalesceBlocks(blocks).map((r) => [r.offset, r.length])).toEqual([
      [0, 10],
      [20, 5],
    ]);
  });
});
