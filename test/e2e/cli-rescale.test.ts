/**
 * `eddy rescale` through the real CLI: every request the running job cannot take is refused
 * before anything changes (no thread started, nothing stopped), with exit 1 and a message
 * naming what was wrong; one that changes nothing is answered as such with exit 0; and a
 * rescale whose new generation fails after the stop makes `eddy run` exit non-zero with the
 * cause instead of hanging. Two long-running jobs serve all the refusal checks.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eddy, type RunResult, readParts, runningJobId, tempDir } from './helpers.js';

interface Running {
  readonly env: NodeJS.ProcessEnv;
  readonly output: string;
  readonly done: Promise<RunResult>;
  id: string;
}

/** Starts word-count at p=2, slow enough to run until stopped. */
const startWordCount = (extra: string[]): Running => {
  const env = { ...process.env, EDDY_HOME: tempDir('eddy-home-') };
  const output = join(tempDir(), 'out');
  const done = eddy(
    [
      'run',
      'examples/word-count.ts',
      '-p',
      '2',
      ...extra,
      '--no-progress',
      '--',
      '--output',
      output,
      '--lines',
      '1000000',
      '--rate',
      '300',
    ],
    undefined,
    env,
  );
  return { env, output, done, id: '' };
};

const cli = (job: Pick<Running, 'env'>, args: string[]) => eddy(args, undefined, job.env);

/** `eddy list` shows the job running at parallelism 2, with no savepoint taken. */
const expectUntouched = async (job: Running) => {
  const list = JSON.parse((await cli(job, ['list', '--json'])).stdout) as {
    id: string;
    status: string;
    parallelism: number;
    lastSavepoint?: string;
  }[];
  expect(list).toHaveLength(1);
  expect(list[0]).toMatchObject({ id: job.id, status: 'running', parallelism: 2 });
  expect(list[0]!.lastSavepoint).toBeUndefined();
};

const ALL_FOUR =
  "'generator-source' (uid sentences), 'flatMap' (uid flatmap-1), 'reduce' (uid counts), 'file-sink' (uid out)";

