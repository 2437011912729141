/**
 * Messages between the job master and its workers. Plain data only (no ports, no handles): the
 * same messages cross a thread boundary (structured clone) or a TCP connection (msgpack, see
 * cluster/wire.ts). How a worker reaches its peers is its pool's business (thread-messages.ts).
 */
import type { CheckpointMetadata, SubtaskStateHandle } from '../checkpoint/types.js';
import type { SerializedError } from '../core/errors.js';
import type { SubtaskMetricsReport } from './metrics.js';
import type { PlacementTable } from './plan.js';
import type { WorkerOptions } from './worker-runtime.js';

/** Where a worker restores its state from. */
export interface RestoreSource {
  /** Checkpoint or savepoint directory; paths in the metadata are relative to it. */
  readonly dir: string;
  readonly metadata: CheckpointMetadata;
}

/**
 * Which keyed state backend a worker creates, as plain data (a factory cannot cross a thread or
 * a process): 'heap' (the default) or 'disk', whose stores go into new directories under `dir`
 * (a directory of the host the worker runs on; see api/local-state.ts for who creates and
 * removes it).
 */
export type StateBackendConfig =
  | { readonly kind: 'heap' }
  | { readonly kind: 'disk'; readonly dir: string };

/** Passed as workerData: everything a worker needs to rebuild the job graph itself. */
export interface WorkerInit {
  /** Module exporting `loadJobGraph(spec)`; the runtime does not know how jobs are defined. */
  readonly graphLoader: string;
  readonly spec: unknown;
  readonly workerIndex: number;
  /** Where every subtask runs, computed once by the master; the worker plans with it. */
  readonly placement: PlacementTable;
  readonly fingerprint: string;
  readonly options: WorkerOptions;
  readonly checkpointing: boolean;
  /** Set when keyed state is checkpointed incrementally: the job's checkpoint directory. */
  readonly incrementalBase?: string | undefined;
  /** The keyed state backend of the worker's subtasks (default heap). */
  readonly stateBackend?: StateBackendConfig | undefined;
  readonly restore: RestoreSource | undefined;
  /**
   * Set when some peers run in other processes: the thread listens on `host` (port 0) for
   * their TCP connections, reports the port (`listening`) and is then told every address.
   */
  readonly tcp?: TcpWiring | undefined;
  /**
   * Turn Node's source maps on in the thread before loading the job: a bundled job's stack
   * frames then name its original files and lines, not the bundle's.
   */
  readonly sourceMaps?: boolean | undefined;
}

/** A worker thread's part in the TCP data plane (see transport/tcp-link.ts). */
export interface TcpWiring {
  /** The address other processes reach this worker at; it listens there on a free port. */
  readonly host: string;
  /** The job and attempt: connections from another attempt are refused. */
  readonly token: string;
}

/** Where a worker in another process listens for its peers. */
export interface PeerAddress {
  readonly worker: number;
  readonly host: string;
  readonly port: number;
}

/**
 * A warm worker thread's start data: it imports `graphLoader` and lets it preload the job
 * module of `spec` (the loader's optional `preloadJob`), then waits for its `init` message.
 */
export interface WarmWorkerData {
  readonly graphLoader: string;
  readonly spec: unknown;
}

/** What a split enumerator sends a reader. */
export type ReaderEvent =
  | { readonly kind: 'splits'; readonly splits: readonly unknown[] }
  | { readonly kind: 'noMoreSplits' }
  | { readonly kind: 'custom'; readonly event: unknown };

/** One operator subtask's state handles in a checkpoint acknowledgement. */
export interface OperatorAck {
  readonly uid: string;
  readonly handle: SubtaskStateHandle;
}

export type ToWorker =
  /** Turns a warm thread into worker `init.workerIndex` of a job. */
  | { readonly type: 'init'; readonly init: WorkerInit }
  /** Every peer link is attached (by the pool, see thread-messages.ts): open and report `ready`. */
  | { readonly type: 'connect' }
  | { readonly type: 'start' }
  /** Report every subtask's metrics now (answered by `metrics` with the same round). */
  | { readonly type: 'sampleMetrics'; readonly round: number }
  /**
   * Stop: sources end their input where they are and everything in flight drains. With
   * `drain` (stop --drain) the input really ends: MAX_WATERMARK fires every window and timer
   * and operators' `finish` runs. Without it nothing is fired or finished: windows, timers
   * and buffered output stay in state for a restore. `finalSnapshot`: a final checkpoint or
   * savepoint follows (so sinks commit through it instead of at once).
   */
  | { readonly type: 'stop'; readonly drain: boolean; readonly finalSnapshot: boolean }
  | { readonly type: 'cancel' }
  | {
      readonly type: 'checkpoint';
      readonly checkpointId: number;
      readonly dir: string;
      readonly savepoint: boolean;
      readonly timestamp: number;
    }
  | { readonly type: 'checkpointComplete'; readonly checkpointId: number }
  /** The checkpoint (and every older one still open) will never complete. */
  | { readonly type: 'checkpointAborted'; readonly checkpointId: number }
  /** From a source's split enumerator to reader subtask `subtask` of source `uid`. */
  | {
      readonly type: 'sourceEvent';
      readonly uid: string;
      readonly subtask: number;
      readonly event: ReaderEvent;
    }
  /** Everything finished (and the final checkpoint, if any, completed): close and report. */
  | { readonly type: 'close' };

/** What a worker read to restore its subtasks. */
export interface RestoreStats {
  readonly bytesRead: number;
  /**
   * Bytes of key groups restored without reading them (incremental chains of the job's own
   * checkpoints): each key group reads its chain on its first use.
   */
  readonly bytesDeferred?: number | undefined;
  readonly keyGroups: number;
  readonly ms: number;
  /** Per restored operator subtask: what it read and how long it took. */
  readonly operators: ReadonlyArray<{
    readonly uid: string;
    readonly subtask: number;
    readonly bytesRead: number;
    readonly bytesDeferred?: number | undefined;
    readonly keyGroups: number;
    readonly ms: number;
  }>;
}

export type FromWorker =
  /** A warm thread has loaded the job module and waits for its `init`. */
  | { readonly type: 'warm' }
  | { readonly type: 'ready'; readonly restore?: RestoreStats | undefined }
  /** The first record after start was processed (epoch ms): ends a rescale's pause. */
  | { readonly type: 'firstRecord'; readonly at: number }
  /** The answer to `sampleMetrics` round `round`. */
  | { readonly type: 'metrics'; readonly round: number; readonly reports: SubtaskMetricsReport[] }
  /** Every subtask of the worker processed its input to the end. */
  | { readonly type: 'finished'; readonly reports: SubtaskMetricsReport[] }
  | {
      readonly type: 'ack';
      readonly checkpointId: number;
      readonly operators: OperatorAck[];
      readonly syncMs: number;
      readonly asyncMs: number;
      readonly bytes: number;
    }
  /** A subtask gave up aligning this checkpoint (a newer barrier came first). */
  | { readonly type: 'declined'; readonly checkpointId: number; readonly reason: string }
  /** From reader subtask `subtask` of source `uid` to its split enumerator. */
  | {
      readonly type: 'sourceEvent';
      readonly uid: string;
      readonly subtask: number;
      readonly event: unknown;
    }
  | {
      readonly type: 'checkpointFailed';
      readonly checkpointId: number;
      readonly error: SerializedError;
    }
  | { readonly type: 'closed'; readonly reports: SubtaskMetricsReport[] }
  | { readonly type: 'failed'; readonly error: SerializedError }
  | { readonly type: 'cancelled' };
