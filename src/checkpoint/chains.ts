/**
 * Full and incremental keyed handles seen one way: per key group a chain of blocks (a full
 * handle's chains have one block each, all in its one file). Readers, planners and reports use
 * this view so that they handle both kinds with one code path. Pure; no I/O.
 */
import type { KeyGroupRange } from '../keygroups/index.js';
import { type BlockRead, coalesceBlocks, DEFAULT_MAX_READ_BYTES } from './read-plan.js';
import type {
  AnyKeyedStateHandle,
  ChainBlock,
  IncrementalKeyedStateHandle,
  KeyedStateHandle,
  KeyGroupChain,
} from './types.js';

/** A keyed handle as chains: `files` are relative to the checkpoint directory. */
export interface ChainView {
  readonly keyGroupRange: readonly [number, number];
  readonly files: readonly string[];
  /** Ascending by key group; a full handle's have one block each, `records` and `entries` 0. */
  readonly chains: readonly KeyGroupChain[];
}

export const isIncremental = (h: AnyKeyedStateHandle): h is IncrementalKeyedStateHandle =>
  (h as IncrementalKeyedStateHandle).type === 'incremental';

/** The chains of `h`; an incremental handle is returned as it is. */
export const chainsOf = (h: AnyKeyedStateHandle): ChainView => {
  if (isIncremental(h)) return h;
  const full = h as KeyedStateHandle;
  return {
    keyGroupRange: full.keyGroupRange,
    files: [full.file],
    chains: full.blocks.map((b) => ({
      keyGroup: b.keyGroup,
      entries: 0,
      blocks: [{ offset: b.offset, length: b.length, crc32: b.crc32, file: 0, records: 0 }],
    })),
  };
};

/** Bytes of every block of `chain`: what restoring its key group reads. */
export const chainBytes = (chain: KeyGroupChain): number => {
  let n = 0;
  for (const b of chain.blocks) n += b.length;
  return n;
};

/** Bytes a restore of the whole handle reads (every chain's blocks). */
export const stateBytesOf = (h: AnyKeyedStateHandle): number => {
  let n = 0;
  for (const c of chainsOf(h).chains) n += chainBytes(c);
  return n;
};

/** The files `h` refers to (relative to the checkpoint directory), each once. */
export const keyedFilesOf = (h: AnyKeyedStateHandle): readonly string[] => chainsOf(h).files;

/** A block of a chain, with the key group it belongs to and its position in the chain. */
export interface ChainBlockRef extends ChainBlock {
  readonly keyGroup: number;
  /** 0 for the base block, then 1, 2, … for the deltas in the order they apply. */
  readonly position: number;
}

/** The coalesced reads of one file of a chain view. */
export interface ChainFileReads {
  /** Relative to the checkpoint directory, as in the view's `files`. */
  readonly file: string;
  readonly reads: readonly BlockRead<ChainBlockRef>[];
}

/**
 * The reads that fetch exactly the chains of the key groups of `range`: per file (in the
 * order of `view.files`, files without a selected block left out), the selected blocks by
 * offset, coalesced where they touch. The sum of the reads' lengths is the sum of the selected
 * chains' bytes (nothing else is read). Pure; the restore, the restore planner and
 * `eddy inspect --plan` all use it.
 */
export const planChainReads = (
  view: ChainView,
  range: KeyGroupRange,
  maxReadBytes = DEFAULT_MAX_READ_BYTES,
): ChainFileReads[] => {
  const chains = view.chains;
  const perFile: ChainBlockRef[][] = view.files.map(() => []);
  for (let i = firstChainAtOrAfter(chains, range.start); i < chains.length; i++) {
    const chain = chains[i]!;
    if (chain.keyGroup > range.end) break;
    chain.blocks.forEach((b, position) => {
      perFile[b.file]!.push({ ...b, keyGroup: chain.keyGroup, position });
    });
  }
  const out: ChainFileReads[] = [];
  perFile.forEach((blocks, file) => {
    if (blocks.length === 0) return;
    blocks.sort((a, b) => a.offset - b.offset);
    out.push({ file: view.files[file]!, reads: coalesceBlocks(blocks, maxReadBytes) });
  });
  return out;
};

/** The index of the first chain whose key group is >= `keyGroup` (chains ascend). */
export const firstChainAtOrAfter = (
  chains: readonly { readonly keyGroup: number }[],
  keyGroup: number,
): number => {
  let lo = 0;
  let hi = chains.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (chains[mid]!.keyGroup < keyGroup) lo = mid + 1;
    else hi = mid;
  }
  return lo;
};

/**
 * The chains of `range`'s key groups in `handles` (e.g. the old subtasks' handles a new
 * subtask's range overlaps after a rescale), as one view with one file list; undefined if any
 * handle is a full one (its file lives in a checkpoint directory that retention deletes, so no
 * later checkpoint may refer to it).
 */
export const chainsInRange = (
  handles: readonly AnyKeyedStateHandle[],
  range: KeyGroupRange,
): ChainView | undefined => {
  const files: string[] = [];
  const index = new Map<string, number>();
  const chains: KeyGroupChain[] = [];
  for (const h of handles) {
    if (!isIncremental(h)) return undefined;
    for (const c of h.chains) {
      if (c.keyGroup < range.start || c.keyGroup > range.end) continue;
      const blocks = c.blocks.map((b) => {
        const ref = h.files[b.file]!;
        let i = index.get(ref);
        if (i === undefined) {
          i = files.length;
          files.push(ref);
          index.set(ref, i);
        }
        return { ...b, file: i };
      });
      chains.push({ ...c, blocks });
    }
  }
  chains.sort((a, b) => a.keyGroup - b.keyGroup);
  return { keyGroupRange: [range.start, range.end], files, chains };
};
