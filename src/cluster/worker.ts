/**
 * A worker process (`eddy worker`): offers task slots to a master, runs one worker thread per
 * slot an attempt is granted, and relays the job master's messages to and from its threads.
 * Data between threads never passes through here: threads of this process talk over
 * MessagePorts, threads of different processes over their own TCP connections.
 *
 * The master connection is watched by heartbeats (wire.ts). When it is lost, every thread is
 * terminated (their attempt is over: the master restarts it from a checkpoint) and the process
 * reconnects with backoff, so a restarted master finds its workers again.
 */
import { rm } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { JOB_GRAPH_LOADER } from '../api/job.js';
import { writeBundledJob } from '../api/job-bundle.js';
import { type LocalRunDir, openLocalRunDir } from '../api/local-state.js';
import { eddyHome } from '../control/paths.js';
import { EddyError, serializeError } from '../core/errors.js';
import { localChannels, startWorkerThread, type ThreadHandle } from '../runtime/coordinator.js';
import type { WorkerInit } from '../runtime/protocol.js';
import { CLUSTER_PROTOCOL_VERSION, type MasterToWorker, type WorkerToMaster } from './messages.js';
import { type ControlConnection, type HeartbeatOptions, openConnection } from './wire.js';

export interface WorkerProcessOptions {
  readonly masterHost: string;
  readonly masterPort: number;
  readonly slots: number;
  /** The address other workers reach this one at (its threads listen there). */
  readonly host: string;
  readonly id?: string | undefined;
  /** Where bundles are written (default: a folder under the OS temp dir). */
  readonly dataDir?: string | undefined;
  readonly heartbeat?: HeartbeatOptions | undefined;
  /** The cluster's shared secret, when the master requires one. */
  readonly token?: string | undefined;
  readonly log?: ((line: string) => void) | undefined;
}

type Conn = ControlConnection<MasterToWorker, WorkerToMaster>;

const MAX_BACKOFF_MS = 5000;

export class WorkerProcess {
  readonly id: string;
  private conn: Conn | undefined;
  private readonly threads = new Map<string, ThreadHandle>();
  private readonly bundles = new Map<string, Promise<string>>();
  /**
   * The disk backend's directory of each attempt with workers here, and those workers still
   * running: removed when the last one ends (closed, terminated or crashed).
   */
  private readonly runDirs = new Map<string, { dir: LocalRunDir; live: Set<number> }>();
  /** Inits waiting for their `wire`, by attempt. */
  private readonly pending = new Map<string, number[]>();
  private stopped = false;
  private registeredOnce = false;
  private refused = false;
  private rejectRefusal!: (e: unknown) => void;
  /** Rejects when the master refuses this worker (token, version): retrying cannot help. */
  readonly refusal = new Promise<never>((_, reject) => {
    this.rejectRefusal = reject;
  });
  private readonly dataDir: string;
  /** Messages are handled in order: a deploy waits for the bundle written before it. */
  private queue: Promise<void> = Promise.resolve();
  private readonly log: (line: string) => void;

  constructor(private readonly options: WorkerProcessOptions) {
    this.refusal.catch(() => {});
    this.id =
      options.id ?? `${options.host === '127.0.0.1' ? hostname() : options.host}:${process.pid}`;
    this.dataDir = options.dataDir ?? join(tmpdir(), 'eddy-worker', String(process.pid));
    this.log = options.log ?? ((l) => process.stderr.write(`${l}\n`));
  }

  /** Registered with the master right now. */
  get registered(): boolean {
    return this.conn !== undefined && !this.conn.closed;
  }

