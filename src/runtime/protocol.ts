/** Messages between the job master (main thread) and its workers. */
import type { MessagePort } from 'node:worker_threads';
import type { CheckpointMetadata, SubtaskStateHandle } from '../checkpoint/types.js';
import type { SerializedError } from '../core/errors.js';
import type { SubtaskMetricsReport } from './metrics.js';
import type { WorkerOptions } from './worker-runtime.js';

/** Where a worker restores its state from. */
export interface RestoreSource {
  /** Checkpoint or savepoint directory; paths in the metadata are relative to it. */
  readonly dir: string;
  readonly metadata: CheckpointMetadata;
}

/** Passed as workerData: everything a worker needs to rebuild the job graph itself. */
export interface WorkerInit {
  /** Module exporting `loadJobGraph(spec)`; the runtime does not know how jobs are defined. */
  readonly graphLoader: string;
  readonly spec: unknown;
  readonly workerIndex: number;
  readonly fingerprint: string;
  readonly options: WorkerOptions;
  readonly metricsIntervalMs: number;
  readonly checkpointing: boolean;
  readonly restore: RestoreSource | undefined;
}

/**
 * A warm worker thread's start data: it imports `graphLoader` and lets it preload the job
 * module of `spec` (the loader's optional `preloadJob`), then waits for its `init` message.
 */
export interface WarmWorkerData {
  readonly graphLoader: string;
  readonly spec: unknown;
}

/** One operator subtask's state handles in a checkpoint acknowledgement. */
export interface OperatorAck {
  readonly uid: string;
  readonly handle: SubtaskStateHandle;
}

export type ToWorker =
  /** Turns a warm thread into worker `init.workerIndex` of a job. */
  | { readonly type: 'init'; readonly init: WorkerInit }
  | {
      readonly type: 'connect';
      readonly peers: ReadonlyArray<{ worker: number; port: MessagePort }>;
    }
  | { readonly type: 'start' }
  /** Graceful stop: sources end their input early and everything drains. */
  | { readonly type: 'stop' }
  | { readonly type: 'cancel' }
  | {
      readonly type: 'checkpoint';
      readonly checkpointId: number;
      readonly dir: string;
      readonly savepoint: boolean;
      readonly timestamp: number;
    }
  | { readonly type: 'checkpointComplete'; readonly checkpointId: number }
  | { readonly type: 'checkpointAborted'; readonly checkpointId: number }
  /** Everything finished (and the final checkpoint, if any, completed): close and report. */
  | { readonly type: 'close' };

/** What a worker read to restore its subtasks. */
export interface RestoreStats {
  readonly bytesRead: number;
  readonly keyGroups: number;
  readonly ms: number;
  /** Per restored operator subtask: what it read and how long it took. */
  readonly operators: ReadonlyArray<{
    readonly uid: string;
    readonly subtask: number;
    readonly bytesRead: number;
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
  | { readonly type: 'metrics'; readonly reports: SubtaskMetricsReport[] }
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
  | {
      readonly type: 'checkpointFailed';
      readonly checkpointId: number;
      readonly error: SerializedError;
    }
  | { readonly type: 'closed'; readonly reports: SubtaskMetricsReport[] }
  | { readonly type: 'failed'; readonly error: SerializedError }
  | { readonly type: 'cancelled' };
