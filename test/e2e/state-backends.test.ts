/**
 * The state backend chosen per job (`--state-backend heap|disk`), end to end through the real
 * CLI: the disk backend gives exactly the heap's output; savepoints cross backends and
 * parallelisms (heap p=2 -> disk p=3 -> heap p=1); incremental checkpoints on disk survive a
 * kill -9 and --resume;
 * a store deleted under a running job fails it over to its last checkpoint; a bad backend or
 * an unusable local state directory fails before any record is read; and the local state
 * directory is empty once a job ends (what a killed run left there goes at the next start).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  committedParts,
  EDDY,
  eddy,
  readParts,
  referenceSums,
  runningJobId,
  type SumEvent,
  sorted,
  tempDir,
  waitUntil,
  writeEventFiles,
} from './helpers.js';
import { dealIntoFiles, GAP_MS, prng, referenceSessions, sessionEvents } from './sessions-data.js';

/** Users live in one file each, so the exact output is known (see keyed-sum.test.ts). */
const files = (n: number, perFile: number): SumEvent[][] =>
  Array.from({ length: n }, (_, f) =>
    Array.from({ length: perFile }, (_, i) => ({
      user: `f${f}-u${(i * 7) % 97}`,
      amount: (i % 13) + 1,
    })),
  );

const keyedSum = (
  input: string,
  output: string,
  p: number,
  extra: string[] = [],
  rate?: number,
) => [
  'run',
  'examples/keyed-sum.ts',
  '-p',
  String(p),
  '--no-progress',
  '--no-ui',
  ...extra,
  '--',
  '--input',
  input,
  '--output',
  output,
  ...(rate === undefined ? [] : ['--rate', String(rate)]),
];

const withEnv = (env: NodeJS.ProcessEnv) => (args: string[]) => eddy(args, undefined, env);

/** An `eddy run` in the background: its stderr so far and its exit. */
const start = (args: string[], env: NodeJS.ProcessEnv) => {
  const child: ChildProcess = spawn(process.execPath, [EDDY, ...args], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d) => {
    stderr += d;
  });
  const exited = new Promise<number | null>((r) => child.on('exit', r));
  return { child, exited, stderr: () => stderr };
};

/** The disk backend's run directories under a local state dir, and the stores in them. */
const runDirs = (local: string): string[] =>
  existsSync(local) ? readdirSync(local).filter((d) => d.startsWith('eddy-run-')) : [];
const stores = (local: string): string[] =>
  runDirs(local).flatMap((r) => readdirSync(join(local, r)).map((s) => join(local, r, s)));

/** Watches `local` until stopped: the most stores seen there at once (the backend was used). */
const watchStores = (local: string) => {
  let most = 0;
  const timer = setInterval(() => {
    try {
      most = Math.max(most, stores(local).length);
    } catch {
      // A run directory removed between the listing and its reading.
    }
  }, 10);
  return () => {
    clearInterval(timer);
    return most;
  };
};

const checkpointsIn = (dir: string): number =>
  existsSync(dir) ? readdirSync(dir).filter((d) => /^chk-\d+$/.test(d)).length : 0;

