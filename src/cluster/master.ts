/**
 * The cluster master (`eddy master`): one TCP port for worker processes and clients. Workers
 * register their task slots; clients submit jobs (a bundled module, see api/job-bundle.ts),
 * follow them, stop, savepoint and rescale them, and ask for the cluster's status. Each job
 * runs here as a ClusterJob (job.ts) whose job masters place workers in slots (pool.ts).
 *
 * With an HA directory every submitted job is recorded there (ha.ts); a master restarted with
 * the same directory resumes each unfinished job from its latest completed checkpoint once its
 * workers have re-registered (they reconnect with backoff).
 */
import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import { importJob } from '../api/job.js';
import { writeBundledJob } from '../api/job-bundle.js';
import { EddyError, InvalidArgumentError, serializeError } from '../core/errors.js';
import type { HaStore } from './ha.js';
import { ClusterJob, type ClusterJobContext } from './job.js';
import {
  CLUSTER_PROTOCOL_VERSION,
  type ClientRequest,
  type ClientToMaster,
  type ClusterStatus,
  type MasterToClient,
  type MasterToWorker,
  type SubmitSpec,
  type WorkerToMaster,
} from './messages.js';
import type { AttemptRoute, SlotBroker, WorkerProcessRef } from './pool.js';
import { SlotTable } from './slots.js';
import { ControlConnection, type HeartbeatOptions } from './wire.js';

export interface MasterOptions {
  readonly host: string;
  /** 0 picks a free port (see {@link ClusterMaster.port}). */
  readonly port: number;
  readonly heartbeat?: HeartbeatOptions | undefined;
  /** How long an attempt waits for free slots before the job fails (default 60 s). */
  readonly slotTimeoutMs?: number | undefined;
  /** Where bundles of submitted jobs are written (the master loads each job too). */
  readonly dataDir: string;
  readonly ha?: HaStore | undefined;
  /**
   * A shared secret workers and clients must present (EDDY_CLUSTER_TOKEN): a submitted job is
   * code that workers run, so anyone who can reach the port can run code there without it.
   */
  readonly token?: string | undefined;
  /** The master's own lines (registrations, losses). */
  readonly log?: ((line: string) => void) | undefined;
  /** A job's log lines (the CLI writes them to the job's log file). */
  readonly jobLog?:
    | ((job: ClusterJob, line: string, fields?: Record<string, unknown>) => void)
    | undefined;
}

export const DEFAULT_SLOT_TIMEOUT_MS = 60_000;

interface WorkerEntry extends WorkerProcessRef {
  readonly conn: ControlConnection<WorkerToMaster, MasterToWorker>;
  readonly bundles: Set<string>;
  readonly address: string;
}

export class ClusterMaster implements SlotBroker {
  private server: Server | undefined;
  private readonly slots = new SlotTable();
  private readonly workers = new Map<string, WorkerEntry>();
  private readonly routes = new Map<string, AttemptRoute>();
  readonly jobs = new Map<string, ClusterJob>();
  private slotWaiters: Array<() => void> = [];
  /** The latest HA write of each job; the next one waits for it. */
  private readonly haWrites = new Map<string, Promise<void>>();
  private readonly ctx: ClusterJobContext;
  private readonly log: (line: string) => void;
  private closing = false;
  private readonly connections = new Set<{ close(): void }>();
  /** Set once listening and HA jobs are recovered: the readiness probe's answer. */
  ready = false;

  constructor(private readonly options: MasterOptions) {
    this.log = options.log ?? ((l) => process.stderr.write(`${l}\n`));
    this.ctx = {
      broker: this,
      availableSlots: (jobId) => {
        const others = new Set(
          [...this.jobs.values()].filter((j) => j.id !== jobId).map((j) => j.id),
        );
        return this.slots.totalSlots() - this.slots.heldBy((a) => others.has(jobOfAttempt(a)));
      },
      slotsChanged: () => new Promise<void>((r) => this.slotWaiters.push(r)),
      slotTimeoutMs: options.slotTimeoutMs ?? DEFAULT_SLOT_TIMEOUT_MS,
      log: (jobId, line, fields) => {
        const job = this.jobs.get(jobId);
        if (job) this.options.jobLog?.(job, line, fields);
      },
      changed: (job) => this.persist(job),
    };
  }

  /** The port actually listened on. */
  get port(): number {
    const a = this.server?.address();
    return typeof a === 'object' && a !== null ? a.port : this.options.port;
  }

