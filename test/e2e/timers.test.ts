/**
 * Event-time timers through the real CLI (fixture: fixtures/timer-job.ts, a keyed process
 * function that sums each key's events per 1 s bucket and writes the sum from an event-time
 * timer). Timers live in keyed state: they must survive kill -9 and --resume, and stop with a
 * savepoint and a restore at another parallelism, each firing exactly once — the committed
 * output must equal the uninterrupted run's, which must equal the reference.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BUCKET_MS, type TimerEvent, timerOf } from './fixtures/timer-job.js';
import {
  committedParts,
  EDDY,
  eddy,
  readParts,
  runningJobId,
  sorted,
  tempDir,
  waitUntil,
} from './helpers.js';

const JOB = 'test/e2e/fixtures/timer-job.ts';

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

/**
 * One timeline of events of 40 keys, dealt over 4 files at random (every key in every file);
 * each file in arrival order, arrival = event time + [0, 3000) ms, so a file is out of order
 * by less than the 5000 ms bound and no event is late.
 */
const makeFiles = (seed: number, n: number): TimerEvent[][] => {
  const rand = prng(seed);
  const files: { e: TimerEvent; arrival: number; seq: number }[][] = [[], [], [], []];
  let ts = 1_700_000_000_000;
  for (let seq = 0; seq < n; seq++) {
    const e = { key: `k${Math.floor(rand() * 40)}`, ts, v: 1 + Math.floor(rand() * 100) };
    files[Math.floor(rand() * files.length)]!.push({
      e,
      arrival: ts + Math.floor(rand() * 3000),
      seq,
    });
    ts += Math.floor(rand() * 20);
  }
  return files.map((f) => f.sort((a, b) => a.arrival - b.arrival || a.seq - b.seq).map((x) => x.e));
};

const reference = (files: readonly TimerEvent[][]): string[] => {
  const buckets = new Map<string, { key: string; bucket: number; count: number; sum: number }>();
  for (const e of files.flat()) {
    const bucket = Math.floor(e.ts / BUCKET_MS);
    const id = `${e.key}/${bucket}`;
    const b = buckets.get(id) ?? { key: e.key, bucket, count: 0, sum: 0 };
    b.count++;
    b.sum += e.v;
    buckets.set(id, b);
  }
  return [...buckets.values()].map((b) => JSON.stringify({ ...b, firedAt: timerOf(b.bucket) }));
};

const writeFiles = (files: readonly TimerEvent[][]): string => {
  const dir = tempDir();
  mkdirSync(dir, { recursive: true });
  files.forEach((events, i) => {
    writeFileSync(
      join(dir, `events-${i}.jsonl`),
      events.map((e) => `${JSON.stringify(e)}\n`).join(''),
    );
  });
  return dir;
};

const data = makeFiles(3, 20_000);
const expected = sorted(reference(data));
const expectedSet = new Set(expected);

const runArgs = (
  input: string,
  output: string,
  p: number,
  extra: string[] = [],
  rate?: number,
): string[] => [
  'run',
  JOB,
  '-p',
  String(p),
  '--no-progress',
  ...extra,
  '--',
  '--input',
  input,
  '--output',
  output,
  ...(rate === undefined ? [] : ['--rate', String(rate)]),
];

const newestCheckpoint = (dir: string): string | undefined =>
  (existsSync(dir) ? readdirSync(dir) : [])
    .filter((d) => /^chk-\d+$/.test(d))
    .sort((a, b) => Number(b.slice(4)) - Number(a.slice(4)))
    .filter((d) => readdirSync(join(dir, d)).includes('_metadata'))[0];

