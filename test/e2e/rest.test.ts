/**
 * The REST API of a running job, end to end: `eddy run examples/keyed-sum.ts --ui-port 0` with
 * a token, its URL from `eddy list --json`, the documented shapes (docs/REST.md), /metrics as
 * strict Prometheus text whose record counters rise, the rescale plan equal to
 * `eddy inspect --plan 3 --json`, a rescale 2 -> 3 started over REST (a second one meanwhile
 * gets 409), and output still exact at the end. Also: a non-loopback --ui-host without a token
 * refuses to start.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  eddy,
  readParts,
  referenceSums,
  type SumEvent,
  sorted,
  tempDir,
  waitUntil,
  writeEventFiles,
} from './helpers.js';

const TOKEN = 'e2e-token-0123456789';
const AUTH = { authorization: `Bearer ${TOKEN}` };
const JSON_POST = { ...AUTH, 'content-type': 'application/json' };

/** 20,000 events at 2,000/s: about 10 s, long enough to look, plan and rescale while it runs. */
const data: SumEvent[][] = Array.from({ length: 4 }, (_, f) =>
  Array.from({ length: 5000 }, (_, i) => ({ user: `f${f}-u${(i * 7) % 41}`, amount: (i % 9) + 1 })),
);

interface Listed {
  id: string;
  status: string;
  url?: string;
}

