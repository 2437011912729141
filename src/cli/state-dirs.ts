/**
 * Where a job's state goes, one rule: under `$EDDY_HOME/jobs/<job name>/` (default
 * `~/.eddy`), whatever directory `eddy run` starts in — `checkpoints/`, `savepoints/` (those
 * a user takes with `eddy savepoint` / `eddy stop --savepoint` without `--dir`) and
 * `rescales/` (the savepoints `eddy rescale` takes, kept as checkpoints are: the newest 3).
 * `--state-dir <dir>` moves all three for one job; `--checkpoint-dir` moves checkpoints
 * alone. `local/` is the disk state backend's working directory (its stores while the job runs,
 * removed at the end; see api/local-state.ts); `--local-state-dir` moves it alone (e.g. to a
 * fast local disk while checkpoints stay on durable storage). Paths a user gives are resolved against the directory of the command they type.
 */
import { join, resolve } from 'node:path';
import { safeFileComponent } from '../checkpoint/paths.js';
import { eddyHome } from '../control/paths.js';

export interface JobStateDirs {
  readonly root: string;
  readonly checkpoints: string;
  readonly savepoints: string;
  readonly rescales: string;
  /** The disk state backend's stores (`--local-state-dir`, default `<root>/local`). */
  readonly local: string;
}

/** How many rescale savepoints are kept, as for checkpoints. */
export const RETAINED_RESCALE_SAVEPOINTS = 3;

export const jobStateDirs = (
  jobName: string,
  opts: {
    readonly stateDir?: string | undefined;
    readonly checkpointDir?: string | undefined;
    readonly localStateDir?: string | undefined;
  },
  home: string = eddyHome(),
): JobStateDirs => {
  // Beside the registry's `<id>.json` files; a safe file component never ends in `.json`.
  const root = opts.stateDir
    ? resolve(opts.stateDir)
    : join(home, 'jobs', safeFileComponent(jobName));
  return {
    root,
    checkpoints: opts.checkpointDir ? resolve(opts.checkpointDir) : join(root, 'checkpoints'),
    savepoints: join(root, 'savepoints'),
    rescales: join(root, 'rescales'),
    local: opts.localStateDir ? resolve(opts.localStateDir) : join(root, 'local'),
  };
};
