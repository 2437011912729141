/**
 * Event time across processes: examples/sessions.ts (per-split watermarks, session windows that
 * merge, timers) on a cluster of 2 workers x 2 slots at p=4 must write exactly what a local
 * `eddy run -p 1` of the same input writes (and both exactly the reference sessions), also when
 * a worker process is killed with kill -9 mid-run and a new one takes its slots.
 *
 * The input generator is sessions.test.ts's (sessions-data.ts, smaller here): every user's events are spread
 * over several files, each file out of order by up to 3 s (under the 5 s watermark bound, so
 * no event is late), with equal timestamps and sessions bridged by late-arriving events.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { describeRun, TestCluster } from './cluster-harness.js';
import { eddy, readParts, sorted, tempDir, waitUntil, writeEventFiles } from './helpers.js';
import {
  countBridges,
  dealIntoFiles,
  GAP_MS,
  prng,
  referenceSessions,
  sessionEvents,
} from './sessions-data.js';

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
