/**
 * The job master: starts the workers of an attempt, triggers checkpoints and savepoints,
 * completes them when every worker has acknowledged (and only then commits `_metadata`),
 * takes the final checkpoint at the end of input, and restarts the job from the latest
 * completed checkpoint when it fails (if `decideRestart` allows). The same master drives
 * worker threads and the in-thread mode; only the WorkerPool differs.
 *
 * Checkpoint states live in a {@link CheckpointTracker} (pending -> committing -> completed or
 * declined). A committing checkpoint is never deleted; `checkpointComplete` goes only to the
 * attempt that acknowledged a completed checkpoint; when the attempt fails while its
 * checkpoint commits, the restart waits for the commit, whose outcome comes from disk.
 */
import { mkdir } from 'node:fs/promises';
import { CheckpointStorage } from '../checkpoint/index.js';
import {
  CHECKPOINT_FORMAT_VERSION,
  type CheckpointMetadata,
  type SubtaskStateHandle,
} from '../checkpoint/types.js';
import {
  deserializeError,
  EddyError,
  InvalidArgumentError,
  JobFailedError,
  type SerializedError,
} from '../core/errors.js';
import { CheckpointTracker, type TrackedCheckpoint } from './checkpoint-tracker.js';
import { type FaultPoint, faultPoint } from './faults.js';
import type { JobGraph } from './graph.js';
import type { SubtaskMetricsReport } from './metrics.js';
import { MetricsSampler } from './metrics-sampler.js';
import type { FromWorker, OperatorAck, RestoreSource, RestoreStats, ToWorker } from './protocol.js';
import { decideRestart, isRetriable, type RestartStrategy } from './restart.js';
import { checkRestore } from './restore-check.js';
import { SourceCoordinators } from './source-coordinators.js';

export interface WorkerHandle {
  post(m: ToWorker): void;
  onMessage(handler: (m: FromWorker) => void): void;
  /** The worker died without reporting (e.g. an uncaught error or a non-zero exit). */
  onCrash(handler: (e: EddyError) => void): void;
  terminate(): Promise<void>;
}

export interface WorkerPool {
  /**
   * Starts and connects the workers of one attempt. May wait (a cluster waits for free task
   * slots) and may reject: the attempt then fails with that error.
   */
  spawn(restore: RestoreSource | undefined): WorkerHandle[] | Promise<WorkerHandle[]>;
}

/** Checkpointing of a run: interval, directory, timeout, retention. */
export interface CheckpointConfig {
  /** Periodic checkpoints every this many ms; undefined: only savepoints and the final one. */
  readonly intervalMs: number | undefined;
  /** Directory holding `chk-<id>` directories. */
  readonly dir: string;
  /** Completed checkpoints to keep (default 3). */
  readonly retain?: number;
  /**
   * How keyed state is checkpointed (default 'full'): 'incremental' writes only what changed
   * since the previous checkpoint into `<dir>/blocks/` (savepoints stay full).
   */
  readonly mode?: CheckpointMode | undefined;
  /**
   * A checkpoint (or savepoint) not acknowledged by every worker within this many ms is
   * declined and the job goes on (default `DEFAULT_CHECKPOINT_TIMEOUT_MS`: 10 minutes).
   */
  readonly timeoutMs?: number | undefined;
}

export const DEFAULT_CHECKPOINT_TIMEOUT_MS = 600_000;

/** How keyed state is checkpointed: all of it each time, or what changed. */
export type CheckpointMode = 'full' | 'incremental';

/** The checkpoint directory the workers' incremental chains live in, if incremental. */
export const incrementalBaseOf = (c: CheckpointConfig | undefined): string | undefined =>
  c?.mode === 'incremental' ? c.dir : undefined;

export type { RestartStrategy } from './restart.js';

export const DEFAULT_RESTART: RestartStrategy = {
  kind: 'exponential-backoff',
  attempts: 5,
  initialDelayMs: 200,
  maxDelayMs: 5000,
};

