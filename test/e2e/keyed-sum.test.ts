/**
 * The keyed-sum contract, end to end through the real CLI and worker threads: exact output
 * at parallelism 1, 2 and 4, compared with a straightforward reference implementation.
 */

import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  eddy,
  readParts,
  referenceSums,
  type SumEvent,
  sorted,
  tempDir,
  writeEventFiles,
} from './helpers.js';

const run = async (input: string, p: number) => {
  const output = join(tempDir(), 'out');
  const r = await eddy([
    'run',
    'examples/keyed-sum.ts',
    '-p',
    String(p),
    '--',
    '--input',
    input,
    '--output',
    output,
  ]);
  expect(r.stderr).toMatch(/finished/);
  expect(r.code).toBe(0);
  return readParts(output);
};

/** Deterministic events; `usersPerFile` users live only in their own file when `partitioned`. */
const makeFiles = (
  seed: number,
  files: number,
  perFile: number,
  partitioned: boolean,
): SumEvent[][] => {
  const rnd = fc.sample(fc.integer({ min: 0, max: 1_000_000 }), {
    seed,
    numRuns: files * perFile * 2,
  });
  let k = 0;
  return Array.from({ length: files }, (_, f) =>
    Array.from({ length: perFile }, () => {
      const u = rnd[k++]! % 300;
      const user = partitioned ? `f${f}-user-${u}` : `user-${u}`;
      return { user, amount: (rnd[k++]! % 1000) + 1 };
    }),
  );
};

describe('examples/keyed-sum.ts through eddy run', () => {
  it('gives the exact same output multiset at p=1, 2 and 4', async () => {
    // Each user's events live in one file, so a user's order is fixed whatever the parallelism
    // (records of one key from different splits have no defined order, in eddy as in Flink).
    const files = makeFiles(7, 6, 4000, true);
    const input = writeEventFiles(files);
    const expected = sorted(referenceSums(files));
    for (const p of [1, 2, 4]) expect(sorted(await run(input, p))).toEqual(expected);
  });

  it('keeps exact per-user totals when users span files', async () => {
    const files = makeFiles(11, 5, 3000, false);
    const input = writeEventFiles(files);
    const finalTotals = (lines: string[]) => {
      const m = new Map<string, number>();
      for (const l of lines) {
        const { user, total } = JSON.parse(l) as { user: string; total: number };
        m.set(user, Math.max(m.get(user) ?? 0, total));
      }
      return [...m.entries()].sort();
    };
    const reference = referenceSums(files);
    const lines = await run(input, 3);
    expect(lines).toHaveLength(reference.length);
    expect(finalTotals(lines)).toEqual(finalTotals(reference));
  });
});
