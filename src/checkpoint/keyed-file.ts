/**
 * Keyed state files (docs/DESIGN.md §2): one file per subtask, one block per non-empty key group,
 * blocks in ascending key-group order, back to back. The handle records each block's offset,
 * length and CRC-32, so a restore at any parallelism reads exactly the byte ranges of the key
 * groups it now owns — one contiguous read per run of consecutive key groups, no per-key index,
 * nothing irrelevant read.
 */
import { InternalError } from '../core/errors.js';
import type { KeyGroupRange } from '../keygroups/index.js';
import type { KeyGroupSnapshot, LazyKeyGroup } from '../state/types.js';
import { blockCrc } from './block-codec.js';
import {
  type BatchedFileWriter,
  readBlocks,
  readBlocksSync,
  writeSequentially,
} from './block-io.js';
import {
  type ChainBlockRef,
  chainBytes,
  chainsOf,
  firstChainAtOrAfter,
  isIncremental,
  planChainReads,
} from './chains.js';
import { malformedBlockError } from './errors.js';
import {
  applyChain,
  type DecodedBlock,
  decodeBlock,
  decodeKeyGroupBlock,
  type KeyGroupMaps,
  writeKeyGroupMapsInSlices,
  writeKeyGroupSnapshot,
} from './keyed-block.js';
import { fileInDir, isContainedRelativePath, isSharedFileRef } from './paths.js';
import {
  type BlockRead,
  coalesceBlocks,
  DEFAULT_MAX_READ_BYTES,
  type ReadOptions,
} from './read-plan.js';
import type {
  AnyKeyedStateHandle,
  IncrementalKeyedStateHandle,
  KeyedStateHandle,
  KeyGroupBlock,
} from './types.js';

export { decodeKeyGroupBlock, encodeKeyGroupBlock, type KeyGroupMaps } from './keyed-block.js';

/**
 * Key groups read one at a time, e.g. a keyed backend's copy-on-write snapshot view
 * (`KeyedStateSnapshotView` satisfies it): the writer reads, encodes and writes one key group
 * before reading the next, so the entries of the whole subtask are never materialised at once.
 */
export interface KeyGroupSource {
  /** The key groups to write: ascending, no repeats, inside the file's range. */
  readonly keyGroups: readonly number[];
  /** The snapshot of `keyGroup` (its `keyGroup` must match); no block if `states` is empty. */
  read(keyGroup: number): KeyGroupSnapshot;
  /**
   * The key group's block as it was restored (lazily) and never touched since, if the source
   * has it: written unchanged instead of decoding and re-encoding it. It must be a block of
   * this format for `keyGroup`; its CRC is computed afresh.
   */
  encoded?(keyGroup: number): Uint8Array | undefined;
  /**
   * The key group's state in place, if the source can hand it out (the heap backend's view
   * does): encoded without building {@link read}'s snapshot, the bulk of a checkpoint's cost
   * otherwise. Must describe exactly what {@link read} would return; undefined to use `read`.
   * The writer still calls `read` for a key group whose values the fast encoder does not
   * cover (objects, Maps, bigints, …).
   */
  readMaps?(keyGroup: number): KeyGroupMaps | undefined;
}

/** What the writer writes for one key group. */
type Pending =
  | KeyGroupSnapshot
  | { readonly keyGroup: number; readonly block: Uint8Array }
  | { readonly keyGroup: number; readonly maps: KeyGroupMaps; readonly source: KeyGroupSource };

/**
 * Writes the keyed state of one subtask to `<dir>/<file>` and fsyncs it. Key groups without
 * state (no states) get no block. An array of snapshots may come in any order; they are written
 * ascending. A {@link KeyGroupSource} is read key group by key group while writing: the caller
 * must keep it readable (e.g. not release the view) until the returned promise settles.
 *
 * Blocks are encoded straight into ~1 MiB write buffers, and full buffers are written while the
 * next ones are encoded (block-io.ts). The writer shares the thread with the job: it lets the
 * event loop run every `SLICE_MS` (10 ms) of work, between key groups and, for a source's
 * in-place maps ({@link KeyGroupSource.readMaps}), inside a large key group too. A key group
 * that goes through msgpackr (values the fast encoder does not cover, or an array snapshot)
 * is encoded in one go, however large.
 * @param file the file name relative to `dir` (the checkpoint directory); recorded as is.
 * @throws InternalError if `file` escapes `dir`, or a snapshot's key group is outside the range
 *   or repeated (or out of order / mismatched, for a source); EddyError `EDDY_CHECKPOINT_IO` if
 *   the file system refuses (the partial file is removed); `EDDY_STATE` if a value cannot be
 *   encoded.
 */
