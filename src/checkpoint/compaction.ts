/**
 * When an incremental checkpoint rewrites a key group's base instead of appending a delta to
 * its chain (the compaction of incremental checkpoints). Decided when the checkpoint is taken,
 * so the backend can capture that key group whole and its new base is written from memory,
 * never merged from the older blocks on disk. Pure; exhaustively tested in compaction.test.ts.
 *
 * The bound it keeps: a restore reads at most {@link MAX_READ_FACTOR} times the key group's
 * live state, on estimated sizes: bytes per record are taken from the base block (bytes /
 * records; a base whose records are unknown, 0, is taken to hold the live entries), the live
 * state is its entries times that, and the delta its changed entries times that. Each key
 * group's threshold lies between 1.5x and 2x (spread by its number), so that key groups
 * updated at the same pace do not all rewrite their bases in the same checkpoint. A chain also
 * never grows past {@link MAX_CHAIN_BLOCKS} blocks, which bounds the files a restore opens
 * per key group.
 */

/** A restore reads at most this many times the (estimated) live state of a key group. */
export const MAX_READ_FACTOR = 2;

/** The lowest per-key-group threshold (see {@link compactionFactor}). */
export const MIN_READ_FACTOR = 1.5;

/** The longest chain: a base and this many blocks minus one of deltas. */
export const MAX_CHAIN_BLOCKS = 32;

/** A key group's chain as the decision sees it, and what changed since. */
export interface CompactionInput {
  readonly keyGroup: number;
  /** The chain's blocks, base first: bytes, and records (0 when unknown). */
  readonly chain: ReadonlyArray<{ readonly length: number; readonly records: number }>;
  /** (State, key) entries changed since the chain's last block (deletions included). */
  readonly changed: number;
  /** Live (state, key) entries of the key group now. */
  readonly liveEntries: number;
}

/** The key group's threshold, in [MIN_READ_FACTOR, MAX_READ_FACTOR): spread by its number. */
export const compactionFactor = (keyGroup: number): number => {
  const spread = (keyGroup * 0.6180339887498949) % 1; // golden-ratio steps: evenly spread
  return MIN_READ_FACTOR + (MAX_READ_FACTOR - MIN_READ_FACTOR) * spread;
};

/** Estimated bytes per record of the key group: from its base block. */
export const bytesPerRecord = (c: CompactionInput): number => {
  const base = c.chain[0];
  if (base === undefined) return 0;
  const records = base.records > 0 ? base.records : c.liveEntries;
  return records > 0 ? base.length / records : base.length;
};

/** The estimated bytes of the key group's live state. */
export const estimatedLiveBytes = (c: CompactionInput): number => c.liveEntries * bytesPerRecord(c);

/** True when the key group gets a new base instead of a delta. */
export const shouldCompact = (c: CompactionInput): boolean => {
  if (c.chain.length === 0) return false; // nothing to append to: the changes are the base
  if (c.chain.length + 1 > MAX_CHAIN_BLOCKS) return true;
  let total = c.changed * bytesPerRecord(c);
  for (const b of c.chain) total += b.length;
  return total > compactionFactor(c.keyGroup) * estimatedLiveBytes(c);
};