/** Starts eddy and kills it (SIGKILL) `ms` after it has completed a new checkpoint. */
const killAfterCheckpoint = (args: string[], checkpoints: string, ms: number) =>
  new Promise<void>((resolve) => {
    const before = newestCheckpoint(checkpoints);
    const child = spawn(process.execPath, [EDDY, ...args], { stdio: 'ignore' });
    const poll = setInterval(() => {
      const now = newestCheckpoint(checkpoints);
      if (now !== undefined && now !== before) {
        clearInterval(poll);
        setTimeout(() => child.kill('SIGKILL'), ms);
      }
    }, 20);
    child.on('exit', () => {
      clearInterval(poll);
      resolve();
    });
  });

describe('event-time timers through the CLI', () => {
  it('an uninterrupted run at p=2 fires every timer once, with the reference sums', async () => {
    const input = writeFiles(data);
    const output = join(tempDir(), 'out');
    const r = await eddy(runArgs(input, output, 2));
    expect(r.code, r.stderr).toBe(0);
    expect(sorted(readParts(output))).toEqual(expected);
  });

  it('kill -9 mid-run, then --resume (twice): the output equals the uninterrupted run', async () => {
    const input = writeFiles(data);
    const output = join(tempDir(), 'out');
    const checkpoints = join(tempDir(), 'chk');
    const args = (rate: number) =>
      runArgs(
        input,
        output,
        2,
        ['--checkpoint-interval', '100', '--checkpoint-dir', checkpoints, '--resume'],
        rate,
      );
    for (const ms of [150, 40]) {
      await killAfterCheckpoint(args(8000), checkpoints, ms);
      const visible = existsSync(output) ? readParts(output) : [];
      // Whatever was committed is part of the exact output, with no duplicate.
      expect(new Set(visible).size).toBe(visible.length);
      expect(visible.every((l) => expectedSet.has(l))).toBe(true);
      expect(visible.length).toBeLessThan(expected.length);
    }
    const r = await eddy(args(200_000));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/resuming from .*chk-\d+/);
    expect(sorted(readParts(output))).toEqual(expected);
  });

  // With the disk backend too: timers in its stores, written to and restored from savepoints.
  it.each([['heap'], ['disk']])(
    'stop with a savepoint at p=2, restore at p=3 (%s backend): pending timers fire once, after the restore',
    async (backend) => {
      const home = tempDir('eddy-home-');
      const env = { ...process.env, EDDY_HOME: home };
      const input = writeFiles(data);
      const output = join(tempDir(), 'out');
      const chk = [
        '--state-backend',
        backend,
        '--checkpoint-interval',
        '200',
        '--checkpoint-dir',
        join(tempDir(), 'chk'),
      ];
      const job = spawn(process.execPath, [EDDY, ...runArgs(input, output, 2, chk, 8000)], {
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stderr = '';
      job.stderr.on('data', (d) => {
        stderr += d;
      });
      const exited = new Promise<number | null>((r) => job.on('exit', r));
      const id = await runningJobId(env);
      // Stop once some timers fired and their output is committed, whatever the machine's speed.
      await waitUntil(() => committedParts(output).length > 0, 'committed output');
      const stop = await eddy(
        ['stop', id, '--savepoint', '--dir', tempDir('eddy-sp-')],
        undefined,
        env,
      );
      expect(stop.code, stop.stderr).toBe(0);
      expect(await exited, stderr).toBe(0);
      const savepoint = stop.stdout.trim().split('\n').pop()!;
      const partial = readParts(output);
      expect(partial.length).toBeGreaterThan(0);
      expect(partial.length).toBeLessThan(expected.length);

      const restored = await eddy(
        runArgs(input, output, 3, [
          '--state-backend',
          backend,
          '--from-savepoint',
          savepoint,
          '--checkpoint-dir',
          join(tempDir(), 'chk2'),
        ]),
        undefined,
        env,
      );
      expect(restored.code, restored.stderr).toBe(0);
      expect(sorted(readParts(output))).toEqual(expected);
      const local = join(home, 'jobs', 'timer-job', 'local');
      if (backend === 'disk') expect(readdirSync(local)).toEqual([]);
      else expect(existsSync(local)).toBe(false);
    },
  );
});
