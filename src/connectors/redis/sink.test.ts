import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ServerHandle, startRedis } from '../../../test/servers/index.js';
import { EddyError } from '../../core/errors.js';
import type { SinkWriter } from '../../runtime/io.js';
import { createTestContext, dealContiguous, type TestConnectorContext } from '../testing.js';
import { defineCommit, runCommit } from './commit.js';
import {
  REDIS_SINK_PENDING_STATE,
  type RedisSinkPending,
  RedisStreamSink,
  type RedisStreamSinkOptions,
} from './sink.js';

let server: ServerHandle;
let redis: Redis;

beforeAll(async () => {
  server = await startRedis();
  redis = new Redis(server.url, { maxRetriesPerRequest: null });
  redis.on('error', () => {}); // the tests stop the server: reconnects are expected
}, 30_000);

afterAll(async () => {
  redis?.disconnect();
  await server?.destroy();
});

interface Rec {
  n: number;
}

let keyCounter = 0;
const newKey = (what: string) => `sink-test:${what}:${keyCounter++}`;

/** The `n` of every entry of `stream`, in stream order. */
const readNs = async (stream: string): Promise<number[]> => {
  const entries = await redis.xrange(stream, '-', '+');
  return entries.map(([, fields]) => (JSON.parse(fields[1]!) as Rec).n);
};

const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);

/** The writer with its optional hooks, all of which this sink has. */
type Writer = Required<SinkWriter<Rec>>;

interface Opened {
  writer: Writer;
  ctx: TestConnectorContext;
}

const openWriter = async (
  options: Partial<RedisStreamSinkOptions<Rec>> & { stream: RedisStreamSinkOptions<Rec>['stream'] },
  ctxOptions: Parameters<typeof createTestContext>[0] = {},
): Promise<Opened> => {
  const ctx = createTestContext({ checkpointing: true, operatorName: 'sink', ...ctxOptions });
  const writer = RedisStreamSink.of<Rec>({ url: server.url, ...options }).createWriter(
    ctx,
  ) as Writer;
  await writer.open();
  return { writer, ctx };
};

const pendingOf = (ctx: TestConnectorContext) =>
  ctx.operatorState.elements<RedisSinkPending>(REDIS_SINK_PENDING_STATE);

const writeAll = (writer: Writer, ns: number[]) => {
  for (const n of ns) writer.write({ n });
};

