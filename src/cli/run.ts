/** `eddy run`: runs a job module locally on worker threads until its input ends or Ctrl-C. */
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import {
  buildGraph,
  importJob,
  type JobControl,
  prewarmJobWorkers,
  type RunOptions,
  runJobModule,
} from '../api/job.js';
import {
  checkLocalStateDir,
  parseStateBackend,
  type StateBackendKind,
} from '../api/local-state.js';
import { CheckpointStorage, latestRestorePoint } from '../checkpoint/index.js';
import type { CheckpointMetadata } from '../checkpoint/types.js';
import type { RescaleReport, RescaleUnchanged } from '../control/types.js';
import { EddyError, InvalidArgumentError } from '../core/errors.js';
import { discardWarmWorkers, workerCount } from '../runtime/coordinator.js';
import type { JobGraph } from '../runtime/graph.js';
import type {
  CheckpointFailure,
  CheckpointMode,
  CheckpointStats,
  JobRunResult,
} from '../runtime/job-master.js';
import type { SubtaskMetricsReport } from '../runtime/metrics.js';
import type { RestoreSource, RestoreStats } from '../runtime/protocol.js';
import {
  checkpointFields,
  type JobLogFields,
  jobEndFields,
  openJobLog,
  rescaleFields,
  restoredFields,
} from './job-log.js';
import {
  addTotals,
  formatCount,
  ProgressLine,
  plural,
  type Totals,
  totals,
  ZERO_TOTALS,
} from './progress.js';
import { checkRescale, type RescaleCheck } from './rescale-check.js';
import { jobStateDirs, RETAINED_RESCALE_SAVEPOINTS } from './state-dirs.js';

/** Controls of a running `eddy run` that span restarts. */
export interface RunControls {
  /** Current default parallelism. */
  parallelism(): number;
  /** Where a savepoint taken without a directory goes. */
  savepointDir(): string;
  rescale(
    parallelism: number | undefined,
    operators: Readonly<Record<string, number>>,
  ): Promise<RescaleReport | RescaleUnchanged>;
}

/**
 * What the REST API and /metrics learn from a run (server/monitor.ts's JobMonitor). Called on
 * the main thread, from the master's callbacks; never on the hot path.
 */
export interface RunObserver {
  /** Each generation's graph (at start and after each rescale), before it starts. */
  setGraph(graph: JobGraph): void;
  /** The checkpoint or savepoint a generation restores from. */
  setRestored(dir: string, metadata: CheckpointMetadata): void;
  onMetrics(reports: SubtaskMetricsReport[]): void;
  onCheckpoint(stats: CheckpointStats): unknown;
  onCheckpointFailed(failure: CheckpointFailure): void;
  /** A restart after a failure (not a rescale). */
  onRestart(): void;
  onRescaled(report: RescaleReport): void;
}

export interface RunCommandOptions {
  readonly parallelism: number;
  readonly maxParallelism?: number | undefined;
  /** Most worker threads (default: the number of cores, at most the largest parallelism). */
  readonly workers?: number | undefined;
  readonly statsFile?: string | undefined;
  readonly progress?: boolean | undefined;
  readonly checkpointInterval?: number | undefined;
  readonly checkpointDir?: string | undefined;
  /** Root of this job's checkpoints, savepoints and rescale savepoints (see state-dirs.ts). */
  readonly stateDir?: string | undefined;
  /** Decline a checkpoint not completed within this many ms (default 10 minutes). */
  readonly checkpointTimeout?: number | undefined;
  /** How keyed state is checkpointed (default 'full'). */
  readonly checkpointMode?: CheckpointMode | undefined;
  /** Where keyed state lives while the job runs (default 'heap'). */
  readonly stateBackend?: StateBackendKind | undefined;
  /** The disk backend's working directory (default `<state dir>/local`, see state-dirs.ts). */
  readonly localStateDir?: string | undefined;
  readonly fromSavepoint?: string | undefined;
  readonly resume?: boolean | undefined;
  readonly allowNonRestoredState?: boolean | undefined;
  readonly restartAttempts?: number | undefined;
  readonly jobId?: string | undefined;
  /**
   * Called each time the job (re)starts — after a rescale too — with its master and the
   * controls that outlive one master (job control: savepoints, stop, rescale).
   */
  readonly onStarted?:
    | ((
        master: JobControl,
        jobName: string,
        checkpointDir: string | undefined,
        controls: RunControls,
      ) => void)
    | undefined;
  readonly onEnded?: ((result: JobRunResult | undefined, error: unknown) => void) | undefined;
  /** A second Ctrl-C: the process exits right after this (synchronous) call. */
  readonly onCancelled?: (() => void) | undefined;
  /** Called once the job module is loaded: who observes the run (the REST API's monitor). */
  readonly observe?: ((jobName: string) => RunObserver | undefined) | undefined;
}

