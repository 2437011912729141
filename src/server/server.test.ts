/**
 * The REST server over a real socket (port 0) with a fake job: routes, shapes, validation
 * (400 naming the field), 404/405/409/413/415, the token (401), the Host check (403), the
 * port fallback and the dashboard's static files.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { EddyError } from '../core/errors.js';
import { type RestServer, type RestServerOptions, startRestServer } from './server.js';
import { fakeJob, reports } from './server.testkit.js';

const servers: RestServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

const start = async (opts: Partial<RestServerOptions> = {}) => {
  const f = fakeJob();
  const server = await startRestServer({ port: 0, jobs: () => [f.job], ...opts });
  servers.push(server);
  return { ...f, server, url: server.url };
};

const JSON_TYPE = { 'content-type': 'application/json' };

const post = (url: string, body: unknown, headers: Record<string, string> = JSON_TYPE) =>
  fetch(url, {
    method: 'POST',
    headers,
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });

/** A request with headers fetch would not send as given (Host, raw paths). */
const raw = (
  url: string,
  path: string,
  headers: Record<string, string>,
): Promise<{ status: number; body: string }> =>
  new Promise((resolve, reject) => {
    const req = request(`${url}${path}`, { headers }, (res) => {
      let body = '';
      res.on('data', (c) => {
        body += c;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });

const expectError = async (res: Response, status: number, code: string, field?: string) => {
  const body = (await res.json()) as { error: { code: string; message: string; field?: string } };
  expect({ status: res.status, code: body.error.code }, body.error.message).toEqual({
    status,
    code,
  });
  expect(body.error.message.length).toBeGreaterThan(10);
  if (field !== undefined) expect(body.error.field).toBe(field);
  return body.error;
};

describe('REST API routes', () => {
  it('lists the job and describes it by id or unique prefix', async () => {
    const { url, job, monitor } = await start();
    monitor.onMetrics(reports(1, 'operator', [{ recordsIn: 5 }, { recordsIn: 7 }]));
    const list = await fetch(`${url}/api/jobs`);
    expect(list.status).toBe(200);
    expect(list.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await list.json()).toEqual({
      jobs: [
        {
          id: job.id,
          name: 'test-job',
          status: 'running',
          startTime: '2026-01-01T00:00:00.000Z',
          parallelism: 2,
          url,
        },
      ],
    });
    for (const id of [job.id, job.id.slice(0, 8)]) {
      const res = await fetch(`${url}/api/jobs/${id}`);
      expect(res.status).toBe(200);
      const d = (await res.json()) as Record<string, unknown> & {
        vertices: Array<{ uid: string; recordsIn: number }>;
      };
      expect(d).toMatchObject({ id: job.id, maxParallelism: 8, restarts: 0, rescaling: false });
      expect(d.vertices.map((v) => [v.uid, v.recordsIn])).toEqual([
        ['events', 0],
        ['sum', 12],
        ['out', 0],
      ]);
      expect(d.edges).toHaveLength(2);
    }
    await expectError(await fetch(`${url}/api/jobs/nope`), 404, 'EDDY_NOT_FOUND');
    await expectError(await fetch(`${url}/api/jobs/%E0%A4%A`), 404, 'EDDY_NOT_FOUND');
  });

  it('answers checkpoints, key groups and /metrics', async () => {
    const { url, job } = await start();
    const cps = await (await fetch(`${url}/api/jobs/${job.id}/checkpoints`)).json();
    expect(cps).toEqual({
      counts: { completed: 0, failed: 0 },
      history: [],
      latestCompleted: null,
      latestFailure: null,
    });
    const kg = await (await fetch(`${url}/api/jobs/${job.id}/key-groups`)).json();
    expect(kg).toEqual({ checkpointId: null, path: null, operators: [] });
    const metrics = await fetch(`${url}/metrics`);
    expect(metrics.status).toBe(200);
    expect(metrics.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(await metrics.text()).toMatch(/^eddy_restarts_total\{job="test-job",.*\} 0$/m);
  });

  it('refuses unknown routes (404) and wrong methods (405)', async () => {
    const { url, job } = await start();
    await expectError(await fetch(`${url}/api/nothing`), 404, 'EDDY_NOT_FOUND');
    await expectError(await fetch(`${url}/api/jobs/${job.id}/nothing`), 404, 'EDDY_NOT_FOUND');
    await expectError(
      await fetch(`${url}/api/jobs/${job.id}/rescale`),
      405,
      'EDDY_METHOD_NOT_ALLOWED',
    );
    await expectError(await post(`${url}/api/jobs/${job.id}`, {}), 405, 'EDDY_METHOD_NOT_ALLOWED');
    await expectError(await post(`${url}/metrics`, {}), 405, 'EDDY_METHOD_NOT_ALLOWED');
  });

  it('takes a savepoint, rescales and stops with validated bodies', async () => {
    const { url, job, calls } = await start();
    const sp = await post(`${url}/api/jobs/${job.id}/savepoints`, { dir: '/tmp/x' });
    expect(sp.status).toBe(200);
    expect(await sp.json()).toEqual({ path: '/sp//tmp/x' });
    // An empty JSON body is `{}`.
    expect(await (await post(`${url}/api/jobs/${job.id}/savepoints`, '')).json()).toEqual({
      path: '/sp/default',
    });
    const rs = await post(`${url}/api/jobs/${job.id}/rescale`, {
      parallelism: 3,
      operators: { sum: 4 },
    });
    expect(rs.status).toBe(200);
    expect(await rs.json()).toMatchObject({ fromParallelism: 2, toParallelism: 3, pauseMs: 100 });
    const stop = await post(`${url}/api/jobs/${job.id}/stop`, { savepoint: true, drain: true });
    expect(await stop.json()).toEqual({ stopped: true, path: '/sp/final' });
    expect(await (await post(`${url}/api/jobs/${job.id}/stop`, {})).json()).toEqual({
      stopped: true,
    });
    expect(calls).toEqual([
      ['savepoint', '/tmp/x'],
      ['savepoint', undefined],
      ['rescale', 3, { sum: 4 }],
      ['stop', true, undefined, true],
      ['stop', false, undefined, false],
    ]);
  });

  it('refuses bad bodies with 400 naming the field, and nothing reaches the job', async () => {
    const { url, job, calls } = await start();
    const api = `${url}/api/jobs/${job.id}`;
    const cases: Array<[string, unknown, string]> = [
      ['rescale', {}, 'parallelism'],
      ['rescale', { parallelism: 0 }, 'parallelism'],
      ['rescale', { parallelism: 2.5 }, 'parallelism'],
      ['rescale', { parallelism: '3' }, 'parallelism'],
      ['rescale', { operators: [3] }, 'operators'],
      ['rescale', { operators: { sum: -1 } }, 'operators.sum'],
      ['rescale', { parallelsim: 3 }, 'parallelsim'],
      ['savepoints', { dir: '' }, 'dir'],
      ['savepoints', { dir: 7 }, 'dir'],
      ['stop', { savepoint: 'yes' }, 'savepoint'],
      ['stop', { dir: '/x' }, 'dir'],
      ['stop', { drain: 1 }, 'drain'],
      ['stop', '{not json', 'body'],
      ['stop', '[1]', 'body'],
    ];
    for (const [action, body, field] of cases) {
      const res = await post(`${api}/${action}`, body);
      const e = await expectError(res, 400, 'EDDY_INVALID_ARGUMENT', field);
      expect(e.message).toContain(field.split('.').pop());
    }
    expect(calls).toEqual([]);
  });

  it('requires JSON for mutating requests (415) and bounds the body (413)', async () => {
    const { url, job, calls } = await start();
    const api = `${url}/api/jobs/${job.id}`;
    await expectError(
      await post(`${api}/stop`, 'savepoint=true', {}),
      415,
      'EDDY_UNSUPPORTED_MEDIA_TYPE',
    );
    await expectError(
      await post(`${api}/stop`, 'savepoint=true', {
        'content-type': 'application/x-www-form-urlencoded',
      }),
      415,
      'EDDY_UNSUPPORTED_MEDIA_TYPE',
    );
    await expectError(
      await post(`${api}/rescale`, '{"parallelism":3}', { 'content-type': 'text/plain' }),
      415,
      'EDDY_UNSUPPORTED_MEDIA_TYPE',
    );
    expect(
      (await post(`${api}/savepoints`, {}, { 'content-type': 'application/json; charset=utf-8' }))
        .status,
    ).toBe(200);
    const big = JSON.stringify({ dir: 'x'.repeat(70 * 1024) });
    await expectError(await post(`${api}/savepoints`, big), 413, 'EDDY_PAYLOAD_TOO_LARGE');
    expect(calls).toEqual([['savepoint', undefined]]);
  });

  it('answers 409 while a rescale runs, and maps the job errors to their status', async () => {
    const { url, job, state, calls } = await start();
    const api = `${url}/api/jobs/${job.id}`;
    state.rescaling = true;
    await expectError(
      await post(`${api}/rescale`, { parallelism: 3 }),
      409,
      'EDDY_RESCALE_IN_PROGRESS',
    );
    expect(calls).toEqual([]);
    state.rescaling = false;
    state.fail = new EddyError('EDDY_JOB_CONTROL', 'a rescale is already in progress');
    await expectError(await post(`${api}/rescale`, { parallelism: 3 }), 409, 'EDDY_JOB_CONTROL');
    state.fail = new EddyError('EDDY_INVALID_PARALLELISM', 'parallelism 300 is above 128');
    await expectError(
      await post(`${api}/rescale`, { parallelism: 300 }),
      400,
      'EDDY_INVALID_PARALLELISM',
    );
    state.fail = new EddyError('EDDY_CHECKPOINT_FAILED', 'savepoint 3 failed: disk full');
    const e = await expectError(await post(`${api}/savepoints`, {}), 500, 'EDDY_CHECKPOINT_FAILED');
    expect(e.message).toBe('savepoint 3 failed: disk full');
  });

  it('parses the rescale plan query', async () => {
    const { url, job, calls } = await start();
    const plan = `${url}/api/jobs/${job.id}/rescale-plan`;
    expect(await (await fetch(`${plan}?parallelism=3`)).json()).toEqual({ plan: 3, operators: {} });
    expect((await fetch(`${plan}?parallelism=3&operator=sum:4&operator=a:b:1`)).status).toBe(200);
    expect((await fetch(`${plan}?operator=sum:4`)).status).toBe(200);
    expect(calls).toEqual([
      ['rescalePlan', 3, {}],
      ['rescalePlan', 3, { sum: 4, 'a:b': 1 }],
      ['rescalePlan', undefined, { sum: 4 }],
    ]);
    for (const [q, field] of [
      ['', 'parallelism'],
      ['?parallelism=abc', 'parallelism'],
      ['?parallelism=0', 'parallelism'],
      ['?parallelism=1&parallelism=2', 'parallelism'],
      ['?operator=sum', 'operator'],
      ['?operator=sum:0', 'operator'],
      ['?operator=sum:1&operator=sum:2', 'operator'],
      ['?p=3', 'p'],
    ] as const) {
      await expectError(await fetch(`${plan}${q}`), 400, 'EDDY_INVALID_ARGUMENT', field);
    }
    expect(calls).toHaveLength(3);
  });
});

describe('REST API security', () => {
  it('refuses a non-loopback host without a token, before listening', async () => {
    await expect(startRestServer({ host: '0.0.0.0', port: 0, jobs: () => [] })).rejects.toThrow(
      /--ui-host 0\.0\.0\.0 .*EDDY_UI_TOKEN/,
    );
    await expect(
      startRestServer({ host: '127.0.0.1', port: 0, token: 'has space', jobs: () => [] }),
    ).rejects.toThrow(/no whitespace/);
  });

  it('with a token: 401 without or with a wrong bearer token, on the API and /metrics', async () => {
    const { url, job } = await start({ token: 's3cret-token' });
    for (const path of ['/api/jobs', `/api/jobs/${job.id}`, '/metrics']) {
      const res = await fetch(`${url}${path}`);
      expect(res.headers.get('www-authenticate')).toBe('Bearer realm="eddy"');
      await expectError(res, 401, 'EDDY_UNAUTHORIZED');
      await expectError(
        await fetch(`${url}${path}`, { headers: { authorization: 'Bearer wrong' } }),
        401,
        'EDDY_UNAUTHORIZED',
      );
      await expectError(
        await fetch(`${url}${path}`, { headers: { authorization: 'Basic s3cret-token' } }),
        401,
        'EDDY_UNAUTHORIZED',
      );
      const ok = await fetch(`${url}${path}`, {
        headers: { authorization: 'Bearer s3cret-token' },
      });
      expect(ok.status).toBe(200);
    }
    // A mutating request without the token never reaches validation or the job.
    await expectError(await post(`${url}/api/jobs/${job.id}/stop`, {}), 401, 'EDDY_UNAUTHORIZED');
    // The dashboard's page loads without it (it then asks for the token).
    expect((await fetch(`${url}/`)).status).toBe(200);
  });

  it('a token also allows another address', async () => {
    const { url } = await start({ host: '0.0.0.0', token: 't' });
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const res = await fetch(`${url}/api/jobs`, { headers: { authorization: 'Bearer t' } });
    expect(res.status).toBe(200);
  });

  it('without a token, refuses requests for other host names (DNS rebinding)', async () => {
    const { url } = await start();
    const evil = await raw(url, '/api/jobs', { host: 'evil.example:8081' });
    expect(evil.status).toBe(403);
    expect(JSON.parse(evil.body).error.code).toBe('EDDY_FORBIDDEN_HOST');
    for (const host of ['localhost:1', '127.0.0.1', '[::1]:8081']) {
      expect((await raw(url, '/api/jobs', { host })).status).toBe(200);
    }
  });
});

describe('REST server', () => {
  it('takes the next port when the asked one is taken', async () => {
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const taken = (blocker.address() as { port: number }).port;
    try {
      const { server } = await start({ port: taken });
      expect(server.port).toBeGreaterThan(taken);
      expect(server.url).toBe(`http://127.0.0.1:${server.port}`);
    } finally {
      blocker.close();
    }
  });

  it('serves the dashboard files, and says so when it is not built', async () => {
    const missing = await start({ uiDir: join(tmpdir(), 'no-such-eddy-ui') });
    const page = await fetch(`${missing.url}/`);
    expect(page.status).toBe(200);
    expect(await page.text()).toMatch(/dashboard is not built/);
    expect((await fetch(`${missing.url}/app.js`)).status).toBe(404);

    const dir = join(tmpdir(), `eddy-ui-${process.pid}-${Date.now()}`);
    mkdirSync(join(dir, 'assets'), { recursive: true });
    writeFileSync(join(dir, 'index.html'), '<!doctype html><title>eddy</title>');
    writeFileSync(join(dir, 'assets', 'app.js'), 'console.log(1)');
    writeFileSync(join(tmpdir(), 'eddy-secret.txt'), 'TOP-SECRET-CONTENT');
    const { url } = await start({ uiDir: dir });
    const index = await fetch(`${url}/`);
    expect(index.headers.get('content-type')).toMatch(/^text\/html/);
    expect(await index.text()).toContain('<title>eddy</title>');
    const js = await fetch(`${url}/assets/app.js`);
    expect(js.headers.get('content-type')).toMatch(/^text\/javascript/);
    expect(await js.text()).toBe('console.log(1)');
    // Client-side routes get index.html; missing assets and escapes get 404.
    expect(await (await fetch(`${url}/jobs/x`)).text()).toContain('<title>eddy</title>');
    expect((await fetch(`${url}/assets/missing.js`)).status).toBe(404);
    for (const path of [
      '/../eddy-secret.txt',
      '/%2e%2e/eddy-secret.txt',
      '/..%2feddy-secret.txt',
    ]) {
      const r = await raw(url, path, {});
      expect(r.status, path).toBe(404);
      expect(r.body).not.toContain('TOP-SECRET-CONTENT');
    }
    await expectError(await post(`${url}/`, {}), 405, 'EDDY_METHOD_NOT_ALLOWED');
  });
});
