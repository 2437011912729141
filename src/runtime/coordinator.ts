/**
 * Worker threads for the job master: a bounded pool of workers (task slots: subtask i of every
 * chain on worker i mod W, see plan.ts), a MessageChannel between every pair of workers for
 * the exchange. The placement is computed once here and sent to every worker as data.
 */
import { availableParallelism } from 'node:os';
import { MessageChannel, type MessagePort, Worker } from 'node:worker_threads';
import { EddyError, JobFailedError } from '../core/errors.js';
import { fingerprint, type JobGraph } from './graph.js';
import type { WorkerHandle, WorkerPool } from './job-master.js';
import { type PlacementTable, planExecution } from './plan.js';
import type {
  FromWorker,
  PeerAddress,
  RestoreSource,
  StateBackendConfig,
  ToWorker,
  WorkerInit,
} from './protocol.js';
import type { FromThreadListening, ToThreadWire } from './thread-messages.js';
import { DEFAULT_WORKER_OPTIONS, type WorkerOptions } from './worker-runtime.js';

const BOOT = new URL('./worker-boot.mjs', import.meta.url);

/** How long a failed job's workers get to discard in-progress output before termination. */
const CANCEL_GRACE_MS = 1000;

export interface ThreadPoolOptions {
  /** Module URL exporting `loadJobGraph(spec)`, imported by every worker. */
  readonly graphLoader: string;
  /** Structured-cloneable description of the job, passed to `loadJobGraph`. */
  readonly spec: unknown;
  readonly worker?: Partial<WorkerOptions> | undefined;
  readonly checkpointing: boolean;
  /** Set when keyed state is checkpointed incrementally: the job's checkpoint directory. */
  readonly incrementalBase?: string | undefined;
  /** The keyed state backend of the workers' subtasks (default heap). */
  readonly stateBackend?: StateBackendConfig | undefined;
  /**
   * Identifies what a warm thread must have preloaded to serve this pool (e.g. the job
   * module's path); threads prewarmed with the same key are used before new ones are started.
   */
  readonly warmKey?: string | undefined;
  /**
   * Most worker threads to run the job on (default: the number of cores); never more than the
   * largest parallelism. Subtasks share the workers (see plan.ts).
   */
  readonly workers?: number | undefined;
}

/** How many worker threads a job of largest parallelism `maxParallelism` runs on. */
export const workerCount = (maxParallelism: number, workers?: number | undefined): number =>
  Math.max(1, Math.min(workers ?? availableParallelism(), maxParallelism));

/** Threads started ahead of need by {@link prewarmWorkers}, by pool key. */
const warmThreads = new Map<string, Worker[]>();

const poolKey = (graphLoader: string, warmKey: string, options: WorkerOptions) =>
  `${graphLoader}\n${warmKey}\n${options.youngGenerationMb}`;

/** Starts a worker thread with its init (worker processes of a cluster use it too). */
export const startWorkerThread = (init: WorkerInit): ThreadHandle =>
  new ThreadHandle(init.workerIndex, startThread({ init }, init.options));

const startThread = (workerData: unknown, options: WorkerOptions): Worker =>
  new Worker(BOOT, {
    workerData,
    stdout: false,
    stderr: false,
    // A larger young generation than V8's default: record processing allocates many
    // short-lived objects, and fewer scavenges measured ~7% faster on keyed-sum.
    resourceLimits: { maxYoungGenerationSizeMb: options.youngGenerationMb },
  });

/** Resolves when a warm thread has loaded everything (or died: then it is not used). */
const warmReady = new WeakMap<Worker, Promise<void>>();

/**
 * Starts `count` worker threads that load the TypeScript loader, `graphLoader` and (through
 * its `preloadJob(spec)`) the job module now, and wait: the next ThreadPool with the same
 * `warmKey` uses them instead of starting threads. A rescale calls this and stops the job only
 * once the threads are ready, so their start-up (~0.5-1 s: mostly compiling TypeScript) is no
 * longer part of the pause. Unused warm threads are terminated by the next spawn or by
 * {@link discardWarmWorkers}; until then they keep the process alive despite `unref()` (their
 * message ports stay referenced). Resolves when all `count` threads are ready.
 */
export const prewarmWorkers = (
  config: Pick<ThreadPoolOptions, 'graphLoader' | 'spec' | 'worker'> & { warmKey: string },
  count: number,
): Promise<void> => {
  const options = { ...DEFAULT_WORKER_OPTIONS, ...config.worker };
  const key = poolKey(config.graphLoader, config.warmKey, options);
  const threads = warmThreads.get(key) ?? [];
  warmThreads.set(key, threads);
  while (threads.length < count) {
    const w = startThread(
      { warm: { graphLoader: config.graphLoader, spec: config.spec } },
      options,
    );
    w.unref();
    const drop = () => {
      const at = threads.indexOf(w);
      if (at >= 0) threads.splice(at, 1);
    };
    w.once('error', drop);
    w.once('exit', drop);
    warmReady.set(
      w,
      new Promise<void>((resolve) => {
        w.on('message', (m: FromWorker) => {
          if (m.type === 'warm') resolve();
        });
        w.once('exit', () => resolve());
      }),
    );
    threads.push(w);
  }
  return Promise.all(threads.map((w) => warmReady.get(w))).then(() => undefined);
};

/**
 * Terminates every warm thread no pool has taken, e.g. after a rescale whose new generation
 * failed to start. Hazard: an unused warm thread keeps the process alive, so a run that ends
 * with some left must call this or it never exits.
 */