export const runCommand = async (
  jobFile: string,
  jobArgs: readonly string[],
  opts: RunCommandOptions,
): Promise<number> => {
  const module = resolve(jobFile);
  const job = await importJob(module);
  const jobId = opts.jobId ?? randomUUID();
  // The first line: the id that `eddy savepoint`, `stop` and `rescale` need.
  const started = `job ${jobId} (${job.name}) started: eddy stop ${jobId} to stop it`;
  process.stderr.write(`${started}\n`);
  const jobLog = await openJobLog(jobId, job.name);
  jobLog?.write(started, {
    event: 'job-start',
    parallelism: opts.parallelism,
    maxParallelism: opts.maxParallelism ?? null,
    workers: workerCount(opts.parallelism, opts.workers),
    module,
    args: jobArgs,
    checkpointIntervalMs: opts.checkpointInterval ?? null,
    fromSavepoint: opts.fromSavepoint ?? null,
    resume: opts.resume === true,
    stateBackend: opts.stateBackend ?? 'heap',
  });
  const overParallel = parallelismWarning(
    opts.parallelism,
    availableParallelism(),
    workerCount(opts.parallelism, opts.workers),
  );
  if (overParallel) process.stderr.write(`warning: ${overParallel}\n`);
  const dirs = jobStateDirs(job.name, opts);
  // Before any thread starts or any record is read: a bad option or an unusable directory.
  try {
    checkStateBackend(opts, dirs.local);
  } catch (e) {
    await jobLog?.failed(e);
    throw e;
  }
  const checkpointDir =
    opts.checkpointInterval !== undefined || opts.checkpointDir !== undefined || opts.resume
      ? dirs.checkpoints
      : undefined;
  // A rescale restores from the stop's final incremental checkpoint instead of a savepoint.
  const viaCheckpoint = checkpointDir !== undefined && opts.checkpointMode === 'incremental';
  const restore = await restoreSource(opts, checkpointDir, dirs.rescales).catch(
    async (e: unknown) => {
      await jobLog?.failed(e);
      throw e;
    },
  );
  const observer = opts.observe?.(job.name);
  const stop = new AbortController();
  let lastCheckpoint: number | undefined = restore?.metadata.checkpointId;
  let interrupts = 0;
  const onSigint = (signal: NodeJS.Signals) => {
    interrupts++;
    if (interrupts === 1) {
      const stopping =
        'stopping: sources stop where they are and the job drains; windows and timers are not fired (Ctrl-C again to abort)';
      process.stderr.write(`\n${stopping}\n`);
      jobLog?.write(stopping, { event: 'stop-requested', signal });
      stop.abort();
    } else {
      progress?.clear();
      const cancelled = describeCancel(checkpointDir, lastCheckpoint);
      process.stderr.write(`\n${cancelled}\n`);
      jobLog?.write(cancelled, { event: 'job-cancelled', lastCheckpoint: lastCheckpoint ?? null });
      // pino flushes on 'exit' too; this does not depend on it.
      jobLog?.flushSync();
      opts.onCancelled?.();
      process.exit(130);
    }
  };
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigint);
  const tty = opts.progress ?? Boolean(process.stderr.isTTY);
  const progress = tty ? new ProgressLine(process.stderr, job.name, jobId) : undefined;
  // Lines without fields come from the job master and are recognized in the job log.
  const log = (line: string, fields?: JobLogFields) => {
    progress?.clear();
    process.stderr.write(`${line}\n`);
    jobLog?.write(line, fields);
  };
  let generation = {
    parallelism: opts.parallelism,
    overrides: {} as Record<string, number>,
    restore,
  };
  let master: JobControl | undefined;
  let rescaling: PendingRescale | undefined;
  // Counts over the whole run: `carried` holds those of ended generations (rescales) and
  // failed attempts (restarts); `sample` the latest of the running attempt.
  let carried: Totals = ZERO_TOTALS;
  let sample: Totals | undefined;
  let restarts = 0;
  // The first attempt of a generation reports onRestored only when it restores; any other
  // onRestored is a restart, whose new attempt counts from zero again.
  let firstRestorePending = false;
  const carrySample = () => {
    if (sample) carried = addTotals(carried, sample);
    sample = undefined;
  };
  const controls: RunControls = {
    parallelism: () => generation.parallelism,
    savepointDir: () => dirs.savepoints,
    rescale(parallelism, operators) {
      if (rescaling || !master) {
        return Promise.reject(
          new EddyError('EDDY_JOB_CONTROL', 'a rescale is already in progress'),
        );
      }
      // Everything that can be checked is checked before a thread starts or the job stops.
      let check: RescaleCheck;
      try {
        check = checkRescale(
          job,
          {
            args: jobArgs,
            parallelism: generation.parallelism,
            maxParallelism: opts.maxParallelism,
            overrides: generation.overrides,
            restoredMaxParallelism: maxParallelismOf(generation.restore),
          },
          parallelism,
          operators,
        );
      } catch (e) {
        const reason = e instanceof Error ? e.message : String(e);
        log(`rescale refused, the job runs on unchanged: ${reason}`);
        return Promise.reject(
          new EddyError(
            e instanceof EddyError ? e.code : 'EDDY_INVALID_ARGUMENT',
            `rescale refused, the job runs on unchanged: ${reason}`,
            { domain: 'user' },
          ),
        );
      }
      if (!check.changed) {
        log(`rescale: nothing to do, the job already runs at ${check.current}`);
        return Promise.resolve({
          unchanged: true,
          parallelism: generation.parallelism,
          operators: check.current,
        });
      }
      return new Promise<RescaleReport>((resolveReport, reject) => {
        rescaling = {
          parallelism,
          operators,
          requestedAt: Date.now(),
          from: generation.parallelism,
          resolve: resolveReport,
          reject,
        };
        // Start the new generation's threads while the job still runs, and stop it only once
        // they are ready: thread start-up is then not part of the pause.
        const overrides = { ...generation.overrides, ...operators };
        const threads = workerCount(
          Math.max(parallelism ?? generation.parallelism, ...Object.values(overrides)),
          opts.workers,
        );
        log(`rescaling: starting ${threads} worker thread(s) for the new parallelism`);
        const current = master!;
        // Never wait on the threads for long: past the limit the job stops anyway, and any
        // thread not ready yet simply finishes starting in the new generation.
        const ready = prewarmJobWorkers(
          { module, args: jobArgs, parallelism: parallelism ?? generation.parallelism },
          threads,
        );
        const limit = new Promise<void>((r) => setTimeout(r, PREWARM_LIMIT_MS).unref());
        void Promise.race([ready, limit]).then(() => {
          if (!rescaling) return;
          rescaling.stopRequestedAt = Date.now();
          // Never drains: windows and timers move to the new parallelism in state. With
          // incremental checkpoints the stop's final checkpoint is the restore point: it writes
          // only what changed, so the pause does not grow with the state (a savepoint would
          // copy all of it).
          if (viaCheckpoint) {
            log(`rescaling: stopping with a final incremental checkpoint in ${checkpointDir}`);
            current.stop(undefined, { drain: false });
          } else {
            log(`rescaling: stopping with a savepoint in ${dirs.rescales}`);
            current.stop(dirs.rescales, { drain: false });
          }
        });
      });
    },
  };
  const options = (): RunOptions => ({
    stopSignal: stop.signal,
    workers: opts.workers,
    onMetrics: (r) => {
      observer?.onMetrics(r);
      sample = totals(r);
      progress?.update(addTotals(carried, sample));
    },
    checkpoint: checkpointDir
      ? {
          intervalMs: opts.checkpointInterval,
          dir: checkpointDir,
          timeoutMs: opts.checkpointTimeout,
          mode: opts.checkpointMode,
        }
      : undefined,
    restore: generation.restore,
    stateBackend: opts.stateBackend,
    localStateDir: dirs.local,
    allowNonRestoredState: opts.allowNonRestoredState,
    restart:
      opts.restartAttempts === undefined
        ? undefined
        : opts.restartAttempts === 0
          ? { kind: 'none' }
          : {
              kind: 'exponential-backoff',
              attempts: opts.restartAttempts,
              initialDelayMs: 200,
              maxDelayMs: 5000,
            },
    onCheckpoint: (s) => {
      if (!s.savepoint) lastCheckpoint = s.checkpointId;
      progress?.checkpointCompleted(s.checkpointId);
      observer?.onCheckpoint(s);
      log(describeCheckpoint(s), checkpointFields(s));
    },
    onCheckpointFailed: (f) => observer?.onCheckpointFailed(f),
    log,
    onMaster: (m) => {
      master = m;
      firstRestorePending = generation.restore !== undefined;
      opts.onStarted?.(m, job.name, checkpointDir, controls);
    },
    onRestored: (stats) => {
      if (firstRestorePending) firstRestorePending = false;
      else {
        carrySample();
        observer?.onRestart();
      }
      for (const line of describeRestore(stats)) log(line);
      if (stats.operators.length > 0)
        jobLog?.write(
          `restored ${stats.keyGroups} key groups (${restoredBytes(stats.bytesRead, stats.bytesDeferred)}) in ${stats.ms.toFixed(0)} ms`,
          restoredFields(stats),
        );
      const r = rescaling;
      if (r) {
        r.restored = stats;
        r.readyAt = Date.now();
        // A job with no input at the moment never sees a first record: after a while the
        // rescale is reported done, its pause measured to the restore.
        setTimeout(() => {
          if (rescaling === r) finishRescale(r.readyAt!, false);
        }, IDLE_RESCALE_REPORT_MS).unref();
      }
    },
    onFirstRecord: (at) => finishRescale(at),
    jobId,
  });
  const finishRescale = (at: number, sawRecord = true) => {
    const r = rescaling;
    if (!r?.savepoint) return;
    rescaling = undefined;
    const report: RescaleReport = {
      savepoint: r.savepoint,
      fromParallelism: r.from,
      toParallelism: generation.parallelism,
      operators: r.operators,
      pauseMs: at - (r.stopRequestedAt ?? r.requestedAt),
      prepareMs: (r.stopRequestedAt ?? r.requestedAt) - r.requestedAt,
      bytesRead: r.restored?.bytesRead ?? 0,
      bytesDeferred: r.restored?.bytesDeferred ?? 0,
      keyGroups: r.restored?.keyGroups ?? 0,
      restoreMs: r.restored?.ms ?? 0,
    };
    const stopAt = r.stopRequestedAt ?? r.requestedAt;
    const phases =
      r.stoppedAt && r.readyAt
        ? ` [stop+${viaCheckpoint ? 'checkpoint' : 'savepoint'} ${r.stoppedAt - stopAt} ms, start+restore ${r.readyAt - r.stoppedAt} ms, ${sawRecord ? `to first record ${at - r.readyAt} ms` : `no record within ${IDLE_RESCALE_REPORT_MS} ms (no input), pause counted to the restore`}; threads started beforehand in ${report.prepareMs} ms while the job ran]`
        : '';
    log(
      `rescaled ${report.fromParallelism} -> ${report.toParallelism}: pause ${report.pauseMs} ms, restored ${report.keyGroups} key groups (${restoredBytes(report.bytesRead, report.bytesDeferred)}) in ${report.restoreMs.toFixed(0)} ms${phases}`,
      rescaleFields(report),
    );
    observer?.onRescaled(report);
    r.resolve(report);
    // Older rescale savepoints go as old checkpoints do; the one just restored stays.
    new CheckpointStorage(dirs.rescales, { savepoints: true })
      .retain(RETAINED_RESCALE_SAVEPOINTS)
      .catch((e: Error) => log(`could not delete old rescale savepoints: ${e.message}`));
  };
  let result: JobRunResult | undefined;
  const runStarted = performance.now();
  try {
    for (;;) {
      observeGeneration(observer, job, generation, jobArgs, opts.maxParallelism);
      result = await runJobModule(
        {
          module,
          args: jobArgs,
          parallelism: generation.parallelism,
          maxParallelism: opts.maxParallelism,
          parallelismOverrides: generation.overrides,
          restoredMaxParallelism: maxParallelismOf(generation.restore),
        },
        options(),
      );
      // The ended generation's final counts replace its last sample.
      sample = undefined;
      carried = addTotals(carried, totals(result.metrics));
      restarts += result.restarts;
      const r = rescaling;
      const restorePoint = viaCheckpoint ? result.finalCheckpoint : result.savepoint;
      if (!r || !restorePoint || stop.signal.aborted) break;
      r.savepoint = restorePoint;
      r.stoppedAt = Date.now();
      const storage = new CheckpointStorage(restorePoint);
      generation = {
        parallelism: r.parallelism ?? generation.parallelism,
        overrides: { ...generation.overrides, ...r.operators },
        restore: { dir: restorePoint, metadata: await storage.loadMetadata(restorePoint) },
      };
    }
  } catch (e) {
    if (rescaling?.savepoint) {
      log(
        `rescale failed after the job stopped; its state is in the ${viaCheckpoint ? 'checkpoint' : 'savepoint'} ${rescaling.savepoint} (eddy run … --from-savepoint ${rescaling.savepoint} starts from it)`,
      );
    }
    rescaling?.reject(e);
    opts.onEnded?.(undefined, e);
    await jobLog?.failed(e);
    throw e;
  } finally {
    progress?.clear();
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigint);
    // Threads prewarmed for a rescale whose new generation never started them would keep
    // this process alive after it has failed.
    await discardWarmWorkers();
  }
  rescaling?.reject(
    new EddyError('EDDY_JOB_CONTROL', 'the job ended before the rescale completed'),
  );
  opts.onEnded?.(result, undefined);
  const summary: RunSummary = {
    durationMs: performance.now() - runStarted,
    stopped: result!.stopped,
    totals: carried,
    restarts,
    savepoint: result!.savepoint,
  };
  report(summary, opts);
  jobLog?.write(formatSummary(summary), jobEndFields(summary));
  await jobLog?.close();
  return 0;
};