export const writeKeyedStateFile = async (
  dir: string,
  file: string,
  keyGroupRange: KeyGroupRange,
  snapshots: readonly KeyGroupSnapshot[] | KeyGroupSource,
): Promise<KeyedStateHandle> => (await writeKeyedFile(dir, file, keyGroupRange, snapshots)).handle;

/**
 * {@link writeKeyedStateFile}, also giving per block the records (entries) it holds; 0 for a
 * block passed through unchanged (not decoded, so not counted).
 */
export const writeKeyedFile = async (
  dir: string,
  file: string,
  keyGroupRange: KeyGroupRange,
  snapshots: readonly KeyGroupSnapshot[] | KeyGroupSource,
): Promise<{ handle: KeyedStateHandle; records: number[] }> => {
  checkFileName(file);
  const ordered = isArray(snapshots)
    ? orderSnapshots(keyGroupRange, snapshots)
    : readInOrder(keyGroupRange, snapshots);
  const records: number[] = [];
  const { result: blocks, bytes } = await writeSequentially(fileInDir(dir, file), async (w) => {
    const out: KeyGroupBlock[] = [];
    for (const item of ordered) {
      const offset = w.size;
      const n = await writeBlock(w, item);
      if (n < 0) continue;
      const encoded = w.blockBytes(offset);
      out.push({
        keyGroup: item.keyGroup,
        offset,
        length: encoded.length,
        crc32: blockCrc(encoded),
      });
      records.push(n);
      await w.endBlock();
    }
    return out;
  });
  const handle = {
    file,
    keyGroupRange: [keyGroupRange.start, keyGroupRange.end] as const,
    blocks,
    bytes,
  };
  return { handle, records };
};

/**
 * Appends the block of `item` to `w`'s current buffer and returns its records (entries; 0 when
 * passed through undecoded); -1 if the key group has no state (nothing appended).
 * Hazard: `w` must not be flushed before the block is complete (the caller ends it).
 */
const writeBlock = async (w: BatchedFileWriter, item: Pending): Promise<number> => {
  if ('block' in item) {
    w.encoder.raw(item.block);
    return 0;
  }
  if ('maps' in item) {
    if (item.maps.states.length === 0) return -1;
    // Pauses inside a large key group too: a view's maps change meanwhile only as its `saved`
    // values allow for (keyed-block.ts KeyGroupMaps).
    const steps = writeKeyGroupMapsInSlices(w.encoder, item.maps);
    let step = steps.next();
    while (step.done !== true) {
      await w.pauseIfDue();
      step = steps.next();
    }
    if (step.value) return item.maps.states.reduce((n, st) => n + (st.count ?? st.entries.size), 0);
    return writeBlock(w, checkedRead(item.source, item.keyGroup));
  }
  if (item.states.length === 0) return -1;
  writeKeyGroupSnapshot(w.encoder, item);
  return item.states.reduce((n, st) => n + st.entries.length, 0);
};

// Array.isArray does not narrow a readonly array out of a union.
const isArray = (
  s: readonly KeyGroupSnapshot[] | KeyGroupSource,
): s is readonly KeyGroupSnapshot[] => Array.isArray(s);

const checkRange = (range: KeyGroupRange): void => {
  if (!Number.isSafeInteger(range.start) || !Number.isSafeInteger(range.end)) {
    throw new InternalError(`invalid key-group range [${range.start}, ${range.end}]`);
  }
};

const outsideRange = (keyGroup: number, range: KeyGroupRange) =>
  new InternalError(
    `key group ${keyGroup} is outside the subtask's range [${range.start}, ${range.end}]`,
  );

/**
 * Checks a source's key groups up front (before the file is created), then reads them lazily,
 * one per iteration step, checking each snapshot is the one asked for.
 */
