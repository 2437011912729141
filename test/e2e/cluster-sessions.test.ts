/**
 * Event time across processes: examples/sessions.ts (per-split watermarks, session windows that
 * merge, timers) on a cluster of 2 workers x 2 slots at p=4 must write exactly what a local
 * `eddy run -p 1` of the same input writes (and both exactly the reference sessions), also when
 * a worker process is killed with kill -9 mid-run and a new one takes its slots.
 *
 * The input generator is sessions.test.ts's (copied, smaller): every user's events are spread
 * over several files, each file out of order by up to 3 s (under the 5 s watermark bound, so
 * no event is late), with equal timestamps and sessions bridged by late-arriving events.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { describeRun, TestCluster } from './cluster-harness.js';
import { eddy, readParts, sorted, tempDir, waitUntil, writeEventFiles } from './helpers.js';

/** mulberry32: a tiny seeded PRNG, floats in [0, 1). */
const prng = (seed: number): (() => number) => {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
};

const T0 = 1_700_000_000_000;
const MAX_DELAY_MS = 3000;
const GAP_MS = 1000;

interface Ev {
  user: string;
  ts: number;
}

/** Deals events over `files` files at random, each in arrival order (event time + a delay). */
const dealIntoFiles = (events: readonly Ev[], files: number, rand: () => number): Ev[][] => {
  const buckets: { e: Ev; arrival: number; seq: number }[][] = Array.from(
    { length: files },
    () => [],
  );
  events.forEach((e, seq) => {
    buckets[Math.floor(rand() * files)]!.push({
      e,
      arrival: e.ts + Math.floor(rand() * MAX_DELAY_MS),
      seq,
    });
  });
  return buckets.map((b) =>
    b.sort((x, y) => x.arrival - y.arrival || x.seq - y.seq).map((x) => x.e),
  );
};

/** Per user a walk in event time: equal stamps, same-session steps, exactly the gap, new sessions. */
const sessionEvents = (seed: number, users: number, perUser: number): Ev[] => {
  const rand = prng(seed);
  const events: Ev[] = [];
  for (let u = 0; u < users; u++) {
    const user = `user-${u}`;
    let ts = T0 + Math.floor(rand() * 20_000);
    for (let i = 0; i < perUser; i++) {
      events.push({ user, ts });
      const r = rand();
      ts +=
        r < 0.1
          ? 0
          : r < 0.65
            ? 50 * (1 + Math.floor(rand() * 18))
            : r < 0.7
              ? GAP_MS
              : 1050 + 50 * Math.floor(rand() * 100);
    }
  }
  return events;
};

/** The reference: per user, sorted times split where two neighbours are more than gap apart. */
const referenceSessions = (events: readonly Ev[], gap: number): string[] => {
  const byUser = new Map<string, number[]>();
  for (const e of events) {
    const ts = byUser.get(e.user) ?? [];
    ts.push(e.ts);
    byUser.set(e.user, ts);
  }
  const out: string[] = [];
  for (const [user, ts] of byUser) {
    ts.sort((a, b) => a - b);
    let start = ts[0]!;
    let count = 0;
    for (let i = 0; i < ts.length; i++) {
      if (i > 0 && ts[i]! - ts[i - 1]! > gap) {
        out.push(JSON.stringify({ user, start, end: ts[i - 1]! + gap, count }));
        start = ts[i]!;
        count = 0;
      }
      count++;
    }
    out.push(JSON.stringify({ user, start, end: ts[ts.length - 1]! + gap, count }));
  }
  return out;
};

/** Events that arrive after both sessions they join formed, within their file (as sessions.test.ts). */
const countBridges = (input: readonly Ev[][], gap: number): number => {
  let bridges = 0;
  for (const file of input) {
    const seen = new Map<string, number[]>();
    for (const e of file) {
      const prior = seen.get(e.user) ?? [];
      let lo = Number.NEGATIVE_INFINITY;
      let hi = Number.POSITIVE_INFINITY;
      for (const t of prior) {
        if (t <= e.ts && t > lo) lo = t;
        if (t > e.ts && t < hi) hi = t;
      }
      if (hi - lo > gap && e.ts - lo <= gap && hi - e.ts <= gap) bridges++;
      prior.push(e.ts);
      seen.set(e.user, prior);
    }
  }
  return bridges;
};

/** 40 users x 300 events over 6 files: more files than the 4 source subtasks. */
const events = sessionEvents(17, 40, 300);
const files = dealIntoFiles(events, 6, prng(18));
const reference = sorted(referenceSessions(events, GAP_MS));