/**
 * `--state-backend` (commander checks the choices; this guards other callers) and, for the
 * disk backend, its local directory: created if missing, and really writable.
 */
const checkStateBackend = (opts: RunCommandOptions, localDir: string): void => {
  const kind = parseStateBackend(opts.stateBackend ?? 'heap', '--state-backend');
  if (kind !== 'disk') return;
  checkLocalStateDir(
    localDir,
    opts.localStateDir !== undefined
      ? 'the local state directory (--local-state-dir)'
      : 'the local state directory (<state dir>/local; --local-state-dir or --state-dir moves it)',
  );
};

/**
 * Subtasks beyond a few per core share threads and only add overhead; a high parallelism is
 * usually meant as room to rescale, which is what maxParallelism is for.
 */
export const parallelismWarning = (
  parallelism: number,
  cores: number,
  threads: number,
): string | undefined =>
  parallelism > 4 * cores
    ? `parallelism ${parallelism} is far above this machine's ${cores} core(s): its subtasks share ${threads} worker thread(s), which adds overhead without adding speed. Room to rescale later comes from a high --max-parallelism, not from a high parallelism.`
    : undefined;

/** What a second Ctrl-C loses, and where to go on from. */
export const describeCancel = (
  checkpointDir: string | undefined,
  lastCheckpoint: number | undefined,
): string => {
  if (!checkpointDir) {
    return 'cancelled: the stop was aborted. Records in flight and output not yet written are lost; part files already written stay. Without checkpoints nothing can resume this run (run with --checkpoint-interval to be able to).';
  }
  return lastCheckpoint === undefined
    ? `cancelled: the stop was aborted before any checkpoint completed. Output not committed is discarded on the next run; eddy run … --resume (same state and checkpoint dir) starts from the beginning.`
    : `cancelled: the stop was aborted. Output after checkpoint ${lastCheckpoint} was not committed and is discarded; eddy run … --resume (same state and checkpoint dir) continues from checkpoint ${lastCheckpoint} in ${checkpointDir}.`;
};