  async start(): Promise<void> {
    // Jobs first: a client that reconnects as soon as the port opens must find its job.
    await this.recover();
    const server = createServer((socket) => this.onConnection(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', (e) =>
        reject(
          new EddyError(
            'EDDY_CLUSTER',
            `cannot listen on ${this.options.host}:${this.options.port}: ${e.message}`,
            { domain: 'user' },
          ),
        ),
      );
      server.listen(this.options.port, this.options.host, () => resolve());
    });
    this.server = server;
    this.log(`eddy master listening on ${this.options.host}:${this.port}`);
    this.ready = true;
  }

  /** Stops listening and drops every connection; running jobs end with the master. */
  async close(): Promise<void> {
    // Jobs fail as their workers go: their HA records must stay for the next master.
    this.closing = true;
    // Workers and clients alike: a server's close waits for every connection to end.
    for (const c of this.connections) c.close();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }

  status(): ClusterStatus {
    return {
      master: { address: `${this.options.host}:${this.port}`, haDir: this.options.ha?.dir ?? null },
      workers: [...this.workers.values()].map((w) => ({
        id: w.id,
        address: w.address,
        slots: this.slots.slotsOf(w.id),
        freeSlots: this.slots.freeOf(w.id),
      })),
      jobs: [...this.jobs.values()].map((j) => ({
        id: j.id,
        name: j.name,
        status: j.status,
        parallelism: j.parallelism,
        reactive: j.reactive,
        checkpointDir: j.spec.checkpointDir ?? null,
        restarts: j.restarts,
        rescales: j.rescales,
        ...(j.error ? { error: j.error } : {}),
      })),
    };
  }

  /** Loads the job module from its bundle here (the master builds graphs too) and starts it. */
  async submit(spec: SubmitSpec): Promise<ClusterJob> {
    if (spec.jobId && this.jobs.get(spec.jobId)?.status === 'running')
      throw new InvalidArgumentError(`job ${spec.jobId} is already running on this cluster`);
    const file = await writeBundledJob(spec.bundle.code, {
      dir: `${this.options.dataDir}/bundles`,
      sha256: spec.bundle.sha256,
    });
    const definition = await importJob(file);
    const id = spec.jobId ?? randomUUID();
    const job = new ClusterJob(id, { ...spec, jobId: id }, definition, this.ctx);
    this.jobs.set(id, job);
    this.persist(job);
    this.log(
      `job ${id} (${spec.name}) submitted: parallelism ${spec.reactive ? 'reactive' : spec.parallelism}`,
    );
    return job;
  }

  // ---- SlotBroker ----

  acquire(
    attempt: string,
    n: number,
    options: { timeoutMs: number; failFast: boolean; job: string },
  ): Promise<Array<{ ref: WorkerProcessRef; worker: number }>> {
    const deadline = Date.now() + options.timeoutMs;
    return new Promise((resolve, reject) => {
      const tryNow = () => {
        const grants = this.slots.allocate(attempt, n);
        if (grants)
          return resolve(
            grants.map((g) => ({ ref: this.workers.get(g.process)!, worker: g.worker })),
          );
        const free = this.slots.totalFree();
        const describe = `needs ${n} task slot(s), ${free} free of ${this.slots.totalSlots()} on ${this.workers.size} worker(s)`;
        // Reactive: fail only when the slots are really gone; slots the job's own ended
        // attempt still holds come free once its threads are terminated.
        if (options.failFast && this.ctx.availableSlots(options.job) < n)
          return reject(
            new EddyError('EDDY_SLOTS_CHANGED', `job ${options.job} ${describe}`, {
              domain: 'internal',
            }),
          );
        const left = deadline - Date.now();
        if (left <= 0)
          return reject(
            new EddyError(
              'EDDY_NO_SLOTS',
              `job ${options.job} ${describe}; waited ${options.timeoutMs} ms (--slot-timeout): start more workers (eddy worker --master … --slots N) or run at a lower parallelism`,
              { domain: 'user' },
            ),
          );
        const timer = setTimeout(tryNow, left);
        timer.unref();
        this.slotWaiters.push(() => {
          clearTimeout(timer);
          tryNow();
        });
      };
      tryNow();
    });
  }

  route(attempt: string, route: AttemptRoute): void {
    this.routes.set(attempt, route);
  }

  release(attempt: string, process: string, worker: number): void {
    this.slots.release(attempt, process, worker);
    this.notifySlots();
  }

  endAttempt(attempt: string): void {
    this.routes.delete(attempt);
    this.slots.releaseAttempt(attempt);
    this.notifySlots();
  }

  private notifySlots(): void {
    const waiters = this.slotWaiters;
    this.slotWaiters = [];
    for (const w of waiters) w();
  }

  // ---- connections ----

  private onConnection(socket: Socket): void {
    const from = `${socket.remoteAddress}:${socket.remotePort}`;
    const conn = new ControlConnection<
      WorkerToMaster | ClientToMaster,
      MasterToWorker | MasterToClient
    >(socket, `connection from ${from}`, this.options.heartbeat);
    this.connections.add(conn);
    conn.onClose(() => this.connections.delete(conn));
    conn.onMessage((m) => {
      if (m.type === 'register') this.onRegister(conn as never, m, from);
      else if (m.type === 'hello') this.onClient(conn as never, m);
      else conn.close();
    });
  }

  private onRegister(
    conn: ControlConnection<WorkerToMaster, MasterToWorker>,
    m: Extract<WorkerToMaster, { type: 'register' }>,
    from: string,
  ): void {
    const refusal = this.refusalOf(m.version, m.token);
    if (refusal !== undefined) {
      this.log(`refused worker ${m.id} from ${from}: ${refusal}`);
      conn.send({ type: 'refused', reason: refusal });
      conn.close();
      return;
    }
    const previous = this.workers.get(m.id);
    if (previous) {
      // The same worker again (it reconnected before its old connection timed out here): the
      // new connection wins; whatever ran on the old one is lost.
      previous.conn.destroy();
      this.onWorkerLost(
        previous,
        new EddyError('EDDY_WORKER_CRASHED', `it registered again from ${from}`, {
          domain: 'internal',
        }),
      );
    }
    conn.peer = `worker ${m.id} at ${from}`;
    const entry: WorkerEntry = {
      id: m.id,
      host: m.host,
      address: from,
      conn,
      bundles: new Set(),
      send: (msg) => conn.send(msg),
      ensureBundle: (sha256, code) => {
        if (entry.bundles.has(sha256)) return;
        entry.bundles.add(sha256);
        conn.send({ type: 'bundle', sha256, code });
      },
    };
    this.workers.set(m.id, entry);
    this.slots.add(m.id, m.slots);
    conn.onMessage((msg) => this.onWorkerMessage(msg));
    conn.onClose((error) => this.onWorkerLost(entry, error));
    conn.send({ type: 'registered', id: m.id });
    this.log(
      `worker ${m.id} registered from ${from}: ${m.slots} slot(s) (${this.slots.totalSlots()} in the cluster)`,
    );
    this.notifySlots();
    for (const job of this.jobs.values()) job.slotsChanged();
  }

  private onWorkerMessage(m: WorkerToMaster): void {
    if (m.type === 'register') return;
    const route = this.routes.get(m.attempt);
    if (!route) return;
    switch (m.type) {
      case 'listening':
        route.listening(m.worker, m.port);
        return;
      case 'fromWorker':
        route.fromWorker(m.worker, m.msg);
        return;
      case 'crashed':
        route.crashed(m.worker, m.error);
        return;
      case 'terminated':
        route.terminated(m.worker);
        return;
    }
  }

  private onWorkerLost(entry: WorkerEntry, error: EddyError | undefined): void {
    if (this.workers.get(entry.id) !== entry) return;
    this.workers.delete(entry.id);
    const attempts = this.slots.remove(entry.id);
    const why = error?.message ?? 'it disconnected';
    this.log(`worker ${entry.id} lost: ${why} (${this.slots.totalSlots()} slot(s) left)`);
    const lost = new EddyError('EDDY_WORKER_CRASHED', `worker process ${entry.id} lost: ${why}`, {
      domain: 'internal',
    });
    for (const a of attempts) {
      this.jobs.get(jobOfAttempt(a))?.workerLost(Date.now());
      this.routes.get(a)?.processLost(entry.id, lost);
    }
    this.notifySlots();
  }

  private onClient(
    conn: ControlConnection<ClientToMaster, MasterToClient>,
    m: Extract<ClientToMaster, { type: 'hello' }>,
  ): void {
    conn.peer = 'client';
    const refusal = this.refusalOf(m.version, m.token);
    if (refusal !== undefined) {
      conn.send({
        type: 'response',
        req: 0,
        error: serializeError(
          new EddyError('EDDY_CLUSTER', `the master refused this client: ${refusal}`, {
            domain: 'user',
          }),
        ),
      });
      conn.close();
      return;
    }
    const unfollow: Array<() => void> = [];
    conn.onClose(() => {
      for (const u of unfollow) u();
    });
    conn.onMessage((msg) => {
      if (msg.type !== 'request') return;
      this.answer(msg.body, conn, unfollow).then(
        (value) => conn.send({ type: 'response', req: msg.req, value }),
        (e) => conn.send({ type: 'response', req: msg.req, error: serializeError(e) }),
      );
    });
  }

  private async answer(
    body: ClientRequest,
    conn: ControlConnection<ClientToMaster, MasterToClient>,
    unfollow: Array<() => void>,
  ): Promise<unknown> {
    switch (body.kind) {
      case 'status':
        return this.status();
      case 'submit': {
        const job = await this.submit(body.spec);
        return { jobId: job.id };
      }
      case 'follow': {
        const job = this.job(body.jobId);
        unfollow.push(job.follow((event) => conn.send({ type: 'event', jobId: job.id, event })));
        return { status: job.status, name: job.name, parallelism: job.parallelism };
      }
      case 'stop':
        this.job(body.jobId).stop(body.savepointDir, body.drain);
        return { stopping: true };
      case 'savepoint':
        return {
          path: await this.job(body.jobId).savepoint(
            body.dir ?? `${this.job(body.jobId).spec.checkpointDir}/savepoints`,
          ),
        };
      case 'rescale':
        return this.job(body.jobId).rescale(body.parallelism);
    }
  }

  private job(id: string): ClusterJob {
    const job = this.jobs.get(id) ?? [...this.jobs.values()].find((j) => j.id.startsWith(id));
    if (!job)
      throw new EddyError(
        'EDDY_JOB_CONTROL',
        `no job ${id} on this cluster (eddy cluster status lists them)`,
        { domain: 'user' },
      );
    return job;
  }

  /** Why a worker or client that says hello with `version` and `token` is refused, if it is. */
  private refusalOf(version: number, token: string | undefined): string | undefined {
    if (version !== CLUSTER_PROTOCOL_VERSION)
      return `cluster protocol ${version}, the master speaks ${CLUSTER_PROTOCOL_VERSION}: run the same eddy version everywhere`;
    if (!this.tokenOk(token))
      return 'wrong or missing cluster token (set the same EDDY_CLUSTER_TOKEN for the master, every worker and every client)';
    return undefined;
  }

  private tokenOk(given: string | undefined): boolean {
    const want = this.options.token;
    if (want === undefined || want === '') return true;
    const digest = (t: string) => createHash('sha256').update(t).digest();
    return given !== undefined && timingSafeEqual(digest(given), digest(want));
  }

  // ---- high availability ----

  private persist(job: ClusterJob): void {
    const ha = this.options.ha;
    if (!ha || this.closing) return;
    const ended = job.status === 'finished' || job.status === 'stopped' || job.status === 'failed';
    // The record is what was submitted: written once, removed at the end.
    if (!ended && this.haWrites.has(job.id)) return;
    // In order per job: a record written after the removal would resurrect an ended job.
    const previous = this.haWrites.get(job.id) ?? Promise.resolve();
    const next = previous
      .then(() => (ended ? ha.remove(job.id) : ha.record(job.id, job.spec)))
      .catch((e: Error) =>
        this.log(`could not update the HA record of job ${job.id}: ${e.message}`),
      );
    this.haWrites.set(job.id, next);
  }

  /** Resumes every job recorded in the HA directory from its latest checkpoint. */
  private async recover(): Promise<void> {
    const ha = this.options.ha;
    if (!ha) return;
    for (const spec of await ha.list()) {
      this.log(`recovering job ${spec.jobId} (${spec.name}) from ${ha.dir}`);
      try {
        await this.submit({ ...spec, resume: true });
      } catch (e) {
        this.log(`could not recover job ${spec.jobId}: ${(e as Error).message}`);
      }
    }
  }
}

/** Attempt tokens are `<jobId>/<n>/<random>` (pool.ts). */
const jobOfAttempt = (attempt: string): string => attempt.slice(0, attempt.indexOf('/'));
