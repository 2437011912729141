/**
 * Garbage collection of the shared files of incremental checkpoints (`<base>/blocks/`, see
 * types.ts). A shared file is written by one checkpoint attempt and referenced by it and by
 * later checkpoints, so it cannot go with a `chk-<id>` directory: it goes once no completed
 * checkpoint refers to it and no checkpoint that might still complete can.
 *
 * Why the rules are safe (each deletion needs all of them):
 * - Only names that parse as {@link sharedKeyedFileName} are candidates; anything else (a
 *   temporary file, a user's file) is left alone.
 * - Only ids <= the latest completed checkpoint: a pending checkpoint's files carry its own id,
 *   which is above every completed one, so they are never candidates while it runs. An aborted
 *   or crashed attempt's files carry an id that a later checkpoint passes, so they are collected
 *   once one completes (if it does not refer to them).
 * - Only ids below `inflightFrom` when given: a checkpoint committing while this runs (its
 *   `_metadata` may appear at any moment) keeps its files even if its id already counts as
 *   completed.
 * - Never a file referenced by any completed checkpoint still in the base directory. A running
 *   restore reads the latest completed (or the newest valid) checkpoint, which retention always
 *   keeps, so what it reads stays. Files an in-flight checkpoint reuses with ids <= the latest
 *   completed are referenced by that latest one (see the invariant below), so they stay too.
 * - If the `_metadata` of any completed checkpoint cannot be read or decoded, nothing is
 *   deleted: a corrupt checkpoint must not make us delete what it might refer to. Collection
 *   resumes once retention has removed it.
 *
 * Invariant the writer must keep (the second and fourth rule rely on it): each subtask builds
 * checkpoint k+1 on its own snapshot k (the previous one it took, completed or not), so the files
 * with ids <= the latest completed L that a pending checkpoint reuses are a subset of those
 * snapshot L references. Basing a snapshot on an *older* confirmed checkpoint would break it.
 *
 * Deleting is not fsynced: a deletion undone by a crash leaves a file the next run collects.
 */