/** How long after the restore a rescale waits for a first record before reporting anyway. */
const IDLE_RESCALE_REPORT_MS = 2000;

/** The longest a rescale waits for its new worker threads before it stops the job anyway. */
const PREWARM_LIMIT_MS = 20_000;

interface PendingRescale {
  readonly parallelism: number | undefined;
  readonly operators: Readonly<Record<string, number>>;
  readonly requestedAt: number;
  /** When the job was asked to stop, once the new threads were ready (epoch ms). */
  stopRequestedAt?: number;
  readonly from: number;
  readonly resolve: (r: RescaleReport) => void;
  readonly reject: (e: unknown) => void;
  savepoint?: string;
  restored?: RestoreStats;
  /** Old job drained and its savepoint written (epoch ms). */
  stoppedAt?: number;
  /** New job's workers restored and opened (epoch ms). */
  readyAt?: number;
}

/**
 * Tells the observer the graph a generation is about to run (built here as every worker
 * builds it) and what it restores. A graph that fails to build is left to the run to report.
 */
const observeGeneration = (
  observer: RunObserver | undefined,
  job: Awaited<ReturnType<typeof importJob>>,
  generation: {
    parallelism: number;
    overrides: Record<string, number>;
    restore: RestoreSource | undefined;
  },
  args: readonly string[],
  maxParallelism: number | undefined,
): void => {
  if (!observer) return;
  try {
    observer.setGraph(
      buildGraph(job, {
        parallelism: generation.parallelism,
        maxParallelism,
        args,
        parallelismOverrides: generation.overrides,
        restoredMaxParallelism: maxParallelismOf(generation.restore),
      }),
    );
  } catch {
    return;
  }
  if (generation.restore) observer.setRestored(generation.restore.dir, generation.restore.metadata);
};

