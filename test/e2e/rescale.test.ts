/**
 * The golden rescale runs: every example job starts at p=3, is rescaled to 5 and then to 2
 * while it runs (`eddy rescale`: stop with a savepoint, restore at the new parallelism), and
 * its committed output must equal the uninterrupted run's.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { sentence } from '../../examples/word-count.js';
import {
  eddy,
  readParts,
  referenceSums,
  type SumEvent,
  sorted,
  tempDir,
  writeEventFiles,
} from './helpers.js';

const cli = (args: string[], env: NodeJS.ProcessEnv) => eddy(args, undefined, env);

/** Runs `args` and rescales the job to each parallelism in turn while it runs. */
const runWithRescales = async (args: string[], rescales: number[]) => {
  const env = { ...process.env, EDDY_HOME: tempDir('eddy-home-') };
  const job = cli(args, env);
  let id: string | undefined;
  for (let i = 0; i < 200 && !id; i++) {
    await new Promise((r) => setTimeout(r, 50));
    const list = JSON.parse((await cli(['list', '--json'], env)).stdout) as {
      id: string;
      status: string;
    }[];
    id = list.find((j) => j.status === 'running')?.id;
  }
  expect(id).toBeDefined();
  const reports: string[] = [];
  for (const p of rescales) {
    await new Promise((r) => setTimeout(r, 400));
    const r = await cli(['rescale', id!, String(p)], env);
    expect(r.code, r.stderr).toBe(0);
    reports.push(r.stdout.trim());
  }
  const done = await job;
  expect(done.code, done.stderr).toBe(0);
  return reports;
};

describe('golden rescale runs (p=3 -> 5 -> 2)', () => {
  it('examples/keyed-sum.ts', async () => {
    const data: SumEvent[][] = Array.from({ length: 6 }, (_, f) =>
      Array.from({ length: 6000 }, (_, i) => ({
        user: `f${f}-u${(i * 7) % 53}`,
        amount: (i % 11) + 1,
      })),
    );
    const input = writeEventFiles(data);
    const output = join(tempDir(), 'out');
    const args = ['run', 'examples/keyed-sum.ts', '-p', '3', '--checkpoint-interval', '200'];
    args.push(
      '--checkpoint-dir',
      join(tempDir(), 'chk'),
      '--',
      '--input',
      input,
      '--output',
      output,
      '--rate',
      '12000',
    );
    const reports = await runWithRescales(args, [5, 2]);
    expect(reports[0]).toMatch(/^rescaled 3 -> 5: pause \d+ ms/);
    expect(reports[1]).toMatch(/^rescaled 5 -> 2: pause \d+ ms/);
    expect(sorted(readParts(output))).toEqual(sorted(referenceSums(data)));
  });

  it('examples/word-count.ts', async () => {
    const lines = 6000;
    const output = join(tempDir(), 'out');
    const args = ['run', 'examples/word-count.ts', '-p', '3', '--checkpoint-interval', '200'];
    args.push(
      '--checkpoint-dir',
      join(tempDir(), 'chk'),
      '--',
      '--output',
      output,
      '--lines',
      String(lines),
      '--rate',
      '2000',
    );
    await runWithRescales(args, [5, 2]);
    const counts = new Map<string, number>();
    const expected: string[] = [];
    for (let i = 0; i < lines; i++) {
      for (const word of sentence(i).split(' ')) {
        const count = (counts.get(word) ?? 0) + 1;
        counts.set(word, count);
        expected.push(JSON.stringify({ word, count }));
      }
    }
    expect(sorted(readParts(output))).toEqual(sorted(expected));
  });
});