const readInOrder = (range: KeyGroupRange, source: KeyGroupSource): Iterable<Pending> => {
  checkRange(range);
  const keyGroups = source.keyGroups;
  keyGroups.forEach((kg, i) => {
    if (!Number.isSafeInteger(kg) || kg < range.start || kg > range.end) {
      throw outsideRange(kg, range);
    }
    if (i > 0 && keyGroups[i - 1]! >= kg) {
      throw new InternalError(
        `key groups of a keyed snapshot must be ascending without repeats: ${keyGroups[i - 1]} ` +
          `then ${kg}`,
      );
    }
  });
  return (function* () {
    for (const kg of keyGroups) {
      const block = source.encoded?.(kg);
      if (block !== undefined) {
        yield { keyGroup: kg, block };
        continue;
      }
      const maps = source.readMaps?.(kg);
      if (maps === undefined) {
        yield checkedRead(source, kg);
        continue;
      }
      if (maps.keyGroup !== kg) throw wrongKeyGroup(kg, maps.keyGroup);
      yield { keyGroup: kg, maps, source };
    }
  })();
};

const checkedRead = (source: KeyGroupSource, keyGroup: number): KeyGroupSnapshot => {
  const snapshot = source.read(keyGroup);
  if (snapshot.keyGroup !== keyGroup) throw wrongKeyGroup(keyGroup, snapshot.keyGroup);
  return snapshot;
};

const wrongKeyGroup = (asked: number, got: number) =>
  new InternalError(`asked for key group ${asked}, the snapshot source gave ${got}`);

const orderSnapshots = (
  range: KeyGroupRange,
  snapshots: readonly KeyGroupSnapshot[],
): KeyGroupSnapshot[] => {
  checkRange(range);
  const ordered = snapshots
    .filter((s) => s.states.length > 0)
    .sort((a, b) => a.keyGroup - b.keyGroup);
  ordered.forEach((s, i) => {
    if (s.keyGroup < range.start || s.keyGroup > range.end) throw outsideRange(s.keyGroup, range);
    if (i > 0 && ordered[i - 1]!.keyGroup === s.keyGroup) {
      throw new InternalError(`key group ${s.keyGroup} appears twice in one keyed snapshot`);
    }
  });
  return ordered;
};

const checkFileName = (file: string): void => {
  if (!isContainedRelativePath(file)) {
    throw new InternalError(
      `state file name '${file}' is not a relative path inside the checkpoint`,
    );
  }
};

/**
 * The reads that fetch exactly the key groups of `range` from a keyed state file: blocks whose
 * key group lies in `range`, coalesced where they touch (consecutive non-empty key groups are
 * back to back in the file, so a contiguous range is one read up to `maxReadBytes`). Pure; the
 * restore planner and `eddy inspect --plan` use it to say which bytes a restore will read.
 */
export const planKeyedReads = (
  handle: KeyedStateHandle,
  range: KeyGroupRange,
  maxReadBytes = DEFAULT_MAX_READ_BYTES,
): BlockRead<KeyGroupBlock>[] => {
  const selected = handle.blocks.filter(
    (b) => b.keyGroup >= range.start && b.keyGroup <= range.end,
  );
  return coalesceBlocks(selected, maxReadBytes);
};

/**
 * Reads the key groups of `range` from the keyed state of `handle` (full or incremental) in
 * `dir`: only the planned byte ranges, with positioned reads; each block's CRC is checked
 * before decoding, and an incremental key group's chain is applied (base, then deltas).
 * Key groups outside the handle's blocks (empty, or not this handle's) are simply absent.
 * @returns the snapshots ascending by key group, and the bytes read (the sum of the selected
 *   blocks' lengths: read amplification 1).
 * @throws EddyError `EDDY_CHECKPOINT_CORRUPT` naming the file and key group (CRC mismatch,
 *   truncated or missing file, malformed block); `EDDY_CHECKPOINT_IO` for other fs errors.
 */
export const readKeyGroups = async (
  dir: string,
  handle: AnyKeyedStateHandle,
  range: KeyGroupRange,
  options: ReadOptions = {},
): Promise<{ snapshots: KeyGroupSnapshot[]; bytesRead: number }> => {
  const snapshots: KeyGroupSnapshot[] = [];
  const bytesRead = await forEachKeyGroup(dir, handle, range, (s) => snapshots.push(s), options);
  return { snapshots, bytesRead };
};

/**
 * {@link readKeyGroups} as a stream: hands each key group's snapshot to `onSnapshot` as soon as
 * its blocks are read, so memory stays bounded by one coalesced read for a full handle (restore
 * into a backend, verification). An incremental handle's chains span files: its blocks of the
 * range are read first, then decoded key group by key group. Returns the bytes read.
 */