/** Polls `eddy list --json` until the job runs and has a url; returns a function to give up. */
const pollListed = (env: NodeJS.ProcessEnv, found: (j: Listed) => void) => {
  let stop = false;
  void (async () => {
    while (!stop) {
      const r = await eddy(['list', '--json'], undefined, env);
      const job = (JSON.parse(r.stdout || '[]') as Listed[]).find(
        (j) => j.status === 'running' && j.url,
      );
      if (job) {
        found(job);
        return;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  return () => {
    stop = true;
  };
};

const getJson = async <T = Record<string, unknown>>(url: string): Promise<T> => {
  const res = await fetch(url, { headers: AUTH });
  const body = await res.text();
  expect(res.status, `${url}: ${body}`).toBe(200);
  return JSON.parse(body) as T;
};

const post = async (url: string, body: unknown) => {
  const res = await fetch(url, { method: 'POST', headers: JSON_POST, body: JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
};

/**
 * Parses the Prometheus text format strictly: every line is a HELP, a TYPE or a sample of a
 * declared metric; returns the samples.
 */
const parsePrometheus = (text: string) => {
  const types = new Map<string, string>();
  const samples: Array<{ name: string; labels: Record<string, string>; value: number }> = [];
  const sampleLine =
    /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{((?:[a-zA-Z_][a-zA-Z0-9_]*="(?:\\.|[^"\\])*",?)*)\})? (-?(?:\d+(?:\.\d+)?(?:e[+-]?\d+)?|NaN|\+Inf|-Inf))$/;
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const help = /^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) .+$/.exec(line);
    if (help) continue;
    const type =
      /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/.exec(line);
    if (type) {
      types.set(type[1]!, type[2]!);
      continue;
    }
    const m = sampleLine.exec(line);
    expect(m, `not a Prometheus sample line: ${line}`).not.toBeNull();
    const name = m![1]!;
    const base = name.replace(/_(bucket|sum|count)$/, '');
    expect(types.has(name) || types.get(base) === 'histogram', `no TYPE for ${name}`).toBe(true);
    const labels = Object.fromEntries(
      [...(m![2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:\\.|[^"\\])*)"/g)].map((l) => [
        l[1]!,
        l[2]!,
      ]),
    );
    samples.push({ name, labels, value: Number(m![3]) });
  }
  for (const [name, type] of types) {
    expect(name.startsWith('eddy_'), name).toBe(true);
    if (type === 'counter') expect(name.endsWith('_total'), name).toBe(true);
  }
  return samples;
};

const recordsInTotal = async (url: string): Promise<number> => {
  const res = await fetch(`${url}/metrics`, { headers: AUTH });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return parsePrometheus(await res.text())
    .filter((s) => s.name === 'eddy_records_in_total')
    .reduce((n, s) => n + s.value, 0);
};

describe('REST API of a running job', () => {
  it('serves the documented shapes, /metrics, the plan and a rescale with exact output', async () => {
    const env = {
      ...process.env,
      EDDY_HOME: tempDir('eddy-home-'),
      EDDY_UI_TOKEN: TOKEN,
      // The first snapshot (the savepoint below) is aborted: a failure to see in the history.
      EDDY_FAULTS: JSON.stringify([{ point: 'abort-checkpoint', action: 'throw', hit: 1 }]),
    };
    const input = writeEventFiles(data);
    const output = join(tempDir(), 'out');
    const run = eddy(
      [
        'run',
        'examples/keyed-sum.ts',
        '-p',
        '2',
        '--ui-port',
        '0',
        // Checkpointing on (restore plans, exactly-once output), but no periodic checkpoint:
        // the savepoint below stays the latest snapshot, so its plan can be compared.
        '--checkpoint-interval',
        '600000',
        '--no-progress',
        '--',
        '--input',
        input,
        '--output',
        output,
        '--rate',
        '2000',
      ],
      undefined,
      env,
    );
    let listed: Listed | undefined;
    const stopPolling = pollListed(env, (j) => {
      listed = j;
    });
    await waitUntil(() => listed !== undefined, 'the job in eddy list --json with its url', 30_000);
    stopPolling();
    const { id, url } = listed as Required<Listed>;
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const api = `${url}/api/jobs/${id}`;

    // Security: the token is required everywhere in the API; POSTs need JSON.
    expect((await fetch(`${url}/api/jobs`)).status).toBe(401);
    expect((await fetch(`${url}/metrics`)).status).toBe(401);
    const form = await fetch(`${api}/stop`, {
      method: 'POST',
      headers: { ...AUTH, 'content-type': 'application/x-www-form-urlencoded' },
      body: 'savepoint=true',
    });
    expect(form.status).toBe(415);
    const bad = await post(`${api}/rescale`, { parallelism: 0 });
    expect(bad.status).toBe(400);
    expect(bad.body).toMatchObject({
      error: { code: 'EDDY_INVALID_ARGUMENT', field: 'parallelism' },
    });

    // GET /api/jobs
    const jobs = await getJson<{ jobs: Array<Record<string, unknown>> }>(`${url}/api/jobs`);
    expect(jobs.jobs).toEqual([
      {
        id,
        name: 'keyed-sum',
        status: 'running',
        startTime: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
        parallelism: 2,
        url,
      },
    ]);

    // GET /api/jobs/:id, once records flow.
    type Details = {
      parallelism: number;
      rescaling: boolean;
      lastRescale: Record<string, unknown> | null;
      vertices: Array<{
        uid: string;
        parallelism: number;
        recordsOutPerSecond: number;
        subtasks: Array<Record<string, unknown>>;
      }>;
      edges: unknown[];
    };
    let details: Details | undefined;
    for (;;) {
      details = await getJson<Details>(api);
      if (details.vertices.find((v) => v.uid === 'events')!.recordsOutPerSecond > 0) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(details).toMatchObject({
      id,
      name: 'keyed-sum',
      status: 'running',
      parallelism: 2,
      maxParallelism: 128,
      restarts: 0,
      rescaling: false,
      lastRescale: null,
      metricsTime: expect.stringMatching(/^\d{4}-/),
    });
    expect(details.vertices.map((v) => [v.uid, v.parallelism])).toEqual([
      ['events', 2],
      ['running-sum', 2],
      ['totals', 2],
    ]);
    expect(details.edges).toEqual([
      { from: 'events', to: 'running-sum', partitioning: 'hash' },
      { from: 'running-sum', to: 'totals', partitioning: 'forward' },
    ]);
    const sum = details.vertices.find((v) => v.uid === 'running-sum')!;
    expect(sum).toMatchObject({ kind: 'operator', keyed: true, maxParallelism: 128 });
    expect(sum.subtasks.map((s) => s.keyGroupRange)).toEqual([
      [0, 63],
      [64, 127],
    ]);
    for (const v of details.vertices) {
      for (const s of v.subtasks) {
        expect(s).toEqual({
          index: expect.any(Number),
          worker: expect.any(Number),
          recordsIn: expect.any(Number),
          recordsOut: expect.any(Number),
          recordsInPerSecond: expect.any(Number),
          recordsOutPerSecond: expect.any(Number),
          backpressure: expect.any(Number),
          watermark: null, // keyed-sum has no event time
          keyGroupRange: v.uid === 'running-sum' ? expect.any(Array) : null,
          stateBytes: null, // no snapshot yet
        });
        expect(s.backpressure as number).toBeGreaterThanOrEqual(0);
        expect(s.backpressure as number).toBeLessThanOrEqual(1);
      }
    }

    // /metrics parses, and the records counter rises between two scrapes.
    const first = await recordsInTotal(url);
    let later = first;
    for (let i = 0; i < 100 && later <= first; i++) {
      await new Promise((r) => setTimeout(r, 100));
      later = await recordsInTotal(url);
    }
    expect(later).toBeGreaterThan(first);

    // Before any snapshot there is nothing to plan from.
    const noPlan = await fetch(`${api}/rescale-plan?parallelism=3`, { headers: AUTH });
    expect(noPlan.status).toBe(409);
    // A savepoint that fails (injected), then one that completes; the history shows both.
    const failed = await post(`${api}/savepoints`, {});
    expect(failed.status).toBe(500);
    expect(failed.body).toMatchObject({
      error: { code: 'EDDY_CHECKPOINT_FAILED', message: expect.stringMatching(/injected/) },
    });
    const sp = await post(`${api}/savepoints`, {});
    expect(sp.status, JSON.stringify(sp.body)).toBe(200);
    const spPath = sp.body.path as string;
    expect(spPath).toMatch(/savepoint-keyed-sum-/);
    const history = await getJson<{
      counts: { completed: number; failed: number };
      history: Array<Record<string, unknown>>;
      latestFailure: unknown;
    }>(`${api}/checkpoints`);
    expect(history.counts).toEqual({ completed: 1, failed: 1 });
    expect(history.latestFailure).toMatchObject({
      kind: 'savepoint',
      status: 'failed',
      path: null,
      cause: expect.stringMatching(/^savepoint \d+ failed: .*injected/),
    });
    expect(history.history[0]).toEqual({
      id: expect.any(Number),
      kind: 'savepoint',
      status: 'completed',
      triggerTime: expect.stringMatching(/^\d{4}-/),
      durationMs: expect.any(Number),
      syncMs: expect.any(Number),
      asyncMs: expect.any(Number),
      bytes: expect.any(Number),
      path: spPath,
    });
    const plan = await getJson(`${api}/rescale-plan?parallelism=3`);
    const inspect = await eddy(['inspect', spPath, '--plan', '3', '--json'], undefined, env);
    expect(inspect.code, inspect.stderr).toBe(0);
    expect(plan).toEqual(JSON.parse(inspect.stdout));
    const badPlan = await fetch(`${api}/rescale-plan?parallelism=3&operator=nope:2`, {
      headers: AUTH,
    });
    expect(badPlan.status).toBe(400);
    const sized = await getJson<Details>(api);
    const sizedSum = sized.vertices.find((v) => v.uid === 'running-sum')!;
    expect(sizedSum.subtasks.every((s) => (s.stateBytes as number) > 0)).toBe(true);

    // Rescale 2 -> 3 over REST; a second one while it runs gets 409.
    const rescale = post(`${api}/rescale`, { parallelism: 3 });
    let rescaling = false;
    for (let i = 0; i < 300 && !rescaling; i++) {
      rescaling = (await getJson<Details>(api)).rescaling;
      if (!rescaling) await new Promise((r) => setTimeout(r, 20));
    }
    expect(rescaling).toBe(true);
    const second = await post(`${api}/rescale`, { parallelism: 4 });
    expect(second.status).toBe(409);
    expect(second.body).toMatchObject({ error: { code: 'EDDY_RESCALE_IN_PROGRESS' } });
    const report = await rescale;
    expect(report.status, JSON.stringify(report.body)).toBe(200);
    expect(report.body).toMatchObject({
      fromParallelism: 2,
      toParallelism: 3,
      pauseMs: expect.any(Number),
      savepoint: expect.any(String),
    });
    const after = await getJson<Details>(api);
    expect(after.parallelism).toBe(3);
    expect(after.rescaling).toBe(false);
    expect(after.lastRescale).toMatchObject({ fromParallelism: 2, toParallelism: 3 });
    expect(after.vertices.map((v) => v.subtasks.length)).toEqual([3, 3, 3]);
    expect(after.vertices[1]!.subtasks.map((s) => s.keyGroupRange)).toEqual([
      [0, 42],
      [43, 85],
      [86, 127],
    ]);
    const metrics = parsePrometheus(
      await (await fetch(`${url}/metrics`, { headers: AUTH })).text(),
    );
    const pause = metrics.find((s) => s.name === 'eddy_last_rescale_pause_seconds');
    expect(pause?.value).toBeCloseTo((report.body.pauseMs as number) / 1000, 3);
    expect(metrics.find((s) => s.name === 'eddy_rescales_total')?.value).toBe(1);

    // The job finishes on its own; output is exact over both generations.
    const done = await run;
    expect(done.code, done.stderr).toBe(0);
    expect(done.stderr).toContain(`dashboard and REST API: ${url}`);
    expect(sorted(readParts(output))).toEqual(sorted(referenceSums(data)));
    // The server went with the job, and its url with its registry entry.
    await expect(fetch(`${url}/api/jobs`, { headers: AUTH })).rejects.toThrow();
    const ended = (
      JSON.parse((await eddy(['list', '--json'], undefined, env)).stdout) as Listed[]
    ).find((j) => j.id === id);
    expect(ended).toMatchObject({ status: 'finished' });
    expect(ended?.url).toBeUndefined();
  });

  it('refuses to start on another address without a token, saying why', async () => {
    const env: NodeJS.ProcessEnv = { ...process.env, EDDY_HOME: tempDir('eddy-home-') };
    delete env.EDDY_UI_TOKEN;
    const r = await eddy(
      [
        'run',
        'examples/keyed-sum.ts',
        '--ui-host',
        '0.0.0.0',
        '--',
        '--input',
        tempDir(),
        '--output',
        join(tempDir(), 'out'),
      ],
      undefined,
      env,
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/--ui-host 0\.0\.0\.0 .*EDDY_UI_TOKEN/);
    expect(r.stderr).not.toMatch(/started/);
  });
});