/** One completed checkpoint or savepoint (`RunOptions.onCheckpoint`). */
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
  /** When it was triggered (epoch ms, as in `_metadata`); always set by the master. */
  readonly triggeredAt?: number | undefined;
}

/** A checkpoint or savepoint that did not complete (`MasterOptions.onCheckpointFailed`). */
export interface CheckpointFailure {
  readonly checkpointId: number;
  readonly savepoint: boolean;
  /** When it was triggered (epoch ms). */
  readonly triggeredAt: number;
  /** When it was given up (epoch ms). */
  readonly failedAt: number;
  /** Why, as logged: `checkpoint 7 failed: …`. */
  readonly cause: string;
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
  /** A checkpoint or savepoint was declined, timed out, or failed to commit. */
  readonly onCheckpointFailed?: ((failure: CheckpointFailure) => void) | undefined;
  /** Human-readable events (checkpoint failures, restarts). */
  readonly log?: ((line: string) => void) | undefined;
  /** State read by all workers to restore (once all are ready). */
  readonly onRestored?: ((stats: RestoreStats) => void) | undefined;
  /** The first record processed after start (epoch ms), once per attempt. */
  readonly onFirstRecord?: ((at: number) => void) | undefined;
}

/** How a run ended: duration, whether stopped, metrics, the final savepoint. */
export interface JobRunResult {
  readonly durationMs: number;
  readonly stopped: boolean;
  readonly metrics: SubtaskMetricsReport[];
  /** The final savepoint written by stop-with-savepoint, if any. */
  readonly savepoint: string | undefined;
  /**
   * The final checkpoint a stop without a savepoint wrote (with checkpointing), if any: the
   * restore point of a rescale through an incremental checkpoint.
   */
  readonly finalCheckpoint?: string | undefined;
  readonly restarts: number;
}

/** What a worker's acknowledgement carries, kept by the tracker until the commit. */
interface AckPayload {
  readonly operators: readonly OperatorAck[];
  readonly syncMs: number;
  readonly asyncMs: number;
  readonly bytes: number;
}

/** The master's side of the checkpoint in flight; its state lives in the tracker. */
interface Inflight {
  readonly id: number;
  readonly dir: string;
  readonly savepoint: boolean;
  /** performance.now() at the trigger, for the stats. */
  readonly started: number;
  /** Epoch ms at the trigger (in `_metadata`). */
  readonly timestamp: number;
  /** The attempt that was asked for it: the only one told of its outcome. */
  readonly attempt: Attempt;
  /** Split enumerator states by source uid, taken right before the workers were told. */
  enumeratorStates: Record<string, unknown>;
  readonly done: { resolve: (dir: string) => void; reject: (e: EddyError) => void };
  timer: ReturnType<typeof setTimeout> | undefined;
}

interface Attempt {
  readonly id: number;
  readonly workers: WorkerHandle[];
  readonly latest: Map<number, SubtaskMetricsReport[]>;
  /** Workers whose subtasks all finished: their `latest` reports are final. */
  readonly finished: Set<number>;
  /** Set when someone listens to metrics (`onMetrics`). */
  sampler?: MetricsSampler | undefined;
  running: boolean;
  /** The attempt failed: its workers are gone or going; nothing more is sent to them. */
  failed: boolean;
  /** Fails the attempt (idempotent). */
  fail: (e: EddyError) => void;
  /** The sources' split enumerators, run for this attempt. */
  readonly sources: SourceCoordinators;
}

export class JobMaster {
  private readonly storage: CheckpointStorage | undefined;
  private readonly tracker: CheckpointTracker<AckPayload>;
  private nextCheckpointId = 1;
  private nextAttemptId = 0;
  /** The master's side of `tracker.current`. */
  private inflight: Inflight | undefined;
  /** The commit of the checkpoint in flight, if it is committing: settles with its outcome. */
  private committing: Promise<void> | undefined;
  private queue: Array<{ start: () => void; reject: (e: EddyError) => void }> = [];
  private attempt: Attempt | undefined;
  private stopRequest: { savepointDir: string | undefined; drain: boolean } | undefined;
  private finalSavepoint: string | undefined;
  private finalCheckpoint: string | undefined;
  private restarts = 0;

