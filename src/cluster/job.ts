/**
 * One job on the cluster, run by the master: generations of a JobMaster over a ClusterPool.
 * A generation ends when the job ends, or to change the parallelism:
 * - a rescale (`eddy rescale --master`, or in reactive mode a worker that joined): stop with a
 *   savepoint (never drained; with incremental checkpoints a final checkpoint), then a new
 *   generation restores it at the new parallelism;
 * - reactive mode, a worker lost: the job master's restart finds too few slots
 *   (EDDY_SLOTS_CHANGED) and a new generation starts from the latest completed checkpoint at
 *   the parallelism the remaining slots allow.
 * Without reactive mode a lost worker is an ordinary restart: the attempt waits for slots (up
 * to the slot timeout) and resumes from the latest checkpoint at the same parallelism.
 */
import { join } from 'node:path';
import { buildGraph, type JobDefinition } from '../api/job.js';
import { CheckpointStorage, latestRestorePoint } from '../checkpoint/index.js';
import { safeFileComponent } from '../checkpoint/paths.js';
import { EddyError, InvalidArgumentError, serializeError } from '../core/errors.js';
import type { JobGraph } from '../runtime/graph.js';
import {
  type CheckpointConfig,
  incrementalBaseOf,
  JobMaster,
  type JobRunResult,
  type RestartStrategy,
} from '../runtime/job-master.js';
import { addTotals, type Totals, totals, ZERO_TOTALS } from '../runtime/metrics.js';
import type { RestoreSource, RestoreStats, StateBackendConfig } from '../runtime/protocol.js';
import type { ClusterRescale, JobEvent, JobStatus, SubmitSpec } from './messages.js';
import { ClusterPool, type SlotBroker } from './pool.js';

/** What a cluster job needs from its master. */
export interface ClusterJobContext {
  readonly broker: SlotBroker;
  /** Slots this job could use: all slots but those other jobs hold. */
  availableSlots(jobId: string): number;
  /** Resolves when the cluster's slots change (a worker joined or left). */
  slotsChanged(): Promise<void>;
  readonly slotTimeoutMs: number;
  /** A line for the job's log (the master writes it where it keeps job logs). */
  log(jobId: string, line: string, fields?: Record<string, unknown>): void;
  /** The job's status changed (the master records it, e.g. in its HA directory). */
  changed(job: ClusterJob): void;
}

/** Where a cluster job's rescale savepoints go: beside its checkpoints, kept as they are. */
export const clusterRescalesDir = (checkpointDir: string): string =>
  join(checkpointDir, 'rescales');

/** Default number of key groups, as the environment's default maxParallelism. */
const DEFAULT_MAX_PARALLELISM = 128;
/** A reactive rescale waits this long after a join, so workers joining together rescale once. */
const JOIN_SETTLE_MS = 300;

/** Statuses a job never leaves. */
const ENDED: ReadonlySet<JobStatus> = new Set(['finished', 'stopped', 'failed']);

interface PendingChange {
  readonly reason: ClusterRescale['reason'];
  readonly from: number;
  readonly to: number | undefined;
  readonly requestedAt: number;
  restored?: RestoreStats | undefined;
  readonly resolve?: ((r: ClusterRescale) => void) | undefined;
  readonly reject?: ((e: unknown) => void) | undefined;
}

export class ClusterJob {
  status: JobStatus = 'waiting';
  parallelism: number;
  restarts = 0;
  readonly rescales: ClusterRescale[] = [];
  error: string | undefined;
  private master: JobMaster | undefined;
  private carried: Totals = ZERO_TOTALS;
  private sample: Totals | undefined;
  private readonly followers = new Set<(e: JobEvent) => void>();
  private endEvent: JobEvent | undefined;
  private change: PendingChange | undefined;
  private stopRequested = false;
  private settleTimer: ReturnType<typeof setTimeout> | undefined;
  /** When a worker of the running generation was lost: a reactive restart's pause starts there. */
  private lostAt: number | undefined;
  readonly done: Promise<void>;

  constructor(
    readonly id: string,
    readonly spec: SubmitSpec,
    private readonly job: JobDefinition,
    private readonly ctx: ClusterJobContext,
  ) {
    this.parallelism = spec.parallelism;
    if (spec.reactive && spec.checkpointDir === undefined) {
      throw new InvalidArgumentError(
        'reactive mode needs checkpoints (--checkpoint-dir or --checkpoint-interval): a lost worker restarts the job from its latest checkpoint',
      );
    }
    this.done = this.run();
  }

  get name(): string {
    return this.spec.name;
  }

  get reactive(): boolean {
    return this.spec.reactive === true;
  }

  totals(): Totals {
    return this.sample ? addTotals(this.carried, this.sample) : this.carried;
  }

