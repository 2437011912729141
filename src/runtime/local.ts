/**
 * The in-thread worker pool: one WorkerAgent in the calling thread hosts every subtask, all
 * channels are local. Same operators, same exchange code, same master and checkpoints as the
 * threaded mode; used by tests (fast, and jobs may be closures) and small jobs.
 */
import type { EddyError } from '../core/errors.js';
import type { JobGraph } from './graph.js';
import type { WorkerHandle, WorkerPool } from './job-master.js';
import { type ExecutionPlan, planExecution } from './plan.js';
import type { FromWorker, RestoreSource, StateBackendConfig, ToWorker } from './protocol.js';
import { WorkerAgent } from './worker-agent.js';
import { DEFAULT_WORKER_OPTIONS, type WorkerOptions } from './worker-runtime.js';

export interface LocalPoolOptions {
  readonly worker?: Partial<WorkerOptions> | undefined;
  readonly checkpointing: boolean;
  /** Set when keyed state is checkpointed incrementally: the job's checkpoint directory. */
  readonly incrementalBase?: string | undefined;
  /** The keyed state backend of the workers' subtasks (default heap). */
  readonly stateBackend?: StateBackendConfig | undefined;
}

/** One worker (the calling thread) hosts every subtask; the plan is computed once. */
export class LocalPool implements WorkerPool {
  private readonly plan: ExecutionPlan;

  constructor(
    private readonly graph: JobGraph,
    private readonly config: LocalPoolOptions,
  ) {
    this.plan = planExecution(graph, 'single');
  }

  spawn(restore: RestoreSource | undefined): WorkerHandle[] {
    const handle = new LocalHandle(this.graph, this.plan, this.config, restore);
    handle.post({ type: 'connect' });
    return [handle];
  }
}

/** Messages cross a macrotask boundary both ways, as they would between threads. */
class LocalHandle implements WorkerHandle {
  private readonly handlers: Array<(m: FromWorker) => void> = [];
  private crashed: ((e: EddyError) => void) | undefined;
  private readonly agent: WorkerAgent;
  private readonly prepared: Promise<void>;
  private terminated = false;
  private cancelled: (() => void) | undefined;

  constructor(
    graph: JobGraph,
    plan: ExecutionPlan,
    config: LocalPoolOptions,
    restore: RestoreSource | undefined,
  ) {
    this.agent = new WorkerAgent(
      graph,
      plan,
      {
        workerIndex: 0,
        options: { ...DEFAULT_WORKER_OPTIONS, ...config.worker },
        checkpointing: config.checkpointing,
        incrementalBase: config.incrementalBase,
        stateBackend: config.stateBackend,
        restore,
      },
      (m) =>
        setImmediate(() => {
          if (m.type === 'cancelled') this.cancelled?.();
          if (!this.terminated) for (const h of this.handlers) h(m);
        }),
    );
    this.prepared = this.agent.prepare();
    this.prepared.catch(() => {});
  }

  post(m: ToWorker): void {
    this.prepared.then(
      () => setImmediate(() => this.agent.handle(m)),
      (e) => this.crashed?.(e),
    );
  }

  onMessage(handler: (m: FromWorker) => void): void {
    this.handlers.push(handler);
  }

  onCrash(handler: (e: EddyError) => void): void {
    this.crashed = handler;
  }

  async terminate(): Promise<void> {
    if (this.terminated) return;
    this.terminated = true;
    await new Promise<void>((resolve) => {
      this.cancelled = resolve;
      this.prepared.then(
        () => this.agent.handle({ type: 'cancel' }),
        () => resolve(),
      );
      setTimeout(resolve, 1000).unref();
    });
  }
}
