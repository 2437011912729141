/** `eddy run`: runs a job module locally on worker threads until its input ends or Ctrl-C. */
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { runJobModule } from '../api/job.js';
import { InvalidArgumentError } from '../core/errors.js';
import { formatCount, ProgressLine, totals } from './progress.js';

export interface RunCommandOptions {
  readonly parallelism: number;
  readonly maxParallelism?: number | undefined;
  readonly statsFile?: string | undefined;
  readonly progress?: boolean | undefined;
}

export const runCommand = async (
  jobFile: string,
  jobArgs: readonly string[],
  opts: RunCommandOptions,
): Promise<number> => {
  const module = resolve(jobFile);
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
  try {
    const result = await runJobModule(
      { module, args: jobArgs, parallelism: opts.parallelism, maxParallelism: opts.maxParallelism },
      { stopSignal: stop.signal, onMetrics: progress ? (r) => progress.update(r) : undefined },
    );
    progress?.clear();
    const t = totals(result.metrics);
    const secs = result.durationMs / 1000;
    const dl = t.deadLetters > 0 ? `, ${formatCount(t.deadLetters)} dead letters` : '';
    process.stderr.write(
      `${result.stopped ? 'stopped' : 'finished'} in ${secs.toFixed(2)} s: ${formatCount(t.recordsIn)} records in, ${formatCount(t.recordsOut)} out${dl} (${formatCount(t.recordsIn / Math.max(secs, 1e-9))} rec/s)\n`,
    );
    if (opts.statsFile) {
      const stats = {
        durationMs: result.durationMs,
        ...t,
        maxRssBytes: process.resourceUsage().maxRSS * 1024,
        parallelism: opts.parallelism,
      };
      writeFileSync(opts.statsFile, `${JSON.stringify(stats)}\n`);
    }
    return 0;
  } finally {
    progress?.clear();
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigint);
  }
};

export const parsePositiveInt =
  (name: string) =>
  (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 1) {
      throw new InvalidArgumentError(`${name} must be an integer >= 1, got '${value}'`);
    }
    return n;
  };
