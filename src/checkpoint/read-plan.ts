/**
 * Coalescing of block reads: blocks that touch in the file become one read, so a restore does
 * few large sequential reads instead of one per block (docs/DESIGN.md §2). Pure; no I/O.
 */
import type { BlockHandle } from './types.js';

/** Options of the read functions. */
export interface ReadOptions {
  /** Cap on one coalesced read in bytes (default 8 MiB); a larger single block is read whole. */
  readonly maxReadBytes?: number;
}

/** One contiguous read: bytes `[offset, offset + length)` covering `blocks` exactly. */
export interface BlockRead<B extends BlockHandle = BlockHandle> {
  readonly offset: number;
  readonly length: number;
  readonly blocks: readonly B[];
}

/**
 * Default cap on one coalesced read. Hazard: without a cap, restoring a subtask's whole 10 GB
 * range would allocate one 10 GB buffer; with it, memory per read stays bounded while reads
 * stay large enough to be sequential. A single larger block is still read in one piece.
 */
export const DEFAULT_MAX_READ_BYTES = 8 * 1024 * 1024;

/**
 * Groups `blocks` (ascending by offset, non-overlapping) into reads: a block joins the current
 * read when it starts exactly where the read ends and the read stays within `maxReadBytes`.
 * The sum of the reads' lengths equals the sum of the blocks' lengths (no gap is ever read).
 */
export const coalesceBlocks = <B extends BlockHandle>(
  blocks: readonly B[],
  maxReadBytes = DEFAULT_MAX_READ_BYTES,
): BlockRead<B>[] => {
  const reads: BlockRead<B>[] = [];
  let current: { offset: number; length: number; blocks: B[] } | undefined;
  for (const b of blocks) {
    const touches = current !== undefined && current.offset + current.length === b.offset;
    if (current !== undefined && touches && current.length + b.length <= maxReadBytes) {
      current.length += b.length;
      current.blocks.push(b);
    } else {
      current = { offset: b.offset, length: b.length, blocks: [b] };
      reads.push(current);
    }
  }
  return reads;
};
