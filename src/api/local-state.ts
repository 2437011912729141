/**
 * The local working directory of the on-disk keyed state backend: where the stores of a job's
 * keyed subtasks live while it runs (fast local disk, unlike checkpoints, which must be
 * durable). Each run of a job gets its own run directory under it, named
 * `eddy-run-<pid>-<random>`; the disk backend creates one new store directory per keyed
 * subtask and attempt inside it and deletes it when the subtask closes. The run directory is
 * removed when the run ends, whatever the outcome. A process that crashed cannot remove its
 * run directories: the next start of a job on the same local directory removes every
 * `eddy-run-*` directory whose process is gone. Nothing else in the directory is touched.
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync, readdirSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { EddyError } from '../core/errors.js';
import { makeDirs } from '../core/fs.js';

const RUN_PREFIX = 'eddy-run-';
const RUN_DIR = /^eddy-run-(\d+)-[0-9a-f-]+$/;

/** Run directories of this process that are in use: the sweep of another run keeps them. */
const active = new Set<string>();

/**
 * A process that exits while runs are open (a second Ctrl-C ends `eddy run` with
 * `process.exit`) removes their directories on its way out; only a kill leaves them behind.
 */
let exitHook = false;
const removeOnExit = (): void => {
  if (exitHook) return;
  exitHook = true;
  process.on('exit', () => {
    for (const path of active) rmSync(path, { recursive: true, force: true });
  });
};

/** Which keyed state backend a job uses: on the heap (default) or on local disk. */
export type StateBackendKind = 'heap' | 'disk';

/** The backends `--state-backend` and `RunOptions.stateBackend` accept. */
export const STATE_BACKENDS: readonly StateBackendKind[] = ['heap', 'disk'];

/** Throws a clear error unless `kind` names a backend; `what` names the option. */
export const parseStateBackend = (kind: string, what = 'stateBackend'): StateBackendKind => {
  if ((STATE_BACKENDS as readonly string[]).includes(kind)) return kind as StateBackendKind;
  throw new EddyError(
    'EDDY_INVALID_ARGUMENT',
    `${what} must be one of ${STATE_BACKENDS.map((b) => `'${b}'`).join(', ')}, got '${kind}'`,
    { domain: 'user', retriable: false },
  );
};

const reasonOf = (e: unknown): string => {
  const err = e as NodeJS.ErrnoException;
  if (!(e instanceof Error)) return String(e);
  return err.code && !err.message.startsWith(err.code)
    ? `${err.code}: ${err.message}`
    : err.message;
};

/**
 * Creates `dir` if missing and checks that files can be created in it (a real write: access
 * checks pass for root whatever the mode). `what` names where the directory came from (e.g.
 * the option that set it), for the error.
 */
export const checkLocalStateDir = (dir: string, what = 'the local state directory'): string => {
  const path = resolve(dir);
  const fail = (step: string, e: unknown) =>
    new EddyError(
      'EDDY_STATE',
      `cannot use ${path} as ${what} for the disk state backend: ${step} failed (${reasonOf(e)})`,
      { domain: 'user', retriable: false, cause: e },
    );
  try {
    makeDirs(path);
  } catch (e) {
    throw fail('creating the directory', e);
  }
  const probe = join(path, `.eddy-probe-${process.pid}-${randomUUID()}`);
  try {
    writeFileSync(probe, '');
    unlinkSync(probe);
  } catch (e) {
    throw fail('writing a file in it', e);
  }
  return path;
};

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: the process exists but belongs to another user.
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/**
 * Removes the run directories under `dir` that crashed processes left behind: those of a
 * process that is gone, and those of this process no run uses. Hazard: a crashed process's
 * pid may be reused by a live one; its directory then stays until that process ends.
 * Returns the removed paths.
 */
export const sweepLocalStateDir = (dir: string): string[] => {
  const removed: string[] = [];
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return removed;
  }
  for (const name of names) {
    const m = RUN_DIR.exec(name);
    if (!m) continue;
    const path = join(dir, name);
    const pid = Number(m[1]);
    const stale = pid === process.pid ? !active.has(path) : !alive(pid);
    if (!stale) continue;
    rmSync(path, { recursive: true, force: true });
    removed.push(path);
  }
  return removed;
};

/** A run's own directory under the local state directory; `remove` when the run ends. */
export interface LocalRunDir {
  readonly path: string;
  /** Stale run directories the sweep removed before this one was created. */
  readonly swept: readonly string[];
  remove(): void;
}

/**
 * Checks `dir` ({@link checkLocalStateDir}), removes what crashed runs left there
 * ({@link sweepLocalStateDir}) and creates this run's directory. Synchronous: done once per
 * run, before any worker starts.
 */
export const openLocalRunDir = (dir: string, what?: string): LocalRunDir => {
  const base = checkLocalStateDir(dir, what);
  const swept = sweepLocalStateDir(base);
  const path = join(base, `${RUN_PREFIX}${process.pid}-${randomUUID()}`);
  mkdirSync(path);
  active.add(path);
  removeOnExit();
  return {
    path,
    swept,
    remove() {
      active.delete(path);
      rmSync(path, { recursive: true, force: true });
    },
  };
};
