/**
 * The job master's WorkerPool on a cluster: each worker of an attempt runs as a thread in some
 * worker process, in a task slot the master grants. Spawning an attempt:
 *   1. wait for W free slots (W = the attempt's workers, see runtime/plan.ts), up to the slot
 *      timeout; in reactive mode fail at once with EDDY_SLOTS_CHANGED instead of waiting;
 *   2. send each process the job's bundle (once) and a `deploy` with its workers' inits;
 *   3. when the attempt spans several processes, every thread listens on a free port and
 *      reports it; once all have, every process gets all addresses (`wire`) and its threads
 *      connect: one TCP connection per pair of workers in different processes, MessagePorts
 *      between threads of one process.
 * Messages of the attempt are routed by its token; a lost process crashes its workers' handles
 * (EDDY_WORKER_CRASHED, retriable), so the job master restarts the attempt.
 */
import { randomUUID } from 'node:crypto';
import { deserializeError, EddyError, type SerializedError } from '../core/errors.js';
import type { JobGraph } from '../runtime/graph.js';
import { fingerprint } from '../runtime/graph.js';
import type { WorkerHandle, WorkerPool } from '../runtime/job-master.js';
import { planExecution } from '../runtime/plan.js';
import type {
  FromWorker,
  PeerAddress,
  RestoreSource,
  StateBackendConfig,
  ToWorker,
  WorkerInit,
} from '../runtime/protocol.js';
import { DEFAULT_WORKER_OPTIONS } from '../runtime/worker-runtime.js';
import type { MasterToWorker } from './messages.js';

/** A registered worker process, as a pool uses it. */
export interface WorkerProcessRef {
  readonly id: string;
  /** Where its threads listen for data connections. */
  readonly host: string;
  send(m: MasterToWorker): void;
  /** Sends the bundle unless this process has it already. */
  ensureBundle(sha256: string, code: string): void;
}

/** What happens to an attempt's workers, as the master routes it. */
export interface AttemptRoute {
  listening(worker: number, port: number): void;
  fromWorker(worker: number, msg: FromWorker): void;
  crashed(worker: number, error: SerializedError): void;
  terminated(worker: number): void;
  /** The process is gone (killed, cut off): every worker of the attempt there is lost. */
  processLost(process: string, error: EddyError): void;
}

/** The master's side of slots, as a pool needs it (master.ts implements it). */
export interface SlotBroker {
  /**
   * Grants `n` slots to `attempt`: waits up to `timeoutMs` for enough of them, then fails
   * with EDDY_NO_SLOTS; with `failFast`, fails at once with EDDY_SLOTS_CHANGED.
   */
  acquire(
    attempt: string,
    n: number,
    options: { timeoutMs: number; failFast: boolean; job: string },
  ): Promise<Array<{ ref: WorkerProcessRef; worker: number }>>;
  route(attempt: string, route: AttemptRoute): void;
  /** The worker's thread ended: its slot is free again. */
  release(attempt: string, process: string, worker: number): void;
  /** Forgets the attempt: its remaining slots are freed and its messages dropped. */
  endAttempt(attempt: string): void;
}

/** Everything but the module path of the job spec: each process puts its bundle copy there. */
export interface ClusterSpec {
  readonly args: readonly string[];
  readonly parallelism: number;
  readonly maxParallelism?: number | undefined;
  readonly parallelismOverrides?: Readonly<Record<string, number>> | undefined;
  readonly restoredMaxParallelism?: Readonly<Record<string, number>> | undefined;
}