const sessionArgs = (input: string, output: string, run: string[], rate?: number) => [
  'run',
  'examples/sessions.ts',
  ...run,
  '--no-progress',
  '--',
  '--input',
  input,
  '--output',
  output,
  '--gap-ms',
  String(GAP_MS),
  ...(rate === undefined ? [] : ['--rate', String(rate)]),
];

/** Completed checkpoints under `dir`. */
const completed = (dir: string): number =>
  existsSync(dir)
    ? readdirSync(dir).filter((d) => d.startsWith('chk-') && existsSync(join(dir, d, '_metadata')))
        .length
    : 0;

/** What a local run at p=1 writes for the input. */
let local: string[] = [];
beforeAll(async () => {
  const output = join(tempDir(), 'out');
  const r = await eddy(sessionArgs(writeEventFiles(files), output, ['-p', '1']));
  expect(r.code, r.stderr).toBe(0);
  local = sorted(readParts(output));
  // The local run itself is right: the comparisons below are with a correct output.
  expect(local).toEqual(reference);
}, 60_000);

let cluster: TestCluster | undefined;
afterEach(async () => {
  await cluster?.close();
  cluster = undefined;
});

/** A master and 2 workers x 2 slots; returns the cluster and the first worker. */
const twoByTwo = async () => {
  cluster = new TestCluster({ ...process.env, EDDY_HOME: tempDir('eddy-cluster-home-') });
  await cluster.startMaster();
  const w1 = await cluster.startWorker(2);
  await cluster.startWorker(2);
  return { c: cluster, w1 };
};

const clusterRun = ['-p', '4', '--checkpoint-interval', '250'];

describe('examples/sessions.ts on a cluster (2 workers x 2 slots, p=4)', () => {
  it('has every user in every file, bridged sessions and one-event sessions (the test data)', () => {
    expect(files.map((f) => new Set(f.map((e) => e.user)).size)).toEqual([40, 40, 40, 40, 40, 40]);
    expect(countBridges(files, GAP_MS)).toBeGreaterThan(20);
    expect(reference.length).toBeGreaterThan(3000);
    expect(reference.some((l) => (JSON.parse(l) as { count: number }).count === 1)).toBe(true);
  });

  it('writes exactly what a local run at p=1 writes', async () => {
    const { c } = await twoByTwo();
    const output = join(tempDir(), 'out');
    const run = c.submit(
      sessionArgs(writeEventFiles(files), output, [
        ...clusterRun,
        '--checkpoint-dir',
        join(tempDir(), 'ck'),
      ]),
    );
    const { code } = await run.exited;
    expect(code, describeRun(run)).toBe(0);
    expect(sorted(readParts(output))).toEqual(local);
    const s = await c.status();
    expect(s.jobs[0]).toMatchObject({ status: 'finished', parallelism: 4, restarts: 0 });
  });

  it('a worker killed with kill -9 mid-run and a new one started: still exactly the local output', async () => {
    const { c, w1 } = await twoByTwo();
    const output = join(tempDir(), 'out');
    const checkpoints = join(tempDir(), 'ck');
    // Paced so the job outlasts two checkpoints, the kill and the restart.
    const run = c.submit(
      sessionArgs(
        writeEventFiles(files),
        output,
        [...clusterRun, '--checkpoint-dir', checkpoints, '--restart-attempts', '5'],
        1500,
      ),
    );
    await waitUntil(
      () => completed(checkpoints) >= 2 || run.child.exitCode !== null,
      'two completed checkpoints',
      60_000,
    );
    expect(run.child.exitCode, describeRun(run)).toBeNull();
    const before = await c.status();
    expect(before.jobs[0]).toMatchObject({ status: 'running', parallelism: 4 });
    // p=4 on 2 x 2 slots: both workers run subtasks, so the kill hits the job.
    expect(before.workers.map((w) => w.freeSlots)).toEqual([0, 0]);
    w1.kill('SIGKILL');
    await c.startWorker(2);
    const { code } = await run.exited;
    expect(code, describeRun(run)).toBe(0);
    expect(run.stderr()).toMatch(/restarting from checkpoint \d+/);
    expect(sorted(readParts(output))).toEqual(local);
    const after = await c.status();
    expect(after.jobs[0]).toMatchObject({ status: 'finished' });
    expect(after.jobs[0]!.restarts).toBeGreaterThanOrEqual(1);
  });
});
