/**
 * Reading and atomically writing `_metadata`: the one file whose presence makes a checkpoint
 * complete. Writing is tmp file + fsync + rename + directory fsync, so after a crash the file
 * is either absent (checkpoint incomplete) or whole.
 */
import { readFile, rename, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { EddyError } from '../core/errors.js';
import { errnoCode, ioError } from './errors.js';
import { fsyncDir, writeFileDurably } from './fs-util.js';
import { decodeMetadata, encodeMetadata } from './metadata.js';
import { METADATA_FILE, METADATA_TMP_FILE } from './paths.js';
import type { CheckpointMetadata } from './types.js';

/**
 * Reads and decodes `<dir>/_metadata`.
 * @throws EddyError `EDDY_CHECKPOINT_CORRUPT` if it is missing (an incomplete checkpoint) or
 *   corrupt; `EDDY_CHECKPOINT_INCOMPATIBLE` for another format version; `EDDY_CHECKPOINT_IO`.
 */
export const loadMetadata = async (dir: string): Promise<CheckpointMetadata> => {
  const path = join(dir, METADATA_FILE);
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') {
      throw new EddyError(
        'EDDY_CHECKPOINT_CORRUPT',
        `${path} is missing: ${dir} is not a completed checkpoint or savepoint`,
        { domain: 'external', cause: e },
      );
    }
    throw ioError('read', path, e);
  }
  return decodeMetadata(bytes, path);
};

/**
 * Makes the checkpoint in `dir` complete: writes `_metadata.tmp`, fsyncs it, renames it to
 * `_metadata` and fsyncs the directory and its parent. The data files must already be durable
 * (the writers fsync them). Before the rename a crash leaves no `_metadata`; after the directory
 * fsync the checkpoint is complete.
 * @throws EddyError `EDDY_CHECKPOINT_IO` naming the file; then the checkpoint is not complete
 *   (the tmp file is removed, best effort).
 */
export const writeMetadataAtomically = async (
  dir: string,
  metadata: CheckpointMetadata,
): Promise<void> => {
  const bytes = encodeMetadata(metadata);
  const tmp = join(dir, METADATA_TMP_FILE);
  try {
    // The data files' directory entries must be durable before anything can point at them.
    await fsyncDir(dir);
    await writeFileDurably(tmp, bytes);
  } catch (e) {
    await unlink(tmp).catch(() => {});
    throw ioError('write', tmp, e);
  }
  const path = join(dir, METADATA_FILE);
  try {
    await rename(tmp, path);
  } catch (e) {
    await unlink(tmp).catch(() => {});
    throw ioError('rename to', path, e);
  }
  try {
    await fsyncDir(dir);
    await fsyncDir(dirname(dir));
  } catch (e) {
    throw ioError('fsync the directory of', path, e);
  }
};
