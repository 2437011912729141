/**
 * Nexmark end to end: `eddy nexmark generate` writes the events as JSON Lines, every query job
 * (examples/nexmark) runs on them with `eddy run` at p=1 and p=3, and its output must equal
 * the straightforward computation in nexmark-oracle.ts as a multiset of records (q4: its last
 * update per category; q12, whose windows follow the wall clock: its invariants). Also across
 * `eddy rescale` (stop with a savepoint, restore at another parallelism) while the job runs,
 * and with the generator source (`--events N`) instead of the files.
 *
 * 12,000 events at 300 events per second of event time: 40 s, so 4 tumbling windows of q7 and
 * q8, ~20 hopping windows of q5, many sessions of q11 and closed auctions of q4; 3 files, so 3
 * splits with their own watermarks. The query tests run concurrently (at most 4 `eddy run` at
 * a time): most of a small run is starting up.
 */
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, type ExpectStatic, expect, it } from 'vitest';
import { nexmarkConfig, nexmarkEvent } from '../../src/connectors/nexmark/generator.js';
import { eddy, readParts, runningJobId, tempDir, waitUntil } from './helpers.js';
import * as oracle from './nexmark-oracle.js';

const EVENTS = 12_000;
const EVENTS_PER_SECOND = 300;
const GEN = ['--events-per-second', String(EVENTS_PER_SECOND)];

let input: string;
let bids: oracle.BidRow[];
let events: ReturnType<typeof oracle.readEvents>;

const generate = async (files: number): Promise<string> => {
  const out = join(tempDir('eddy-nexmark-'), 'in');
  const args = ['nexmark', 'generate', '--events', String(EVENTS), '--out', out];
  const r = await eddy([...args, '--files', String(files), ...GEN]);
  if (r.code !== 0) throw new Error(`eddy nexmark generate failed:\n${r.stderr}`);
  return out;
};

beforeAll(async () => {
  input = await generate(3);
  events = oracle.readEvents(input);
  bids = oracle.bidsOf(events);
}, 30_000);

const job = (q: string) => `examples/nexmark/${q}.ts`;

/** At most `n` runs at a time (the machine may have 2 cores). */
const limiter = (n: number) => {
  let active = 0;
  const waiting: Array<() => void> = [];
  return async <T>(task: () => Promise<T>): Promise<T> => {
    if (active >= n) await new Promise<void>((r) => waiting.push(r));
    active++;
    try {
      return await task();
    } finally {
      active--;
      waiting.shift()?.();
    }
  };
};
const slot = limiter(4);

/** Runs query `q` at parallelism `p` to completion; returns its output lines. */
const run = (q: string, p: number, source?: string[]): Promise<string[]> =>
  slot(async () => {
    const output = join(tempDir(), 'out');
    const from = source ?? ['--input', input];
    const r = await eddy(['run', job(q), '-p', String(p), '--', ...from, '--output', output]);
    if (r.code !== 0) throw new Error(`${q} -p ${p} exited ${r.code}:\n${r.stderr}`);
    return readParts(output);
  });

/** Compares a run's lines with the expected sorted canonical lines; small failure messages. */
const same = (
  expect: ExpectStatic,
  actual: readonly string[],
  expected: readonly string[],
  what: string,
) => {
  const got = oracle.canonicalLines(actual);
  const i = got.findIndex((l, k) => l !== expected[k]);
  const first = i < 0 && got.length === expected.length ? undefined : [got[i], expected[i]];
  expect({ what, lines: got.length, first }).toEqual({
    what,
    lines: expected.length,
    first: undefined,
  });
};

const reference: Record<string, () => string[]> = {
  q0: () => oracle.q0(bids),
  q1: () => oracle.q1(bids),
  q2: () => oracle.q2(bids),
  q3: () => oracle.q3(events),
  q5: () => oracle.q5(bids),
  q7: () => oracle.q7(bids),
  q8: () => oracle.q8(events),
  q11: () => oracle.q11(bids),
};

describe('eddy nexmark generate', () => {
  it("writes the generator's events; splitting into files does not change them", async () => {
    const one = await generate(1);
    const lines = (dir: string) => oracle.readEvents(dir).map((e) => JSON.stringify(e));
    const whole = lines(one);
    expect(whole.length).toBe(EVENTS);
    expect(lines(input)).toEqual(whole);
    const config = nexmarkConfig({ eventsPerSecond: EVENTS_PER_SECOND });
    for (const id of [0, 1, 4, 49, 50, 7_777, EVENTS - 1]) {
      expect(whole[id]).toBe(JSON.stringify(nexmarkEvent(id, config)));
    }
    const first = readFileSync(join(input, 'nexmark-0000.jsonl'), 'utf8').split('\n');
    expect(first.length - 1).toBe(EVENTS / 3);
    // The data set spans several windows and sessions.
    expect(bids.at(-1)!.dateTime - bids[0]!.dateTime).toBeGreaterThan(39_000);
    // It does not write over a data set.
    const again = await eddy(['nexmark', 'generate', '--events', '10', '--out', one]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/already holds nexmark-\*\.jsonl files/);
  });
});

