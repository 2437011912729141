/**
 * Integrity checks of a completed checkpoint, cheap and thorough:
 * - {@link checkDataFiles}: every file the metadata names exists and is long enough (stat only;
 *   catches missing and truncated files, including the shared files of incremental handles);
 * - {@link verifyCheckpoint}: additionally reads every block and checks its CRC and format (the
 *   resume-time check and `eddy inspect`); memory stays bounded by one coalesced read.
 */
import { EddyError } from '../core/errors.js';
import { chainsOf, isIncremental, keyedFilesOf } from './chains.js';
import { corruptError, ioError, missingFileError } from './errors.js';
import { fileSize } from './fs-util.js';
import { forEachKeyGroup } from './keyed-file.js';
import { loadMetadata } from './metadata-io.js';
import { planOperatorReads, readOperatorStateElements } from './operator-file.js';
import { fileInDir } from './paths.js';
import type { AnyKeyedStateHandle, CheckpointMetadata, OperatorStateHandle } from './types.js';

/** A state handle of a checkpoint: keyed (full or incremental) or operator list state. */
export type StateFile =
  | { readonly kind: 'keyed'; readonly handle: AnyKeyedStateHandle }
  | { readonly kind: 'operator'; readonly handle: OperatorStateHandle };

/** Every state handle the metadata names, operator by operator, subtask by subtask. */
export const stateFiles = (metadata: CheckpointMetadata): StateFile[] =>
  metadata.operators.flatMap((op) =>
    op.subtasks.flatMap((s): StateFile[] => [
      ...(s.keyed ? [{ kind: 'keyed' as const, handle: s.keyed }] : []),
      ...(s.operatorState ? [{ kind: 'operator' as const, handle: s.operatorState }] : []),
    ]),
  );

interface ExpectedSize {
  readonly path: string;
  /** True: the file has exactly `bytes`; false: at least `bytes`. */
  readonly exact: boolean;
  readonly bytes: number;
}

/**
 * What each file must be on disk: a file of its own (a full keyed handle, operator
 * state) has exactly the bytes its handle records; a shared file (incremental handles) holds
 * blocks of several checkpoints and its size is not in the metadata, so it must only reach past
 * the end of every block referenced (several handles may share it: the largest end counts).
 */
const expectedSizes = (dir: string, metadata: CheckpointMetadata): ExpectedSize[] => {
  const own: ExpectedSize[] = [];
  const shared = new Map<string, number>();
  for (const f of stateFiles(metadata)) {
    if (f.kind === 'keyed' && isIncremental(f.handle)) {
      const ends = f.handle.files.map(() => 0);
      for (const chain of f.handle.chains) {
        for (const b of chain.blocks) ends[b.file] = Math.max(ends[b.file]!, b.offset + b.length);
      }
      f.handle.files.forEach((ref, i) => {
        const path = fileInDir(dir, ref);
        shared.set(path, Math.max(shared.get(path) ?? 0, ends[i]!));
      });
    } else {
      const file = f.kind === 'keyed' ? keyedFilesOf(f.handle)[0]! : f.handle.file;
      own.push({ path: fileInDir(dir, file), exact: true, bytes: f.handle.bytes });
    }
  }
  return [...own, ...[...shared].map(([path, bytes]) => ({ path, exact: false, bytes }))];
};

/**
 * Checks that every state file exists: a checkpoint's own files with the size the metadata
 * records, shared files (incremental handles, `../blocks/<name>`) at least as long as the
 * blocks the metadata references in them.
 * @throws EddyError `EDDY_CHECKPOINT_CORRUPT` naming the missing or wrongly sized file;
 *   `EDDY_CHECKPOINT_IO` if a file cannot be examined.
 */
export const checkDataFiles = async (dir: string, metadata: CheckpointMetadata): Promise<void> => {
  for (const expected of expectedSizes(dir, metadata)) {
    const path = expected.path;
    let size: number | undefined;
    try {
      size = await fileSize(path);
    } catch (e) {
      throw ioError('examine', path, e);
    }
    if (size === undefined) {
      throw expected.exact ? missingFileError(path) : missingSharedFileError(dir, path);
    }
    if (expected.exact ? size !== expected.bytes : size < expected.bytes) {
      const how = size < expected.bytes ? 'truncated' : 'longer than written';
      const recorded = expected.exact
        ? `the metadata records ${expected.bytes}`
        : `the blocks the metadata references reach byte ${expected.bytes}`;
      throw corruptError(path, `${how}: it has ${size} bytes, ${recorded}`);
    }
  }
};

const missingSharedFileError = (dir: string, path: string) =>
  new EddyError(
    'EDDY_CHECKPOINT_CORRUPT',
    `checkpoint ${dir} refers to shared file ${path}, which is missing (deleted by hand, or the ` +
      'checkpoint was copied without the blocks/ directory beside it)',
    { domain: 'external' },
  );

/** What {@link verifyCheckpoint} read. */
export interface VerifyReport {
  /** Distinct files read (a shared file used by several handles counts once). */
  readonly files: number;
  readonly blocks: number;
  readonly bytes: number;
}

/**
 * Reads every block of every state file of the checkpoint in `dir`, checking sizes, CRCs and
 * that each block decodes (an incremental key group: its base with every delta applied).
 * `metadata` defaults to the directory's `_metadata`.
 * @throws EddyError `EDDY_CHECKPOINT_CORRUPT` naming the first bad file and block, or the
 *   errors of {@link loadMetadata}.
 */
export const verifyCheckpoint = async (
  dir: string,
  metadata?: CheckpointMetadata,
): Promise<VerifyReport> => {
  const m = metadata ?? (await loadMetadata(dir));
  await checkDataFiles(dir, m);
  let blocks = 0;
  let bytes = 0;
  for (const f of stateFiles(m)) {
    const read =
      f.kind === 'keyed' ? await verifyKeyed(dir, f.handle) : await verifyOperator(dir, f.handle);
    blocks += read.blocks;
    bytes += read.bytes;
  }
  return { files: new Set(expectedSizes(dir, m).map((e) => e.path)).size, blocks, bytes };
};

const verifyKeyed = async (dir: string, handle: AnyKeyedStateHandle) => {
  const [start, end] = handle.keyGroupRange;
  // Decode and drop: proves every chain is readable without keeping the state in memory.
  const bytes = await forEachKeyGroup(dir, handle, { start, end }, () => {});
  const blocks = chainsOf(handle).chains.reduce((n, c) => n + c.blocks.length, 0);
  return { blocks, bytes };
};

const verifyOperator = async (dir: string, handle: OperatorStateHandle) => {
  // Operator state is small (positions, assignments); reading it whole is fine.
  const { bytesRead } = await readOperatorStateElements(dir, handle);
  const blocks = planOperatorReads(handle).reduce((n, r) => n + r.blocks.length, 0);
  return { blocks, bytes: bytesRead };
};