  /** Events from now on; the end event at once if the job has ended. */
  follow(listener: (e: JobEvent) => void): () => void {
    if (this.endEvent) {
      listener(this.endEvent);
      return () => {};
    }
    this.followers.add(listener);
    return () => this.followers.delete(listener);
  }

  stop(savepointDir?: string, drain?: boolean): void {
    this.stopRequested = true;
    clearTimeout(this.settleTimer);
    this.master?.stop(savepointDir, { drain });
  }

  savepoint(dir: string): Promise<string> {
    if (!this.master || this.status !== 'running')
      return Promise.reject(
        new EddyError('EDDY_JOB_CONTROL', `job ${this.id} is not running (${this.status})`),
      );
    return this.master.savepoint(dir);
  }

  /** Stops with a savepoint and restarts at `parallelism`; resolves when it runs again. */
  rescale(
    parallelism: number,
    reason: ClusterRescale['reason'] = 'request',
  ): Promise<ClusterRescale> {
    if (this.change || this.status !== 'running' || !this.master)
      return Promise.reject(
        new EddyError(
          'EDDY_JOB_CONTROL',
          `job ${this.id} cannot rescale now (${this.change ? 'a rescale is in progress' : this.status})`,
        ),
      );
    if (this.spec.checkpointDir === undefined)
      return Promise.reject(
        new EddyError('EDDY_JOB_CONTROL', 'rescaling needs a checkpoint directory'),
      );
    const master = this.master;
    return new Promise((resolve, reject) => {
      this.change = {
        reason,
        from: this.parallelism,
        to: parallelism,
        requestedAt: Date.now(),
        resolve,
        reject,
      };
      this.status = 'rescaling';
      // With incremental checkpoints the stop's final checkpoint is the restore point: it
      // writes only what changed, where a savepoint would copy all the state in the pause.
      const viaCheckpoint = this.spec.checkpointMode === 'incremental';
      this.emitLog(
        `rescaling ${this.parallelism} -> ${parallelism} (${reason}): stopping with ${viaCheckpoint ? 'a final incremental checkpoint' : 'a savepoint'}`,
      );
      master.stop(viaCheckpoint ? undefined : this.rescalesDir(), { drain: false });
    });
  }

  /** A worker process holding some of this job's workers was lost at `at` (epoch ms). */
  workerLost(at: number): void {
    this.lostAt ??= at;
  }

  /** Reactive mode: the cluster's slots changed; rescale up when more are free. */
  slotsChanged(): void {
    if (!this.reactive || this.stopRequested) return;
    clearTimeout(this.settleTimer);
    this.settleTimer = setTimeout(() => this.settleSlots(), JOIN_SETTLE_MS);
    this.settleTimer.unref();
  }

  /**
   * Rescales up if more slots are free than the job uses. Hazard: a join that comes while the
   * job cannot rescale (still starting, restarting after a lost worker, or another change in
   * flight) must not be dropped — nothing else would bring it back — so it is looked at again
   * after another settle period until the job can take it or ends.
   */
  private settleSlots(): void {
    if (this.stopRequested || ENDED.has(this.status)) return;
    const target = this.reactiveParallelism();
    if (target <= this.parallelism) return;
    if (this.status !== 'running' || this.change || !this.master) {
      this.slotsChanged();
      return;
    }
    this.rescale(target, 'worker-joined').catch(() => {});
  }

  private reactiveParallelism(): number {
    return Math.min(this.maxParallelism(), this.ctx.availableSlots(this.id));
  }

  private maxParallelism(): number {
    return this.spec.maxParallelism ?? DEFAULT_MAX_PARALLELISM;
  }

  private rescalesDir(): string {
    return clusterRescalesDir(this.spec.checkpointDir!);
  }

  private emit(e: JobEvent): void {
    for (const f of this.followers) f(e);
  }

  private emitLog(line: string, fields?: Record<string, unknown>): void {
    this.ctx.log(this.id, line, fields);
    this.emit({ kind: 'log', line });
  }