describe.concurrent('nexmark queries at p=1 and p=3', () => {
  for (const q of Object.keys(reference)) {
    it(`${q} equals the reference`, async ({ expect }) => {
      const expected = reference[q]!();
      expect(expected.length).toBeGreaterThan(0);
      const [p1, p3] = await Promise.all([run(q, 1), run(q, 3)]);
      same(expect, p1, expected, `${q} p=1`);
      same(expect, p3, expected, `${q} p=3`);
    });
  }

  it('q4 (an updating result) ends with the reference average per category', async ({ expect }) => {
    const expected = oracle.q4Final(events);
    expect(expected.length).toBe(5);
    const [p1, p3] = await Promise.all([run('q4', 1), run('q4', 3)]);
    same(expect, oracle.q4Last(p1), expected, 'q4 p=1');
    same(expect, oracle.q4Last(p3), expected, 'q4 p=3');
    // One update per auction closed with a bid.
    const closed = oracle.q4Closed(expected);
    expect(p1.length).toBe(closed);
    expect(p3.length).toBe(closed);
  });

  it('q12 (processing time) counts every bid once in 10 s aligned windows', async ({ expect }) => {
    const [p1, p3] = await Promise.all([run('q12', 1), run('q12', 3)]);
    expect(oracle.q12Violations(p1, bids)).toEqual([]);
    expect(oracle.q12Violations(p3, bids)).toEqual([]);
  });

  it('--events N gives what --input gives for the same events', async ({ expect }) => {
    const source = ['--events', String(EVENTS), ...GEN];
    same(expect, await run('q5', 2, source), reference.q5!(), 'q5 --events');
  });
});

/**
 * Starts `q` at `from` with checkpoints, rescales it to `to` once it completed its second
 * checkpoint (so it is running and has consumed input; windows fire late here, since the
 * files are contiguous id ranges and the first one holds the watermark back), and returns its
 * committed output.
 */
const runRescaled = async (q: string, from: number, to: number): Promise<string[]> => {
  const env = { ...process.env, EDDY_HOME: tempDir('eddy-home-') };
  const output = join(tempDir(), 'out');
  let stderr = '';
  // 12,000 events at 600/s: 20 s, mostly idle; `eddy rescale` starts the new threads before
  // it stops the job, which takes seconds on a loaded machine, and the job must still run then.
  const args = ['run', job(q), '-p', String(from), '--checkpoint-interval', '300'];
  const source = ['--input', input, '--output', output, '--rate', '600'];
  const watch = (child: ChildProcess) =>
    child.stderr!.on('data', (d) => {
      stderr += d;
    });
  const done = eddy([...args, '--', ...source], watch, env);
  await waitUntil(() => /checkpoint 2 completed/.test(stderr), `${q}'s second checkpoint`);
  const id = await runningJobId(env);
  const r = await eddy(['rescale', id, String(to)], undefined, env);
  if (r.code !== 0) throw new Error(`eddy rescale ${q} ${from} -> ${to} failed:\n${r.stderr}`);
  expect(r.stdout).toMatch(new RegExp(`rescaled ${from} -> ${to}`));
  const end = await done;
  if (end.code !== 0) throw new Error(`${q} exited ${end.code} after the rescale:\n${end.stderr}`);
  return readParts(output);
};

describe('nexmark across a rescale', () => {
  it('every stateful query gives the same results when rescaled while running', async () => {
    const [q3, q4, q5, q7, q8, q11, q12] = await Promise.all([
      runRescaled('q3', 2, 1),
      runRescaled('q4', 3, 2),
      runRescaled('q5', 2, 3),
      runRescaled('q7', 1, 2),
      runRescaled('q8', 1, 3),
      runRescaled('q11', 3, 1),
      runRescaled('q12', 1, 2),
    ]);
    same(expect, q3, reference.q3!(), 'q3 2 -> 1');
    same(expect, q7, reference.q7!(), 'q7 1 -> 2');
    same(expect, oracle.q4Last(q4), oracle.q4Final(events), 'q4 3 -> 2');
    same(expect, q5, reference.q5!(), 'q5 2 -> 3');
    same(expect, q8, reference.q8!(), 'q8 1 -> 3');
    same(expect, q11, reference.q11!(), 'q11 3 -> 1');
    expect(oracle.q12Violations(q12, bids)).toEqual([]);
  });
});