export const discardWarmWorkers = async (): Promise<void> => {
  const threads = [...warmThreads.values()].flat();
  warmThreads.clear();
  await Promise.all(threads.map((w) => w.terminate()));
};

/** Takes the warm threads of `key` (the rest are terminated: they were started for this). */
const takeWarm = (key: string, count: number): Worker[] => {
  const threads = warmThreads.get(key) ?? [];
  warmThreads.delete(key);
  const taken = threads.splice(0, count);
  for (const w of threads) void w.terminate();
  for (const w of taken) {
    w.removeAllListeners('error');
    w.removeAllListeners('exit');
    w.removeAllListeners('message');
    w.ref();
  }
  return taken;
};

export class ThreadPool implements WorkerPool {
  private readonly workerCount: number;
  private readonly options: WorkerOptions;
  /** Computed once here, sent to every worker (the plan's channels are not kept). */
  readonly placement: PlacementTable;

  constructor(
    private readonly graph: JobGraph,
    private readonly config: ThreadPoolOptions,
  ) {
    const maxParallelism = Math.max(...graph.nodes.map((n) => n.parallelism));
    const plan = planExecution(graph, { workers: workerCount(maxParallelism, config.workers) });
    this.placement = plan.placement;
    this.workerCount = plan.workers;
    this.options = { ...DEFAULT_WORKER_OPTIONS, ...config.worker };
  }

  spawn(restore: RestoreSource | undefined): WorkerHandle[] {
    const { warmKey } = this.config;
    const warm =
      warmKey === undefined
        ? []
        : takeWarm(poolKey(this.config.graphLoader, warmKey, this.options), this.workerCount);
    const handles = Array.from({ length: this.workerCount }, (_, i) => {
      const init: WorkerInit = {
        graphLoader: this.config.graphLoader,
        spec: this.config.spec,
        workerIndex: i,
        placement: this.placement,
        fingerprint: fingerprint(this.graph),
        options: this.options,
        checkpointing: this.config.checkpointing,
        incrementalBase: this.config.incrementalBase,
        stateBackend: this.config.stateBackend,
        restore,
      };
      const thread = warm[i];
      if (thread === undefined) return new ThreadHandle(i, startThread({ init }, this.options));
      thread.postMessage({ type: 'init', init } satisfies ToWorker);
      return new ThreadHandle(i, thread);
    });
    connect(handles);
    return handles;
  }
}

/** One worker thread as the master sees it; `wire` and `onListening` are its pool's. */
export class ThreadHandle implements WorkerHandle {
  private crashed: ((e: EddyError) => void) | undefined;
  private exited = false;
  private cancelled: (() => void) | undefined;

  constructor(
    readonly index: number,
    private readonly worker: Worker,
  ) {
    worker.on('error', (e) =>
      this.crashed?.(new JobFailedError(`worker ${index} crashed: ${e.message}`, e)),
    );
    worker.on('exit', (code) => {
      this.exited = true;
      this.cancelled?.();
      if (code !== 0) {
        this.crashed?.(
          new EddyError('EDDY_WORKER_CRASHED', `worker ${index} exited with code ${code}`),
        );
      }
    });
    worker.on('message', (m: FromWorker) => {
      if (m.type === 'cancelled') this.cancelled?.();
    });
  }

  post(m: ToWorker): void {
    if (!this.exited) this.worker.postMessage(m);
  }

  /** Gives the thread its links to its peers (see thread-messages.ts). */
  wire(ports: ToThreadWire['ports'], tcp: readonly PeerAddress[] = []): void {
    const m: ToThreadWire = { type: 'wire', ports, tcp };
    if (!this.exited)
      this.worker.postMessage(
        m,
        ports.map((p) => p.port),
      );
  }

  /** The port the thread listens on for TCP peers (only with `init.tcp`). */
  onListening(handler: (port: number) => void): void {
    this.worker.on('message', (m: FromWorker | FromThreadListening) => {
      if (m.type === 'listening') handler(m.port);
    });
  }

  onMessage(handler: (m: FromWorker) => void): void {
    this.worker.on('message', (m: FromWorker | FromThreadListening) => {
      if (m.type !== 'warm' && m.type !== 'listening') handler(m);
    });
  }

  onCrash(handler: (e: EddyError) => void): void {
    this.crashed = handler;
  }

  /** Lets the worker discard in-progress output (bounded wait), then terminates it. */
  async terminate(): Promise<void> {
    this.crashed = undefined;
    if (!this.exited) {
      await new Promise<void>((resolve) => {
        this.cancelled = resolve;
        this.post({ type: 'cancel' });
        setTimeout(resolve, CANCEL_GRACE_MS).unref();
      });
    }
    await this.worker.terminate();
  }
}

/**
 * A MessageChannel per pair of `workers` (threads of this process), by worker index: each
 * thread's ports to the others.
 */
export const localChannels = (
  workers: readonly number[],
): Map<number, Array<{ worker: number; port: MessagePort }>> => {
  const peers = new Map(workers.map((w) => [w, [] as { worker: number; port: MessagePort }[]]));
  for (let a = 0; a < workers.length; a++) {
    for (let b = a + 1; b < workers.length; b++) {
      const { port1, port2 } = new MessageChannel();
      peers.get(workers[a]!)!.push({ worker: workers[b]!, port: port1 });
      peers.get(workers[b]!)!.push({ worker: workers[a]!, port: port2 });
    }
  }
  return peers;
};

/** Wires every pair of the pool's threads with a MessageChannel. */
const connect = (workers: ThreadHandle[]) => {
  const peers = localChannels(workers.map((w) => w.index));
  for (const w of workers) w.wire(peers.get(w.index)!);
};