import type { Dirent } from 'node:fs';
import { readdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { EddyError } from '../core/errors.js';
import { isIncremental } from './chains.js';
import { errnoCode, ioError } from './errors.js';
import { fileSize } from './fs-util.js';
import { loadMetadata } from './metadata-io.js';
import {
  checkpointDirName,
  METADATA_FILE,
  parseCheckpointDirName,
  parseSharedFileCheckpointId,
  SHARED_DIR,
  sharedFileName,
} from './paths.js';
import type { CheckpointMetadata } from './types.js';

/** Options of {@link collectSharedFiles}. */
export interface CollectSharedFilesOptions {
  /**
   * The lowest checkpoint id that may still be in flight: files of this id or above are never
   * deleted (the same bound as `RetainOptions.inflightFrom` in storage.ts).
   */
  readonly inflightFrom?: number | undefined;
}

/** What {@link collectSharedFiles} did. */
export interface SharedFilesCollection {
  /** Paths of the shared files deleted. */
  readonly deleted: string[];
  /** Shared files left in place. */
  readonly kept: number;
  /** Set when nothing was deleted on purpose: why (a completed checkpoint is unreadable). */
  readonly reason?: string;
}

/**
 * Deletes the shared files under `<baseDir>/blocks/` that no completed checkpoint in `baseDir`
 * refers to and that no checkpoint still in flight can own (the rules are in this module's
 * comment). A missing `blocks/` directory means there is nothing to do.
 * @throws EddyError `EDDY_CHECKPOINT_IO` naming the directory that cannot be listed, or the
 *   files that could not be deleted (after trying all of them).
 */
export const collectSharedFiles = async (
  baseDir: string,
  options: CollectSharedFilesOptions = {},
): Promise<SharedFilesCollection> => {
  const sharedDir = join(baseDir, SHARED_DIR);
  // The checkpoints are read before the shared directory is listed: a checkpoint completing
  // in between only has files with ids above the `latest` seen here (and, by the invariant,
  // reuses older files only if the latest seen here refers to them).
  const refs = await referencedSharedFiles(baseDir);
  const names = await listSharedFiles(sharedDir);
  if ('reason' in refs) return { deleted: [], kept: names.length, reason: refs.reason };
  const bound = Math.min(refs.latest, (options.inflightFrom ?? Number.POSITIVE_INFINITY) - 1);
  const doomed = names.filter((name) => {
    const id = parseSharedFileCheckpointId(name);
    return id !== undefined && id <= bound && !refs.names.has(name);
  });
  const deleted = await removeFiles(doomed.map((name) => join(sharedDir, name)));
  return { deleted, kept: names.length - deleted.length };
};

type References =
  | { readonly names: ReadonlySet<string>; readonly latest: number }
  | { readonly reason: string };

/**
 * The shared file names every completed `chk-<id>` directory of `baseDir` refers to, and the
 * highest completed id (-Infinity if none); or why they cannot all be known.
 */
const referencedSharedFiles = async (baseDir: string): Promise<References> => {
  const names = new Set<string>();
  let latest = Number.NEGATIVE_INFINITY;
  for (const id of await completedCheckpointIds(baseDir)) {
    const dir = join(baseDir, checkpointDirName(id));
    let metadata: CheckpointMetadata;
    try {
      metadata = await loadMetadata(dir);
    } catch (e) {
      if (!(e instanceof EddyError)) throw e;
      return { reason: `kept every shared file: cannot read the metadata of ${dir}: ${e.message}` };
    }
    for (const name of sharedFilesOf(metadata)) names.add(name);
    latest = Math.max(latest, id);
  }
  return { names, latest };
};

/** The shared file names the incremental handles of `metadata` refer to. */
export const sharedFilesOf = (metadata: CheckpointMetadata): Set<string> => {
  const names = new Set<string>();
  for (const op of metadata.operators) {
    for (const s of op.subtasks) {
      if (s.keyed && isIncremental(s.keyed)) {
        for (const ref of s.keyed.files) names.add(sharedFileName(ref));
      }
    }
  }
  return names;
};

/** Ids of the `chk-<id>` directories of `baseDir` that hold `_metadata` (complete ones). */
const completedCheckpointIds = async (baseDir: string): Promise<number[]> => {
  const ids: number[] = [];
  for (const entry of await listDir(baseDir)) {
    const id = parseCheckpointDirName(entry.name);
    // No Dirent type check: a `chk-<id>` symlink to a directory counts, as it does for
    // storage.ts (a file named so has no `_metadata` under it: fileSize says undefined).
    if (id === undefined) continue;
    const metadata = join(baseDir, entry.name, METADATA_FILE);
    let size: number | undefined;
    try {
      size = await fileSize(metadata);
    } catch (e) {
      throw ioError('examine', metadata, e);
    }
    if (size !== undefined) ids.push(id);
  }
  return ids;
};

/** Names of the regular files in the shared directory, sorted (none if it does not exist). */
const listSharedFiles = async (sharedDir: string): Promise<string[]> =>
  (await listDir(sharedDir))
    .filter((e) => e.isFile())
    .map((e) => e.name)
    .sort();

const listDir = async (dir: string): Promise<Dirent[]> => {
  try {
    return await readdir(dir, { withFileTypes: true });
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return [];
    throw ioError('list', dir, e);
  }
};

/** Unlinks every path; returns those removed (gone already counts as neither). */
const removeFiles = async (paths: readonly string[]): Promise<string[]> => {
  const deleted: string[] = [];
  const failed: Array<{ path: string; cause: unknown }> = [];
  for (const path of paths) {
    try {
      await unlink(path);
      deleted.push(path);
    } catch (e) {
      if (errnoCode(e) !== 'ENOENT') failed.push({ path, cause: e });
    }
  }
  if (failed.length > 0) {
    const list = failed.map((f) => f.path).join(', ');
    throw ioError('delete unreferenced shared checkpoint files', list, failed[0]!.cause);
  }
  return deleted;
};