export interface ClusterPoolOptions {
  readonly jobId: string;
  readonly bundle: { readonly sha256: string; readonly code: string };
  readonly spec: ClusterSpec;
  readonly checkpointing: boolean;
  /** Set when keyed state is checkpointed incrementally: the job's checkpoint directory. */
  readonly incrementalBase?: string | undefined;
  /**
   * The keyed state backend. For 'disk', `dir` is a directory of each worker's host; relative,
   * it is relative to the worker process's $EDDY_HOME. The worker process puts a directory of
   * the attempt's own there (see WorkerProcess.deploy).
   */
  readonly stateBackend?: StateBackendConfig | undefined;
  readonly slotTimeoutMs: number;
  /** Reactive mode: too few slots fail the spawn at once (EDDY_SLOTS_CHANGED). */
  readonly failFast: boolean;
  /** Deploy to `ready` of every worker (default {@link DEFAULT_START_TIMEOUT_MS}). */
  readonly startTimeoutMs?: number | undefined;
}

/** How long an attempt's workers may take from their deploy to `ready` (restores included). */
export const DEFAULT_START_TIMEOUT_MS = 120_000;

/** How long a terminated worker gets to say so before its slot is taken back anyway. */
const TERMINATE_TIMEOUT_MS = 10_000;

export class ClusterPool implements WorkerPool {
  private attempts = 0;
  /** Workers of one attempt (subtask i of every chain on worker i mod W). */
  readonly workers: number;
  private readonly placement;
  private readonly fingerprint: string;

  constructor(
    graph: JobGraph,
    private readonly broker: SlotBroker,
    private readonly options: ClusterPoolOptions,
  ) {
    const maxParallelism = Math.max(...graph.nodes.map((n) => n.parallelism));
    const plan = planExecution(graph, { workers: maxParallelism });
    this.placement = plan.placement;
    this.workers = plan.workers;
    this.fingerprint = fingerprint(graph);
  }

  private get startTimeoutMs(): number {
    return this.options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS;
  }

  async spawn(restore: RestoreSource | undefined): Promise<WorkerHandle[]> {
    const { jobId, bundle } = this.options;
    const token = `${jobId}/${++this.attempts}/${randomUUID().slice(0, 8)}`;
    const grants = await this.broker.acquire(token, this.workers, {
      timeoutMs: this.options.slotTimeoutMs,
      failFast: this.options.failFast,
      job: jobId,
    });
    const byProcess = new Map<string, { ref: WorkerProcessRef; workers: number[] }>();
    for (const g of grants) {
      const p = byProcess.get(g.ref.id) ?? { ref: g.ref, workers: [] };
      p.workers.push(g.worker);
      byProcess.set(g.ref.id, p);
    }
    const multiProcess = byProcess.size > 1;
    let ended = 0;
    const release = (g: (typeof grants)[number]) => () => {
      this.broker.release(token, g.ref.id, g.worker);
      if (++ended === grants.length) this.broker.endAttempt(token);
    };
    const handles = grants.map((g) => new RemoteHandle(g.worker, g.ref, token, release(g)));
    const addresses = new Map<number, PeerAddress>();
    // A thread that hangs while it loads or restores is alive to the heartbeats: a deadline
    // on the whole start-up catches it.
    let ready = 0;
    const startTimer = setTimeout(() => {
      const late = handles.filter((h) => !h.isReady).map((h) => `${h.worker} (in ${h.process})`);
      const e = new EddyError(
        'EDDY_TIMEOUT',
        `worker(s) ${late.join(', ')} did not open their operators within ${this.startTimeoutMs} ms of being deployed`,
        { domain: 'internal' },
      );
      // Reported, not ended: the threads still run, the job master's teardown terminates them.
      for (const h of handles) h.fail(e);
    }, this.startTimeoutMs);
    startTimer.unref();
    this.broker.route(token, {
      listening: (worker, port) => {
        addresses.set(worker, { worker, host: grants[worker]!.ref.host, port });
        if (addresses.size < grants.length) return;
        const peers = [...addresses.values()];
        for (const p of byProcess.values()) p.ref.send({ type: 'wire', attempt: token, peers });
      },
      fromWorker: (worker, msg) => {
        if (msg.type === 'ready' && ++ready === handles.length) clearTimeout(startTimer);
        handles[worker]?.deliver(msg);
      },
      crashed: (worker, error) => handles[worker]?.crash(deserializeError(error)),
      terminated: (worker) => handles[worker]?.ended(),
      processLost: (process, error) => {
        for (const h of handles) if (h.process === process) h.crash(error, true);
      },
    });
    for (const { ref, workers } of byProcess.values()) {
      ref.ensureBundle(bundle.sha256, bundle.code);
      ref.send({
        type: 'deploy',
        attempt: token,
        sha256: bundle.sha256,
        inits: workers.map((w) =>
          this.init(w, restore, multiProcess ? { host: ref.host, token } : undefined),
        ),
        local: workers,
      });
      if (!multiProcess) ref.send({ type: 'wire', attempt: token, peers: [] });
    }
    return handles;
  }

