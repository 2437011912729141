/**
 * One job's presence in job control, from the job's side: its control server plus its
 * registry entry, started and ended in the order that keeps `eddy list` truthful.
 */
import { rmSync } from 'node:fs';
import { eddyHome, socketPathFor } from './paths.js';
import { type JobEntryPatch, JobRegistry } from './registry.js';
import { type ControlServer, startControlServer } from './server.js';
import type { JobControlTarget, JobEntry, JobState } from './types.js';

export interface JobControlSessionOptions {
  readonly id: string;
  readonly name: string;
  readonly parallelism: number;
  readonly checkpointDir?: string | undefined;
  /** Base URL of the job's REST API, recorded in its registry entry. */
  readonly url?: string | undefined;
  /** ISO 8601 start time to record (default: now), so that every view of the job agrees. */
  readonly startedAt?: string | undefined;
  readonly target: JobControlTarget;
  /** Default `$EDDY_HOME` or `~/.eddy`. */
  readonly home?: string | undefined;
}

/** A registered job with a listening control server. */
export interface JobControlSession {
  readonly entry: () => JobEntry;
  /** Records a change, e.g. `{ status: 'stopping' }` or `{ lastSavepoint }`. */
  update(patch: JobEntryPatch): void;
  /**
   * Records the final status and closes the control server. The entry stays in the
   * registry (so `eddy list` shows how the job ended) until pruned. Idempotent.
   */
  end(status: Exclude<JobState, 'running' | 'stopping'>, patch?: JobEntryPatch): Promise<void>;
  /**
   * The process is about to exit at once (a second Ctrl-C): records `cancelled`, synchronously,
   * instead of the `failed` an unexpected exit gets.
   */
  cancel(): void;
}

/**
 * Starts the control server, then registers the job. Order matters: registering first
 * would leave a window in which `eddy list` sees the entry without a socket and reports
 * the job as crashed. If the process exits without `end` (e.g. a second Ctrl-C calls
 * process.exit), an 'exit' handler marks the entry failed and removes the socket file.
 */
export const openJobControlSession = async (
  options: JobControlSessionOptions,
): Promise<JobControlSession> => {
  const home = options.home ?? eddyHome();
  const registry = new JobRegistry(home);
  const socket = socketPathFor(home, options.id);
  const server: ControlServer = await startControlServer(socket, options.target);
  let entry: JobEntry = {
    id: options.id,
    name: options.name,
    pid: process.pid,
    status: 'running',
    parallelism: options.parallelism,
    startedAt: options.startedAt ?? new Date().toISOString(),
    socket,
    checkpointDir: options.checkpointDir,
    ...(options.url === undefined ? {} : { url: options.url }),
  };
  try {
    registry.register(entry);
  } catch (e) {
    await server.close();
    throw e;
  }
  let ended: Promise<void> | undefined;
  const onExit = () => {
    // Synchronous only: 'exit' handlers cannot await. Errors must not mask the exit code.
    try {
      registry.update(entry.id, { status: exitStatus, endedAt: new Date().toISOString() });
      rmSync(socket, { force: true });
    } catch {}
  };
  process.once('exit', onExit);
  let exitStatus: JobState = 'failed';
  return {
    cancel: () => {
      exitStatus = 'cancelled';
    },
    entry: () => entry,
    update: (patch) => {
      entry = registry.update(entry.id, patch);
    },
    end: (status, patch = {}) => {
      ended ??= (async () => {
        process.off('exit', onExit);
        // Status first, then close: the other order would briefly list the job as crashed.
        entry = registry.update(entry.id, { endedAt: new Date().toISOString(), ...patch, status });
        await server.close();
      })();
      return ended;
    },
  };
};
