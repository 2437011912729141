/**
 * A cluster of processes on 127.0.0.1 through the real CLI: `eddy master`, `eddy worker`,
 * `eddy run --master`. keyed-sum's users live in one input file each, so its exact output is
 * known (helpers.ts referenceSums) whatever the parallelism, the kills and the rescales.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { describeRun, TestCluster, within } from './cluster-harness.js';
import {
  readParts,
  referenceSums,
  type SumEvent,
  sorted,
  tempDir,
  waitUntil,
  writeEventFiles,
} from './helpers.js';

const files = (n: number, perFile: number): SumEvent[][] =>
  Array.from({ length: n }, (_, f) =>
    Array.from({ length: perFile }, (_, i) => ({
      user: `f${f}-u${(i * 7) % 61}`,
      amount: (i % 13) + 1,
    })),
  );

/** Completed checkpoints (or rescale savepoints) under `dir`. */
const completed = (dir: string): number =>
  existsSync(dir)
    ? readdirSync(dir).filter((d) => d.startsWith('chk-') && existsSync(join(dir, d, '_metadata')))
        .length
    : 0;

let cluster: TestCluster | undefined;
afterEach(async () => {
  await cluster?.close();
  cluster = undefined;
});

/** The EDDY_HOME of the latest cluster (its master's and workers'). */
let home = '';

const newCluster = (masterArgs: string[] = []) => {
  home = tempDir('eddy-cluster-home-');
  cluster = new TestCluster({ ...process.env, EDDY_HOME: home }, masterArgs);
  return cluster;
};

const keyedSum = (
  input: string,
  output: string,
  checkpoints: string,
  p: number,
  extra: string[] = [],
  rate = 1500,
) => [
  'run',
  'examples/keyed-sum.ts',
  '-p',
  String(p),
  '--checkpoint-interval',
  '250',
  '--checkpoint-dir',
  checkpoints,
  '--no-progress',
  ...extra,
  '--',
  '--input',
  input,
  '--output',
  output,
  '--rate',
  String(rate),
];

