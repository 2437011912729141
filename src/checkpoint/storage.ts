/**
 * The checkpoint directory tree of one job: `<base>/chk-<id>/` per checkpoint, `<base>/blocks/`
 * for the blocks of incremental checkpoints (collected by shared-files.ts when retention runs),
 * savepoints in directories of their own. Completion is the atomic `_metadata` commit
 * (metadata-io.ts); a directory without `_metadata` is an incomplete checkpoint and is never
 * restored from.
 */
import { mkdir, readdir, rm, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { EddyError, InvalidArgumentError } from '../core/errors.js';
import { errnoCode, ioError } from './errors.js';
import { fileSize, fsyncDir } from './fs-util.js';
import { loadMetadata, writeMetadataAtomically } from './metadata-io.js';
import {
  checkpointDirName,
  METADATA_FILE,
  parseCheckpointDirName,
  parseSavepointDirName,
  savepointDirName,
} from './paths.js';
import { collectSharedFiles } from './shared-files.js';
import type { CheckpointMetadata } from './types.js';
import { checkDataFiles, verifyCheckpoint } from './verify.js';

/** A completed checkpoint that {@link CheckpointStorage.latestValid} passed over, and why. */
export interface SkippedCheckpoint {
  readonly dir: string;
  /** The error's message: names the bad file and what is wrong with it. */
  readonly reason: string;
  readonly error: EddyError;
}

/** The checkpoint to resume from, and the newer ones that failed their checks. */
export interface ValidCheckpoint {
  readonly dir: string;
  readonly metadata: CheckpointMetadata;
  readonly skipped: readonly SkippedCheckpoint[];
}

/** Options of {@link CheckpointStorage.retain}. */
export interface RetainOptions {
  /**
   * The lowest checkpoint id that may still be in flight (pending or committing): directories
   * with this id or above are neither deleted nor counted, complete or not. The job master
   * passes the just-completed id + 1, so a newer checkpoint committing meanwhile can neither
   * be deleted nor displace the latest completed one.
   */
  readonly inflightFrom?: number | undefined;
}

/** Options of {@link CheckpointStorage.latestValid}. */
export interface LatestValidOptions {
  /** Also read every block and check its CRC (the resume-time check). Default false. */
  readonly verifyData?: boolean;
}

interface Entry {
  readonly id: number;
  readonly dir: string;
  readonly complete: boolean;
}

/**
 * Checkpoints of one job under `baseDir`. Every storage path is built by paths.ts. With
 * `{ savepoints: true }` the listing, `retain` and `latestValid` see the `savepoint-…`
 * directories under `baseDir` instead of `chk-<id>` (e.g. the savepoints eddy takes to
 * rescale a job, which it keeps as it keeps checkpoints).
 */
export class CheckpointStorage {
  constructor(
    readonly baseDir: string,
    private readonly options: { readonly savepoints?: boolean } = {},
  ) {}

  /** `<base>/chk-<id>`. */
  checkpointDir(id: number): string {
    return join(this.baseDir, checkpointDirName(id));
  }

  /** `<targetDir>/savepoint-<jobName>-<id>-<yyyymmddThhmmss>` (UTC). */
  savepointDir(targetDir: string, jobName: string, id: number, at = new Date()): string {
    return join(targetDir, savepointDirName(jobName, id, at));
  }

  /** Creates `<base>/chk-<id>` (see {@link createDir}) and returns it. */
  async createCheckpointDir(id: number): Promise<string> {
    const dir = this.checkpointDir(id);
    await this.createDir(dir);
    return dir;
  }

  /**
   * Creates an empty checkpoint or savepoint directory (and its parents). A leftover incomplete
   * directory of the same name (a crash mid-checkpoint) is cleared; a complete one is never
   * overwritten.
   * @throws EddyError `EDDY_CHECKPOINT_IO` naming the directory and the cause (unwritable,
   *   full, read-only, a file in the way, or a complete checkpoint already there).
   */
  async createDir(dir: string): Promise<void> {
    try {
      await mkdir(dirname(dir), { recursive: true });
      try {
        await mkdir(dir);
      } catch (e) {
        if (errnoCode(e) !== 'EEXIST') throw e;
        if ((await fileSize(join(dir, METADATA_FILE))) !== undefined) throw completeExists(dir);
        await rm(dir, { recursive: true, force: true });
        await mkdir(dir);
      }
    } catch (e) {
      throw ioError('create checkpoint directory', dir, e);
    }
  }

  /**
   * Makes the checkpoint in `dir` complete: `_metadata.tmp`, fsync, rename to `_metadata`,
   * directory fsync. The only step that makes a checkpoint complete.
   * @throws EddyError `EDDY_CHECKPOINT_IO`; the checkpoint then counts as failed: call
   *   {@link abort} (a previous checkpoint is untouched).
   */
  commit(dir: string, metadata: CheckpointMetadata): Promise<void> {
    return writeMetadataAtomically(dir, metadata);
  }

  /**
   * Removes a failed checkpoint's directory, best effort (never throws). `_metadata` goes first,
   * so a half-done removal can never look complete. Hazard: never abort a checkpoint that was
   * reported complete. Refuses (does nothing) for a directory not named `chk-<id>` or
   * `savepoint-…`, so a wrong path can never delete a user's directory.
   */
  async abort(dir: string): Promise<void> {
    if (!isCheckpointDirName(basename(dir))) return;
    await removeCheckpointDir(dir).catch(() => {});
  }

  /** Ids of the completed checkpoints (those with `_metadata`), newest first. */
  async listCompleted(): Promise<number[]> {
    return (await this.scan()).filter((e) => e.complete).map((e) => e.id);
  }

  /** Reads and validates `<dir>/_metadata` (see metadata-io.ts for the errors). */
  loadMetadata(dir: string): Promise<CheckpointMetadata> {
    return loadMetadata(dir);
  }

  /**
   * The newest completed checkpoint whose metadata decodes and whose data files exist with the
   * recorded sizes (with `verifyData`, whose blocks all pass their CRC). Newer checkpoints that
   * fail are listed in `skipped` with the error naming the bad file. Undefined if none is valid.
   */
  async latestValid(options: LatestValidOptions = {}): Promise<ValidCheckpoint | undefined> {
    const skipped: SkippedCheckpoint[] = [];
    for (const { dir } of (await this.scan()).filter((e) => e.complete)) {
      const result = await checkCheckpoint(dir, options.verifyData ?? false);
      if (!(result instanceof EddyError)) return { dir, metadata: result, skipped };
      skipped.push({ dir, reason: result.message, error: result });
    }
    return undefined;
  }

  /**
   * Deletes completed checkpoints beyond the newest `n`, and incomplete `chk-*` directories
   * older than the newest complete one (newer ones may still be in progress). The newest
   * complete checkpoint is always kept (n >= 1), and so is the newest one that passes the
   * cheap validity check, even beyond `n`, so a corrupt newest checkpoint never costs the last
   * good one. With `inflightFrom`, ids from it up are out of scope (see {@link RetainOptions}).
   * Then (checkpoint storage only, not savepoints) deletes the shared files of incremental
   * checkpoints that no remaining checkpoint refers to ({@link collectSharedFiles}, same
   * `inflightFrom`): files of an older checkpoint that a retained one still uses stay.
   * @returns the deleted directories, then the deleted shared files.
   * @throws EddyError `EDDY_CHECKPOINT_IO` naming the directories or shared files that could
   *   not be deleted (after trying all of them).
   */
  async retain(n = 3, options: RetainOptions = {}): Promise<string[]> {
    if (!Number.isSafeInteger(n) || n < 1) {
      throw new InvalidArgumentError(`checkpoints to retain must be an integer >= 1, got ${n}`);
    }
    const { inflightFrom = Number.POSITIVE_INFINITY } = options;
    const entries = (await this.scan()).filter((e) => e.id < inflightFrom);
    const complete = entries.filter((e) => e.complete);
    const keep = new Set(complete.slice(0, n).map((e) => e.id));
    await this.keepNewestValid(complete, keep);
    const newest = complete[0]?.id ?? Number.NEGATIVE_INFINITY;
    const doomed = entries.filter((e) => (e.complete ? !keep.has(e.id) : e.id < newest));
    const dirs = await removeDirs(doomed.map((e) => e.dir));
    // Collected even when a directory could not be removed: a directory whose `_metadata` is
    // still there counts as complete and keeps its files; one without it is never restored.
    const shared = await this.collectShared(options);
    if (dirs.failed.length > 0) {
      const also = shared.error === undefined ? '' : `; also: ${messageOf(shared.error)}`;
      const cause = new Error(`removal failed${also}`);
      throw ioError('delete old checkpoints', dirs.failed.join(', '), cause);
    }
    if (shared.error !== undefined) throw shared.error;
    return [...dirs.removed, ...shared.deleted];
  }

  /** {@link collectSharedFiles} for checkpoint storage (savepoints share nothing). */
  private async collectShared(
    options: RetainOptions,
  ): Promise<{ readonly deleted: readonly string[]; readonly error?: unknown }> {
    if (this.options.savepoints) return { deleted: [] };
    try {
      return { deleted: (await collectSharedFiles(this.baseDir, options)).deleted };
    } catch (error) {
      return { deleted: [], error };
    }
  }

  /** See {@link resolveRestorePath}. */
  resolveRestorePath(path: string): Promise<string> {
    return resolveRestorePath(path);
  }

  private async keepNewestValid(complete: readonly Entry[], keep: Set<number>): Promise<void> {
    for (const e of complete) {
      if (!((await checkCheckpoint(e.dir, false)) instanceof EddyError)) {
        keep.add(e.id);
        return;
      }
    }
  }

  private scan(): Promise<Entry[]> {
    return scanCheckpoints(
      this.baseDir,
      this.options.savepoints ? parseSavepointDirName : parseCheckpointDirName,
    );
  }
}

/** Removes each checkpoint directory, trying all of them; which went and which did not. */
const removeDirs = async (dirs: readonly string[]) => {
  const removed: string[] = [];
  const failed: string[] = [];
  for (const dir of dirs) {
    await removeCheckpointDir(dir).then(
      () => removed.push(dir),
      () => failed.push(dir),
    );
  }
  return { removed, failed };
};

const messageOf = (e: unknown): string => (e instanceof Error ? e.message : String(e));

/** Every `chk-<id>` (or other `idOf`) directory under `base`, newest first, and whether it is complete. */
const scanCheckpoints = async (
  base: string,
  idOf: (name: string) => number | undefined,
): Promise<Entry[]> => {
  let names: string[];
  try {
    names = await readdir(base);
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return [];
    throw ioError('list checkpoint directory', base, e);
  }
  const entries: Entry[] = [];
  for (const name of names) {
    const id = idOf(name);
    if (id === undefined) continue;
    const dir = join(base, name);
    if (!(await isDirectory(dir))) continue;
    entries.push({ id, dir, complete: (await fileSize(join(dir, METADATA_FILE))) !== undefined });
  }
  return entries.sort((a, b) => b.id - a.id);
};

/** The metadata if the checkpoint passes the check, else the (checkpoint) error saying why. */
const checkCheckpoint = async (
  dir: string,
  verifyData: boolean,
): Promise<CheckpointMetadata | EddyError> => {
  try {
    const metadata = await loadMetadata(dir);
    if (verifyData) await verifyCheckpoint(dir, metadata);
    else await checkDataFiles(dir, metadata);
    return metadata;
  } catch (e) {
    if (e instanceof EddyError) return e;
    throw e;
  }
};

const removeCheckpointDir = async (dir: string): Promise<void> => {
  try {
    await unlink(join(dir, METADATA_FILE));
    await fsyncDir(dir);
  } catch (e) {
    if (errnoCode(e) !== 'ENOENT') throw e;
  }
  await rm(dir, { recursive: true, force: true });
};

const isCheckpointDirName = (name: string): boolean =>
  parseCheckpointDirName(name) !== undefined || name.startsWith('savepoint-');

const isDirectory = async (path: string): Promise<boolean> => {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
};

const completeExists = (dir: string) =>
  new EddyError(
    'EDDY_CHECKPOINT_IO',
    `checkpoint directory ${dir} already exists and is complete; refusing to overwrite it`,
    { domain: 'internal' },
  );

/**
 * Where a job resumes: the newest valid of the completed checkpoints in `checkpointDir` and the
 * savepoints a rescale left in `rescalesDir` (a job stopped for a rescale and lost before its
 * next checkpoint resumes from that savepoint); undefined if neither holds a valid one.
 * `skipped` lists the newer ones of both that failed their checks, in either case.
 */
export const latestRestorePoint = async (
  checkpointDir: string,
  rescalesDir: string,
  options: LatestValidOptions = {},
): Promise<{
  readonly latest: { readonly dir: string; readonly metadata: CheckpointMetadata } | undefined;
  readonly skipped: readonly SkippedCheckpoint[];
}> => {
  const [checkpoint, rescale] = await Promise.all(
    [
      new CheckpointStorage(checkpointDir),
      new CheckpointStorage(rescalesDir, { savepoints: true }),
    ].map((s) => s.latestValid(options)),
  );
  const newest =
    rescale && (!checkpoint || rescale.metadata.checkpointId > checkpoint.metadata.checkpointId)
      ? rescale
      : checkpoint;
  return {
    latest: newest && { dir: newest.dir, metadata: newest.metadata },
    skipped: [...(checkpoint?.skipped ?? []), ...(rescale?.skipped ?? [])],
  };
};

export const resolveRestorePath = async (path: string): Promise<string> => {
  const abs = resolve(path);
  let isDir: boolean;
  try {
    isDir = (await stat(abs)).isDirectory();
  } catch {
    throw new InvalidArgumentError(`checkpoint or savepoint path ${path} does not exist`);
  }
  if (!isDir) {
    if (basename(abs) === METADATA_FILE) return dirname(abs);
    throw new InvalidArgumentError(
      `checkpoint or savepoint path ${path} is a file; pass a checkpoint or savepoint directory or its ${METADATA_FILE}`,
    );
  }
  if ((await fileSize(join(abs, METADATA_FILE))) !== undefined) return abs;
  const latest = (await scanCheckpoints(abs, parseCheckpointDirName).catch(() => [])).find(
    (e) => e.complete,
  );
  const hint = latest
    ? `: it looks like a checkpoint base directory; pass one of its checkpoints, e.g. ${latest.dir}`
    : ' (no _metadata: the checkpoint never completed, or this is not a checkpoint)';
  throw new InvalidArgumentError(
    `checkpoint or savepoint path ${path} is not a completed checkpoint or savepoint${hint}`,
  );
};
