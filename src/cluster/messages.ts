/**
 * What travels on the cluster's control connections (wire.ts). Three parties: the master, worker
 * processes (each offering task slots) and clients (`eddy run --master`, `eddy cluster status`,
 * `eddy stop --master` ...). One slot hosts one worker of an attempt, i.e. one worker thread;
 * the job master's protocol (runtime/protocol.ts) travels inside `toWorker`/`fromWorker`.
 */
import type { SerializedError } from '../core/errors.js';
import type { Totals } from '../runtime/metrics.js';
import type { FromWorker, PeerAddress, ToWorker, WorkerInit } from '../runtime/protocol.js';

/** Version of the cluster protocol; a worker or client of another version is refused. */
export const CLUSTER_PROTOCOL_VERSION = 1;

/** An attempt of a job on the cluster: its token also guards the data connections. */
export type AttemptToken = string;

export type WorkerToMaster =
  | {
      readonly type: 'register';
      readonly version: number;
      readonly id: string;
      /** Where the worker's threads listen for data connections. */
      readonly host: string;
      readonly slots: number;
      /** The cluster's shared secret (EDDY_CLUSTER_TOKEN), when the master requires one. */
      readonly token?: string | undefined;
    }
  /** A thread of `attempt` listens for its TCP peers on `port` of the worker's host. */
  | {
      readonly type: 'listening';
      readonly attempt: AttemptToken;
      readonly worker: number;
      readonly port: number;
    }
  | {
      readonly type: 'fromWorker';
      readonly attempt: AttemptToken;
      readonly worker: number;
      readonly msg: FromWorker;
    }
  /** The thread died without reporting (crash, non-zero exit). */
  | {
      readonly type: 'crashed';
      readonly attempt: AttemptToken;
      readonly worker: number;
      readonly error: SerializedError;
    }
  | { readonly type: 'terminated'; readonly attempt: AttemptToken; readonly worker: number };

export type MasterToWorker =
  | { readonly type: 'registered'; readonly id: string }
  | { readonly type: 'refused'; readonly reason: string }
  /** A job's bundled module, sent once per worker process before its first deploy. */
  | { readonly type: 'bundle'; readonly sha256: string; readonly code: string }
  /**
   * Start threads for some workers of an attempt. `init.spec.module` is replaced by the
   * worker's own copy of bundle `sha256`; `local`: the attempt's workers in this process.
   */
  | {
      readonly type: 'deploy';
      readonly attempt: AttemptToken;
      readonly sha256: string;
      readonly inits: readonly WorkerInit[];
      readonly local: readonly number[];
    }
  /** Every worker of the attempt that listens for TCP peers, with its address. */
  | {
      readonly type: 'wire';
      readonly attempt: AttemptToken;
      readonly peers: readonly PeerAddress[];
    }
  | {
      readonly type: 'toWorker';
      readonly attempt: AttemptToken;
      readonly worker: number;
      readonly msg: ToWorker;
    }
  /** Cancel and end the thread (answered by `terminated`). */
  | { readonly type: 'terminate'; readonly attempt: AttemptToken; readonly worker: number };

/** A job as a client submits it. */
export interface SubmitSpec {
  readonly name: string;
  readonly bundle: { readonly code: string; readonly sha256: string };
  readonly args: readonly string[];
  readonly parallelism: number;
  readonly maxParallelism?: number | undefined;
  readonly checkpointDir?: string | undefined;
  readonly checkpointIntervalMs?: number | undefined;
  readonly checkpointTimeoutMs?: number | undefined;
  /** 'incremental': keyed state checkpoints write only what changed (default 'full'). */
  readonly checkpointMode?: 'full' | 'incremental' | undefined;
  /** Where keyed state lives while the job runs: 'heap' (default) or 'disk'. */
  readonly stateBackend?: 'heap' | 'disk' | undefined;
  /**
   * With 'disk': the stores' working directory on every worker's host (default
   * `$EDDY_HOME/jobs/<job name>/local` of each worker process).
   */
  readonly localStateDir?: string | undefined;
  /** Follow the cluster's slots (up to maxParallelism) instead of a fixed parallelism. */
  readonly reactive?: boolean | undefined;
  readonly restartAttempts?: number | undefined;
  readonly fromSavepoint?: string | undefined;
  /** Start from the latest completed checkpoint in `checkpointDir`, if any. */
  readonly resume?: boolean | undefined;
  readonly allowNonRestoredState?: boolean | undefined;
  readonly jobId?: string | undefined;
}

export type ClientRequest =
  | { readonly kind: 'submit'; readonly spec: SubmitSpec }
  | { readonly kind: 'status' }
  /** Events of the job from now on (and its end, if it has ended). */
  | { readonly kind: 'follow'; readonly jobId: string }
  | {
      readonly kind: 'stop';
      readonly jobId: string;
      readonly savepointDir?: string | undefined;
      readonly drain?: boolean | undefined;
    }
  | { readonly kind: 'savepoint'; readonly jobId: string; readonly dir?: string | undefined }
  | { readonly kind: 'rescale'; readonly jobId: string; readonly parallelism: number };

export type ClientToMaster =
  | {
      readonly type: 'hello';
      readonly version: number;
      readonly role: 'client';
      readonly token?: string | undefined;
    }
  | { readonly type: 'request'; readonly req: number; readonly body: ClientRequest };

export type MasterToClient =
  | {
      readonly type: 'response';
      readonly req: number;
      readonly value?: unknown;
      readonly error?: SerializedError | undefined;
    }
  | { readonly type: 'event'; readonly jobId: string; readonly event: JobEvent };

/** A job's record counts so far, over all attempts and generations. */
export type JobTotals = Totals;

export type JobStatus = 'waiting' | 'running' | 'rescaling' | 'finished' | 'stopped' | 'failed';

/** What a client following a job hears. */
export type JobEvent =
  | { readonly kind: 'log'; readonly line: string }
  | { readonly kind: 'totals'; readonly totals: JobTotals }
  | {
      readonly kind: 'end';
      readonly status: Extract<JobStatus, 'finished' | 'stopped' | 'failed'>;
      readonly totals: JobTotals;
      /** Restarts after failures, over all generations. */
      readonly restarts: number;
      readonly savepoint?: string | undefined;
      readonly error?: SerializedError | undefined;
    };

/** One rescale of a job on the cluster (manual or reactive). */
export interface ClusterRescale {
  /** Epoch ms when it completed. */
  readonly at: number;
  readonly from: number;
  readonly to: number;
  /** `request` (eddy rescale), `worker-joined`, `worker-lost`. */
  readonly reason: 'request' | 'worker-joined' | 'worker-lost';
  /** From the stop request (or the failure) to the new generation's first record or restore. */
  readonly pauseMs: number;
  readonly bytesRead: number;
  readonly keyGroups: number;
}

export interface ClusterStatus {
  readonly master: { readonly address: string; readonly haDir: string | null };
  readonly workers: ReadonlyArray<{
    readonly id: string;
    readonly address: string;
    readonly slots: number;
    readonly freeSlots: number;
  }>;
  readonly jobs: ReadonlyArray<{
    readonly id: string;
    readonly name: string;
    readonly status: JobStatus;
    readonly parallelism: number;
    readonly reactive: boolean;
    readonly checkpointDir: string | null;
    readonly restarts: number;
    readonly rescales: readonly ClusterRescale[];
    readonly error?: string | undefined;
  }>;
}
