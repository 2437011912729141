/**
 * The job master: starts the workers of an attempt, triggers checkpoints and savepoints,
 * completes them when every worker has acknowledged (and only then commits `_metadata`),
 * takes the final checkpoint at the end of input, and restarts the job from the latest
 * completed checkpoint when it fails. The same master drives worker threads and the
 * in-thread mode; only the WorkerPool differs.
 */
import { mkdir } from 'node:fs/promises';
import type { TransferListItem } from 'node:worker_threads';
import { CheckpointStorage } from '../checkpoint/index.js';
import {
  CHECKPOINT_FORMAT_VERSION,
  type CheckpointMetadata,
  type SubtaskStateHandle,
} from '../checkpoint/types.js';
import {
  deserializeError,
  EddyError,
  JobFailedError,
  type SerializedError,
} from '../core/errors.js';
import type { JobGraph } from './graph.js';
import type { SubtaskMetricsReport } from './metrics.js';
import type { FromWorker, OperatorAck, RestoreSource, RestoreStats, ToWorker } from './protocol.js';
import { checkRestore } from './restore-check.js';

export interface WorkerHandle {
  post(m: ToWorker, transfer?: readonly TransferListItem[]): void;
  onMessage(handler: (m: FromWorker) => void): void;
  /** The worker died without reporting (e.g. an uncaught error or a non-zero exit). */
  onCrash(handler: (e: EddyError) => void): void;
  terminate(): Promise<void>;
}

export interface WorkerPool {
  /** Starts and connects the workers of one attempt. */
  spawn(restore: RestoreSource | undefined): WorkerHandle[];
}

export interface CheckpointConfig {
  /** Periodic checkpoints every this many ms; undefined: only savepoints and the final one. */
  readonly intervalMs: number | undefined;
  /** Directory holding `chk-<id>` directories. */
  readonly dir: string;
  /** Completed checkpoints to keep (default 3). */
  readonly retain?: number;
}

export type RestartStrategy =
  | { readonly kind: 'none' }
  | { readonly kind: 'fixed-delay'; readonly attempts: number; readonly delayMs: number }
  | {
      readonly kind: 'exponential-backoff';
      readonly attempts: number;
      readonly initialDelayMs: number;
      readonly maxDelayMs: number;
    };

export const DEFAULT_RESTART: RestartStrategy = {
  kind: 'exponential-backoff',
  attempts: 5,
  initialDelayMs: 200,
  maxDelayMs: 5000,
};

export interface CheckpointStats {
  readonly checkpointId: number;
  readonly dir: string;
  readonly savepoint: boolean;
  readonly bytes: number;
  /** Longest synchronous part over all subtasks (user hooks + state copy). */
  readonly syncMs: number;
  /** Longest asynchronous part (writing files) over all workers. */
  readonly asyncMs: number;
  /** From trigger to the committed `_metadata`. */
  readonly totalMs: number;
}

export interface MasterOptions {
  readonly jobId: string;
  /** Enables checkpoints (exactly-once sinks, recovery). */
  readonly checkpoint?: CheckpointConfig | undefined;
  /** Start from this checkpoint or savepoint. */
  readonly restore?: RestoreSource | undefined;
  /** Drop state of operators (uids) the job no longer has instead of refusing to start. */
  readonly allowNonRestoredState?: boolean | undefined;
  readonly restart?: RestartStrategy | undefined;
  readonly onMetrics?: ((reports: SubtaskMetricsReport[]) => void) | undefined;
  readonly metricsIntervalMs?: number | undefined;
  readonly onCheckpoint?: ((stats: CheckpointStats) => void) | undefined;
  /** Human-readable events (checkpoint failures, restarts). */
  readonly log?: ((line: string) => void) | undefined;
  /** State read by all workers to restore (once all are ready). */
  readonly onRestored?: ((stats: RestoreStats) => void) | undefined;
  /** The first record processed after start (epoch ms), once per attempt. */
  readonly onFirstRecord?: ((at: number) => void) | undefined;
}