const maxParallelismOf = (restore: RestoreSource | undefined) =>
  restore
    ? Object.fromEntries(restore.metadata.operators.map((o) => [o.uid, o.maxParallelism]))
    : undefined;

/** The whole run: every generation (rescales) and attempt (restarts). */
interface RunSummary {
  readonly durationMs: number;
  readonly stopped: boolean;
  readonly totals: Totals;
  readonly restarts: number;
  readonly savepoint: string | undefined;
}

/**
 * `finished in 4.54 s: 10,000 records read by sources, 10,000 written by sinks (2,203 rec/s
 * read)`, over the whole run. Records read again after a restart count again.
 */
export const formatSummary = (s: Omit<RunSummary, 'savepoint'>): string => {
  const t = s.totals;
  const secs = s.durationMs / 1000;
  const dl = t.deadLetters > 0 ? `, ${plural(t.deadLetters, 'dead letter')}` : '';
  const restarts = s.restarts > 0 ? `, ${s.restarts} restart(s)` : '';
  return `${s.stopped ? 'stopped' : 'finished'} in ${secs.toFixed(2)} s: ${formatCount(t.recordsIn)} records read by sources, ${formatCount(t.recordsOut)} written by sinks${dl}${restarts} (${formatCount(t.recordsIn / Math.max(secs, 1e-9))} rec/s read)`;
};

