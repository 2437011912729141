/** `eddy run`: runs a job module locally on worker threads until its input ends or Ctrl-C. */
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { importJob, type RunOptions, runJobModule } from '../api/job.js';
import { CheckpointStorage } from '../checkpoint/index.js';
import { InvalidArgumentError } from '../core/errors.js';
import type { CheckpointStats, JobMaster, JobRunResult } from '../runtime/job-master.js';
import type { RestoreSource } from '../runtime/protocol.js';
import { formatCount, ProgressLine, totals } from './progress.js';

export interface RunCommandOptions {
  readonly parallelism: number;
  readonly maxParallelism?: number | undefined;
  readonly statsFile?: string | undefined;
  readonly progress?: boolean | undefined;
  readonly checkpointInterval?: number | undefined;
  readonly checkpointDir?: string | undefined;
  readonly fromSavepoint?: string | undefined;
  readonly resume?: boolean | undefined;
  readonly allowNonRestoredState?: boolean | undefined;
  readonly restartAttempts?: number | undefined;
  readonly jobId?: string | undefined;
  /** Called once the job runs, with the master (job control: savepoints, stop). */
  readonly onStarted?:
    | ((master: JobMaster, jobName: string, checkpointDir: string | undefined) => void)
    | undefined;
  readonly onEnded?: ((result: JobRunResult | undefined, error: unknown) => void) | undefined;
}

/** Where checkpoints go when only the interval is given: under the working directory. */
export const defaultCheckpointDir = (jobName: string) =>
  resolve('.eddy', 'checkpoints', jobName.replace(/[^A-Za-z0-9._-]+/g, '_'));

export const runCommand = async (
  jobFile: string,
  jobArgs: readonly string[],
  opts: RunCommandOptions,
): Promise<number> => {
  const module = resolve(jobFile);
  const job = await importJob(module);
  const checkpointDir =
    opts.checkpointInterval !== undefined || opts.checkpointDir !== undefined || opts.resume
      ? resolve(opts.checkpointDir ?? defaultCheckpointDir(job.name))
      : undefined;
  const restore = await restoreSource(opts, checkpointDir);
  const stop = new AbortController();
  let interrupts = 0;
  const onSigint = () => {
    interrupts++;
    if (interrupts === 1) {
      process.stderr.write(
        '\nstopping: sources end their input and the job drains (Ctrl-C again to abort)\n',
      );
      stop.abort();
    } else {
      process.exit(130);
    }
  };
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigint);
  const tty = opts.progress ?? Boolean(process.stderr.isTTY);
  const progress = tty ? new ProgressLine(process.stderr, jobFile) : undefined;
  const log = (line: string) => {
    progress?.clear();
    process.stderr.write(`${line}\n`);
  };
  const options: RunOptions = {
    stopSignal: stop.signal,
    onMetrics: progress ? (r) => progress.update(r) : undefined,
    checkpoint: checkpointDir
      ? { intervalMs: opts.checkpointInterval, dir: checkpointDir }
      : undefined,
    restore,
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
    onCheckpoint: (s) => log(describeCheckpoint(s)),
    log,
    onMaster: (master) => opts.onStarted?.(master, job.name, checkpointDir),
    jobId: opts.jobId,
  };
  let result: JobRunResult | undefined;
  try {
    result = await runJobModule(
      { module, args: jobArgs, parallelism: opts.parallelism, maxParallelism: opts.maxParallelism },
      options,
    );
  } catch (e) {
    opts.onEnded?.(undefined, e);
    throw e;
  } finally {
    progress?.clear();
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigint);
  }
  opts.onEnded?.(result, undefined);
  report(result, opts);
  return 0;
};

const report = (result: JobRunResult, opts: RunCommandOptions) => {
  const t = totals(result.metrics);
  const secs = result.durationMs / 1000;
  const dl = t.deadLetters > 0 ? `, ${formatCount(t.deadLetters)} dead letters` : '';
  const restarts = result.restarts > 0 ? `, ${result.restarts} restart(s)` : '';
  process.stderr.write(
    `${result.stopped ? 'stopped' : 'finished'} in ${secs.toFixed(2)} s: ${formatCount(t.recordsIn)} records in, ${formatCount(t.recordsOut)} out${dl}${restarts} (${formatCount(t.recordsIn / Math.max(secs, 1e-9))} rec/s)\n`,
  );
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

const describeCheckpoint = (s: CheckpointStats): string =>
  `${s.savepoint ? 'savepoint' : 'checkpoint'} ${s.checkpointId} completed: ${formatBytes(s.bytes)} in ${s.totalMs.toFixed(0)} ms (sync ${s.syncMs.toFixed(1)} ms, async ${s.asyncMs.toFixed(0)} ms) → ${s.dir}`;

export const formatBytes = (n: number): string =>
  n < 1024
    ? `${n} B`
    : n < 1024 ** 2
      ? `${(n / 1024).toFixed(1)} KiB`
      : `${(n / 1024 ** 2).toFixed(1)} MiB`;

/** --from-savepoint <path> or --resume (latest valid checkpoint in the checkpoint dir). */
const restoreSource = async (
  opts: RunCommandOptions,
  checkpointDir: string | undefined,
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
  const latest = await new CheckpointStorage(checkpointDir).latestValid({ verifyData: true });
  for (const s of latest?.skipped ?? []) {
    process.stderr.write(`skipping checkpoint ${s.dir}: ${s.reason}\n`);
  }
  if (!latest) {
    process.stderr.write(
      `no completed checkpoint in ${checkpointDir}: starting from the beginning\n`,
    );
    return undefined;
  }
  process.stderr.write(`resuming from ${join(latest.dir)}\n`);
  return { dir: latest.dir, metadata: latest.metadata };
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