  constructor(
    private readonly graph: JobGraph,
    private readonly pool: WorkerPool,
    private readonly options: MasterOptions,
  ) {
    this.storage = options.checkpoint ? new CheckpointStorage(options.checkpoint.dir) : undefined;
    const timeoutMs = options.checkpoint?.timeoutMs ?? DEFAULT_CHECKPOINT_TIMEOUT_MS;
    if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) {
      throw new InvalidArgumentError(`the checkpoint timeout must be > 0 ms, got ${timeoutMs}`);
    }
    this.tracker = new CheckpointTracker(timeoutMs);
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
      let workers: WorkerHandle[] = [];
      try {
        // Before any thread starts; a failure here is the attempt's, restarted or not as any.
        await this.initializeSinks(restore);
        // No await for a pool that spawns at once: its workers may answer in the same turn.
        const spawned = this.pool.spawn(restore);
        workers = Array.isArray(spawned) ? spawned : await spawned;
        const metrics = await this.runAttempt(workers, restore);
        await this.attempt?.sources.close();
        return {
          durationMs: performance.now() - started,
          stopped: this.stopRequest !== undefined,
          metrics,
          savepoint: this.finalSavepoint,
          finalCheckpoint: this.finalCheckpoint,
          restarts: this.restarts,
        };
      } catch (e) {
        const error = e instanceof EddyError ? e : new JobFailedError(String(e), e);
        await this.teardown(workers);
        await this.attempt?.sources.close().catch(() => {});
        // A checkpoint that was committing when the attempt failed decides from what is on
        // disk after its commit; only then is the latest completed checkpoint known.
        await this.committing;
        // A failure while stopping restarts too (the new attempt is told to stop as soon as it
        // is ready): a stop must not turn a recoverable fault into a failed job.
        const decision = decideRestart(error, this.restartStrategy(), this.restarts);
        if (!decision.restart) throw this.finalError(error, decision.reason);
        const delay = decision.delayMs;
        restore = (await this.latestCheckpoint()) ?? this.options.restore;
        this.restarts++;
        this.log(
          `job failed: ${error.message}\nrestarting from ${restore ? `checkpoint ${restore.metadata.checkpointId}` : 'the beginning'} in ${delay} ms (restart ${this.restarts})`,
        );
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  /** Runs every sink's job-wide hook once for the attempt about to start. */
  private async initializeSinks(restore: RestoreSource | undefined): Promise<void> {
    for (const n of this.graph.nodes) {
      if (n.kind !== 'operator' || !n.sink?.initializeGlobal) continue;
      await n.sink.initializeGlobal({
        jobName: this.graph.name,
        uid: n.uid,
        parallelism: n.parallelism,
        restoredCheckpointId: restore?.metadata.checkpointId,
        attempt: this.restarts,
      });
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
   * Stops the job (Flink's `stop`; with `drain`, `stop --drain`). Sources end their input where
   * they are and everything in flight drains; with `savepointDir` a final savepoint is written
   * there (its path is in the result), else with checkpoints on a final checkpoint.
   * Without `drain` nothing is fired or finished: windows, timers and buffered output stay in
   * state for a restore. With `drain` the input really ends: MAX_WATERMARK fires every window
   * and timer and operators' `finish` runs before the final snapshot.
   */
  stop(savepointDir?: string, options: { drain?: boolean | undefined } = {}): void {
    if (this.stopRequest) return;
    this.stopRequest = { savepointDir, drain: options.drain === true };
    const attempt = this.attempt;
    if (attempt && !attempt.failed) for (const w of attempt.workers) w.post(this.stopMessage());
  }

  private stopMessage(): ToWorker {
    return {
      type: 'stop',
      drain: this.stopRequest?.drain ?? false,
      finalSnapshot: this.checkpointing || this.stopRequest?.savepointDir !== undefined,
    };
  }

  private runAttempt(
    workers: WorkerHandle[],
    restore: RestoreSource | undefined,
  ): Promise<SubtaskMetricsReport[]> {
    const attempt: Attempt = {
      id: this.nextAttemptId++,
      workers,
      latest: new Map(),
      finished: new Set(),
      running: false,
      failed: false,
      fail: () => {},
      sources: this.sourceCoordinators(workers, restore, (e) => attempt.fail(e)),
    };
    const sources = attempt.sources;
    this.attempt = attempt;
    return new Promise<SubtaskMetricsReport[]>((resolve, reject) => {
      let ready = 0;
      let firstRecord = false;
      const restored = {
        bytesRead: 0,
        bytesDeferred: 0,
        keyGroups: 0,
        ms: 0,
        operators: [] as RestoreStats['operators'][number][],
      };
      let finished = 0;
      let closed = 0;
      const timers: ReturnType<typeof setInterval>[] = [];
      const clearTimers = () => {
        for (const t of timers) clearInterval(t);
      };
      const fail = (e: EddyError) => {
        if (attempt.failed) return;
        attempt.failed = true;
        attempt.running = false;
        clearTimers();
        this.abortInflight(attempt, e);
        reject(e);
      };
      attempt.fail = fail;
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
            // It may complete from disk after the attempt failed: the restart takes over.
            if (attempt.failed) return;
            if (dir) this.finalSavepoint = path;
            else if (this.stopRequest) this.finalCheckpoint = path;
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
                restored.bytesDeferred += m.restore.bytesDeferred ?? 0;
                restored.keyGroups += m.restore.keyGroups;
                restored.ms = Math.max(restored.ms, m.restore.ms);
                restored.operators.push(...m.restore.operators);
              }
              if (++ready < workers.length) break;
              if (this.options.restore || this.restarts > 0) this.options.onRestored?.(restored);
              {
                // Split enumerators assign their first splits before any reader polls.
                const go = () => {
                  if (attempt.failed) return;
                  attempt.running = true;
                  if (this.stopRequest) for (const x of workers) x.post(this.stopMessage());
                  for (const x of workers) x.post({ type: 'start' });
                  timers.push(...this.startTimers(attempt));
                };
                if (sources.uids.length === 0) go();
                else
                  sources
                    .start()
                    .then(go)
                    .catch((e) =>
                      fail(e instanceof EddyError ? e : new JobFailedError(String(e), e)),
                    );
              }
              break;
            case 'metrics':
              attempt.latest.set(i, m.reports);
              attempt.sampler?.onReports(i, m.round, m.reports);
              break;
            case 'firstRecord':
              if (!firstRecord) {
                firstRecord = true;
                this.options.onFirstRecord?.(m.at);
              }
              break;
            case 'finished':
              attempt.latest.set(i, m.reports);
              attempt.finished.add(i);
              attempt.sampler?.forget(i);
              if (++finished === workers.length) onAllFinished();
              break;
            case 'ack':
              this.onAck(attempt, i, m);
              break;
            case 'declined':
              this.decline(attempt, m.checkpointId, `worker ${i} declined it: ${m.reason}`);
              break;
            case 'checkpointFailed': {
              const error = deserializeError(m.error);
              this.decline(attempt, m.checkpointId, error.message, error);
              break;
            }
            case 'sourceEvent':
              try {
                sources.handleReaderEvent(m.uid, m.subtask, m.event);
              } catch (e) {
                fail(e as EddyError);
              }
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

  /**
   * The split enumerators of this attempt: built from the restored checkpoint's enumerator
   * states (a source without an entry there starts fresh, as its readers do). Their events go
   * to every worker; only the one running that reader subtask delivers it.
   */
  private sourceCoordinators(
    workers: WorkerHandle[],
    restore: RestoreSource | undefined,
    fail: (e: EddyError) => void,
  ): SourceCoordinators {
    const entryOf = (uid: string) => restore?.metadata.operators.find((o) => o.uid === uid);
    return new SourceCoordinators(
      this.graph.nodes.flatMap((n) =>
        n.kind === 'source'
          ? [
              {
                uid: n.uid,
                name: n.name,
                source: n.source,
                parallelism: n.parallelism,
                isRestored: entryOf(n.uid) !== undefined,
                restoredState: entryOf(n.uid)?.enumeratorState,
              },
            ]
          : [],
      ),
      (uid, subtask, event) => {
        for (const w of workers) w.post({ type: 'sourceEvent', uid, subtask, event });
      },
      fail,
    );
  }

  private startTimers(attempt: Attempt): ReturnType<typeof setInterval>[] {
    const timers: ReturnType<typeof setInterval>[] = [];
    const { onMetrics, metricsIntervalMs = 500 } = this.options;
    if (onMetrics) {
      // One aggregated, consistent report per interval (see metrics-sampler.ts).
      const finals = () => new Map([...attempt.finished].map((w) => [w, attempt.latest.get(w)!]));
      const sampler = new MetricsSampler(
        () => attempt.workers.flatMap((_, w) => (attempt.finished.has(w) ? [] : [w])),
        (w, round) => attempt.workers[w]!.post({ type: 'sampleMetrics', round }),
        finals,
        onMetrics,
      );
      attempt.sampler = sampler;
      timers.push(setInterval(() => sampler.tick(), metricsIntervalMs));
    }
    const interval = this.options.checkpoint?.intervalMs;
    if (interval !== undefined) {
      timers.push(
        setInterval(() => {
          if (!this.tracker.busy && this.queue.length === 0 && attempt.running) {
            this.enqueue({ savepoint: false }).catch(() => {});
          }
        }, interval),
      );
    }
    return timers;
  }

  /** Runs checkpoints one at a time, in request order. */
  private enqueue(req: { savepoint: boolean; targetDir?: string }): Promise<string> {
    this.trace(`enqueue (inflight ${this.tracker.current?.id}, queued ${this.queue.length})`);
    return new Promise<string>((resolve, reject) => {
      const start = () => {
        if (this.tracker.busy) this.queue.unshift({ start, reject });
        else this.trigger(req).then(resolve, reject);
      };
      if (this.tracker.busy) this.queue.push({ start, reject });
      else start();
    });
  }

  private trigger(req: { savepoint: boolean; targetDir?: string }): Promise<string> {
    const attempt = this.attempt;
    if (!attempt || attempt.failed) {
      return Promise.reject(new EddyError('EDDY_CHECKPOINT_FAILED', 'the job is not running'));
    }
    const storage = this.storage ?? new CheckpointStorage(req.targetDir ?? '.');
    const id = this.nextCheckpointId++;
    const dir = req.savepoint
      ? storage.savepointDir(req.targetDir!, this.graph.name, id)
      : storage.checkpointDir(id);
    return new Promise<string>((resolve, reject) => {
      const timestamp = Date.now();
      this.tracker.trigger(id, attempt.id, attempt.workers.length, timestamp);
      const inflight: Inflight = {
        id,
        dir,
        savepoint: req.savepoint,
        started: performance.now(),
        timestamp,
        attempt,
        done: { resolve, reject },
        timer: undefined,
        enumeratorStates: {},
      };
      this.inflight = inflight;
      this.armTimeout(inflight, this.tracker.timeoutMs);
      this.trace(`trigger ${id}${req.savepoint ? ' (savepoint)' : ''}`);
      storage
        .createDir(dir)
        .then(() => {
          if (this.tracker.current?.id !== id) {
            // Declined while its directory was being created: remove what creating left.
            void storage.abort(dir).catch(() => {});
            return;
          }
          // Synchronously right before the workers are told: assignments made after this
          // reach the readers after their snapshot.
          inflight.enumeratorStates = attempt.sources.snapshot(id);
          for (const w of attempt.workers) {
            w.post({
              type: 'checkpoint',
              checkpointId: id,
              dir,
              savepoint: req.savepoint,
              timestamp,
            });
          }
        })
        .catch((e) => this.decline(attempt, id, errorOf(e).message, errorOf(e)));
    });
  }

  /** The checkpoint timeout: a checkpoint still pending after `ms` is declined. */
  private armTimeout(c: Inflight, ms: number): void {
    c.timer = setTimeout(() => {
      c.timer = undefined;
      const current = this.tracker.current;
      if (current?.id !== c.id || current.state !== 'pending') return;
      const expired = this.tracker.expire(c.id, Date.now());
      // A timer may fire a little early by the wall clock: wait for the rest.
      if (!expired) {
        const left = current.triggeredAt + this.tracker.timeoutMs - Date.now();
        return this.armTimeout(c, Math.max(1, left));
      }
      void this.declined(c, expired, expired.reason!);
    }, ms);
    c.timer.unref?.();
  }

  private onAck(attempt: Attempt, worker: number, m: Extract<FromWorker, { type: 'ack' }>): void {
    const payload: AckPayload = {
      operators: m.operators,
      syncMs: m.syncMs,
      asyncMs: m.asyncMs,
      bytes: m.bytes,
    };
    const current = this.tracker.current;
    if (
      current?.id === m.checkpointId &&
      current.attempt === attempt.id &&
      current.state === 'pending' &&
      current.acks.size === 0 &&
      faultPoint('abort-checkpoint', `checkpoint ${m.checkpointId}`)
    ) {
      // Fault injection (eddy's own tests): abort a checkpoint every worker is working on.
      this.decline(attempt, m.checkpointId, 'aborted by an injected fault');
      return;
    }
    if (this.tracker.ack(m.checkpointId, attempt.id, worker, payload) !== 'commit') return;
    const c = this.inflight!;
    this.clearTimeout(c);
    this.committing = this.commit(c).catch((e) => {
      this.log(`internal error while committing checkpoint ${c.id}: ${errorOf(e).message}`);
    });
  }

  /**
   * Every subtask acknowledged: commit `_metadata` (the one atomic step). The outcome is
   * decided by what is on disk afterwards when the commit failed or the attempt failed
   * meanwhile; a committing checkpoint is never deleted before that.
   */
  private async commit(c: Inflight): Promise<void> {
    const storage = this.storageFor(c);
    const tracked = this.tracker.get(c.id)!;
    let written = false;
    let failure: EddyError | undefined;
    // Fault injection (eddy's own tests): the attempt fails before `_metadata` is written
    // (then it is not written) or after (before anyone is told).
    failure = this.injectFault('before-metadata', c);
    if (!failure) {
      try {
        await storage.commit(c.dir, this.metadata(c, tracked));
        written = true;
        this.injectFault('after-metadata', c);
      } catch (e) {
        failure = errorOf(e);
      }
    }
    // Read after the await: the attempt may have failed meanwhile (the tracker orphans it).
    let valid = written && !this.tracker.get(c.id)!.orphaned;
    let reason = failure?.message;
    if (!valid) {
      const onDisk = await this.validOnDisk(storage, c);
      valid = onDisk === true;
      if (onDisk !== true) reason = `${failure ? `${failure.message}; ` : ''}${onDisk}`;
    }
    const outcome = this.tracker.committed(c.id, valid, reason);
    this.inflight = undefined;
    if (outcome.state === 'completed') return this.completed(c, outcome);
    const kind = c.savepoint ? 'savepoint' : 'checkpoint';
    // Deleted before the commit counts as settled: a restart waiting for it sees it gone.
    await this.declined(c, outcome, `${kind} ${c.id} failed: ${outcome.reason}`, failure);
  }

  /** Reaches fault point `point`; a fault that fires fails the attempt (and is returned). */
  private injectFault(point: FaultPoint, c: Inflight): EddyError | undefined {
    try {
      faultPoint(point, `checkpoint ${c.id}`);
      return undefined;
    } catch (e) {
      c.attempt.fail(errorOf(e));
      return errorOf(e);
    }
  }

  /** True when `c.dir` holds a valid `_metadata` of `c`, else why not. */
  private async validOnDisk(storage: CheckpointStorage, c: Inflight): Promise<true | string> {
    try {
      const m = await storage.loadMetadata(c.dir);
      if (m.checkpointId === c.id && m.jobId === this.options.jobId) return true;
      return `${c.dir}/_metadata belongs to checkpoint ${m.checkpointId} of job ${m.jobId}`;
    } catch (e) {
      return `no valid _metadata after the commit: ${errorOf(e).message}`;
    }
  }

  private completed(c: Inflight, tracked: TrackedCheckpoint<AckPayload>): void {
    const kind = c.savepoint ? 'savepoint' : 'checkpoint';
    if (tracked.orphaned) {
      // Its attempt is gone: nobody to notify. Its sinks commit its output on the restore.
      this.log(
        `${kind} ${c.id} completed after its attempt failed${c.savepoint ? '' : '; it is the restore point'}`,
      );
    } else {
      for (const w of c.attempt.workers) w.post({ type: 'checkpointComplete', checkpointId: c.id });
      c.attempt.sources.notifyCheckpointComplete(c.id);
    }
    const acks = [...tracked.acks.values()];
    const stats: CheckpointStats = {
      checkpointId: c.id,
      dir: c.dir,
      savepoint: c.savepoint,
      bytes: acks.reduce((n, a) => n + a.bytes, 0),
      syncMs: Math.max(0, ...acks.map((a) => a.syncMs)),
      asyncMs: Math.max(0, ...acks.map((a) => a.asyncMs)),
      totalMs: performance.now() - c.started,
      triggeredAt: c.timestamp,
    };
    this.options.onCheckpoint?.(stats);
    c.done.resolve(c.dir);
    this.startNext();
    // Retention runs beside the next checkpoint: ids above this one (in flight or not yet
    // triggered) are never touched, and this one, the latest completed, is always kept.
    if (!c.savepoint && this.storage) {
      this.storage
        .retain(this.options.checkpoint?.retain ?? 3, { inflightFrom: c.id + 1 })
        .catch((e) => {
          this.log(`could not delete old checkpoints: ${(e as Error).message}`);
        });
    }
  }

  /** Starts the next queued request. Hazard: only ever with nothing in flight. */
  private startNext(): void {
    if (!this.tracker.busy) this.queue.shift()?.start();
  }

  private metadata(c: Inflight, tracked: TrackedCheckpoint<AckPayload>): CheckpointMetadata {
    const operators = [...tracked.acks.values()].flatMap((a) => a.operators);
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
        ...(c.enumeratorStates[n.uid] === undefined
          ? {}
          : { enumeratorState: c.enumeratorStates[n.uid] }),
        subtasks: operators
          .filter((a) => a.uid === n.uid)
          .map((a): SubtaskStateHandle => a.handle)
          .sort((a, b) => a.index - b.index),
      })),
    };
  }

  /**
   * A worker of `attempt` declined or failed pending checkpoint `id` (or its directory could
   * not be created): it is declined and the job keeps running. Ignored for a checkpoint that
   * is not pending (a committing one waits for its commit outcome) or of another attempt.
   */
  private decline(attempt: Attempt, id: number, reason: string, error?: EddyError): void {
    const c = this.inflight;
    if (!c || c.id !== id || c.attempt !== attempt) return;
    const tracked = this.tracker.decline(id, reason);
    if (tracked)
      void this.declined(
        c,
        tracked,
        `${c.savepoint ? 'savepoint' : 'checkpoint'} ${id} failed: ${reason}`,
        error,
      );
  }

  /**
   * After the tracker declined `c`: tell the attempt's workers (unless it failed), delete
   * its directory, fail its request and start the next one.
   */
  private declined(
    c: Inflight,
    tracked: TrackedCheckpoint<AckPayload>,
    message: string,
    error?: EddyError,
    quiet = false,
  ): Promise<void> {
    this.clearTimeout(c);
    if (this.inflight === c) this.inflight = undefined;
    if (!c.attempt.failed) {
      for (const w of c.attempt.workers) w.post({ type: 'checkpointAborted', checkpointId: c.id });
      try {
        c.attempt.sources.notifyCheckpointAborted(c.id);
      } catch (e) {
        c.attempt.fail(e as EddyError);
      }
    }
    const removed = this.storageFor(c)
      .abort(c.dir)
      .catch(() => {});
    if (!quiet) this.log(message);
    this.options.onCheckpointFailed?.({
      checkpointId: c.id,
      savepoint: c.savepoint,
      triggeredAt: c.timestamp,
      failedAt: Date.now(),
      cause: message,
    });
    c.done.reject(
      new EddyError('EDDY_CHECKPOINT_FAILED', message, {
        domain: error?.domain ?? 'internal',
        cause: error ?? tracked.reason,
      }),
    );
    if (!quiet) this.startNext();
    return removed;
  }

  /**
   * The attempt failed: its pending checkpoint and every queued request fail with it. A
   * committing checkpoint is left to its commit: it may be complete on disk already.
   */
  private abortInflight(attempt: Attempt, e: EddyError): void {
    const c = this.inflight;
    const r = this.tracker.attemptFailed(attempt.id, e.message);
    if (c && r.kind === 'declined') {
      const kind = c.savepoint ? 'savepoint' : 'checkpoint';
      void this.declined(c, r.checkpoint, `${kind} ${c.id} failed: ${e.message}`, e, true);
    } else if (c && r.kind === 'orphaned') {
      this.trace(`attempt failed while checkpoint ${c.id} was committing: waiting for the commit`);
    }
    const queued = this.queue;
    this.queue = [];
    for (const q of queued) q.reject(e);
  }

  private clearTimeout(c: Inflight): void {
    if (c.timer !== undefined) clearTimeout(c.timer);
    c.timer = undefined;
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

  /** The configured strategy; by default restarts only with checkpoints. */
  private restartStrategy(): RestartStrategy {
    return this.options.restart ?? (this.checkpointing ? DEFAULT_RESTART : { kind: 'none' });
  }

  /**
   * The error a job that is not restarted fails with: the cause, and why it was not
   * restarted. Without a restart so far the cause keeps its class and code.
   */
  private finalError(e: EddyError, reason: string): EddyError {
    const why =
      this.options.restart === undefined && !this.checkpointing && isRetriable(e)
        ? 'restarts need checkpoints, and this job has none'
        : reason;
    if (this.restarts === 0) {
      e.message = `${e.message} (not restarted: ${why})`;
      return e;
    }
    return new JobFailedError(
      `${e.message} (the job failed after ${this.restarts} restart(s); not restarted: ${why})`,
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

const errorOf = (e: unknown): EddyError =>
  e instanceof EddyError
    ? e
    : new EddyError('EDDY_CHECKPOINT_FAILED', (e as Error)?.message ?? String(e), { cause: e });

const workerFailure = (s: SerializedError): EddyError => {
  const e = deserializeError(s);
  return e.code === 'EDDY_JOB_FAILED' || e.code === 'EDDY_USER_FUNCTION' || e.domain === 'user'
    ? e
    : new JobFailedError(e.message, e);
};
