/**
 * Shapes shared by the job registry, the control server inside a running job and the
 * control client used by `eddy list | savepoint | stop`. Everything here is plain JSON:
 * it is written to registry files and sent over the control socket.
 */

/**
 * Lifecycle of a job as the job itself records it. `cancelled`: the user aborted a stop in
 * progress (a second Ctrl-C); what was not committed is gone.
 */
export type JobState = 'running' | 'stopping' | 'finished' | 'failed' | 'stopped' | 'cancelled';

/**
 * Status as listed: `crashed` is never written by a job; readers derive it for an entry
 * that claims to be running/stopping but whose process or socket is gone.
 */
export type ListedJobStatus = JobState | 'crashed';

/** One registry file, `<home>/jobs/<id>.json`. */
export interface JobEntry {
  readonly id: string;
  readonly name: string;
  /** Process id of the `eddy run` process that hosts the job. */
  readonly pid: number;
  readonly status: JobState;
  readonly parallelism: number;
  /** ISO 8601. */
  readonly startedAt: string;
  /** ISO 8601; set when the job finished, failed or stopped. */
  readonly endedAt?: string | undefined;
  /** Unix domain socket of the job's control server (see `socketPathFor`). */
  readonly socket: string;
  readonly checkpointDir?: string | undefined;
  /** Path of the most recent savepoint the job wrote. */
  readonly lastSavepoint?: string | undefined;
  /** Base URL of the job's REST API and dashboard (docs/REST.md), when it serves one. */
  readonly url?: string | undefined;
}

/** A registry entry as reported by `JobRegistry.list()` / `get()`. */
export interface ListedJob extends Omit<JobEntry, 'status'> {
  readonly status: ListedJobStatus;
}

/** What a running job reports about itself over the control socket. */
export interface JobStatusInfo {
  readonly id: string;
  readonly name: string;
  readonly status: JobState;
  readonly parallelism: number;
  readonly startedAt: string;
  readonly checkpointDir?: string | undefined;
  readonly lastSavepoint?: string | undefined;
}

/**
 * The job side of job control, implemented by `eddy run` on top of its job master.
 * Errors thrown (or rejected) here reach the client with their `EddyError` code.
 */
export interface JobControlTarget {
  status(): JobStatusInfo;
  /** Takes a savepoint; `dir` undefined: the job picks its default. Resolves with the path. */
  savepoint(dir: string | undefined): Promise<string>;
  /**
   * Stops the job, resolving only once it has drained (and, with `savepoint`, written its
   * final savepoint). Resolves with the savepoint's path, or undefined without one. Without
   * `drain` (Flink's `stop`) the sources stop where they are and windows, timers and buffered
   * output stay in state; with `drain` (`stop --drain`) the input ends: every window and timer
   * fires and operators' `finish` runs before the final snapshot.
   */
  stop(savepoint: boolean, dir: string | undefined, drain: boolean): Promise<string | undefined>;
  /**
   * Rescales: stop with a savepoint (with incremental checkpoints: with a final checkpoint),
   * restart from it at the new parallelism (job-wide and/or
   * per operator uid). Resolves once the restarted job processed its first record, or at once
   * with a {@link RescaleUnchanged} when no operator's parallelism would change. Rejects,
   * before anything is started or stopped, a request the job cannot take (unknown uid, a
   * parallelism above an operator's maxParallelism): the job then runs on as it was.
   */
  rescale(
    parallelism: number | undefined,
    operators: Readonly<Record<string, number>>,
  ): Promise<RescaleReport | RescaleUnchanged>;
}

/** The answer to a rescale that would change no operator's parallelism: nothing was done. */
export interface RescaleUnchanged {
  readonly unchanged: true;
  readonly parallelism: number;
  /** Each operator's parallelism, e.g. `sentences=2, counts=2`. */
  readonly operators: string;
}

/** What a rescale did and cost. */
export interface RescaleReport {
  /** The restore point: a rescale savepoint, or the final incremental checkpoint. */
  readonly savepoint: string;
  readonly fromParallelism: number;
  readonly toParallelism: number;
  readonly operators: Readonly<Record<string, number>>;
  /** From the stop request to the first record processed after the restore. */
  readonly pauseMs: number;
  /**
   * From the rescale request to the stop request: starting the new worker threads while the
   * job kept processing (not part of the pause).
   */
  readonly prepareMs: number;
  readonly bytesRead: number;
  /** Bytes restored without a read: each key group reads its chain on first use. */
  readonly bytesDeferred?: number | undefined;
  readonly keyGroups: number;
  readonly restoreMs: number;
}

export interface StatusRequest {
  readonly op: 'status';
}
export interface SavepointRequest {
  readonly op: 'savepoint';
  readonly dir?: string | undefined;
}
export interface StopRequest {
  readonly op: 'stop';
  readonly savepoint: boolean;
  readonly dir?: string | undefined;
  /** End the input (fire every window and timer, run `finish`) before stopping. */
  readonly drain: boolean;
}
export interface RescaleRequest {
  readonly op: 'rescale';
  readonly parallelism?: number | undefined;
  readonly operators?: Readonly<Record<string, number>> | undefined;
}
/** One line of newline-delimited JSON from client to server. */
export type ControlRequest = StatusRequest | SavepointRequest | StopRequest | RescaleRequest;

/** The payload of a successful response, per request op. */
export interface ControlResults {
  status: { status: JobStatusInfo };
  savepoint: { path: string };
  /** `path` is absent when stopping without a savepoint. */
  stop: { path?: string | undefined };
  rescale: { report: RescaleReport } | { unchanged: RescaleUnchanged };
}

export interface ControlFailure {
  readonly ok: false;
  readonly code: string;
  readonly message: string;
}

/** One line of newline-delimited JSON from server to client. */
export type ControlResponse<Op extends ControlRequest['op'] = ControlRequest['op']> =
  | ({ readonly ok: true } & ControlResults[Op])
  | ControlFailure;