  private async run(): Promise<void> {
    let restore: RestoreSource | undefined;
    try {
      restore = await this.initialRestore();
      for (;;) {
        const parallelism = this.reactive
          ? await this.waitForSlots()
          : (this.change?.to ?? this.parallelism);
        if (this.stopRequested && this.change) break;
        this.parallelism = parallelism;
        const graph = buildGraph(this.job, {
          parallelism,
          maxParallelism: this.spec.maxParallelism,
          args: this.spec.args,
          restoredMaxParallelism: restoredMaxParallelism(restore),
        });
        let result: JobRunResult;
        try {
          result = await this.runGeneration(graph, restore);
        } catch (e) {
          if (!this.reactive || this.stopRequested || !hasCode(e, 'EDDY_SLOTS_CHANGED')) throw e;
          this.carrySample();
          restore = (await this.latestCheckpoint()) ?? restore;
          this.change = {
            reason: 'worker-lost',
            from: parallelism,
            to: undefined,
            requestedAt: this.lostAt ?? Date.now(),
          };
          this.lostAt = undefined;
          this.status = 'rescaling';
          this.emitLog(
            `a worker was lost: restarting from ${restore ? `checkpoint ${restore.metadata.checkpointId}` : 'the beginning'} at the parallelism the remaining slots allow`,
          );
          continue;
        }
        this.sample = undefined;
        this.carried = addTotals(this.carried, totals(result.metrics));
        this.restarts += result.restarts;
        const change = this.change;
        const restorePoint =
          this.spec.checkpointMode === 'incremental' ? result.finalCheckpoint : result.savepoint;
        if (change?.to !== undefined && restorePoint && !this.stopRequested) {
          restore = {
            dir: restorePoint,
            metadata: await new CheckpointStorage(restorePoint).loadMetadata(restorePoint),
          };
          continue;
        }
        this.finish(result.stopped ? 'stopped' : 'finished', result.savepoint);
        return;
      }
      this.finish('stopped', undefined);
    } catch (e) {
      this.change?.reject?.(e);
      this.change = undefined;
      const error =
        e instanceof EddyError ? e : new EddyError('EDDY_JOB_FAILED', String(e), { cause: e });
      this.error = error.message;
      this.status = 'failed';
      this.emitLog(`job failed: ${error.message}`, { event: 'job-failed', code: error.code });
      this.endWith({
        kind: 'end',
        status: 'failed',
        totals: this.totals(),
        restarts: this.restarts,
        error: serializeError(error),
      });
    }
  }

  private finish(status: 'finished' | 'stopped', savepoint: string | undefined): void {
    this.change?.reject?.(
      new EddyError('EDDY_JOB_CONTROL', 'the job ended before the rescale completed'),
    );
    this.change = undefined;
    this.status = status;
    this.emitLog(`job ${status}`, { event: 'job-end', status });
    this.endWith({
      kind: 'end',
      status,
      totals: this.totals(),
      restarts: this.restarts,
      savepoint,
    });
  }

  private endWith(e: JobEvent): void {
    this.endEvent = e;
    clearTimeout(this.settleTimer);
    this.ctx.changed(this);
    this.emit(e);
    this.followers.clear();
  }

  private carrySample(): void {
    if (this.sample) this.carried = addTotals(this.carried, this.sample);
    this.sample = undefined;
  }

  /** Reactive: the parallelism the free slots allow, waiting for at least one slot. */
  private async waitForSlots(): Promise<number> {
    const deadline = Date.now() + this.ctx.slotTimeoutMs;
    for (;;) {
      const p = this.reactiveParallelism();
      if (p >= 1 || this.stopRequested) return Math.max(1, p);
      if (Date.now() > deadline)
        throw new EddyError(
          'EDDY_NO_SLOTS',
          `job ${this.name} (reactive) found no free task slot within ${this.ctx.slotTimeoutMs} ms: start a worker (eddy worker --master …)`,
          { domain: 'user' },
        );
      await Promise.race([this.ctx.slotsChanged(), sleep(1000)]);
    }
  }

  private runGeneration(
    graph: JobGraph,
    restore: RestoreSource | undefined,
  ): Promise<JobRunResult> {
    const spec = this.spec;
    const checkpoint: CheckpointConfig | undefined = spec.checkpointDir
      ? {
          dir: spec.checkpointDir,
          intervalMs: spec.checkpointIntervalMs,
          timeoutMs: spec.checkpointTimeoutMs,
          mode: spec.checkpointMode,
        }
      : undefined;
    const pool = new ClusterPool(graph, this.ctx.broker, {
      jobId: this.id,
      bundle: spec.bundle,
      spec: {
        args: spec.args,
        parallelism: this.parallelism,
        maxParallelism: spec.maxParallelism,
        restoredMaxParallelism: restoredMaxParallelism(restore),
      },
      checkpointing: spec.checkpointDir !== undefined,
      incrementalBase: incrementalBaseOf(checkpoint),
      stateBackend: stateBackendOf(spec),
      slotTimeoutMs: this.ctx.slotTimeoutMs,
      failFast: this.reactive,
    });
    let firstRestorePending = restore !== undefined;
    const master = new JobMaster(graph, pool, {
      jobId: this.id,
      checkpoint,
      restore,
      allowNonRestoredState: spec.allowNonRestoredState,
      restart: restartStrategy(spec.restartAttempts),
      onMetrics: (r) => {
        this.sample = totals(r);
        this.emit({ kind: 'totals', totals: this.totals() });
      },
      onCheckpoint: (s) =>
        this.emitLog(
          `${s.savepoint ? 'savepoint' : 'checkpoint'} ${s.checkpointId} completed: ${s.bytes} bytes in ${s.totalMs.toFixed(0)} ms → ${s.dir}`,
          {
            event: 'checkpoint',
            checkpointId: s.checkpointId,
            savepoint: s.savepoint,
            bytes: s.bytes,
          },
        ),
      log: (line) => this.emitLog(line),
      onRestored: (stats) => {
        if (firstRestorePending) firstRestorePending = false;
        else this.carrySample();
        // An ordinary restart (same parallelism) got past the loss.
        if (!this.change) this.lostAt = undefined;
        if (this.change) {
          this.change.restored = stats;
          // A job without input never sees a first record: count the pause to the restore.
          const c = this.change;
          setTimeout(() => this.changeDone(c, Date.now()), 2000).unref();
        }
      },
      onFirstRecord: (at) => {
        if (this.change) this.changeDone(this.change, at);
      },
    });
    this.master = master;
    if (this.stopRequested) master.stop();
    this.status = this.change ? 'rescaling' : 'running';
    this.ctx.changed(this);
    // The rescale ends once the new generation runs; 'running' is set by changeDone or here.
    if (!this.change) this.status = 'running';
    return master.run();
  }