const report = (result: RunSummary, opts: RunCommandOptions) => {
  const t = result.totals;
  process.stderr.write(`${formatSummary(result)}\n`);
  if (result.savepoint) process.stdout.write(`savepoint: ${result.savepoint}\n`);
  if (opts.statsFile) {
    const stats = {
      durationMs: result.durationMs,
      ...t,
      maxRssBytes: process.resourceUsage().maxRSS * 1024,
      parallelism: opts.parallelism,
      restarts: result.restarts,
    };
    writeFileSync(opts.statsFile, `${JSON.stringify(stats)}\n`);
  }
};

/** One line per restored operator subtask: what it read, from key groups to bytes and time. */
const describeRestore = (stats: RestoreStats): string[] =>
  stats.operators
    .filter((o) => o.bytesRead > 0)
    .map(
      (o) =>
        `restored ${o.uid}[${o.subtask}]: ${o.keyGroups} key groups, ${formatBytes(o.bytesRead)} read in ${o.ms.toFixed(1)} ms`,
    );

const describeCheckpoint = (s: CheckpointStats): string =>
  `${s.savepoint ? 'savepoint' : 'checkpoint'} ${s.checkpointId} completed: ${formatBytes(s.bytes)} in ${s.totalMs.toFixed(0)} ms (sync ${s.syncMs.toFixed(1)} ms, async ${s.asyncMs.toFixed(0)} ms) → ${s.dir}`;

