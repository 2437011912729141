/**
 * Everything one worker runs: the subtasks placed on it and its end of the exchange. The
 * same class runs a whole job in one thread (every subtask on worker 0, all channels local)
 * or one slice of it per worker thread; nothing else differs between the two modes.
 */
import type { CheckpointBarrier } from '../core/elements.js';
import type { KeyedStateBackendFactory } from '../state/backend.js';
import type { JobGraph } from './graph.js';
import type { SubtaskMetricsReport } from './metrics.js';
import type { ExecutionPlan } from './plan.js';
import type { ReaderEvent } from './protocol.js';
import {
  type ExchangeOptions,
  type RestoredOperatorState,
  SubtaskRunner,
  type TaskSnapshot,
} from './subtask.js';
import { Exchange, type PeerLink } from './transport/exchange.js';

export interface WorkerOptions extends ExchangeOptions {
  /** Partial batches are sent after this long (latency bound for slow streams). */
  readonly bufferTimeoutMs: number;
  /** V8 young generation size of worker threads (MiB). */
  readonly youngGenerationMb: number;
}

export const DEFAULT_WORKER_OPTIONS: WorkerOptions = {
  batchSize: 1024,
  creditsPerChannel: 4,
  bufferTimeoutMs: 20,
  youngGenerationMb: 48,
};

export interface WorkerRuntimeEnv {
  readonly checkpointing: boolean;
  /** Checkpoint keyed state incrementally (savepoints stay full). */
  readonly incremental?: boolean | undefined;
  /** Creates each keyed operator's state backend (default: the heap backend). */
  readonly keyedStateBackend?: KeyedStateBackendFactory | undefined;
  /** Restored state per task key `${chain}/${subtask}`, then per operator uid. */
  readonly restored: ReadonlyMap<string, ReadonlyMap<string, RestoredOperatorState>>;
  readonly onSnapshot: (snapshot: TaskSnapshot) => void;
  /** Called once, when the first record after start has been processed on this worker. */
  readonly onFirstRecord?: () => void;
  /** A subtask gave up aligning a checkpoint (see SubtaskEnv.onDecline). */
  readonly onDecline?: (checkpointId: number, reason: string) => void;
  /** A source reader's event for its enumerator in the master. */
  readonly sendSourceEvent?: (uid: string, subtask: number, event: unknown) => void;
}

export const taskKey = (chain: number, subtask: number) => `${chain}/${subtask}`;

export class WorkerRuntime {
  readonly exchange: Exchange;
  readonly runners: SubtaskRunner[];
  private readonly stop = new AbortController();
  private draining = false;

  constructor(
    graph: JobGraph,
    plan: ExecutionPlan,
    readonly workerIndex: number,
    private readonly options: WorkerOptions = DEFAULT_WORKER_OPTIONS,
    env: WorkerRuntimeEnv = { checkpointing: false, restored: new Map(), onSnapshot: () => {} },
  ) {
    this.exchange = new Exchange(workerIndex, plan.channels);
    this.runners = [];
    let first = env.onFirstRecord;
    const onFirstRecord = () => {
      first?.();
      first = undefined;
    };
    for (const chain of plan.chains) {
      for (let i = 0; i < chain.parallelism; i++) {
        if (plan.workerOf({ chain: chain.index, subtask: i }) !== workerIndex) continue;
        this.runners.push(
          new SubtaskRunner(graph, plan, chain, i, this.exchange, options, {
            stopSignal: this.stop.signal,
            checkpointing: env.checkpointing,
            incremental: env.incremental,
            keyedStateBackend: env.keyedStateBackend,
            restored: env.restored.get(taskKey(chain.index, i)) ?? new Map(),
            onSnapshot: env.onSnapshot,
            onFirstRecord,
            onDecline: env.onDecline,
            draining: () => this.draining,
            sendSourceEvent: env.sendSourceEvent,
          }),
        );
      }
    }
  }

  connectPeer(worker: number, link: PeerLink): void {
    this.exchange.connectPeer(worker, link);
  }

  async open(): Promise<void> {
    for (const r of this.runners) await r.open();
  }

  /**
   * Runs every subtask to the end of its input (`finish` called, not closed). `afterEach`
   * runs when one subtask is done (e.g. to snapshot it for a pending checkpoint). Rejects
   * with the first failure.
   */
  async run(afterEach: (r: SubtaskRunner) => void = () => {}): Promise<void> {
    const timer = setInterval(() => {
      for (const r of this.runners) r.flushIdle();
    }, this.options.bufferTimeoutMs);
    try {
      await Promise.all(
        this.runners.map(async (r) => {
          await r.run();
          afterEach(r);
        }),
      );
    } finally {
      clearInterval(timer);
    }
  }

  requestCheckpoint(barrier: CheckpointBarrier): void {
    for (const r of this.runners) r.requestCheckpoint(barrier);
  }

  async notifyCheckpointComplete(checkpointId: number): Promise<void> {
    for (const r of this.runners) await r.notifyCheckpointComplete(checkpointId);
  }

  /** The master aborted `checkpointId`: every subtask gives it (and older ones) up. */
  abortCheckpoint(checkpointId: number): void {
    for (const r of this.runners) r.abortCheckpoint(checkpointId);
  }

  async notifyCheckpointAborted(checkpointId: number): Promise<void> {
    for (const r of this.runners) await r.notifyCheckpointAborted(checkpointId);
  }

  /** Delivers an enumerator's event to reader subtask `subtask` of source `uid`, if here. */
  deliverReaderEvent(uid: string, subtask: number, event: ReaderEvent): void {
    const r = this.runners.find(
      (x) => x.isSource && x.sourceUid === uid && x.subtaskIndex === subtask,
    );
    r?.deliverReaderEvent(event);
  }

  /** Teardown after a failure: every subtask stops at its next await. */
  cancel(): void {
    for (const r of this.runners) r.cancel();
  }

  /**
   * Stop: sources end their input, the rest drains. With `drain` the input ends for real
   * (MAX_WATERMARK, `finish`); without it nothing fires or finishes.
   */
  requestStop(drain = false): void {
    this.draining = drain;
    this.stop.abort();
    for (const r of this.runners) r.wakeup();
  }

  async close(failed: boolean): Promise<void> {
    for (const r of this.runners) await r.close(failed);
  }

  metrics(): SubtaskMetricsReport[] {
    return this.runners.flatMap((r) =>
      r.metrics().map((m) => ({ ...m, worker: this.workerIndex })),
    );
  }
}