export interface JobRunResult {
  readonly durationMs: number;
  readonly stopped: boolean;
  readonly metrics: SubtaskMetricsReport[];
  /** The final savepoint written by stop-with-savepoint, if any. */
  readonly savepoint: string | undefined;
  readonly restarts: number;
}

interface Inflight {
  readonly id: number;
  readonly dir: string;
  readonly savepoint: boolean;
  readonly started: number;
  readonly timestamp: number;
  readonly acked: Set<number>;
  readonly operators: OperatorAck[];
  syncMs: number;
  asyncMs: number;
  bytes: number;
  readonly done: { resolve: (dir: string) => void; reject: (e: EddyError) => void };
}

interface Attempt {
  readonly workers: WorkerHandle[];
  readonly latest: Map<number, SubtaskMetricsReport[]>;
  running: boolean;
}

export class JobMaster {
  private readonly storage: CheckpointStorage | undefined;
  private nextCheckpointId = 1;
  private inflight: Inflight | undefined;
  private queue: Array<{ start: () => void; reject: (e: EddyError) => void }> = [];
  private attempt: Attempt | undefined;
  private stopRequest: { savepointDir: string | undefined } | undefined;
  private finalSavepoint: string | undefined;
  private restarts = 0;

  constructor(
    private readonly graph: JobGraph,
    private readonly pool: WorkerPool,
    private readonly options: MasterOptions,
  ) {
    this.storage = options.checkpoint ? new CheckpointStorage(options.checkpoint.dir) : undefined;
    if (options.restore) this.nextCheckpointId = options.restore.metadata.checkpointId + 1;
  }

  get checkpointing(): boolean {
    return this.storage !== undefined;
  }

