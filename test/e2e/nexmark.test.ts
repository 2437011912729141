/**
 * Nexmark end to end: `eddy nexmark generate` writes the events as JSON Lines, every query job
 * (examples/nexmark) runs on them with `eddy run` at p=1 and p=3, and its output must equal
 * the straightforward computation in nexmark-oracle.ts as a multiset of records. Also across
 * `eddy rescale` (stop with a savepoint, restore at another parallelism) while the job runs,
 * and with the generator source (`--events N`) instead of the files.
 *
 * 12,000 events at 300 events per second of event time: 40 s, so 4 tumbling windows of q7,
 * ~24 hopping windows of q5 and many sessions of q11; 3 files, so 3 splits with their own
 * watermarks.
 */
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
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
  const r = await eddy([
    'nexmark',
    'generate',
    '--events',
    String(EVENTS),
    '--out',
    out,
    '--files',
    String(files),
    ...GEN,
  ]);
  expect(r.code, r.stderr).toBe(0);
  return out;
};

beforeAll(async () => {
  input = await generate(3);
  events = oracle.readEvents(input);
  bids = oracle.bidsOf(events);
}, 30_000);

const job = (q: string) => `examples/nexmark/${q}.ts`;

/** Runs query `q` at parallelism `p` to completion; returns its output lines. */
const run = async (q: string, p: number, source = ['--input', input]): Promise<string[]> => {
  const output = join(tempDir(), 'out');
  const r = await eddy(['run', job(q), '-p', String(p), '--', ...source, '--output', output]);
  expect(r.code, r.stderr).toBe(0);
  return readParts(output);
};

/** Compares two sorted multisets of canonical lines; small failure messages. */
const expectSame = (actual: readonly string[], expected: readonly string[], what: string) => {
  const got = oracle.canonicalLines(actual);
  const i = got.findIndex((l, k) => l !== expected[k]);
  expect({
    what,
    lines: got.length,
    firstDifference: i < 0 ? undefined : [got[i], expected[i]],
  }).toEqual({
    what,
    lines: expected.length,
    firstDifference: got.length === expected.length ? undefined : expect.anything(),
  });
  expect(got).toEqual(expected);
};

const reference: Record<string, () => string[]> = {
  q0: () => oracle.q0(bids),
  q1: () => oracle.q1(bids),
  q2: () => oracle.q2(bids),
  q5: () => oracle.q5(bids),
  q7: () => oracle.q7(bids),
  q11: () => oracle.q11(bids),
  q3: () => oracle.q3(events),
  q8: () => oracle.q8(events),
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
  });
});

describe.each(Object.keys(reference))('nexmark %s', (q) => {
  it('equals the reference at p=1 and p=3', async () => {
    const expected = reference[q]!();
    expect(expected.length).toBeGreaterThan(0);
    const [p1, p3] = await Promise.all([run(q, 1), run(q, 3)]);
    expectSame(p1, expected, `${q} p=1`);
    expectSame(p3, expected, `${q} p=3`);
  });
});

describe('nexmark q4 (an updating result)', () => {
  it('ends with the reference average per category at p=1 and p=3', async () => {
    const expected = oracle.q4Final(events);
    expect(expected.length).toBe(5);
    const [p1, p3] = await Promise.all([run('q4', 1), run('q4', 3)]);
    expectSame(oracle.q4Last(p1), expected, 'q4 p=1');
    expectSame(oracle.q4Last(p3), expected, 'q4 p=3');
    // One update per auction closed with a bid.
    const closed = expected.reduce(
      (n, l) => n + (JSON.parse(l) as [string, number][]).find(([k]) => k === 'auctions')![1],
      0,
    );
    expect(p1.length).toBe(closed);
    expect(p3.length).toBe(closed);
  });
});

describe('nexmark q12 (processing time)', () => {
  it('counts every bid once in 10 s aligned windows at p=1 and p=3', async () => {
    const [p1, p3] = await Promise.all([run('q12', 1), run('q12', 3)]);
    expect(oracle.q12Violations(p1, bids)).toEqual([]);
    expect(oracle.q12Violations(p3, bids)).toEqual([]);
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
  // 12,000 events at 1,000/s: 12 s; `eddy rescale` starts the new threads before it stops
  // the job, which takes seconds on a loaded machine, and the job must still be running then.
  const args = ['run', job(q), '-p', String(from), '--checkpoint-interval', '300'];
  const source = ['--input', input, '--output', output, '--rate', '1000'];
  const watch = (child: ChildProcess) =>
    child.stderr!.on('data', (d) => {
      stderr += d;
    });
  const done = eddy([...args, '--', ...source], watch, env);
  await waitUntil(() => /checkpoint 2 completed/.test(stderr), `${q}'s second checkpoint`);
  const id = await runningJobId(env);
  const r = await eddy(['rescale', id, String(to)], undefined, env);
  expect(r.code, r.stderr).toBe(0);
  expect(r.stdout).toMatch(new RegExp(`rescaled ${from} -> ${to}`));
  const end = await done;
  expect(end.code, end.stderr).toBe(0);
  return readParts(output);
};

describe('nexmark across a rescale', () => {
  it('q5, q11 and q12 give the same results when rescaled while running', async () => {
    const [q5, q11, q12] = await Promise.all([
      runRescaled('q5', 2, 3),
      runRescaled('q11', 3, 1),
      runRescaled('q12', 1, 2),
    ]);
    expectSame(q5, reference.q5!(), 'q5 2 -> 3');
    expectSame(q11, reference.q11!(), 'q11 3 -> 1');
    expect(oracle.q12Violations(q12, bids)).toEqual([]);
  });
});

describe('nexmark with the generator source', () => {
  it('--events N gives what --input gives for the same events', async () => {
    const source = ['--events', String(EVENTS), ...GEN];
    const [q7, q11] = await Promise.all([run('q7', 2, source), run('q11', 2, source)]);
    expectSame(q7, reference.q7!(), 'q7 --events');
    expectSame(q11, reference.q11!(), 'q11 --events');
  });
});
