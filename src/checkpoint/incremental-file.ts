/**
 * Writers of incremental keyed state (docs/ARCHITECTURE.md, "Incremental checkpoints"). A
 * subtask's keyed state is, per key group, a chain of blocks in shared files: a base block,
 * then delta blocks (entries written and keys deleted since the block before). Each checkpoint
 * writes one shared file holding only the blocks it adds, and its handle refers to every chain
 * block it needs, most of them written by earlier checkpoints.
 *
 * - {@link writeSharedBase}: every key group's base (the first incremental checkpoint of a
 *   subtask, or after a restore whose chains cannot be reused).
 * - {@link writeSharedDelta}: the changes since the previous checkpoint; a key group the source
 *   captured whole (the compaction rule, compaction.ts, decided so when it was taken) gets a
 *   new base instead, written from memory.
 *
 * Both share the full writer's buffering and time slices (block-io.ts): they give the event
 * loop back every 10 ms.
 */
import { mkdir, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { KeyGroupRange } from '../keygroups/index.js';
import { blockCrc } from './block-codec.js';
import { type BatchedFileWriter, writeSequentially } from './block-io.js';
import { type ChainView, firstChainAtOrAfter } from './chains.js';
import { ioError } from './errors.js';
import { fsyncDir } from './fs-util.js';
import {
  type KeyGroupDelta,
  type KeyListState,
  writeKeyGroupDelta,
  writeKeyListsInSlices,
} from './keyed-block.js';
import { type KeyGroupSource, writeKeyedFile } from './keyed-file.js';
import { SHARED_DIR, sharedFileRef } from './paths.js';
import type { ChainBlock, IncrementalKeyedStateHandle, KeyGroupChain } from './types.js';

/**
 * The changes of one subtask's keyed state since its previous checkpoint, read key group by
 * key group (the heap backend's delta view satisfies it).
 */
export interface DeltaSource {
  /** The key groups with changes, ascending, inside the range. */
  readonly keyGroups: readonly number[];
  /**
   * The changes of `keyGroup`: values as they were when the source was taken. `whole`: all of
   * the key group's entries (no deletions), to be written as its new base.
   */
  readDelta(keyGroup: number): KeyGroupDelta & { readonly whole?: boolean };
  /**
   * Live (state, key) entries of `keyGroup` when the source was taken; asked only for key
   * groups with changes (which a backend has decoded, so it knows).
   */
  liveEntries(keyGroup: number): number;
  /**
   * For a key group the source captured whole, its entries as key lists (non-empty states,
   * sorted by name), to be written in slices; undefined otherwise (then use `readDelta`).
   */
  readWhole?(keyGroup: number): readonly KeyListState[] | undefined;
}

/** The shared directory of the checkpoint directory `checkpointDir`. */
export const sharedDirOf = (checkpointDir: string): string =>
  join(dirname(checkpointDir), SHARED_DIR);

/**
 * Writes every key group of `source` as a base block into shared file `name` beside
 * `checkpointDir` and returns the incremental handle whose chains are those blocks.
 */
export const writeSharedBase = async (
  checkpointDir: string,
  name: string,
  range: KeyGroupRange,
  source: KeyGroupSource,
): Promise<IncrementalKeyedStateHandle> => {
  const shared = await ensureSharedDir(checkpointDir);
  const { handle, records } = await writeKeyedFile(shared, name, range, source);
  await syncShared(shared, name, handle.blocks.length === 0);
  const chains = handle.blocks.map(
    (b, i): KeyGroupChain => ({
      keyGroup: b.keyGroup,
      entries: records[i]!,
      blocks: [
        { file: 0, offset: b.offset, length: b.length, crc32: b.crc32, records: records[i]! },
      ],
    }),
  );
  return {
    type: 'incremental',
    keyGroupRange: [range.start, range.end],
    files: chains.length === 0 ? [] : [sharedFileRef(name)],
    chains,
    bytes: handle.bytes,
  };
};

/**
 * Writes the changes of `source` on top of `previous` (the chains of the subtask's previous
 * checkpoint, files relative to a sibling checkpoint directory) into shared file `name`:
 * - a key group without changes keeps its chain;
 * - one with changes and a chain gets a delta block appended;
 * - one the source captured whole, or with changes and no chain, gets its entries as its
 *   base (a chain of one);
 * - one whose changes left it empty loses its chain.
 * `previous` chains outside `range` are ignored.
 * @throws EddyError `EDDY_CHECKPOINT_IO` if the file system refuses; `EDDY_STATE` for
 *   unencodable values.
 */
export const writeSharedDelta = async (
  checkpointDir: string,
  name: string,
  range: KeyGroupRange,
  previous: ChainView,
  source: DeltaSource,
): Promise<IncrementalKeyedStateHandle> => {
  const shared = await ensureSharedDir(checkpointDir);
  const files = new FileTable(previous.files);
  const newFile = sharedFileRef(name);
  const out: KeyGroupChain[] = [];
  const changed = source.keyGroups;
  let c = 0;
  const { bytes } = await writeSequentially(join(shared, name), async (w) => {
    const prevChains = previous.chains;
    let p = firstChainAtOrAfter(prevChains, range.start);
    while (c < changed.length || (p < prevChains.length && prevChains[p]!.keyGroup <= range.end)) {
      const nextPrev =
        p < prevChains.length && prevChains[p]!.keyGroup <= range.end ? prevChains[p] : undefined;
      const nextChanged = c < changed.length ? changed[c] : undefined;
      if (
        nextPrev !== undefined &&
        (nextChanged === undefined || nextPrev.keyGroup < nextChanged)
      ) {
        out.push(files.keep(nextPrev));
        p++;
        continue;
      }
      const keyGroup = nextChanged!;
      c++;
      const prev = nextPrev?.keyGroup === keyGroup ? nextPrev : undefined;
      if (prev !== undefined) p++;
      const live = source.liveEntries(keyGroup);
      if (live === 0) continue; // emptied: no chain
      const offset = w.size;
      const whole = await writeWhole(w, source, keyGroup);
      const delta = whole < 0 ? source.readDelta(keyGroup) : undefined;
      const appended = delta !== undefined && prev !== undefined && delta.whole !== true;
      let records: number;
      if (delta === undefined) records = whole;
      else if (appended) {
        writeKeyGroupDelta(w.encoder, delta);
        records = recordsOf(delta);
      } else {
        records = writeAsBase(w.encoder, delta);
      }
      const encoded = w.blockBytes(offset);
      const block: ChainBlock = {
        file: files.index(newFile),
        offset,
        length: encoded.length,
        crc32: blockCrc(encoded),
        records,
      };
      const blocks = appended ? [...files.remap(prev!.blocks), block] : [block];
      out.push({ keyGroup, entries: live, blocks });
      await w.endBlock();
    }
  });
  const wroteBlocks = files.has(newFile);
  await syncShared(shared, name, !wroteBlocks);
  return {
    type: 'incremental',
    keyGroupRange: [range.start, range.end],
    files: files.list(),
    chains: out,
    bytes: wroteBlocks ? bytes : 0,
  };
};

/**
 * Writes a key group the source captured whole as a base block, in slices (the event loop runs
 * between them), and returns its records; -1 (nothing written) if the source does not give it
 * as key lists or a value needs msgpackr: the caller then reads it as a delta.
 */
const writeWhole = async (
  w: BatchedFileWriter,
  source: DeltaSource,
  keyGroup: number,
): Promise<number> => {
  const states = source.readWhole?.(keyGroup);
  if (states === undefined || states.length === 0) return -1;
  const steps = writeKeyListsInSlices(w.encoder, keyGroup, states);
  let step = steps.next();
  while (step.done !== true) {
    await w.pauseIfDue();
    step = steps.next();
  }
  return step.value ? states.reduce((n, s) => n + s.count, 0) : -1;
};

/** A delta written as a base: its entries only (deletions of keys no base holds are moot). */
const writeAsBase = (w: Parameters<typeof writeKeyGroupDelta>[0], delta: KeyGroupDelta): number => {
  const states = delta.states
    .filter((s) => s.entries.length > 0)
    .map((s) => ({ ...s, deleted: [] as const }));
  writeKeyGroupDelta(w, { keyGroup: delta.keyGroup, states });
  return states.reduce((n, s) => n + s.entries.length, 0);
};

const recordsOf = (delta: KeyGroupDelta): number =>
  delta.states.reduce((n, s) => n + s.entries.length + s.deleted.length, 0);

/**
 * The files of the handle being built: indexes are assigned as blocks are added, and the
 * final list keeps only files some chain still uses (a chain rebased away drops its files).
 */
class FileTable {
  private readonly refs: string[] = [];
  private readonly indexes = new Map<string, number>();

  constructor(private readonly previous: readonly string[]) {}

  index(ref: string): number {
    let i = this.indexes.get(ref);
    if (i === undefined) {
      i = this.refs.length;
      this.refs.push(ref);
      this.indexes.set(ref, i);
    }
    return i;
  }

  has(ref: string): boolean {
    return this.indexes.has(ref);
  }

  remap(blocks: readonly ChainBlock[]): ChainBlock[] {
    return blocks.map((b) => ({ ...b, file: this.index(this.previous[b.file]!) }));
  }

  keep(chain: KeyGroupChain): KeyGroupChain {
    return { ...chain, blocks: this.remap(chain.blocks) };
  }

  /** The final file list: indexes are assigned on use, so every file is used. */
  list(): string[] {
    return this.refs.slice();
  }
}

const ensureSharedDir = async (checkpointDir: string): Promise<string> => {
  const shared = sharedDirOf(checkpointDir);
  try {
    await mkdir(shared, { recursive: true });
  } catch (e) {
    throw ioError('create the shared checkpoint directory', shared, e);
  }
  return shared;
};

/**
 * Makes a new shared file's directory entry durable (the file itself was fsynced), or removes
 * the file when it holds no block: a checkpoint that changed nothing refers to no new file.
 */
const syncShared = async (shared: string, name: string, empty: boolean): Promise<void> => {
  if (empty) {
    await unlink(join(shared, name)).catch(() => {});
    return;
  }
  try {
    await fsyncDir(shared);
  } catch (e) {
    throw ioError('sync the shared checkpoint directory', shared, e);
  }
};