export const forEachKeyGroup = async (
  dir: string,
  handle: AnyKeyedStateHandle,
  range: KeyGroupRange,
  onSnapshot: (snapshot: KeyGroupSnapshot) => void,
  options: ReadOptions = {},
): Promise<number> => {
  if (!isIncremental(handle)) {
    return readKeyedBlocks(dir, handle, range, options, (path, keyGroup, bytes) =>
      onSnapshot(decodeBlockOf(path, keyGroup, bytes)),
    );
  }
  const { groups, bytesRead } = await readKeyGroupsLazily(dir, handle, range, options);
  for (const g of groups) onSnapshot(g.load());
  return bytesRead;
};

/**
 * {@link readKeyGroups} without decoding: reads the same byte ranges and checks every block's
 * CRC now, and returns per key group a {@link LazyKeyGroup} that decodes its block (or applies
 * its chain) when a backend first needs it; a key group of one block also hands out the block
 * itself, for pass-through checkpoints. The restore then costs the reads; decoding moves to the
 * first record of each key group.
 * @throws as {@link readKeyGroups}, except for malformed blocks, which `load()` reports.
 */
export const readKeyGroupsLazily = async (
  dir: string,
  handle: AnyKeyedStateHandle,
  range: KeyGroupRange,
  options: ReadOptions = {},
): Promise<{ groups: LazyKeyGroup[]; bytesRead: number }> => {
  if (!isIncremental(handle)) {
    const groups: LazyKeyGroup[] = [];
    const bytesRead = await readKeyedBlocks(dir, handle, range, options, (path, kg, encoded) =>
      groups.push({ keyGroup: kg, load: () => decodeBlockOf(path, kg, encoded), encoded }),
    );
    return { groups, bytesRead };
  }
  const { parts, bytesRead } = await readChainBlocks(dir, handle, range, options);
  const groups: LazyKeyGroup[] = [];
  for (const [keyGroup, blocks] of parts) {
    const load = () => applyChain(keyGroup, decodeChainOf(keyGroup, blocks));
    const loadChain = () => decodeChainOf(keyGroup, blocks);
    groups.push(
      blocks.length === 1
        ? { keyGroup, load, encoded: blocks[0]!.bytes }
        : { keyGroup, load, loadChain },
    );
  }
  return { groups, bytesRead };
};

/**
 * The key groups of `range` in an incremental handle, restored with nothing read yet: each
 * {@link LazyKeyGroup} reads its chain's blocks (synchronously, CRC-checked) when a backend
 * first needs it, then decodes them. A restore then costs no I/O at all; each key group's
 * first record pays its read (its chain's bytes) and its decoding.
 *
 * Hazard: the files must outlive the key groups still pending. That holds for a restore from
 * an incremental checkpoint of the job's own checkpoint directory whose chains the new
 * subtasks add to (runtime/worker-agent.ts): every later checkpoint of the subtask refers to
 * a key group's chain until the key group is decoded (a delta keeps unchanged chains, a base
 * decodes every pending key group as it writes), so retention keeps those files. Any other
 * restore must read at once ({@link readKeyGroupsLazily}).
 * @returns the pending key groups ascending, and the bytes their reads will cover.
 */
export const deferKeyGroups = (
  dir: string,
  handle: IncrementalKeyedStateHandle,
  range: KeyGroupRange,
  options: ReadOptions = {},
): { groups: LazyKeyGroup[]; bytesDeferred: number } => {
  const groups: LazyKeyGroup[] = [];
  let bytesDeferred = 0;
  const chains = handle.chains;
  for (let i = firstChainAtOrAfter(chains, range.start); i < chains.length; i++) {
    const chain = chains[i]!;
    if (chain.keyGroup > range.end) break;
    const { keyGroup } = chain;
    const one: IncrementalKeyedStateHandle = { ...handle, chains: [chain] };
    const only = { start: keyGroup, end: keyGroup };
    const read = () => readChainBlocksSync(dir, one, only, options).get(keyGroup) ?? [];
    bytesDeferred += chainBytes(chain);
    groups.push({
      keyGroup,
      load: () => applyChain(keyGroup, decodeChainOf(keyGroup, read())),
      loadChain: () => decodeChainOf(keyGroup, read()),
    });
  }
  return { groups, bytesDeferred };
};

