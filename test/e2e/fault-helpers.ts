/**
 * Runs of test/e2e/fixtures/fault-job.ts through the real CLI with faults injected at the
 * checkpoint protocol's points (`EDDY_FAULTS`, src/runtime/faults.ts), for
 * fault-points.test.ts and fault-schedule-property.test.ts.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { FaultSpec } from '../../src/runtime/faults.js';
import { faultReference } from './fixtures/fault-data.js';
import { eddy, type RunResult, readParts, tempDir } from './helpers.js';

export const FAULT_JOB = 'test/e2e/fixtures/fault-job.ts';

export interface FaultRun {
  readonly parallelism: number;
  /** Records in all; a multiple of 600 (see fault-data.ts). */
  readonly count: number;
  /** Checkpoints a run takes at least (the source is paced by them, see fault-job.ts). */
  readonly steps: number;
  readonly checkpointIntervalMs: number;
  readonly output: string;
  readonly checkpoints: string;
  /** EDDY_HOME: the job registry of these runs, away from the user's. */
  readonly home: string;
  /** Where the faults' marker files go. */
  readonly markers: string;
}

export const newFaultRun = (
  parallelism: number,
  opts: Partial<Pick<FaultRun, 'count' | 'steps' | 'checkpointIntervalMs'>> = {},
): FaultRun => {
  const root = tempDir('eddy-fault-');
  return {
    parallelism,
    count: opts.count ?? 6000,
    steps: opts.steps ?? 10,
    checkpointIntervalMs: opts.checkpointIntervalMs ?? 50,
    output: join(root, 'out'),
    checkpoints: join(root, 'chk'),
    home: join(root, 'home'),
    markers: root,
  };
};

export const marker = (run: FaultRun, name: string) => join(run.markers, `fired-${name}`);

const args = (run: FaultRun, resume: boolean): string[] => [
  'run',
  FAULT_JOB,
  '-p',
  String(run.parallelism),
  // One worker thread per subtask index, so a fault aimed at worker i has a worker i to hit.
  '--workers',
  String(run.parallelism),
  '--checkpoint-interval',
  String(run.checkpointIntervalMs),
  '--checkpoint-dir',
  run.checkpoints,
  ...(resume ? ['--resume'] : []),
  '--',
  '--output',
  run.output,
  '--count',
  String(run.count),
  '--steps',
  String(run.steps),
];

/** One `eddy run` of the fixture; `faults` go into EDDY_FAULTS (none: the variable is unset). */
export const runFaultJob = (
  run: FaultRun,
  faults: readonly FaultSpec[],
  resume = false,
): Promise<RunResult> => {
  const env: NodeJS.ProcessEnv = { ...process.env, EDDY_HOME: run.home };
  delete env.EDDY_FAULTS;
  if (faults.length > 0) env.EDDY_FAULTS = JSON.stringify(faults);
  return eddy(args(run, resume), undefined, env);
};

export const reference = (run: FaultRun) => faultReference(run.count);

/** The visible output now (none yet: empty). */
export const visibleOutput = (run: FaultRun): string[] =>
  existsSync(run.output) ? readParts(run.output) : [];

/**
 * Whatever is visible after a crash is a part of the exact output: nothing torn, nothing
 * twice, nothing that the uninterrupted run would not write.
 */
export const isPartOfReference = (run: FaultRun, lines: readonly string[]): string | undefined => {
  const expected = new Map<string, number>();
  for (const l of reference(run)) expected.set(l, (expected.get(l) ?? 0) + 1);
  for (const l of lines) {
    const n = expected.get(l) ?? 0;
    if (n === 0) return `unexpected or duplicated line ${l}`;
    expected.set(l, n - 1);
  }
  return undefined;
};

/** Ids of the checkpoints in `dir` that have a `_metadata`, ascending. */
export const completedCheckpoints = (dir: string): number[] =>
  (existsSync(dir) ? readdirSync(dir) : [])
    .filter((d) => /^chk-\d+$/.test(d) && existsSync(join(dir, d, '_metadata')))
    .map((d) => Number(d.slice(4)))
    .sort((a, b) => a - b);

/** The lines of a run's stderr, for failure messages (the tail is where the cause is). */
export const describeRun = (r: RunResult, label = 'eddy run'): string =>
  `${label}: exit code ${r.code}, signal ${r.signal}\n--- stderr (last 40 lines) ---\n${r.stderr
    .split('\n')
    .slice(-40)
    .join('\n')}`;

/** Runs `body`s at most `n` at a time (the e2e runs share 2 cores). */
export const limiter = (n: number) => {
  let active = 0;
  const waiting: (() => void)[] = [];
  return async <T>(body: () => Promise<T>): Promise<T> => {
    // A finishing body hands its slot straight to the next waiter.
    if (active < n) active++;
    else await new Promise<void>((r) => waiting.push(r));
    try {
      return await body();
    } finally {
      const next = waiting.shift();
      if (next) next();
      else active--;
    }
  };
};
