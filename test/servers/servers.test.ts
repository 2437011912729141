/**
 * The real-server harness: each server starts, does a real round trip with the real client,
 * keeps its data across stop()/start() on the same port, and destroy() removes its directory.
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AckPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { Redis } from 'ioredis';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { startServer } from './common.js';
import {
  type ServerHandle,
  ServerStartError,
  startNats,
  startPostgres,
  startRedis,
} from './index.js';

/** Pids of the processes whose command line mentions `text` (Linux /proc). */
const pidsMentioning = (text: string): number[] =>
  readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .filter((d) => {
      try {
        return readFileSync(`/proc/${d}/cmdline`, 'utf8').includes(text);
      } catch {
        return false;
      }
    })
    .map(Number);

/** Waits (polling) until `cond` holds or `ms` pass; returns whether it held. */
const eventually = async (cond: () => boolean, ms: number) => {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 25));
  }
  return true;
};

/** Runs `body` with a fresh server and always destroys it (the directory is checked gone). */
const withServer = async (
  start: () => Promise<ServerHandle>,
  body: (h: ServerHandle) => Promise<void>,
) => {
  const h = await start();
  try {
    expect(existsSync(h.dataDir)).toBe(true);
    await body(h);
  } finally {
    await h.destroy();
  }
  expect(existsSync(h.dataDir)).toBe(false);
};