  async run(): Promise<JobRunResult> {
    const started = performance.now();
    if (this.storage) {
      await mkdir(this.options.checkpoint!.dir, { recursive: true });
      const existing = await this.storage.listCompleted();
      this.nextCheckpointId = Math.max(this.nextCheckpointId, (existing[0] ?? 0) + 1);
    }
    let restore = this.options.restore;
    if (restore)
      checkRestore(this.graph, restore.metadata, this.options.allowNonRestoredState ?? false);
    for (;;) {
      const workers = this.pool.spawn(restore);
      try {
        const metrics = await this.runAttempt(workers);
        return {
          durationMs: performance.now() - started,
          stopped: this.stopRequest !== undefined,
          metrics,
          savepoint: this.finalSavepoint,
          restarts: this.restarts,
        };
      } catch (e) {
        const error = e instanceof EddyError ? e : new JobFailedError(String(e), e);
        await this.teardown(workers);
        const delay = this.restartDelay();
        // A failure while stopping restarts too (the new attempt is told to stop as soon as it
        // is ready): a stop must not turn a recoverable fault into a failed job.
        if (delay === undefined) throw this.finalError(error);
        restore = (await this.latestCheckpoint()) ?? this.options.restore;
        this.restarts++;
        this.log(
          `job failed: ${error.message}\nrestarting from ${restore ? `checkpoint ${restore.metadata.checkpointId}` : 'the beginning'} in ${delay} ms (restart ${this.restarts})`,
        );
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  /** Takes a savepoint of the running job into `targetDir`; resolves with its path. */
  savepoint(targetDir: string): Promise<string> {
    if (!this.attempt?.running) {
      return Promise.reject(new EddyError('EDDY_JOB_CONTROL', 'the job is not running'));
    }
    return this.enqueue({ savepoint: true, targetDir });
  }

  /**
   * Graceful stop: sources end their input where they are, everything in flight drains and,
   * with `savepointDir`, a final savepoint is written there (its path is in the result).
   */
  stop(savepointDir?: string): void {
    if (this.stopRequest) return;
    this.stopRequest = { savepointDir };
    for (const w of this.attempt?.workers ?? []) w.post({ type: 'stop' });
  }

  private runAttempt(workers: WorkerHandle[]): Promise<SubtaskMetricsReport[]> {
    const attempt: Attempt = { workers, latest: new Map(), running: false };
    this.attempt = attempt;
    return new Promise<SubtaskMetricsReport[]>((resolve, reject) => {
      let ready = 0;
      let firstRecord = false;
      const restored = {
        bytesRead: 0,
        keyGroups: 0,
        ms: 0,
        operators: [] as RestoreStats['operators'][number][],
      };
      let finished = 0;
      let closed = 0;
      let failed = false;
      const timers: ReturnType<typeof setInterval>[] = [];
      const clearTimers = () => {
        for (const t of timers) clearInterval(t);
      };
      const fail = (e: EddyError) => {
        if (failed) return;
        failed = true;
        attempt.running = false;
        clearTimers();
        this.abortInflight(e);
        reject(e);
      };
      const closeAll = () => {
        for (const w of workers) w.post({ type: 'close' });
      };
      const onAllFinished = () => {
        clearTimers();
        // Without checkpoints only stop-with-savepoint takes a final snapshot (the output is
        // already committed at finish, so the savepoint is consistent with it).
        if (!this.checkpointing && !this.stopRequest?.savepointDir) return closeAll();
        // The final checkpoint: all state is quiescent; sinks commit their last output on it.
        const dir = this.stopRequest?.savepointDir;
        this.enqueue(dir ? { savepoint: true, targetDir: dir } : { savepoint: false })
          .then((path) => {
            if (dir) this.finalSavepoint = path;
            closeAll();
          })
          .catch(fail);
      };
      workers.forEach((w, i) => {
        w.onCrash(fail);
        w.onMessage((m) => {
          if (m.type !== 'metrics')
            this.trace(`worker ${i}: ${m.type}${'checkpointId' in m ? ` ${m.checkpointId}` : ''}`);
          switch (m.type) {
            case 'ready':
              if (m.restore) {
                restored.bytesRead += m.restore.bytesRead;
                restored.keyGroups += m.restore.keyGroups;
                restored.ms = Math.max(restored.ms, m.restore.ms);
                restored.operators.push(...m.restore.operators);
              }
              if (++ready < workers.length) break;
              if (this.options.restore || this.restarts > 0) this.options.onRestored?.(restored);
              attempt.running = true;
              if (this.stopRequest) for (const x of workers) x.post({ type: 'stop' });
              for (const x of workers) x.post({ type: 'start' });
              timers.push(...this.startTimers(attempt));
              break;
            case 'metrics':
              attempt.latest.set(i, m.reports);
              break;
            case 'firstRecord':
              if (!firstRecord) {
                firstRecord = true;
                this.options.onFirstRecord?.(m.at);
              }
              break;
            case 'finished':
              attempt.latest.set(i, m.reports);
              if (++finished === workers.length) onAllFinished();
              break;
            case 'ack':
              this.onAck(i, m);
              break;
            case 'checkpointFailed':
              this.failInflight(m.checkpointId, deserializeError(m.error));
              break;
            case 'closed':
              attempt.latest.set(i, m.reports);
              if (++closed === workers.length) {
                attempt.running = false;
                resolve([...attempt.latest.values()].flat());
              }
              break;
            case 'failed':
              fail(workerFailure(m.error));
              break;
            case 'cancelled':
              break;
          }
        });
      });
    }).finally(() => {
      void this.teardown(workers);
    });
  }

  private startTimers(attempt: Attempt): ReturnType<typeof setInterval>[] {
    const timers: ReturnType<typeof setInterval>[] = [];
    const { onMetrics, metricsIntervalMs = 500 } = this.options;
    if (onMetrics) {
      // One aggregated report per interval: rates from partial updates would jump.
      timers.push(
        setInterval(() => onMetrics([...attempt.latest.values()].flat()), metricsIntervalMs),
      );
    }
    const interval = this.options.checkpoint?.intervalMs;
    if (interval !== undefined) {
      timers.push(
        setInterval(() => {
          if (!this.inflight && this.queue.length === 0 && attempt.running) {
            this.enqueue({ savepoint: false }).catch(() => {});
          }
        }, interval),
      );
    }
    return timers;
  }

  /** Runs checkpoints one at a time, in request order. */
  private enqueue(req: { savepoint: boolean; targetDir?: string }): Promise<string> {
    this.trace(`enqueue (inflight ${this.inflight?.id}, queued ${this.queue.length})`);
    return new Promise<string>((resolve, reject) => {
      const start = () => {
        if (this.inflight) this.queue.unshift({ start, reject });
        else this.trigger(req).then(resolve, reject);
      };
      if (this.inflight) this.queue.push({ start, reject });
      else start();
    });
  }

  private async trigger(req: { savepoint: boolean; targetDir?: string }): Promise<string> {
    const storage = this.storage ?? new CheckpointStorage(req.targetDir ?? '.');
    const id = this.nextCheckpointId++;
    const dir = req.savepoint
      ? storage.savepointDir(req.targetDir!, this.graph.name, id)
      : storage.checkpointDir(id);
    return new Promise<string>((resolve, reject) => {
      const started = performance.now();
      const timestamp = Date.now();
      const inflight: Inflight = {
        id,
        dir,
        savepoint: req.savepoint,
        started,
        timestamp,
        acked: new Set(),
        operators: [],
        syncMs: 0,
        asyncMs: 0,
        bytes: 0,
        done: { resolve, reject },
      };
      this.inflight = inflight;
      this.trace(`trigger ${id}${req.savepoint ? ' (savepoint)' : ''}`);
      storage
        .createDir(dir)
        .then(() => {
          for (const w of this.attempt?.workers ?? []) {
            w.post({
              type: 'checkpoint',
              checkpointId: id,
              dir,
              savepoint: req.savepoint,
              timestamp,
            });
          }
        })
        .catch((e) => this.failInflight(id, e));
    });
  }

  private onAck(worker: number, m: Extract<FromWorker, { type: 'ack' }>): void {
    const c = this.inflight;
    if (!c || c.id !== m.checkpointId) return;
    c.acked.add(worker);
    c.operators.push(...m.operators);
    c.syncMs = Math.max(c.syncMs, m.syncMs);
    c.asyncMs = Math.max(c.asyncMs, m.asyncMs);
    c.bytes += m.bytes;
    if (c.acked.size === this.attempt?.workers.length) void this.complete(c);
  }

  /** Every subtask acknowledged: commit `_metadata` (the one atomic step), then notify. */
  private async complete(c: Inflight): Promise<void> {
    try {
      await this.storageFor(c).commit(c.dir, this.metadata(c));
    } catch (e) {
      this.failInflight(c.id, e);
      return;
    }
    if (this.inflight === c) this.inflight = undefined;
    for (const w of this.attempt?.workers ?? []) {
      w.post({ type: 'checkpointComplete', checkpointId: c.id });
    }
    const stats: CheckpointStats = {
      checkpointId: c.id,
      dir: c.dir,
      savepoint: c.savepoint,
      bytes: c.bytes,
      syncMs: c.syncMs,
      asyncMs: c.asyncMs,
      totalMs: performance.now() - c.started,
    };
    this.options.onCheckpoint?.(stats);
    c.done.resolve(c.dir);
    this.startNext();
    // Retention runs beside the next checkpoint: it only deletes completed checkpoints
    // beyond the newest n and incomplete ones older than the newest complete one.
    if (!c.savepoint && this.storage) {
      this.storage.retain(this.options.checkpoint?.retain ?? 3).catch((e) => {
        this.log(`could not delete old checkpoints: ${(e as Error).message}`);
      });
    }
  }

  /** Starts the next queued request. Hazard: only ever with nothing in flight. */
  private startNext(): void {
    if (!this.inflight) this.queue.shift()?.start();
  }

  private metadata(c: Inflight): CheckpointMetadata {
    return {
      formatVersion: CHECKPOINT_FORMAT_VERSION,
      jobName: this.graph.name,
      jobId: this.options.jobId,
      checkpointId: c.id,
      savepoint: c.savepoint,
      timestamp: c.timestamp,
      operators: this.graph.nodes.map((n) => ({
        uid: n.uid,
        name: n.name,
        parallelism: n.parallelism,
        maxParallelism: n.maxParallelism,
        subtasks: c.operators
          .filter((a) => a.uid === n.uid)
          .map((a): SubtaskStateHandle => a.handle)
          .sort((a, b) => a.index - b.index),
      })),
    };
  }

  /** A checkpoint failed (e.g. its directory is unwritable): the job keeps running. */
  private failInflight(id: number, e: unknown, quiet = false): void {
    const c = this.inflight;
    if (!c || c.id !== id) return;
    this.inflight = undefined;
    const error =
      e instanceof EddyError
        ? e
        : new EddyError('EDDY_CHECKPOINT_FAILED', (e as Error).message ?? String(e), { cause: e });
    for (const w of this.attempt?.workers ?? [])
      w.post({ type: 'checkpointAborted', checkpointId: id });
    void this.storageFor(c)
      .abort(c.dir)
      .catch(() => {});
    if (!quiet)
      this.log(`${c.savepoint ? 'savepoint' : 'checkpoint'} ${id} failed: ${error.message}`);
    c.done.reject(
      new EddyError(
        'EDDY_CHECKPOINT_FAILED',
        `${c.savepoint ? 'savepoint' : 'checkpoint'} ${id} failed: ${error.message}`,
        {
          domain: error.domain,
          cause: error,
        },
      ),
    );
    if (!quiet) this.startNext();
  }

  /** The attempt failed: its checkpoint and every queued request fail with it. */
  private abortInflight(e: EddyError): void {
    if (this.inflight) this.failInflight(this.inflight.id, e, true);
    const queued = this.queue;
    this.queue = [];
    for (const q of queued) q.reject(e);
  }

  private storageFor(c: Inflight): CheckpointStorage {
    return this.storage ?? new CheckpointStorage(c.dir);
  }

  private async latestCheckpoint(): Promise<RestoreSource | undefined> {
    if (!this.storage) return undefined;
    const latest = await this.storage.latestValid({ verifyData: false });
    for (const s of latest?.skipped ?? []) this.log(`skipping checkpoint ${s.dir}: ${s.reason}`);
    return latest ? { dir: latest.dir, metadata: latest.metadata } : undefined;
  }

  /** Delay before the next restart, or undefined when no restart is allowed. */
  private restartDelay(): number | undefined {
    const s = this.options.restart ?? (this.checkpointing ? DEFAULT_RESTART : { kind: 'none' });
    if (s.kind === 'none' || this.restarts >= s.attempts) return undefined;
    if (s.kind === 'fixed-delay') return s.delayMs;
    return Math.min(s.maxDelayMs, s.initialDelayMs * 2 ** this.restarts);
  }

  private finalError(e: EddyError): EddyError {
    if (this.restarts === 0) return e;
    return new JobFailedError(
      `${e.message} (the job failed after ${this.restarts} restart(s); no attempts left)`,
      e,
    );
  }

  private async teardown(workers: WorkerHandle[]): Promise<void> {
    await Promise.all(workers.map((w) => w.terminate().catch(() => {})));
  }

  /** Protocol events, for debugging (EDDY_TRACE=1). */
  private trace(line: string): void {
    if (process.env.EDDY_TRACE) this.log(`[trace] ${line}`);
  }

  private log(line: string): void {
    (this.options.log ?? ((l: string) => process.stderr.write(`${l}\n`)))(line);
  }
}

const workerFailure = (s: SerializedError): EddyError => {
  const e = deserializeError(s);
  return e.code === 'EDDY_JOB_FAILED' || e.code === 'EDDY_USER_FUNCTION' || e.domain === 'user'
    ? e
    : new JobFailedError(e.message, e);
};