/** {@link readChainBlocks}, synchronously (see {@link deferKeyGroups}). */
const readChainBlocksSync = (
  dir: string,
  handle: IncrementalKeyedStateHandle,
  range: KeyGroupRange,
  options: ReadOptions,
): Map<number, ReadBlock[]> => {
  const parts = new Map<number, ReadBlock[]>();
  for (const c of handle.chains) parts.set(c.keyGroup, []);
  for (const { file, reads } of planChainReads(handle, range, options.maxReadBytes)) {
    checkStateFileRef(file);
    const path = fileInDir(dir, file);
    readBlocksSync(path, reads, describeChainBlock, (b, bytes) => {
      parts.get(b.keyGroup)![b.position] = { path, bytes };
    });
  }
  return parts;
};

const describeChainBlock = (b: ChainBlockRef) =>
  `key group ${b.keyGroup} (block ${b.position + 1} of its chain)`;

/** A block of a chain as read: its bytes and the file it came from (for errors). */
interface ReadBlock {
  readonly path: string;
  readonly bytes: Uint8Array;
}

/**
 * Reads and CRC-checks every block of the chains of `range`, file by file (planChainReads);
 * returns them per key group (ascending) in chain order.
 */
export const readChainBlocks = async (
  dir: string,
  handle: AnyKeyedStateHandle,
  range: KeyGroupRange,
  options: ReadOptions = {},
): Promise<{ parts: Map<number, ReadBlock[]>; bytesRead: number }> => {
  const view = chainsOf(handle);
  const parts = new Map<number, ReadBlock[]>();
  // Chains ascend by key group: create the entries in that order, fill them file by file.
  for (const c of view.chains) {
    if (c.keyGroup >= range.start && c.keyGroup <= range.end) parts.set(c.keyGroup, []);
  }
  let bytesRead = 0;
  for (const { file, reads } of planChainReads(view, range, options.maxReadBytes)) {
    checkStateFileRef(file);
    const path = fileInDir(dir, file);
    bytesRead += await readBlocks(path, reads, describeChainBlock, (b, bytes) => {
      parts.get(b.keyGroup)![b.position] = { path, bytes };
    });
  }
  return { parts, bytesRead };
};

/** Decodes a chain's blocks (base first), checking each is of `keyGroup`. */
const decodeChainOf = (keyGroup: number, blocks: readonly ReadBlock[]): DecodedBlock[] => {
  const decoded: DecodedBlock[] = blocks.map((b, i) => {
    const where = `key group ${keyGroup} (block ${i + 1} of its chain) in checkpoint file ${b.path}`;
    const block = decodeBlock(b.bytes, where);
    if (block.keyGroup !== keyGroup) throw decodeMismatch(where, block.keyGroup);
    if (i === 0 && block.states.some((s) => s.deleted !== undefined)) {
      throw malformedBlockError(where, 'the base block of a chain holds deleted keys');
    }
    return block;
  });
  return decoded;
};

/** A state file named by metadata: inside the checkpoint, or a shared file beside it. */
const checkStateFileRef = (file: string): void => {
  if (!isContainedRelativePath(file) && !isSharedFileRef(file)) {
    throw new InternalError(
      `state file name '${file}' is neither inside the checkpoint nor a shared file`,
    );
  }
};
/** The planned reads of `range` from `handle`'s file, each block CRC-checked; bytes read. */
const readKeyedBlocks = (
  dir: string,
  handle: KeyedStateHandle,
  range: KeyGroupRange,
  options: ReadOptions,
  onBlock: (path: string, keyGroup: number, bytes: Uint8Array) => void,
): Promise<number> => {
  checkFileName(handle.file);
  const path = fileInDir(dir, handle.file);
  const reads = planKeyedReads(handle, range, options.maxReadBytes);
  const describe = (b: KeyGroupBlock) => `key group ${b.keyGroup}`;
  return readBlocks(path, reads, describe, (block, bytes) => onBlock(path, block.keyGroup, bytes));
};

/** Decodes the block of `keyGroup` read from `path`, checking it holds that key group. */
const decodeBlockOf = (path: string, keyGroup: number, bytes: Uint8Array): KeyGroupSnapshot => {
  const where = `key group ${keyGroup} in checkpoint file ${path}`;
  const snapshot = decodeKeyGroupBlock(bytes, where);
  if (snapshot.keyGroup !== keyGroup) throw decodeMismatch(where, snapshot.keyGroup);
  return snapshot;
};

const decodeMismatch = (where: string, found: number) =>
  malformedBlockError(where, `it holds key group ${found}: the metadata and the file disagree`);
