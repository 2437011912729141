/**
 * Integrity checks of a completed checkpoint, cheap and thorough:
 * - {@link checkDataFiles}: every file the metadata names exists with the recorded size
 *   (stat only; catches missing and truncated files);
 * - {@link verifyCheckpoint}: additionally reads every block and checks its CRC and format (the
 *   resume-time check and `eddy inspect`); memory stays bounded by one coalesced read.
 */
import { corruptError, ioError, missingFileError } from './errors.js';
import { fileSize } from './fs-util.js';
import { forEachKeyGroup } from './keyed-file.js';
import { loadMetadata } from './metadata-io.js';
import { planOperatorReads, readOperatorStateElements } from './operator-file.js';
import { fileInDir } from './paths.js';
import type { CheckpointMetadata, KeyedStateHandle, OperatorStateHandle } from './types.js';

type StateFile =
  | { readonly kind: 'keyed'; readonly handle: KeyedStateHandle }
  | { readonly kind: 'operator'; readonly handle: OperatorStateHandle };

/** Every state file the metadata names, operator by operator, subtask by subtask. */
export const stateFiles = (metadata: CheckpointMetadata): StateFile[] =>
  metadata.operators.flatMap((op) =>
    op.subtasks.flatMap((s): StateFile[] => [
      ...(s.keyed ? [{ kind: 'keyed' as const, handle: s.keyed }] : []),
      ...(s.operatorState ? [{ kind: 'operator' as const, handle: s.operatorState }] : []),
    ]),
  );

/**
 * Checks that every state file exists in `dir` with the size the metadata records.
 * @throws EddyError `EDDY_CHECKPOINT_CORRUPT` naming the missing or wrongly sized file;
 *   `EDDY_CHECKPOINT_IO` if a file cannot be examined.
 */
export const checkDataFiles = async (dir: string, metadata: CheckpointMetadata): Promise<void> => {
  for (const { handle } of stateFiles(metadata)) {
    const path = fileInDir(dir, handle.file);
    let size: number | undefined;
    try {
      size = await fileSize(path);
    } catch (e) {
      throw ioError('examine', path, e);
    }
    if (size === undefined) throw missingFileError(path);
    if (size !== handle.bytes) {
      const how = size < handle.bytes ? 'truncated' : 'longer than written';
      throw corruptError(
        path,
        `${how}: it has ${size} bytes, the metadata records ${handle.bytes}`,
      );
    }
  }
};

/** What {@link verifyCheckpoint} read. */
export interface VerifyReport {
  readonly files: number;
  readonly blocks: number;
  readonly bytes: number;
}

/**
 * Reads every block of every state file of the checkpoint in `dir`, checking sizes, CRCs and
 * that each block decodes. `metadata` defaults to the directory's `_metadata`.
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
  const files = stateFiles(m);
  for (const f of files) {
    const read =
      f.kind === 'keyed' ? await verifyKeyed(dir, f.handle) : await verifyOperator(dir, f.handle);
    blocks += read.blocks;
    bytes += read.bytes;
  }
  return { files: files.length, blocks, bytes };
};

const verifyKeyed = async (dir: string, handle: KeyedStateHandle) => {
  const [start, end] = handle.keyGroupRange;
  // Decode and drop: proves every block is readable without keeping the state in memory.
  const bytes = await forEachKeyGroup(dir, handle, { start, end }, () => {});
  return { blocks: handle.blocks.length, bytes };
};

const verifyOperator = async (dir: string, handle: OperatorStateHandle) => {
  // Operator state is small (positions, assignments); reading it whole is fine.
  const { bytesRead } = await readOperatorStateElements(dir, handle);
  const blocks = planOperatorReads(handle).reduce((n, r) => n + r.blocks.length, 0);
  return { blocks, bytes: bytesRead };
};