  private changeDone(c: PendingChange, at: number): void {
    if (this.change !== c) return;
    this.change = undefined;
    this.status = this.stopRequested ? this.status : 'running';
    const r: ClusterRescale = {
      at,
      from: c.from,
      to: this.parallelism,
      reason: c.reason,
      pauseMs: at - c.requestedAt,
      bytesRead: c.restored?.bytesRead ?? 0,
      keyGroups: c.restored?.keyGroups ?? 0,
    };
    this.rescales.push(r);
    this.emitLog(
      `rescaled ${r.from} -> ${r.to} (${r.reason}): pause ${r.pauseMs} ms, restored ${r.keyGroups} key groups (${r.bytesRead} bytes)`,
      { event: 'rescale', ...r },
    );
    this.ctx.changed(this);
    c.resolve?.(r);
    // More slots may have come while it rescaled.
    this.slotsChanged();
  }

  private async initialRestore(): Promise<RestoreSource | undefined> {
    const { fromSavepoint, resume, checkpointDir } = this.spec;
    // A recovered job (resume) that never completed a checkpoint starts where it first did.
    const latest = resume ? await this.latestCheckpoint() : undefined;
    if (latest) {
      this.emitLog(`resuming from ${latest.dir}`);
      return latest;
    }
    if (fromSavepoint) {
      const storage = new CheckpointStorage(checkpointDir ?? fromSavepoint);
      const dir = await storage.resolveRestorePath(fromSavepoint);
      return { dir, metadata: await storage.loadMetadata(dir) };
    }
    if (resume)
      this.emitLog(`no completed checkpoint in ${checkpointDir}: starting from the beginning`);
    return undefined;
  }

  /** The newest of the completed checkpoints and the rescale savepoints. */
  private async latestCheckpoint(): Promise<RestoreSource | undefined> {
    const dir = this.spec.checkpointDir;
    return dir ? (await latestRestorePoint(dir, this.rescalesDir())).latest : undefined;
  }
}

/** Key groups are fixed once a job has state: each restored operator keeps its maxParallelism. */
const restoredMaxParallelism = (restore: RestoreSource | undefined) =>
  restore
    ? Object.fromEntries(restore.metadata.operators.map((o) => [o.uid, o.maxParallelism]))
    : undefined;

const restartStrategy = (attempts: number | undefined): RestartStrategy | undefined =>
  attempts === undefined
    ? undefined
    : attempts === 0
      ? { kind: 'none' }
      : { kind: 'exponential-backoff', attempts, initialDelayMs: 200, maxDelayMs: 5000 };

/** Whether `e` or an error it wraps has `code`. */
const hasCode = (e: unknown, code: string): boolean => {
  for (let x: unknown = e, depth = 0; x instanceof Error && depth < 10; x = x.cause, depth++) {
    if ((x as EddyError).code === code) return true;
  }
  return false;
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms).unref());

/**
 * The backend the workers create. A relative `dir` is relative to each worker process's
 * $EDDY_HOME (the worker resolves it): the default, `jobs/<job name>/local`, is on each host.
 */
const stateBackendOf = (spec: SubmitSpec): StateBackendConfig | undefined =>
  spec.stateBackend === 'disk'
    ? {
        kind: 'disk',
        dir: spec.localStateDir ?? join('jobs', safeFileComponent(spec.name), 'local'),
      }
    : undefined;
