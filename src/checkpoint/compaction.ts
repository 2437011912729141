/**
 * When an incremental checkpoint rewrites a key group's base instead of appending a delta to
 * its chain. Pure; exhaustively tested in compaction.test.ts.
 *
 * The bound it keeps: a restore reads at most {@link MAX_READ_FACTOR} times the key group's
 * live state. The live state's size is estimated from its entry count and the base block's
 * bytes per record (the base holds only live entries when written); a chain of full-checkpoint
 * blocks, whose records are unknown (0), is taken at its base's size. A chain also never grows
 * past {@link MAX_CHAIN_BLOCKS} blocks, which bounds the files a restore opens per key group.
 */

/** A restore reads at most this many times the live state of a key group. */
export const MAX_READ_FACTOR = 2;

/** The longest chain: a base and this many blocks minus one of deltas. */
export const MAX_CHAIN_BLOCKS = 32;

/** A key group's chain as the decision sees it, and the delta about to be appended. */
export interface CompactionInput {
  /** Bytes of the chain's blocks, base first. */
  readonly chainBytes: readonly number[];
  /** Records (entries plus deletions) of the base block; 0 when unknown. */
  readonly baseRecords: number;
  /** Bytes of the delta to append. */
  readonly deltaBytes: number;
  /** Live (state, key) entries of the key group now. */
  readonly liveEntries: number;
}

/** The estimated bytes of the key group's live state. */
export const estimatedLiveBytes = (c: CompactionInput): number => {
  const base = c.chainBytes[0] ?? 0;
  if (c.baseRecords <= 0) return base;
  return (base / c.baseRecords) * c.liveEntries;
};

/** True when the delta must not be appended: the key group's base is rewritten instead. */
export const shouldCompact = (c: CompactionInput): boolean => {
  if (c.chainBytes.length === 0) return false; // nothing to append to: the delta is the base
  if (c.chainBytes.length + 1 > MAX_CHAIN_BLOCKS) return true;
  let total = c.deltaBytes;
  for (const b of c.chainBytes) total += b;
  return total > MAX_READ_FACTOR * estimatedLiveBytes(c);
};
