/**
 * Where a job's state goes and what the CLI says about it, from the user's side: state under
 * `$EDDY_HOME/jobs/<name>/` whatever the working directory, user paths resolved against the
 * caller, rescale savepoints kept as checkpoints are, `eddy list --prune`, a fresh run into
 * an output directory with part files, a second Ctrl-C, and a parallelism far above the cores.
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { basename, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  EDDY,
  eddy,
  ROOT,
  readParts,
  startCheckpointingJob,
  stopGracefully,
  tempDir,
  writeEventFiles,
} from './helpers.js';

const JOB = join(ROOT, 'test/e2e/fixtures/rated-counter.ts');
const STUCK = join(ROOT, 'test/e2e/fixtures/stuck-stop.ts');
const IDLE = join(ROOT, 'test/e2e/fixtures/idle-source.ts');

const waitFor = async (done: () => boolean, what = 'condition') => {
  for (const deadline = Date.now() + 30_000; !done(); ) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
};

/** Starts `eddy run` of the rated counter (or `module`) in `cwd`, as startCheckpointingJob does. */
const startJob = (cwd: string, env: NodeJS.ProcessEnv, extra: string[] = [], module = JOB) =>
  startCheckpointingJob(module, cwd, env, extra);

describe('job state directories', () => {
  it('go under $EDDY_HOME/jobs/<name>/ wherever eddy run starts; --dir is the caller’s', async () => {
    const home = tempDir('eddy-home-');
    const env = { ...process.env, EDDY_HOME: home };
    const runDir = tempDir('run-cwd-');
    const job = await startJob(runDir, env);
    // A savepoint without --dir, asked from another directory: the job's savepoints/ folder.
    const elsewhere = tempDir('caller-');
    const sp = await eddy(['savepoint', job.id], undefined, env, elsewhere);
    expect(sp.code, sp.stderr).toBe(0);
    const jobRoot = join(home, 'jobs', 'rated-counter');
    expect(sp.stdout.trim()).toMatch(new RegExp(`^${join(jobRoot, 'savepoints')}/savepoint-`));
    // With a relative --dir: resolved against the caller's directory, not the job's.
    const rel = await eddy(['savepoint', job.id, '--dir', 'mine'], undefined, env, elsewhere);
    expect(rel.code, rel.stderr).toBe(0);
    expect(rel.stdout.trim().startsWith(join(elsewhere, 'mine', 'savepoint-'))).toBe(true);
    await stopGracefully(job.child, job.exited);
    expect(readdirSync(join(jobRoot, 'checkpoints')).some((d) => d.startsWith('chk-'))).toBe(true);
    // Nothing of eddy's in the job's working directory, only the job's own output.
    expect(readdirSync(runDir)).toEqual(['out']);
  });

  it('--state-dir (relative) moves checkpoints, savepoints and rescales for one job', async () => {
    const home = tempDir('eddy-home-');
    const env = { ...process.env, EDDY_HOME: home };
    const runDir = tempDir('run-cwd-');
    const job = await startJob(runDir, env, ['--state-dir', 'state']);
    const sp = await eddy(['savepoint', job.id], undefined, env);
    expect(sp.stdout.trim().startsWith(join(runDir, 'state', 'savepoints', 'savepoint-'))).toBe(
      true,
    );
    await stopGracefully(job.child, job.exited);
    expect(readdirSync(join(runDir, 'state', 'checkpoints')).length).toBeGreaterThan(0);
    expect(existsSync(join(home, 'jobs', 'rated-counter'))).toBe(false);
  });

  it('rescale savepoints are kept as checkpoints are (the newest 3), and --resume finds them', async () => {
    const home = tempDir('eddy-home-');
    const env = { ...process.env, EDDY_HOME: home };
    const runDir = tempDir('run-cwd-');
    const job = await startJob(runDir, env);
    for (const p of ['3', '2', '3', '2']) {
      const r = await eddy(['rescale', job.id, p], undefined, env);
      expect(r.code, r.stderr).toBe(0);
    }
    const rescales = join(home, 'jobs', 'rated-counter', 'rescales');
    // Retention runs right after the rescale reports; wait for it rather than for a time.
    for (let i = 0; readdirSync(rescales).length > 3; i++) {
      if (i > 200) throw new Error(`still ${readdirSync(rescales).length} rescale savepoints`);
      await new Promise((r) => setTimeout(r, 25));
    }
    expect(readdirSync(rescales)).toHaveLength(3);
    job.child.kill('SIGKILL');
    await job.exited;
    // The newest of the checkpoints and the rescale savepoints (ids continue across rescales).
    const idOf = (name: string) => Number(/(?:^chk-|-)(\d+)(?:-\d{8}T\d{6})?$/.exec(name)?.[1]);
    const root = join(home, 'jobs', 'rated-counter');
    const candidates = [
      ...readdirSync(join(root, 'checkpoints')).map((d) => join(root, 'checkpoints', d)),
      ...readdirSync(rescales).map((d) => join(rescales, d)),
    ].filter((d) => existsSync(join(d, '_metadata')));
    const newest = candidates.reduce((a, b) => (idOf(basename(b)) > idOf(basename(a)) ? b : a));
    const resumed = spawn(
      process.execPath,
      [EDDY, 'run', JOB, '-p', '2', '--resume', '--', 'out'],
      { cwd: runDir, env, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let err = '';
    const resumedFrom = new Promise<string>((resolve, reject) => {
      resumed.stderr!.on('data', (d) => {
        err += d;
        const m = /resuming from (\S+)/.exec(err);
        if (m) resolve(m[1]!);
      });
      resumed.on('exit', () => reject(new Error(err)));
    });
    const from = await resumedFrom;
    resumed.kill('SIGINT');
    await new Promise((r) => resumed.on('exit', r));
    expect(from).toBe(newest);
  });
});

describe('eddy rescale of a job with no input at the moment', () => {
  it('returns once the job runs at the new parallelism, without waiting for a record', async () => {
    const env = { ...process.env, EDDY_HOME: tempDir('eddy-home-') };
    const job = await startJob(tempDir('run-cwd-'), env, [], IDLE);
    const r = await eddy(['rescale', job.id, '3'], undefined, env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^rescaled 2 -> 3/);
    await waitFor(() => /no record within \d+ ms \(no input\)/.test(job.stderr()), 'the report');
    await stopGracefully(job.child, job.exited);
  });
});

describe('eddy list --prune', () => {
  it('removes the records of jobs no longer running, keeps running ones and all state', async () => {
    const home = tempDir('eddy-home-');
    const env = { ...process.env, EDDY_HOME: home };
    const first = await startJob(tempDir('run-cwd-'), env);
    await stopGracefully(first.child, first.exited);
    const second = await startJob(tempDir('run-cwd-'), env);
    const pruned = await eddy(['list', '--prune', '--json'], undefined, env);
    expect(pruned.code, pruned.stderr).toBe(0);
    expect(pruned.stderr).toMatch(/removed the records of 1 job\(s\)/);
    const listed = JSON.parse(pruned.stdout) as { id: string; status: string }[];
    expect(listed.map((j) => [j.id, j.status])).toEqual([[second.id, 'running']]);
    await stopGracefully(second.child, second.exited);
    expect(readdirSync(join(home, 'jobs', 'rated-counter', 'checkpoints')).length).toBeGreaterThan(
      0,
    );
  });
});

describe('a second Ctrl-C', () => {
  it('says what was lost and where to resume from, and records the job as cancelled', async () => {
    const home = tempDir('eddy-home-');
    const env = { ...process.env, EDDY_HOME: home };
    // Its stop never completes (see the fixture): the second Ctrl-C surely lands mid-stop.
    const job = await startJob(tempDir('run-cwd-'), env, [], STUCK);
    job.child.kill('SIGINT');
    await waitFor(() => job.stderr().includes('stopping:'));
    job.child.kill('SIGINT');
    expect(await job.exited).toBe(130);
    expect(job.stderr()).toMatch(
      /cancelled: the stop was aborted\. Output after checkpoint \d+ was not committed and is discarded; eddy run … --resume .* continues from checkpoint \d+/,
    );
    const listed = JSON.parse((await eddy(['list', '--json'], undefined, env)).stdout) as {
      status: string;
    }[];
    expect(listed.map((j) => j.status)).toEqual(['cancelled']);
  });
});

describe('eddy run warns and refuses before it runs', () => {
  const events = () => writeEventFiles([[{ user: 'a', amount: 1 }]]);

  it('a fresh run into an output directory that holds part files fails, naming it', async () => {
    const input = events();
    const output = join(tempDir(), 'out');
    const args = [
      'run',
      'examples/keyed-sum.ts',
      '-p',
      '1',
      '--',
      '--input',
      input,
      '--output',
      output,
    ];
    expect((await eddy(args)).code).toBe(0);
    const again = await eddy(args);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain(`the output directory ${output} already holds 1 part file(s)`);
    expect(readParts(output)).toHaveLength(1);
  });

  it('a parallelism far above the cores gets a warning; a modest one does not', async () => {
    const cores = availableParallelism();
    const input = events();
    const run = (p: number) =>
      eddy([
        'run',
        'examples/keyed-sum.ts',
        '-p',
        String(p),
        '--max-parallelism',
        '1024',
        '--',
        '--input',
        input,
        '--output',
        join(tempDir(), 'out'),
      ]);
    const high = await run(4 * cores + 1);
    expect(high.code, high.stderr).toBe(0);
    expect(high.stderr).toMatch(
      new RegExp(`warning: parallelism ${4 * cores + 1} is far above this machine's ${cores} core`),
    );
    const modest = await run(cores);
    expect(modest.stderr).not.toMatch(/warning: parallelism/);
  });
});