describe('RedisStreamSink (real redis-server)', () => {
  it('makes output visible only when its checkpoint completes', async () => {
    const stream = newKey('basic');
    const { writer, ctx } = await openWriter({ stream });
    writeAll(writer, range(0, 5));
    await writer.flush();
    writer.snapshotState(1);
    writeAll(writer, range(5, 8));
    expect(await readNs(stream)).toEqual([]);
    await writer.notifyCheckpointComplete(1);
    expect(await readNs(stream)).toEqual(range(0, 5));
    writer.snapshotState(2);
    await writer.notifyCheckpointAborted(2); // stays pending
    writeAll(writer, range(8, 10));
    writer.snapshotState(3);
    expect(await readNs(stream)).toEqual(range(0, 5));
    await writer.notifyCheckpointComplete(3); // commits 2 and 3, in order
    expect(await readNs(stream)).toEqual(range(0, 10));
    expect(ctx.counters.get('entriesWritten')).toBe(10);
    await writer.finish();
    writer.snapshotState(4);
    await writer.notifyCheckpointComplete(4);
    await writer.abort();
  });

  it('a replayed commit writes nothing', async () => {
    const stream = newKey('replay');
    const { writer, ctx } = await openWriter({ stream });
    writeAll(writer, range(0, 20));
    writer.snapshotState(1);
    const checkpoint = { [REDIS_SINK_PENDING_STATE]: pendingOf(ctx) };
    await writer.notifyCheckpointComplete(1);
    await writer.abort();
    expect(await readNs(stream)).toEqual(range(0, 20));
    // Restoring checkpoint 1 commits its pending output again: the marker makes it a no-op.
    for (let i = 0; i < 2; i++) {
      const restored = await openWriter({ stream }, { restoredState: checkpoint });
      expect(restored.ctx.counters.get('commitsSkipped')).toBe(1);
      expect(restored.ctx.counters.get('entriesWritten')).toBeUndefined();
      await restored.writer.abort();
    }
    expect(await readNs(stream)).toEqual(range(0, 20));
  });

  it('commits an interrupted commit on restore, exactly once', async () => {
    const stream = newKey('interrupted');
    const { writer, ctx } = await openWriter({ stream, commitEntries: 7 });
    writeAll(writer, range(0, 10));
    writer.snapshotState(1);
    writeAll(writer, range(10, 30));
    writer.snapshotState(2);
    const checkpoint2 = { [REDIS_SINK_PENDING_STATE]: pendingOf(ctx) };
    writeAll(writer, range(30, 40)); // after the checkpoint: replayed by the source
    await writer.abort(); // the job dies before notifyCheckpointComplete(2)
    expect(await readNs(stream)).toEqual([]);

    const first = await openWriter({ stream, commitEntries: 7 }, { restoredState: checkpoint2 });
    expect(await readNs(stream)).toEqual(range(0, 30));
    // The restored job dies too, before its next checkpoint: restore the same one again.
    writeAll(first.writer, range(30, 35));
    await first.writer.abort();
    const second = await openWriter({ stream, commitEntries: 7 }, { restoredState: checkpoint2 });
    expect(await readNs(stream)).toEqual(range(0, 30));
    writeAll(second.writer, range(30, 40));
    second.writer.snapshotState(3);
    await second.writer.notifyCheckpointComplete(3);
    expect(await readNs(stream)).toEqual(range(0, 40));
    await second.writer.abort();
  });

  it('a commit cut short after some chunks completes on restore without duplicates', async () => {
    const stream = newKey('chunks');
    const { writer, ctx } = await openWriter({ stream, commitEntries: 4 });
    writeAll(writer, range(0, 18));
    writer.snapshotState(1);
    const [element] = pendingOf(ctx);
    expect(element!.chunks.map((c) => c.count)).toEqual([4, 4, 4, 4, 2]);
    // Two chunks commit, then the job dies.
    const client = new Redis(server.url);
    defineCommit(client);
    for (const chunk of element!.chunks.slice(0, 2)) {
      await runCommit(client, 'eddy:sink:sink-uid', element!.writer, chunk);
    }
    client.disconnect();
    expect(await readNs(stream)).toEqual(range(0, 8));
    await writer.abort();
    const restored = await openWriter(
      { stream, commitEntries: 4 },
      { restoredState: { [REDIS_SINK_PENDING_STATE]: [element] } },
    );
    expect(await readNs(stream)).toEqual(range(0, 18));
    expect(restored.ctx.counters.get('commitsSkipped')).toBe(2);
    await restored.writer.abort();
  });

  it('restored at another parallelism, commits every old subtask’s pending output once', async () => {
    const stream = newKey('rescale');
    const old = await Promise.all(
      [0, 1, 2].map((i) => openWriter({ stream }, { subtaskIndex: i, parallelism: 3 })),
    );
    old.forEach(({ writer }, i) => writeAll(writer, range(i * 100, i * 100 + 10)));
    for (const { writer } of old) writer.snapshotState(5);
    // Subtask 0's commit happened, the others' did not.
    await old[0]!.writer.notifyCheckpointComplete(5);
    const elements = old.flatMap(({ ctx }) => pendingOf(ctx));
    for (const { writer } of old) await writer.abort();
    const expected = [...range(0, 10), ...range(100, 110), ...range(200, 210)];

    for (const p of [2, 1, 4]) {
      const dealt = dealContiguous(elements, p);
      const restored = await Promise.all(
        dealt.map((els, i) =>
          openWriter(
            { stream },
            {
              subtaskIndex: i,
              parallelism: p,
              restoredState: { [REDIS_SINK_PENDING_STATE]: els },
            },
          ),
        ),
      );
      const sorted = (await readNs(stream)).sort((a, b) => a - b);
      expect(sorted, `restored at p=${p}`).toEqual(expected);
      for (const { writer } of restored) await writer.abort();
    }
  });

  it('routes records by a stream function with custom fields', async () => {
    const even = newKey('even');
    const odd = newKey('odd');
    const { writer } = await openWriter(
      { stream: (r) => (r.n % 2 === 0 ? even : odd) },
      { checkpointing: false },
    );
    const sink = RedisStreamSink.of<Rec>({
      url: server.url,
      stream: even,
      serialize: (r) => ({ n: String(r.n), kind: 'x' }),
    });
    writeAll(writer, range(0, 6));
    await writer.flush(); // without checkpointing: written at once
    expect(await readNs(even)).toEqual([0, 2, 4]);
    expect(await readNs(odd)).toEqual([1, 3, 5]);
    await writer.finish();

    const ctx = createTestContext({ checkpointing: false });
    const w2 = sink.createWriter(ctx);
    await w2.open();
    w2.write({ n: 9 });
    await w2.finish();
    const last = await redis.xrevrange(even, '+', '-', 'COUNT', 1);
    expect(last[0]?.[1]).toEqual(['n', '9', 'kind', 'x']);
    expect(() => w2.write({ n: 1 })).toThrow(/write after finish/);
  });

  it('rejects records it cannot encode, as the user’s error', async () => {
    const { writer } = await openWriter({
      stream: newKey('encode'),
      serialize: (r) => ({ n: r.n as unknown as string }),
    });
    let error: unknown;
    try {
      writer.write({ n: 1 });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(EddyError);
    expect((error as EddyError).code).toBe('EDDY_SINK_IO');
    expect((error as EddyError).domain).toBe('user');
    expect((error as EddyError).message).toMatch(/serialize returned a number for field 'n'/);
    await writer.abort();
  });

  it('a key of another type fails with EDDY_CONNECTOR_CONFIG naming server, key and fix', async () => {
    const key = newKey('string');
    await redis.set(key, 'not a stream');
    const ctx = createTestContext({ checkpointing: true });
    const writer = RedisStreamSink.of<Rec>({ url: server.url, stream: key }).createWriter(ctx);
    const error = await writer.open().then(
      () => undefined,
      (e: unknown) => e,
    );
    await writer.abort();
    expect(error).toBeInstanceOf(EddyError);
    expect((error as EddyError).code).toBe('EDDY_CONNECTOR_CONFIG');
    expect((error as EddyError).retriable).toBe(false);
    expect((error as EddyError).message).toContain(server.url);
    expect((error as EddyError).message).toContain(`'${key}'`);
    expect((error as EddyError).message).toMatch(/not a stream.*Fix: .*DEL/);

    // Routed by a function, the commit script finds it (before writing anything).
    const good = newKey('good');
    const routed = await openWriter({ stream: (r) => (r.n === 0 ? good : key) });
    writeAll(routed.writer, [0, 1]);
    routed.writer.snapshotState(1);
    const commit = await routed.writer.notifyCheckpointComplete(1).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((commit as EddyError).code).toBe('EDDY_CONNECTOR_CONFIG');
    expect((commit as EddyError).message).toContain(`'${key}'`);
    expect(await readNs(good)).toEqual([]);
    await routed.writer.abort();
  });
});

describe('RedisStreamSink outages (own server)', () => {
  let own: ServerHandle;
  beforeAll(async () => {
    own = await startRedis();
  }, 30_000);
  afterAll(() => own?.destroy());

  it('waits out a server restart during a commit: nothing lost, nothing twice', async () => {
    const stream = newKey('outage');
    const ctx = createTestContext({ checkpointing: true });
    const writer = RedisStreamSink.of<Rec>({
      url: own.url,
      stream,
      maxOutageMs: 20_000,
    }).createWriter(ctx) as Writer;
    await writer.open();
    writeAll(writer, range(0, 50));
    writer.snapshotState(1);
    await writer.notifyCheckpointComplete(1);
    writeAll(writer, range(50, 100));
    writer.snapshotState(2);
    await own.stop();
    const committing = writer.notifyCheckpointComplete(2);
    let settled = false;
    void committing.finally(() => {
      settled = true;
    });
    await new Promise((r) => setTimeout(r, 300));
    expect(settled).toBe(false); // still retrying
    await own.start();
    await committing;
    const client = new Redis(own.url);
    const entries = await client.xrange(stream, '-', '+');
    client.disconnect();
    expect(entries.map(([, f]) => JSON.parse(f[1]!).n)).toEqual(range(0, 100));
    await writer.abort();
  });

  it('fails with a retriable EDDY_SINK_IO naming the server past maxOutageMs', async () => {
    const ctx = createTestContext({ checkpointing: true });
    const writer = RedisStreamSink.of<Rec>({
      url: own.url,
      stream: newKey('down'),
      maxOutageMs: 300,
    }).createWriter(ctx) as Writer;
    await writer.open();
    writeAll(writer, [1]);
    writer.snapshotState(1);
    await own.stop();
    try {
      const error = await writer.notifyCheckpointComplete(1).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(EddyError);
      expect((error as EddyError).code).toBe('EDDY_SINK_IO');
      expect((error as EddyError).retriable).toBe(true);
      expect((error as EddyError).message).toContain(own.url);
      expect((error as EddyError).message).toMatch(/unreachable for more than 300 ms/);
    } finally {
      await writer.abort();
      await own.start();
    }
  });
  it('a wrong password fails at start with EDDY_CONNECTOR_CONFIG, not as an outage', async () => {
    const admin = new Redis(own.url);
    await admin.config('SET', 'requirepass', 'right');
    try {
      const url = own.url.replace('redis://', 'redis://:wrong@');
      const writer = RedisStreamSink.of<Rec>({ url, stream: newKey('auth') }).createWriter(
        createTestContext({ checkpointing: true }),
      );
      const error = await writer.open().then(
        () => undefined,
        (e: unknown) => e,
      );
      await writer.abort();
      expect((error as EddyError).code).toBe('EDDY_CONNECTOR_CONFIG');
      expect((error as EddyError).message).toContain(own.url); // without the password
      expect((error as EddyError).message).not.toContain('wrong');
      expect((error as EddyError).message).toMatch(/Fix: put the right user and password/);
    } finally {
      await admin.config('SET', 'requirepass', '');
      admin.disconnect();
    }
  });
});
