/**
 * The health port (`--health-port`): liveness, readiness that follows `ready()`, and 404s
 * for anything else, over real HTTP on 127.0.0.1.
 */
import type { Server } from 'node:http';
import { createServer as netServer } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { startHealthServer } from './health.js';

let server: Server | undefined;
afterEach(async () => {
  await new Promise((r) => (server ? server.close(r) : r(undefined)));
  server = undefined;
});

const start = async (ready: () => boolean): Promise<string> => {
  server = await startHealthServer('127.0.0.1', 0, ready);
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return `http://127.0.0.1:${address.port}`;
};

const get = async (url: string, method = 'GET') => {
  const r = await fetch(url, { method });
  return { status: r.status, type: r.headers.get('content-type'), body: await r.text() };
};

describe('startHealthServer', () => {
  it('/healthz answers 200 whether ready or not', async () => {
    const base = await start(() => false);
    expect(await get(`${base}/healthz`)).toEqual({
      status: 200,
      type: 'text/plain',
      body: 'ok\n',
    });
  });

  it('/readyz answers 503 until ready() says yes, then 200, and follows it back', async () => {
    let ready = false;
    let asked = 0;
    const base = await start(() => {
      asked++;
      return ready;
    });
    expect(await get(`${base}/readyz`)).toEqual({
      status: 503,
      type: 'text/plain',
      body: 'not ready\n',
    });
    ready = true;
    expect(await get(`${base}/readyz`)).toEqual({ status: 200, type: 'text/plain', body: 'ok\n' });
    ready = false;
    expect((await get(`${base}/readyz`)).status).toBe(503);
    // Asked on every probe, not cached.
    expect(asked).toBe(3);
  });

  it('ignores the query string', async () => {
    const base = await start(() => true);
    expect((await get(`${base}/readyz?verbose=1`)).status).toBe(200);
    expect((await get(`${base}/healthz?x`)).status).toBe(200);
  });

  it.each([
    ['/', 'GET'],
    ['/health', 'GET'],
    ['/healthz/', 'GET'],
    ['/readyz/x', 'GET'],
    ['/metrics', 'GET'],
    ['/healthz', 'POST'],
    ['/readyz', 'DELETE'],
  ])('answers 404 to %s (%s), naming the probes', async (path, method) => {
    const base = await start(() => true);
    const r = await get(`${base}${path}`, method);
    expect(r.status).toBe(404);
    expect(r.body).toBe('not found: GET /healthz or /readyz\n');
  });

  it('rejects when the port is taken', async () => {
    const taken = netServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    const port = (taken.address() as { port: number }).port;
    try {
      await expect(startHealthServer('127.0.0.1', port, () => true)).rejects.toMatchObject({
        code: 'EADDRINUSE',
      });
    } finally {
      await new Promise((r) => taken.close(r));
    }
  });
});