export const formatBytes = (n: number): string =>
  n < 1024
    ? `${n} B`
    : n < 1024 ** 2
      ? `${(n / 1024).toFixed(1)} KiB`
      : `${(n / 1024 ** 2).toFixed(1)} MiB`;

/**
 * --from-savepoint <path> or --resume: the newest valid checkpoint in the checkpoint dir, or a
 * newer rescale savepoint (a job killed after a rescale, before its first checkpoint).
 */
const restoreSource = async (
  opts: RunCommandOptions,
  checkpointDir: string | undefined,
  rescalesDir: string,
): Promise<RestoreSource | undefined> => {
  if (opts.fromSavepoint && opts.resume) {
    throw new InvalidArgumentError('use either --from-savepoint or --resume, not both');
  }
  if (opts.fromSavepoint) {
    const storage = new CheckpointStorage(checkpointDir ?? resolve('.'));
    const dir = await storage.resolveRestorePath(resolve(opts.fromSavepoint));
    return { dir, metadata: await storage.loadMetadata(dir) };
  }
  if (!opts.resume || !checkpointDir) return undefined;
  const { latest, skipped } = await latestRestorePoint(checkpointDir, rescalesDir, {
    verifyData: true,
  });
  for (const s of skipped) process.stderr.write(`skipping checkpoint ${s.dir}: ${s.reason}\n`);
  if (!latest) {
    process.stderr.write(
      `no completed checkpoint in ${checkpointDir}: starting from the beginning\n`,
    );
    return undefined;
  }
  process.stderr.write(`resuming from ${join(latest.dir)}\n`);
  return latest;
};

export const parsePositiveInt =
  (name: string, min = 1) =>
  (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min) {
      throw new InvalidArgumentError(`${name} must be an integer >= ${min}, got '${value}'`);
    }
    return n;
  };

/** "12.0 MiB", or "1.0 MiB read, 80.0 MiB on first use" when some key groups deferred reads. */
const restoredBytes = (read: number, deferred: number | undefined): string =>
  deferred ? `${formatBytes(read)} read, ${formatBytes(deferred)} on first use` : formatBytes(read);