describe('--state-backend disk', () => {
  it('gives exactly the heap output: keyed-sum (value state), sessions (merging windows, timers)', async () => {
    const home = tempDir('eddy-home-');
    const run = withEnv({ ...process.env, EDDY_HOME: home });
    const data = files(4, 5_000);
    const input = writeEventFiles(data);
    const sessions = (() => {
      const events = sessionEvents(7, 60, 400);
      return {
        files: dealIntoFiles(events, 6, prng(8)),
        expected: referenceSessions(events, GAP_MS),
      };
    })();
    const sessionInput = writeEventFiles(sessions.files);
    const outputs = {
      heap: join(tempDir(), 'out'),
      disk: join(tempDir(), 'out'),
      sessions: join(tempDir(), 'out'),
    };
    const local = join(home, 'jobs', 'keyed-sum', 'local');
    const sessionsLocal = join(home, 'jobs', 'sessions', 'local');
    const watched = [watchStores(local), watchStores(sessionsLocal)];
    const [heap, disk, sess] = await Promise.all([
      run(keyedSum(input, outputs.heap, 2)),
      run(
        keyedSum(input, outputs.disk, 2, [
          '--state-backend',
          'disk',
          '--checkpoint-interval',
          '100',
        ]),
      ),
      run([
        'run',
        'examples/sessions.ts',
        '-p',
        '2',
        '--no-progress',
        '--no-ui',
        '--state-backend',
        'disk',
        '--',
        '--input',
        sessionInput,
        '--output',
        outputs.sessions,
        '--gap-ms',
        String(GAP_MS),
      ]),
    ]);
    const [keyedStores, sessionStores] = watched.map((stop) => stop());
    for (const r of [heap, disk, sess]) expect(r.code, r.stderr).toBe(0);
    // The disk runs really kept their state on disk: a store per keyed subtask.
    expect(keyedStores).toBe(2);
    expect(sessionStores).toBe(2);
    expect(sorted(readParts(outputs.disk))).toEqual(sorted(readParts(outputs.heap)));
    expect(sorted(readParts(outputs.disk))).toEqual(sorted(referenceSums(data)));
    expect(sorted(readParts(outputs.sessions))).toEqual(sorted(sessions.expected));
    // The default local state dir: under the job's state root; empty once the job ended.
    expect(readdirSync(local)).toEqual([]);
    expect(readdirSync(sessionsLocal)).toEqual([]);
  });

  it('savepoints cross backends and parallelisms: heap p=2 -> disk p=3 -> heap p=1, exactly the uninterrupted output', async () => {
    const env = { ...process.env, EDDY_HOME: tempDir('eddy-home-') };
    const run = withEnv(env);
    const data = files(4, 10_000);
    const input = writeEventFiles(data);
    const output = join(tempDir(), 'out');
    const local = join(tempDir(), 'local');
    const savepoints = tempDir('eddy-sp-');
    /** Stops the running job with a savepoint once more output than `after` lines is committed. */
    const stopWithSavepoint = async (job: ReturnType<typeof start>, after: number) => {
      const id = await runningJobId(env);
      await waitUntil(() => committedParts(output).length > after, 'more committed output');
      const stop = await run(['stop', id, '--savepoint', '--dir', savepoints]);
      expect(stop.code, stop.stderr).toBe(0);
      expect(await job.exited, job.stderr()).toBe(0);
      return stop.stdout.trim().split('\n').pop()!;
    };
    const chk = () => ['--checkpoint-interval', '100', '--checkpoint-dir', join(tempDir(), 'chk')];

    const heap = start(keyedSum(input, output, 2, chk(), 10_000), env);
    const fromHeap = await stopWithSavepoint(heap, 0);
    const disk = start(
      keyedSum(
        input,
        output,
        3,
        [
          '--state-backend',
          'disk',
          '--local-state-dir',
          local,
          '--from-savepoint',
          fromHeap,
          ...chk(),
        ],
        10_000,
      ),
      env,
    );
    const fromDisk = await stopWithSavepoint(disk, readParts(output).length);
    expect(readParts(output).length).toBeLessThan(40_000);
    expect(readdirSync(local)).toEqual([]);
    const last = await run(keyedSum(input, output, 1, ['--from-savepoint', fromDisk, ...chk()]));
    expect(last.code, last.stderr).toBe(0);
    expect(sorted(readParts(output))).toEqual(sorted(referenceSums(data)));
  });

  it("incremental checkpoints on disk: kill -9, then --resume: exact output; the killed run's stores are swept at the start", async () => {
    const env = { ...process.env, EDDY_HOME: tempDir('eddy-home-') };
    const data = files(4, 10_000);
    const input = writeEventFiles(data);
    const output = join(tempDir(), 'out');
    const local = join(tempDir(), 'local');
    const chk = join(tempDir(), 'chk');
    const args = (rate: number) =>
      keyedSum(
        input,
        output,
        3,
        [
          '--state-backend',
          'disk',
          '--local-state-dir',
          local,
          '--checkpoint-mode',
          'incremental',
          '--checkpoint-interval',
          '100',
          '--checkpoint-dir',
          chk,
          '--resume',
        ],
        rate,
      );
    const killed = start(args(10_000), env);
    await waitUntil(() => checkpointsIn(chk) >= 3, 'three incremental checkpoints');
    expect(stores(local).length).toBe(3);
    killed.child.kill('SIGKILL');
    await killed.exited;
    expect(existsSync(join(chk, 'blocks'))).toBe(true);
    // A killed process cannot remove its stores: the next start does.
    const leftover = runDirs(local);
    expect(leftover.length).toBe(1);
    const resumed = start(args(200_000), env);
    // Its start swept the leftover before it created its own run directory.
    await waitUntil(
      () => runDirs(local).some((d) => d !== leftover[0]) || resumed.child.exitCode !== null,
      'the resumed run to create its run directory',
    );
    expect(runDirs(local)).not.toContain(leftover[0]);
    expect(await resumed.exited, resumed.stderr()).toBe(0);
    expect(resumed.stderr()).toMatch(/resuming from .*chk-\d+/);
    expect(sorted(readParts(output))).toEqual(sorted(referenceSums(data)));
    expect(readdirSync(local)).toEqual([]);
  });

  it('a store deleted under a running job: it fails over to its last checkpoint, saying why, and the output is exact', async () => {
    const env = { ...process.env, EDDY_HOME: tempDir('eddy-home-') };
    const data = files(4, 10_000);
    const input = writeEventFiles(data);
    const output = join(tempDir(), 'out');
    const local = join(tempDir(), 'local');
    const chk = join(tempDir(), 'chk');
    const job = start(
      keyedSum(
        input,
        output,
        2,
        [
          '--state-backend',
          'disk',
          '--local-state-dir',
          local,
          '--checkpoint-interval',
          '100',
          '--checkpoint-dir',
          chk,
        ],
        15_000,
      ),
      env,
    );
    await waitUntil(() => /checkpoint \d+ completed/.test(job.stderr()), 'a completed checkpoint');
    const victims = stores(local);
    expect(victims.length).toBe(2);
    for (const store of victims) rmSync(store, { recursive: true, force: true });
    expect(await job.exited, job.stderr()).toBe(0);
    // The failure names the store whose files vanished, then the restart from a checkpoint.
    expect(job.stderr()).toMatch(
      /job failed: .*disk state store of operator '.*' subtask \d at .*: its files were deleted or replaced while the job was running/,
    );
    expect(victims.some((v) => job.stderr().includes(v))).toBe(true);
    expect(job.stderr()).toMatch(/restarting from checkpoint \d+/);
    expect(job.stderr()).toMatch(/finished in .*1 restart\(s\)/);
    expect(sorted(readParts(output))).toEqual(sorted(referenceSums(data)));
    expect(readdirSync(local)).toEqual([]);
  });

  it('refuses a bad --state-backend or an unusable local state dir before reading any record', async () => {
    const root = tempDir();
    const input = writeEventFiles(files(1, 100));
    const file = join(root, 'a-file');
    writeFileSync(file, 'x');
    const attempt = (extra: string[]) => {
      const output = join(root, `out-${Math.random().toString(36).slice(2)}`);
      return eddy(keyedSum(input, output, 2, extra)).then((r) => ({ ...r, output }));
    };
    const cases: Array<[string[], RegExp]> = [
      [
        ['--state-backend', 'rocks'],
        /argument 'rocks' is invalid\. Allowed choices are heap, disk/,
      ],
      [
        ['--state-backend', 'disk', '--local-state-dir', file],
        new RegExp(
          `EDDY_STATE\\]: cannot use ${file} as the local state directory \\(--local-state-dir\\) for the disk state backend: creating the directory failed \\(ENOTDIR: ${file} exists and is not a directory\\)`,
        ),
      ],
      [
        ['--state-backend', 'disk', '--local-state-dir', join(file, 'sub')],
        new RegExp(
          `cannot use ${join(file, 'sub')} as the local state directory \\(--local-state-dir\\).*ENOTDIR`,
        ),
      ],
      // Root may write anywhere a file system allows: these really cannot be written.
      [
        ['--state-backend', 'disk', '--local-state-dir', '/proc/eddy-local'],
        /cannot use \/proc\/eddy-local as the local state directory \(--local-state-dir\).*creating the directory failed \(ENOENT/,
      ],
      [
        ['--state-backend', 'disk', '--local-state-dir', '/sys'],
        /cannot use \/sys as the local state directory \(--local-state-dir\).*writing a file in it failed \((EACCES|EROFS|EPERM)/,
      ],
      // The default, under the job's state root, names the options that move it.
      [
        ['--state-backend', 'disk', '--state-dir', join(file, 'state')],
        new RegExp(
          `cannot use ${join(file, 'state', 'local')} as the local state directory \\(<state dir>/local; --local-state-dir or --state-dir moves it\\)`,
        ),
      ],
    ];
    const results = await Promise.all(cases.map(([extra]) => attempt(extra)));
    results.forEach((r, i) => {
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toMatch(cases[i]![1]);
      // Nothing ran: no output directory, no part file.
      expect(existsSync(r.output)).toBe(false);
    });
  });
});