describe('a cluster of worker processes', () => {
  // With the disk backend too: each worker process keeps its stores under its own $EDDY_HOME
  // (jobs/keyed-sum/local); the killed worker's are swept by the next deploy on that directory.
  it.each([['heap'], ['disk']])(
    'runs keyed-sum at p=4 on 2 workers x 2 slots (%s backend); a worker killed with kill -9 mid-run and a new one started: exact output',
    async (backend) => {
      const c = newCluster();
      await c.startMaster();
      const w1 = await c.startWorker(2);
      await c.startWorker(2);
      const data = files(4, 3000);
      const input = writeEventFiles(data);
      const out = join(tempDir(), 'out');
      const checkpoints = join(tempDir(), 'ck');
      const run = c.submit(keyedSum(input, out, checkpoints, 4, ['--state-backend', backend]));
      await waitUntil(() => completed(checkpoints) >= 2, 'two completed checkpoints', 60_000);
      const local = join(home, 'jobs', 'keyed-sum', 'local');
      // Both worker processes' run directories, each with the stores of its two subtasks.
      if (backend === 'disk') expect(readdirSync(local).length).toBe(2);
      const before = await c.status();
      expect(before.jobs[0]).toMatchObject({ status: 'running', parallelism: 4 });
      expect(before.workers.map((w) => w.freeSlots)).toEqual([0, 0]);
      w1.kill('SIGKILL');
      await c.startWorker(2);
      const { code } = await run.exited;
      expect(code, describeRun(run)).toBe(0);
      // Who notices first varies: the master (w1's control connection closed) or a worker of w2
      // (its data connection to w1 closed or was reset); either restarts the attempt from a
      // checkpoint.
      expect(run.stderr()).toMatch(
        /job failed: .*(worker process w1 lost|worker \d at 127\.0\.0\.1:\d+: (connection failed|closed the connection))/,
      );
      expect(run.stderr()).toMatch(/restarting from checkpoint \d+/);
      expect(sorted(readParts(out))).toEqual(sorted(referenceSums(data)));
      const after = await c.status();
      expect(after.workers.map((w) => w.id).sort()).toEqual(['w2', 'w3']);
      expect(after.jobs[0]).toMatchObject({ status: 'finished' });
      expect(after.jobs[0]!.restarts).toBeGreaterThanOrEqual(1);
      if (backend === 'disk') expect(readdirSync(local)).toEqual([]);
      else expect(existsSync(local)).toBe(false);
    },
  );

  it('fails with a clear error when too few slots come within the slot timeout', async () => {
    const c = newCluster(['--slot-timeout', '1500']);
    await c.startMaster();
    await c.startWorker(1);
    const input = writeEventFiles(files(2, 10));
    const run = c.submit(keyedSum(input, join(tempDir(), 'out'), join(tempDir(), 'ck'), 3));
    const { code } = await run.exited;
    expect(code).toBe(1);
    expect(run.stderr()).toMatch(/EDDY_NO_SLOTS/);
    expect(run.stderr()).toMatch(
      /needs 3 task slot\(s\), 1 free of 1 on 1 worker\(s\); waited 1500 ms/,
    );
  });

  it('reactive mode: 1 worker x 2 slots, a second worker joins, then the first is killed: parallelism 2 -> 4 -> 2, exact output', async () => {
    const c = newCluster();
    await c.startMaster();
    const w1 = await c.startWorker(2);
    const data = files(4, 2500);
    const input = writeEventFiles(data);
    const out = join(tempDir(), 'out');
    const checkpoints = join(tempDir(), 'ck');
    // 10,000 events at 500/s (the job's total rate): the input lasts 20 s, so the job is still
    // reading when the second worker joins and when the first is killed (a job that ended
    // first would never rescale, and the test would wait for a rescale that cannot come).
    const run = c.submit(
      keyedSum(input, out, checkpoints, 1, ['--reactive', '--restart-attempts', '10'], 500),
    );
    await c.waitForStatus(
      (s) => s.jobs[0]?.status === 'running' && s.jobs[0].parallelism === 2,
      'the job at p=2',
    );
    await waitUntil(() => completed(checkpoints) >= 1, 'a checkpoint at p=2');
    await c.startWorker(2);
    await c.waitForStatus(
      (s) =>
        s.jobs[0]?.status === 'running' &&
        s.jobs[0].parallelism === 4 &&
        s.jobs[0].rescales.length === 1,
      'the rescale to p=4',
    );
    const cks = completed(checkpoints);
    await waitUntil(() => completed(checkpoints) > cks, 'a checkpoint at p=4');
    w1.kill('SIGKILL');
    await c.waitForStatus((s) => s.jobs[0]?.rescales.length === 2, 'the restart at p=2');
    const { code } = await within(run.exited, 60_000, () => `the job to end; ${describeRun(run)}`);
    expect(code, describeRun(run)).toBe(0);
    expect(sorted(readParts(out))).toEqual(sorted(referenceSums(data)));
    const job = (await c.status()).jobs[0]!;
    expect(job.rescales.map((r) => [r.from, r.to, r.reason])).toEqual([
      [2, 4, 'worker-joined'],
      [4, 2, 'worker-lost'],
    ]);
    // Every rescale read state: the savepoint (join) or the latest checkpoint (loss).
    for (const r of job.rescales) expect(r.bytesRead).toBeGreaterThan(0);
    expect(run.stderr()).toMatch(/rescaled 2 -> 4 \(worker-joined\): pause \d+ ms/);
    expect(run.stderr()).toMatch(/rescaled 4 -> 2 \(worker-lost\): pause \d+ ms/);
    // The master keeps the job's log where `eddy logs` finds it (its EDDY_HOME).
    const logs = await c.cli(['logs', job.id, '--json']);
    expect(logs.code, logs.stderr).toBe(0);
    const events = logs.stdout
      .trim()
      .split('\n')
      .map(
        (l) =>
          JSON.parse(l) as {
            event?: string;
            from?: number;
            to?: number;
            reason?: string;
            pauseMs?: number;
          },
      );
    expect(
      events.filter((e) => e.event === 'rescale').map((e) => [e.from, e.to, e.reason]),
    ).toEqual([
      [2, 4, 'worker-joined'],
      [4, 2, 'worker-lost'],
    ]);
    // Above vitest's 60 s default, so that a wait that never ends fails with its own message
    // (which step, the last status, the job's stderr) instead of a bare test timeout.
  }, 240_000);

  it('reactive mode with --checkpoint-mode incremental: a joining worker rescales through a final incremental checkpoint, not a savepoint: exact output', async () => {
    const c = newCluster();
    await c.startMaster();
    await c.startWorker(2);
    const data = files(4, 1500);
    const input = writeEventFiles(data);
    const out = join(tempDir(), 'out');
    const checkpoints = join(tempDir(), 'ck');
    const run = c.submit(
      keyedSum(
        input,
        out,
        checkpoints,
        1,
        ['--reactive', '--checkpoint-mode', 'incremental', '--restart-attempts', '10'],
        400, // 6,000 events: 15 s of input, still running when the worker joins (see above)
      ),
    );
    await waitUntil(() => completed(checkpoints) >= 2, 'two checkpoints at p=2');
    await c.startWorker(2);
    await c.waitForStatus(
      (s) => s.jobs[0]?.parallelism === 4 && s.jobs[0].rescales.length === 1,
      'the rescale to p=4',
    );
    const { code } = await run.exited;
    expect(code, describeRun(run)).toBe(0);
    expect(sorted(readParts(out))).toEqual(sorted(referenceSums(data)));
    expect(run.stderr()).toMatch(/\(worker-joined\): stopping with a final incremental checkpoint/);
    // Incremental: state in shared files, and no rescale savepoint was written.
    expect(readdirSync(join(checkpoints, 'blocks')).length).toBeGreaterThan(0);
    const rescales = join(checkpoints, 'rescales');
    expect(existsSync(rescales) ? readdirSync(rescales) : []).toEqual([]);
  });

  it.each(['SIGKILL', 'SIGTERM'] as const)(
    'a master ended by %s and restarted with the same --ha-dir resumes its job once the workers re-register: exact output',
    async (signal) => {
      const ha = tempDir('eddy-ha-');
      const c = newCluster(['--ha-dir', ha]);
      await c.startMaster();
      await c.startWorker(2);
      await c.startWorker(2);
      const data = files(4, 3000);
      const input = writeEventFiles(data);
      const out = join(tempDir(), 'out');
      const checkpoints = join(tempDir(), 'ck');
      const run = c.submit(keyedSum(input, out, checkpoints, 4));
      await waitUntil(() => completed(checkpoints) >= 2, 'two completed checkpoints');
      expect(readdirSync(join(ha, 'jobs'))).toHaveLength(1);
      c.master.kill(signal);
      await c.master.exited;
      // Ended either way, the master left its job's record for the next one.
      expect(readdirSync(join(ha, 'jobs'))).toHaveLength(1);
      const restarted = await c.startMaster(c.port);
      await c.waitForStatus((s) => s.workers.length === 2, 'both workers to re-register');
      const { code } = await run.exited;
      expect(code, describeRun(run)).toBe(0);
      expect(restarted.stderr()).toMatch(/recovering job/);
      expect(run.stderr()).toMatch(/reconnected to the master/);
      expect(sorted(readParts(out))).toEqual(sorted(referenceSums(data)));
      // A finished job leaves the HA directory.
      await waitUntil(() => readdirSync(join(ha, 'jobs')).length === 0, 'the HA record to go');
    },
  );

  it('a worker cut off (SIGSTOP) is lost after the heartbeat timeout; the job goes on on a new worker: exact output', async () => {
    const c = newCluster(['--heartbeat-timeout', '1000']);
    await c.startMaster();
    const w1 = await c.startWorker(1);
    await c.startWorker(1);
    const data = files(2, 3000);
    const input = writeEventFiles(data);
    const out = join(tempDir(), 'out');
    const checkpoints = join(tempDir(), 'ck');
    const run = c.submit(keyedSum(input, out, checkpoints, 2));
    await waitUntil(() => completed(checkpoints) >= 2, 'two completed checkpoints');
    w1.kill('SIGSTOP');
    await waitUntil(
      () => /worker w1 lost: .*heartbeat timeout 1000 ms/.test(c.master.stderr()),
      'the master to lose w1',
      20_000,
    );
    await c.startWorker(1);
    const { code } = await run.exited;
    expect(code, describeRun(run)).toBe(0);
    expect(sorted(readParts(out))).toEqual(sorted(referenceSums(data)));
    // Woken up, the old worker finds its master connection gone and registers again.
    w1.kill('SIGCONT');
    await c.waitForStatus((s) => s.workers.some((w) => w.id === 'w1'), 'w1 to re-register');
  });

  it('list, savepoint, rescale, inspect and stop --savepoint work against a cluster job; --from-savepoint finishes it exactly', async () => {
    const c = newCluster();
    await c.startMaster();
    await c.startWorker(2);
    await c.startWorker(2);
    const data = files(4, 2500);
    const input = writeEventFiles(data);
    const out = join(tempDir(), 'out');
    const checkpoints = join(tempDir(), 'ck');
    const run = c.submit(keyedSum(input, out, checkpoints, 2, [], 500));
    const running = await c.waitForStatus((s) => s.jobs[0]?.status === 'running', 'the job to run');
    const id = running.jobs[0]!.id;
    await waitUntil(() => completed(checkpoints) >= 1, 'a checkpoint');
    const cli = (args: string[]) => c.cli([...args, '--master', c.address]);
    const list = await cli(['list', '--json']);
    expect(JSON.parse(list.stdout)).toEqual([
      expect.objectContaining({ id, name: 'keyed-sum', status: 'running', parallelism: 2 }),
    ]);
    const savepoint = await cli(['savepoint', id.slice(0, 8)]);
    expect(savepoint.code, savepoint.stderr).toBe(0);
    expect(existsSync(join(savepoint.stdout.trim(), '_metadata'))).toBe(true);
    const rescale = await cli(['rescale', id, '4']);
    expect(rescale.code, rescale.stderr).toBe(0);
    expect(rescale.stdout).toMatch(/rescaled 2 -> 4 \(request\)/);
    const inspect = await cli(['inspect', id, '--json']);
    expect(inspect.code, inspect.stderr).toBe(0);
    expect(JSON.parse(inspect.stdout)).toHaveProperty('checkpointId');
    const stop = await cli(['stop', id, '--savepoint']);
    expect(stop.code, stop.stderr).toBe(0);
    const final = stop.stdout.trim();
    expect(existsSync(join(final, '_metadata'))).toBe(true);
    expect((await run.exited).code, describeRun(run)).toBe(0);
    expect(run.stderr()).toMatch(/^stopped in /m);
    // Stopped: every user's output so far is a prefix of its reference sequence.
    const reference = referenceSums(data);
    const stopped = readParts(out);
    expect(stopped.length).toBeLessThan(reference.length);
    for (const line of stopped) expect(reference).toContain(line);
    const resumed = c.submit(
      keyedSum(input, out, checkpoints, 3, ['--from-savepoint', final], 100_000),
    );
    expect((await resumed.exited).code, describeRun(resumed)).toBe(0);
    expect(sorted(readParts(out))).toEqual(sorted(reference));
  });

  it("a user-code failure on a worker names the operator, subtask, record and the job file's own line", async () => {
    const c = newCluster();
    await c.startMaster();
    await c.startWorker(2);
    const run = c.submit([
      'run',
      'test/e2e/fixtures/failing-map.ts',
      '-p',
      '2',
      '--no-progress',
      '--',
      join(tempDir(), 'out'),
    ]);
    expect((await run.exited).code).toBe(1);
    expect(run.stderr()).toMatch(
      /\[EDDY_USER_FUNCTION\]: operator 'explode' \(uid explode\), subtask \d\/2 failed in map at record #1235/,
    );
    expect(run.stderr()).toContain('\n  record: {"n":1234}\n');
    // The worker ran a bundle; source maps lead the frame back to the job's file.
    expect(run.stderr()).toMatch(/\n {4}at .*test\/e2e\/fixtures\/failing-map\.ts:13:\d+\)?\n/);
  });

  it('with EDDY_CLUSTER_TOKEN set, workers and clients without the token are refused with a clear error', async () => {
    const home = tempDir('eddy-cluster-home-');
    const withToken = { ...process.env, EDDY_HOME: home, EDDY_CLUSTER_TOKEN: 's3cret' };
    const without = { ...process.env, EDDY_HOME: home, EDDY_CLUSTER_TOKEN: '' };
    cluster = new TestCluster(withToken);
    const c = cluster;
    await c.startMaster();
    const worker = await c.cli(
      ['worker', '--master', c.address, '--slots', '1', '--id', 'intruder'],
      without,
    );
    expect(worker.code).toBe(1);
    expect(worker.stderr).toMatch(/the master refused this worker: wrong or missing cluster token/);
    const status = await c.cli(['cluster', 'status', '--master', c.address], {
      ...without,
      EDDY_CLUSTER_TOKEN: 'guess',
    });
    expect(status.code).toBe(1);
    expect(status.stderr).toMatch(
      /EDDY_CLUSTER.*the master refused this client: wrong or missing cluster token/,
    );
    await c.startWorker(1);
    expect((await c.status()).workers.map((w) => w.id)).toEqual(['w1']);
  });
});