describe('test servers', () => {
  it('NATS: JetStream publish/consume, the stream survives stop()/start() on the same port', () =>
    withServer(startNats, async (h) => {
      expect(h.url).toBe(`nats://127.0.0.1:${h.port}`);
      let nc = await connect({ servers: h.url });
      const jsm = await jetstreamManager(nc);
      await jsm.streams.add({ name: 'ORDERS', subjects: ['orders.>'] });
      await jsm.consumers.add('ORDERS', { durable_name: 'c1', ack_policy: AckPolicy.Explicit });
      const js = jetstream(nc);
      const ack = await js.publish('orders.new', 'first');
      expect(ack.seq).toBe(1);
      const consumer = await js.consumers.get('ORDERS', 'c1');
      const msg = await consumer.next({ expires: 5000 });
      expect(msg?.string()).toBe('first');
      await msg?.ackAck();
      await nc.close();

      await h.stop();
      await h.start();
      expect(h.url).toBe(`nats://127.0.0.1:${h.port}`);
      nc = await connect({ servers: h.url });
      const after = await jetstreamManager(nc);
      const stored = await after.streams.getMessage('ORDERS', { seq: 1 });
      expect(stored?.string()).toBe('first');
      await nc.close();
    }));

  it('Redis: XADD/XRANGE, the entry survives stop()/start()', () =>
    withServer(startRedis, async (h) => {
      expect(h.url).toBe(`redis://127.0.0.1:${h.port}`);
      let r = new Redis(h.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
      await r.connect();
      const id = await r.xadd('events', '*', 'k', 'v1');
      expect(await r.xrange('events', '-', '+')).toEqual([[id, ['k', 'v1']]]);
      r.disconnect();

      await h.stop();
      await h.start();
      r = new Redis(h.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
      await r.connect();
      expect(await r.xrange('events', '-', '+')).toEqual([[id, ['k', 'v1']]]);
      r.disconnect();
    }));

  it('PostgreSQL: a table, a prepared transaction committed, rows survive stop()/start()', () =>
    withServer(startPostgres, async (h) => {
      expect(h.url).toBe(`postgres://postgres:postgres@127.0.0.1:${h.port}/postgres`);
      let c = new pg.Client({ connectionString: h.url });
      await c.connect();
      const su = await c.query('SELECT rolsuper FROM pg_roles WHERE rolname = current_user');
      expect(su.rows).toEqual([{ rolsuper: true }]);
      const mpt = await c.query('SHOW max_prepared_transactions');
      expect(mpt.rows[0].max_prepared_transactions).toBe('64');
      await c.query('CREATE TABLE t (id int PRIMARY KEY, v text)');
      await c.query(`INSERT INTO t VALUES (1, 'one')`);
      await c.query('BEGIN');
      await c.query(`INSERT INTO t VALUES (2, 'two')`);
      await c.query(`PREPARE TRANSACTION 'eddy-test-1'`);
      await c.query(`COMMIT PREPARED 'eddy-test-1'`);
      expect((await c.query('SELECT id, v FROM t ORDER BY id')).rows).toEqual([
        { id: 1, v: 'one' },
        { id: 2, v: 'two' },
      ]);
      await c.end();

      await h.stop();
      await h.start();
      c = new pg.Client({ connectionString: h.url });
      await c.connect();
      expect((await c.query('SELECT id, v FROM t ORDER BY id')).rows).toEqual([
        { id: 1, v: 'one' },
        { id: 2, v: 'two' },
      ]);
      await c.end();
    }));

  it('a server that cannot start fails with what failed and its last log lines', async () => {
    const err = await startPostgres({ settings: { shared_buffers: 'lots' } }).catch((e) => e);
    expect(err).toBeInstanceOf(ServerStartError);
    expect(err.message).toMatch(
      /^postgres on 127\.0\.0\.1:\d+ did not become ready: the process exited/,
    );
    expect(err.message).toContain('invalid value for parameter "shared_buffers"');
  });

  it('a server that never answers fails after the readiness timeout and is killed', async () => {
    const root = join(tmpdir(), `eddy-silent-${process.pid}`);
    rmSync(root, { recursive: true, force: true });
    await import('node:fs/promises').then((fs) => fs.mkdir(root));
    const err = await startServer({
      name: 'silent',
      root,
      command: () => ({
        file: process.execPath,
        args: ['-e', 'setInterval(() => {}, 1000)', root],
      }),
      url: (port) => `silent://127.0.0.1:${port}`,
      probe: async () => {
        throw new Error('connection refused');
      },
      stopSignal: 'SIGTERM',
      readyTimeoutMs: 300,
    }).catch((e) => e);
    expect(err).toBeInstanceOf(ServerStartError);
    expect(err.message).toMatch(
      /no successful round trip within 300 ms \(last attempt: connection refused\)/,
    );
    expect(pidsMentioning(root)).toEqual([]);
    expect(existsSync(root)).toBe(false);
  });

  it('start() fails clearly when another process took the port', () =>
    withServer(
      () => startRedis({ samePortRetryMs: 300 }),
      async (h) => {
        await h.stop();
        const squatter = createServer((s) => s.destroy());
        await new Promise<void>((r) => squatter.listen(h.port, '127.0.0.1', r));
        try {
          const err = await h.start().catch((e) => e);
          expect(err).toBeInstanceOf(ServerStartError);
          expect(err.message).toContain(`port ${h.port} is taken by another process`);
        } finally {
          await new Promise((r) => squatter.close(r));
        }
        await h.start();
      },
    ));

  it('servers die with the test process, even when it is killed (SIGKILL)', async () => {
    const root = fileURLToPath(new URL('../..', import.meta.url));
    const fixture = fileURLToPath(new URL('./orphan-fixture.ts', import.meta.url));
    const child = spawn(process.execPath, [join(root, 'bin', 'run-ts.mjs'), fixture], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const line = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (d) => {
        out += d;
        if (out.includes('\n')) resolve(out);
      });
      child.once('exit', (code) => reject(new Error(`fixture exited (${code}): ${out}`)));
    });
    const { dataDir } = JSON.parse(line) as { dataDir: string };
    try {
      expect(pidsMentioning(dataDir).length).toBe(1);
      child.kill('SIGKILL');
      expect(await eventually(() => pidsMentioning(dataDir).length === 0, 5000)).toBe(true);
    } finally {
      child.kill('SIGKILL');
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