  /** Connects (retrying with backoff until `stop`) and serves the master. */
  async start(): Promise<void> {
    let delay = 100;
    while (!this.stopped) {
      try {
        await this.connectOnce();
        return;
      } catch (e) {
        // Refused (token, version): retrying cannot help.
        if (this.refused) {
          this.rejectRefusal(e);
          return;
        }
        if (this.stopped) return;
        if (!this.registeredOnce && delay === 100) this.log(`${(e as Error).message}; retrying`);
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(MAX_BACKOFF_MS, delay * 2);
      }
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.conn?.close();
    await this.terminateAll();
    // Bundles are written again by the master when needed; nothing here outlives the process.
    await rm(this.dataDir, { recursive: true, force: true });
  }

  private async connectOnce(): Promise<void> {
    const { masterHost, masterPort } = this.options;
    const conn: Conn = await openConnection(
      masterHost,
      masterPort,
      `master at ${masterHost}:${masterPort}`,
      this.options.heartbeat,
    );
    await new Promise<void>((resolve, reject) => {
      conn.onMessage((m) => {
        if (m.type === 'registered') {
          this.conn = conn;
          this.log(
            `${this.registeredOnce ? 're-registered' : 'registered'} with the master at ${masterHost}:${masterPort} as ${this.id} (${this.options.slots} slots)`,
          );
          this.registeredOnce = true;
          resolve();
        } else if (m.type === 'refused') {
          this.stopped = true;
          this.refused = true;
          reject(new EddyError('EDDY_CLUSTER', `the master refused this worker: ${m.reason}`));
        } else this.enqueue(m);
      });
      conn.onClose((error) => {
        reject(error ?? new EddyError('EDDY_CLUSTER', 'the master closed the connection'));
        if (this.conn === conn) this.onMasterLost(error);
      });
      conn.send({
        type: 'register',
        version: CLUSTER_PROTOCOL_VERSION,
        id: this.id,
        host: this.options.host,
        slots: this.options.slots,
        token: this.options.token,
      });
    });
  }

  private onMasterLost(error: EddyError | undefined): void {
    this.conn = undefined;
    if (this.stopped) return;
    this.log(
      `lost the master (${error?.message ?? 'closed'}): ending this worker's tasks and reconnecting`,
    );
    void this.terminateAll().then(() => this.start());
  }

  private async terminateAll(): Promise<void> {
    const threads = [...this.threads.values()];
    this.threads.clear();
    this.pending.clear();
    await Promise.all(threads.map((t) => t.terminate()));
    for (const { dir } of this.runDirs.values()) dir.remove();
    this.runDirs.clear();
  }

  /** Worker `worker` of `attempt` ended here: the last one removes the attempt's stores. */
  private workerEnded(attempt: string, worker: number): void {
    const run = this.runDirs.get(attempt);
    if (!run?.live.delete(worker) || run.live.size > 0) return;
    this.runDirs.delete(attempt);
    run.dir.remove();
  }

  /**
   * The attempt's own directory for the disk backend, on this host: under the job's local
   * state directory (relative: under this process's $EDDY_HOME). Throws a clear error naming
   * the path if it cannot be created or written.
   */
  private stateBackendOf(
    attempt: string,
    inits: readonly WorkerInit[],
  ): WorkerInit['stateBackend'] {
    const config = inits[0]?.stateBackend;
    if (config?.kind !== 'disk') return config;
    const base = isAbsolute(config.dir) ? config.dir : join(eddyHome(), config.dir);
    const dir = openLocalRunDir(base, `the local state directory of worker ${this.id}`);
    this.runDirs.set(attempt, { dir, live: new Set(inits.map((i) => i.workerIndex)) });
    return { kind: 'disk', dir: dir.path };
  }

  private enqueue(m: MasterToWorker): void {
    this.queue = this.queue
      .then(() => this.handle(m))
      .catch((e) => this.log(`worker ${this.id}: ${(e as Error).message}`));
  }

  private send(m: WorkerToMaster): void {
    this.conn?.send(m);
  }

  private async handle(m: MasterToWorker): Promise<void> {
    switch (m.type) {
      case 'bundle':
        if (!this.bundles.has(m.sha256))
          this.bundles.set(
            m.sha256,
            writeBundledJob(m.code, { dir: join(this.dataDir, 'bundles'), sha256: m.sha256 }),
          );
        await this.bundles.get(m.sha256);
        return;
      case 'deploy':
        return this.deploy(m);
      case 'wire':
        return this.wire(m.attempt, m.peers);
      case 'toWorker':
        this.threads.get(key(m.attempt, m.worker))?.post(m.msg);
        return;
      case 'terminate': {
        const k = key(m.attempt, m.worker);
        const t = this.threads.get(k);
        this.threads.delete(k);
        // Not awaited: other messages (other attempts) must not wait for a cancel grace.
        void (t?.terminate() ?? Promise.resolve()).then(() => {
          this.workerEnded(m.attempt, m.worker);
          this.send({ type: 'terminated', attempt: m.attempt, worker: m.worker });
        });
        return;
      }
      default:
        return;
    }
  }

  private async deploy(m: Extract<MasterToWorker, { type: 'deploy' }>): Promise<void> {
    const bundle = this.bundles.get(m.sha256);
    if (!bundle) throw new EddyError('EDDY_INTERNAL', `deploy of ${m.attempt} before its bundle`);
    let module: string;
    try {
      module = await bundle;
    } catch (e) {
      for (const init of m.inits)
        this.send({
          type: 'crashed',
          attempt: m.attempt,
          worker: init.workerIndex,
          error: serializeError(e),
        });
      return;
    }
    let stateBackend: WorkerInit['stateBackend'];
    try {
      stateBackend = this.stateBackendOf(m.attempt, m.inits);
    } catch (e) {
      for (const init of m.inits)
        this.send({
          type: 'crashed',
          attempt: m.attempt,
          worker: init.workerIndex,
          error: serializeError(e),
        });
      return;
    }
    this.pending.set(m.attempt, [...m.local]);
    for (const init of m.inits) {
      const full: WorkerInit = {
        ...init,
        stateBackend,
        graphLoader: JOB_GRAPH_LOADER,
        sourceMaps: true,
        spec: { ...(init.spec as object), module },
      };
      const thread = startWorkerThread(full);
      const worker = init.workerIndex;
      this.threads.set(key(m.attempt, worker), thread);
      thread.onMessage((msg) => {
        // Closed: its subtasks and their stores are closed; the thread may linger.
        if (msg.type === 'closed') this.workerEnded(m.attempt, worker);
        this.send({ type: 'fromWorker', attempt: m.attempt, worker, msg });
      });
      thread.onListening((port) =>
        this.send({ type: 'listening', attempt: m.attempt, worker, port }),
      );
      thread.onCrash((e) => {
        this.threads.delete(key(m.attempt, worker));
        this.workerEnded(m.attempt, worker);
        this.send({ type: 'crashed', attempt: m.attempt, worker, error: serializeError(e) });
      });
    }
  }

  private wire(
    attempt: string,
    peers: ReadonlyArray<{ worker: number; host: string; port: number }>,
  ): void {
    const local = this.pending.get(attempt);
    if (!local) return;
    this.pending.delete(attempt);
    const ports = localChannels(local);
    const mine = new Set(local);
    const remote = peers.filter((p) => !mine.has(p.worker));
    for (const w of local) this.threads.get(key(attempt, w))?.wire(ports.get(w)!, remote);
  }
}

const key = (attempt: string, worker: number) => `${attempt}#${worker}`;