  private init(
    workerIndex: number,
    restore: RestoreSource | undefined,
    tcp: WorkerInit['tcp'],
  ): WorkerInit {
    return {
      // Filled in by the worker process: its own loader and its copy of the bundle.
      graphLoader: '',
      spec: { ...this.options.spec, module: '' },
      workerIndex,
      placement: this.placement,
      fingerprint: this.fingerprint,
      options: DEFAULT_WORKER_OPTIONS,
      checkpointing: this.options.checkpointing,
      incrementalBase: this.options.incrementalBase,
      stateBackend: this.options.stateBackend,
      restore,
      tcp,
    };
  }
}

/** One worker of an attempt, in a remote process. Early messages wait for their handler. */
class RemoteHandle implements WorkerHandle {
  private handler: ((m: FromWorker) => void) | undefined;
  private early: FromWorker[] = [];
  private crashHandler: ((e: EddyError) => void) | undefined;
  private pendingCrash: EddyError | undefined;
  private gone = false;
  private onEnded: (() => void) | undefined;

  constructor(
    readonly worker: number,
    private readonly ref: WorkerProcessRef,
    private readonly attempt: string,
    private readonly release: () => void,
  ) {}

  get process(): string {
    return this.ref.id;
  }

  post(m: ToWorker): void {
    if (!this.gone)
      this.ref.send({ type: 'toWorker', attempt: this.attempt, worker: this.worker, msg: m });
  }

  onMessage(handler: (m: FromWorker) => void): void {
    this.handler = handler;
    for (const m of this.early.splice(0)) handler(m);
  }

  onCrash(handler: (e: EddyError) => void): void {
    this.crashHandler = handler;
    if (this.pendingCrash) handler(this.pendingCrash);
  }

  /** It reported `ready` (its operators are open). */
  isReady = false;

  deliver(m: FromWorker): void {
    if (m.type === 'ready') this.isReady = true;
    if (this.handler) this.handler(m);
    else this.early.push(m);
  }

  /** Reports `error` to the job master; the thread stays until it is terminated. */
  fail(error: EddyError): void {
    if (this.gone) return;
    if (this.crashHandler) this.crashHandler(error);
    else this.pendingCrash = error;
  }

  /** The thread died, or (`processLost`) its whole process: the slot is free either way. */
  crash(error: EddyError, processLost = false): void {
    if (this.gone) return;
    const e = processLost
      ? new EddyError(
          'EDDY_WORKER_CRASHED',
          `worker ${this.worker} lost with its process: ${error.message}`,
          {
            domain: 'internal',
            cause: error,
          },
        )
      : error;
    this.ended();
    if (this.crashHandler) this.crashHandler(e);
    else this.pendingCrash = e;
  }

  ended(): void {
    if (this.gone) {
      this.onEnded?.();
      return;
    }
    this.gone = true;
    this.release();
    this.onEnded?.();
  }

  terminate(): Promise<void> {
    this.crashHandler = undefined;
    if (this.gone) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => this.ended(), TERMINATE_TIMEOUT_MS);
      timer.unref();
      this.onEnded = () => {
        clearTimeout(timer);
        resolve();
      };
      this.ref.send({ type: 'terminate', attempt: this.attempt, worker: this.worker });
    });
  }
}