describe('eddy rescale refuses what the running job cannot take, and changes nothing', () => {
  // capped: --max-parallelism 4; free: the default maxParallelism of p=2 (128).
  let capped: Running;
  let free: Running;

  beforeAll(async () => {
    capped = startWordCount(['--max-parallelism', '4']);
    free = startWordCount([]);
    [capped.id, free.id] = await Promise.all([runningJobId(capped.env), runningJobId(free.env)]);
  });

  afterAll(async () => {
    // Never leave a job running if a test failed before the final stop.
    for (const job of [capped, free]) {
      if (job) await cli(job, ['stop', job.id]);
    }
  });

  it('a parallelism above maxParallelism: exit 1 naming the operators and both numbers', async () => {
    const r = await cli(capped, ['rescale', capped.id, '5']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      `eddy: error [EDDY_INVALID_PARALLELISM]: rescale refused, the job runs on unchanged: parallelism 5 exceeds maxParallelism 4 of operators ${ALL_FOUR}; max parallelism is fixed once a job has state\n`,
    );
    await expectUntouched(capped);
  });

  it('one operator above its maxParallelism (--operator counts=5): names that operator', async () => {
    const r = await cli(capped, ['rescale', capped.id, '--operator', 'counts=5']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      "rescale refused, the job runs on unchanged: parallelism 5 exceeds maxParallelism 4 of operator 'reduce' (uid counts); max parallelism is fixed once a job has state\n",
    );
    await expectUntouched(capped);
  });

  it('500 with maxParallelism 128: refused at once, before any worker thread starts', async () => {
    const started = performance.now();
    const r = await cli(free, ['rescale', free.id, '500']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      `[EDDY_INVALID_PARALLELISM]: rescale refused, the job runs on unchanged: parallelism 500 exceeds maxParallelism 128 of operators ${ALL_FOUR}; max parallelism is fixed once a job has state\n`,
    );
    // Before: 500 threads' worth of prewarming (~20 s) and then a failed job.
    expect(performance.now() - started).toBeLessThan(5000);
    await expectUntouched(free);
  });

  it('an unknown uid (--operator bogus=3): exit 1 listing the uids the job has', async () => {
    const r = await cli(capped, ['rescale', capped.id, '--operator', 'bogus=3']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      "eddy: error [EDDY_INVALID_ARGUMENT]: rescale refused, the job runs on unchanged: job word-count has no operator with uid 'bogus': its operators are sentences ('generator-source'), flatmap-1 ('flatMap'), counts ('reduce'), out ('file-sink')\n",
    );
    await expectUntouched(capped);
  });

  it.each([
    [
      'count=x',
      "--operator 'count=x': the parallelism of operator 'count' must be an integer >= 1, got 'x'",
    ],
    [
      'count',
      "--operator 'count' is not uid=N: give the operator's uid and its new parallelism, e.g. --operator count=3",
    ],
    ['=3', "--operator '=3' has no uid before '=': expected uid=N, e.g. --operator counts=3"],
    [
      'count=0',
      "--operator 'count=0': the parallelism of operator 'count' must be an integer >= 1, got '0'",
    ],
    [
      'count=',
      "--operator 'count=': the parallelism of operator 'count' must be an integer >= 1, got ''",
    ],
  ])('a malformed --operator %j: exit 1 naming the bad value', async (spec, message) => {
    const r = await cli(capped, ['rescale', capped.id, '--operator', spec]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`eddy: error [EDDY_INVALID_ARGUMENT]: ${message}\n`);
    expect(r.stdout).toBe('');
  });

  it('the same uid twice: exit 1', async () => {
    const r = await cli(capped, [
      'rescale',
      capped.id,
      '--operator',
      'counts=2',
      '--operator',
      'counts=3',
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      "eddy: error [EDDY_INVALID_ARGUMENT]: --operator gives operator 'counts' twice (2 and 3): give it once\n",
    );
    await expectUntouched(capped);
  });

  it('the same parallelism (2, or --operator counts=2): says so, exit 0, no restart', async () => {
    for (const args of [['2'], ['--operator', 'counts=2']]) {
      const r = await cli(capped, ['rescale', capped.id, ...args]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toBe(
        `nothing to rescale: job ${capped.id} (word-count) already runs at that parallelism (sentences=2, flatmap-1=2, counts=2, out=2); it was left running as it was\n`,
      );
    }
    await expectUntouched(capped);
  });

  it('after all that, a final stop: both jobs stop cleanly, never restarted, output exact', async () => {
    for (const job of [capped, free]) {
      const stop = await cli(job, ['stop', job.id]);
      expect(stop.code, stop.stderr).toBe(0);
      const run = await job.done;
      expect(run.code, run.stderr).toBe(0);
      expect(run.stdout).toBe('');
      // No rescale ever started: no threads prewarmed, no savepoint, no restore.
      expect(run.stderr).not.toMatch(/rescaling:|savepoint|restored/);
      expect(run.stderr).toMatch(/\nstopped in \d+\.\d\d s: [\d,]+ records read by sources/);
      // Every word counted exactly once per occurrence: each word's counts are 1..n, once each.
      const counts = new Map<string, number[]>();
      for (const line of readParts(job.output)) {
        const { word, count } = JSON.parse(line) as { word: string; count: number };
        counts.set(word, [...(counts.get(word) ?? []), count]);
      }
      expect(counts.size).toBeGreaterThan(0);
      for (const [, seen] of counts) {
        expect([...seen].sort((a, b) => a - b)).toEqual(seen.map((_, i) => i + 1));
      }
    }
    const refusals = (await capped.done).stderr.match(/rescale refused/g) ?? [];
    expect(refusals).toHaveLength(3);
    expect((await capped.done).stderr).toContain(
      'rescale: nothing to do, the job already runs at sentences=2, flatmap-1=2, counts=2, out=2\n',
    );
  });
});

describe('a rescale whose new generation fails after the stop', () => {
  it('eddy run exits 1 with the cause (no hang); eddy rescale and eddy list say so', async () => {
    const env = { ...process.env, EDDY_HOME: tempDir('eddy-home-') };
    const job = { env, output: join(tempDir(), 'out'), id: '' };
    const done = eddy(
      ['run', 'test/e2e/fixtures/fails-at-three.ts', '-p', '2', '--no-progress', '--', job.output],
      undefined,
      env,
    );
    job.id = await runningJobId(env);
    const r = await cli(job, ['rescale', job.id, '3']);
    expect(r.code).toBe(1);
    // Whichever of the 3 new subtasks opens first fails.
    const cause =
      /operator 'process' \(uid gate\), subtask \d\/3 failed in open: this job cannot open at parallelism 3 \(test fixture\)/;
    expect(r.stderr).toMatch(cause);
    // Before: the prewarmed threads kept `eddy run` alive (and busy) until Ctrl-C.
    const run = await Promise.race([
      done,
      new Promise<undefined>((res) => setTimeout(() => res(undefined), 20_000)),
    ]);
    expect(run, 'eddy run still running 20 s after its rescale failed').toBeDefined();
    expect(run!.code).toBe(1);
    expect(run!.stderr).toMatch(
      new RegExp(`eddy: error \\[EDDY_USER_FUNCTION\\]: ${cause.source}`),
    );
    expect(run!.stderr).toMatch(
      /rescale failed after the job stopped; its state is in the savepoint \S+savepoint-fails-at-three-1-\S+ \(eddy run … --from-savepoint \S+ starts from it\)\n/,
    );
    const list = JSON.parse((await cli(job, ['list', '--json'])).stdout) as { status: string }[];
    expect(list.map((j) => j.status)).toEqual(['failed']);
  });
});
