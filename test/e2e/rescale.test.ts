/**
 * The golden rescale runs: every example job starts at p=3, is rescaled to 5 and then to 2
 * while it runs (`eddy rescale`: stop with a savepoint, restore at the new parallelism), and
 * its committed output must equal the uninterrupted run's. One schedule runs more subtasks
 * than worker threads (p=24 on `--workers 2`, rescaled to 7): task slots.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { sentence } from '../../examples/word-count.js';
import {
  eddy,
  readParts,
  referenceSums,
  runningJobId,
  type SumEvent,
  sorted,
  tempDir,
  writeEventFiles,
} from './helpers.js';

const cli = (args: string[], env: NodeJS.ProcessEnv) => eddy(args, undefined, env);

/** Runs `args` and rescales the job to each parallelism in turn while it runs. */
const runWithRescales = async (
  args: string[],
  rescales: number[],
  home = tempDir('eddy-home-'),
) => {
  const env = { ...process.env, EDDY_HOME: home };
  const job = cli(args, env);
  const id = await runningJobId(env);
  const reports: string[] = [];
  for (const p of rescales) {
    await new Promise((r) => setTimeout(r, 400));
    const r = await cli(['rescale', id, String(p)], env);
    expect(r.code, r.stderr).toBe(0);
    reports.push(r.stdout.trim());
  }
  const done = await job;
  expect(done.code, done.stderr).toBe(0);
  return reports;
};

/**
 * Two schedules per example job: the (p=3 -> 5 -> 2) and Arroyo's shape (p=2 with
 * checkpoints, restored at 3, then at 1); the reference is the uninterrupted output, which the
 * e2e tests at p=1 (keyed-sum.test.ts, word-count.test.ts) check against the same reference.
 */
const schedules: Array<[number, number[], string[]]> = [
  [3, [5, 2], []],
  [2, [3, 1], []],
  // Task slots: more subtasks than worker threads (12 per worker), then fewer.
  [24, [7], ['--workers', '2']],
];

const keyedSumData: SumEvent[][] = Array.from({ length: 6 }, (_, f) =>
  Array.from({ length: 6000 }, (_, i) => ({
    user: `f${f}-u${(i * 7) % 53}`,
    amount: (i % 11) + 1,
  })),
);

const wordCountExpected = (lines: number): string[] => {
  const counts = new Map<string, number>();
  const expected: string[] = [];
  for (let i = 0; i < lines; i++) {
    for (const word of sentence(i).split(' ')) {
      const count = (counts.get(word) ?? 0) + 1;
      counts.set(word, count);
      expected.push(JSON.stringify({ word, count }));
    }
  }
  return expected;
};

/** keyed-sum at p=`start` with checkpoints, rescaled to each of `rescales`: exact output. */
const keyedSumRescales = async (start: number, rescales: number[], extra: string[]) => {
  const input = writeEventFiles(keyedSumData);
  const output = join(tempDir(), 'out');
  const args = [
    'run',
    'examples/keyed-sum.ts',
    '-p',
    String(start),
    ...extra,
    '--checkpoint-interval',
    '200',
  ];
  args.push('--checkpoint-dir', join(tempDir(), 'chk'), '--', '--input', input, '--output', output);
  // Long enough for two rescales, each of which starts its threads before stopping (~1-2 s).
  args.push('--rate', '4000');
  const home = tempDir('eddy-home-');
  const reports = await runWithRescales(args, rescales, home);
  let from = start;
  rescales.forEach((to, i) => {
    expect(reports[i]).toMatch(new RegExp(`^rescaled ${from} -> ${to}: pause \\d+ ms`));
    // The new worker threads start while the job still runs, before it is stopped.
    expect(reports[i]).toMatch(/\(new threads started beforehand in \d+ ms while the job ran\)/);
    from = to;
  });
  expect(sorted(readParts(output))).toEqual(sorted(referenceSums(keyedSumData)));
  // The disk backend's stores (one run directory per generation) are gone with the job.
  const local = join(home, 'jobs', 'keyed-sum', 'local');
  if (extra.includes('disk')) expect(readdirSync(local)).toEqual([]);
};

describe.each(schedules)(
  'golden rescale runs: start at p=%i, rescale to %j %j',
  (start, rescales, extra) => {
    it('examples/keyed-sum.ts', () => keyedSumRescales(start, rescales, extra));

    it('examples/word-count.ts', async () => {
      const lines = 6000;
      const output = join(tempDir(), 'out');
      const args = [
        'run',
        'examples/word-count.ts',
        '-p',
        String(start),
        ...extra,
        '--checkpoint-interval',
        '200',
      ];
      args.push('--checkpoint-dir', join(tempDir(), 'chk'), '--', '--output', output);
      args.push('--lines', String(lines), '--rate', '700');
      await runWithRescales(args, rescales);
      expect(sorted(readParts(output))).toEqual(sorted(wordCountExpected(lines)));
    });
  },
);

// The disk backend: stores closed and opened again at each new parallelism, restored from
// the rescale savepoints (Arroyo's shape; the word-count job is not repeated).
describe('golden rescale runs, disk backend', () => {
  it('examples/keyed-sum.ts: p=2, rescaled to 3, then to 1', () =>
    keyedSumRescales(2, [3, 1], ['--state-backend', 'disk']));
});
