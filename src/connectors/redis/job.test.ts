/**
 * Redis source -> Redis sink through a real job with checkpoints, failures and restarts:
 * the output stream must hold every input entry exactly once.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type ServerHandle, startRedis } from '../../../test/servers/index.js';
import { defineJob, runJobInThread } from '../../api/job.js';
import { setFaults } from '../../runtime/faults.js';
import { RedisStreamSink } from './sink.js';
import { RedisStreamSource } from './source.js';

let server: ServerHandle;
let redis: Redis;
const tmp = mkdtempSync(join(tmpdir(), 'eddy-redis-job-'));

beforeAll(async () => {
  server = await startRedis();
  redis = new Redis(server.url, { maxRetriesPerRequest: null });
  redis.on('error', () => {}); // the tests stop the server: reconnects are expected
}, 30_000);

afterAll(async () => {
  redis?.disconnect();
  await server?.destroy();
  rmSync(tmp, { recursive: true, force: true });
});

afterEach(() => setFaults([]));

interface Rec {
  s: number;
  i: number;
}

const PER_STREAM = 1500;

const fill = async (streams: string[]) => {
  const pipeline = redis.pipeline();
  for (let i = 0; i < PER_STREAM; i++) {
    streams.forEach((key, s) => pipeline.xadd(key, '*', 'data', JSON.stringify({ s, i })));
  }
  await pipeline.exec();
};

const job = (streams: string[], output: string, faults: Set<number>, rate = 10_000) => {
  let seen = 0;
  return defineJob({
    name: 'redis-copy',
    build(env) {
      env
        .fromSource(
          RedisStreamSource.of<Rec>({
            url: server.url,
            streams,
            bounded: true,
            ratePerSecond: rate,
          }),
          { uid: 'in' },
        )
        .process<Rec>(
          () => {
            let subtask = -1;
            return {
              open(ctx) {
                subtask = ctx.task.subtaskIndex;
              },
              processElement(e, _ctx, out) {
                if (subtask === 0 && faults.delete(++seen)) {
                  throw new Error(`injected fault at record ${seen}`);
                }
                out.collect(e);
              },
            };
          },
          { uid: 'faulty', name: 'faulty' },
        )
        .sinkTo(RedisStreamSink.of<Rec>({ url: server.url, stream: output, commitEntries: 100 }), {
          uid: 'out',
        });
    },
  });
};

describe('Redis source -> Redis sink job (real redis-server)', () => {
  it('failures at records and between checkpoint and commit: every entry exactly once', async () => {
    const streams = ['job:in:a', 'job:in:b', 'job:in:c'];
    await fill(streams);
    const output = 'job:out';
    // The sink's commit of a completed checkpoint is cut off twice (the worker fails after
    // the checkpoint completed, before its sinks committed): the restore commits it. The first
    // two notifications: every attempt ends with a final checkpoint, so both come however few
    // periodic checkpoints a loaded machine completes (hits 3 and 6 did not always come).
    setFaults([
      { point: 'commit-notify', action: 'throw', hit: 1 },
      { point: 'commit-notify', action: 'throw', hit: 2 },
    ]);
    const logs: string[] = [];
    const result = await runJobInThread(
      job(streams, output, new Set([1200, 2400])),
      { parallelism: 2 },
      {
        checkpoint: { intervalMs: 10, dir: join(tmp, 'chk') },
        restart: { kind: 'fixed-delay', attempts: 20, delayMs: 0 },
        log: (l) => logs.push(l),
      },
    );
    expect(result.restarts).toBeGreaterThanOrEqual(3);
    expect(logs.filter((l) => l.includes('injected fault at commit-notify')).length).toBe(2);
    const entries = await redis.xrange(output, '-', '+');
    const got = entries.map(([, f]) => {
      const r = JSON.parse(f[1]!) as Rec;
      return `${r.s}:${r.i}`;
    });
    expect(got.length).toBe(3 * PER_STREAM);
    expect(new Set(got).size).toBe(3 * PER_STREAM);
  }, 60_000);
  it('a server stop/start mid-job loses and duplicates nothing', async () => {
    const streams = ['job2:in:a', 'job2:in:b', 'job2:in:c'];
    await fill(streams);
    const output = 'job2:out';
    const running = runJobInThread(
      job(streams, output, new Set(), 5_000),
      { parallelism: 2 },
      {
        checkpoint: { intervalMs: 10, dir: join(tmp, 'chk2') },
        restart: { kind: 'none' }, // rides through the outage without a restart
      },
    );
    let failed: unknown;
    running.catch((e: unknown) => {
      failed = e;
    });
    // Stop the server once some output is committed, well before the end.
    while ((await redis.xlen(output)) < 500 && failed === undefined) {
      await new Promise((r) => setTimeout(r, 10));
    }
    await server.stop();
    await server.start();
    const result = await running;
    expect(result.restarts).toBe(0);
    const entries = await redis.xrange(output, '-', '+');
    const got = entries.map(([, f]) => {
      const r = JSON.parse(f[1]!) as Rec;
      return `${r.s}:${r.i}`;
    });
    expect(got.length).toBe(3 * PER_STREAM);
    expect(new Set(got).size).toBe(3 * PER_STREAM);
  }, 60_000);
});
