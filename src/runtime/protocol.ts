/** Messages between the coordinator (main thread) and its worker threads. */
import type { MessagePort } from 'node:worker_threads';
import type { SerializedError } from '../core/errors.js';
import type { SubtaskMetricsReport } from './metrics.js';
import type { WorkerOptions } from './worker-runtime.js';

/** Passed as workerData: everything a worker needs to rebuild the job graph itself. */
export interface WorkerInit {
  /** Module exporting `loadJobGraph(spec)`; the runtime does not know how jobs are defined. */
  readonly graphLoader: string;
  readonly spec: unknown;
  readonly workerIndex: number;
  readonly fingerprint: string;
  readonly options: WorkerOptions;
  readonly metricsIntervalMs: number;
}

export type ToWorker =
  | {
      readonly type: 'connect';
      readonly peers: ReadonlyArray<{ worker: number; port: MessagePort }>;
    }
  | { readonly type: 'start' }
  | { readonly type: 'stop' }
  | { readonly type: 'cancel' };

export type FromWorker =
  | { readonly type: 'ready' }
  | { readonly type: 'metrics'; readonly reports: SubtaskMetricsReport[] }
  | { readonly type: 'finished'; readonly reports: SubtaskMetricsReport[] }
  | { readonly type: 'failed'; readonly error: SerializedError }
  | { readonly type: 'cancelled' };
