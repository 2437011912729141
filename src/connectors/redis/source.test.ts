import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ServerHandle, startRedis } from '../../../test/servers/index.js';
import { BadRecordError, EddyError } from '../../core/errors.js';
import type { PollResult } from '../../runtime/io.js';
import {
  createTestContext,
  type DrivenSourceReader,
  dealContiguous,
  FakeClock,
  openSourceReader,
  pollAll,
  type TestConnectorContext,
} from '../testing.js';
import {
  REDIS_SPLITS_STATE,
  RedisStreamSource,
  type RedisStreamSourceOptions,
  type RedisStreamSplitState,
} from './source.js';

let server: ServerHandle;
let redis: Redis;
const tmp = mkdtempSync(join(tmpdir(), 'eddy-redis-source-'));

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

interface Rec {
  s: number;
  i: number;
}

let keyCounter = 0;
const newStreams = (n: number) => {
  const base = `source-test:${keyCounter++}`;
  return Array.from({ length: n }, (_, k) => `${base}:s${k}`);
};

/** Appends entries `from..to-1` to each stream (record `{ s: stream number, i }`). */
const append = async (streams: string[], from: number, to: number, client = redis) => {
  const pipeline = client.pipeline();
  for (let i = from; i < to; i++) {
    streams.forEach((key, s) => pipeline.xadd(key, '*', 'data', JSON.stringify({ s, i })));
  }
  await pipeline.exec();
};

const keyOf = (r: Rec) => `${r.s}:${r.i}`;
const expectedKeys = (streams: number, from: number, to: number) =>
  Array.from({ length: streams }, (_, s) =>
    Array.from({ length: to - from }, (_, k) => `${s}:${from + k}`),
  )
    .flat()
    .sort();

type Opened = { reader: DrivenSourceReader<Rec>; ctx: TestConnectorContext };

const open = async (
  options: Partial<RedisStreamSourceOptions<Rec>> & { streams: string[] },
  subtaskIndex: number,
  parallelism: number,
  restored?: { splits: readonly unknown[]; enumerator: unknown },
): Promise<Opened> => {
  const ctx = createTestContext({
    subtaskIndex,
    parallelism,
    operatorName: 'redis-in',
    ...(restored === undefined ? {} : { restoredState: { [REDIS_SPLITS_STATE]: restored.splits } }),
  });
  const source = RedisStreamSource.of<Rec>({ url: server.url, ...options });
  const reader = await openSourceReader(
    source,
    ctx,
    restored === undefined ? {} : { enumeratorState: restored.enumerator },
  );
  return { reader, ctx };
};

const emitInto = (out: Rec[]) => (r: Rec) => void out.push(r);

/**
 * Polls the readers round robin until `want` records in all came out (waiting like the
 * runtime after idle polls); fails after `ms`.
 */
const pollUntil = async (readers: Opened[], out: Rec[], want: number, ms = 10_000) => {
  const deadline = performance.now() + ms;
  while (out.length < want) {
    if (performance.now() > deadline) throw new Error(`got ${out.length} of ${want} records`);
    let idle = 0;
    for (const { reader } of readers) {
      const result: PollResult = await reader.poll(emitInto(out), 7);
      if (result !== 'more') idle++;
    }
    if (idle === readers.length) await readers[0]!.reader.idle();
  }
};

const snapshot = (readers: Opened[], id: number): RedisStreamSplitState[] => {
  for (const { reader } of readers) reader.snapshotState(id);
  return readers.flatMap(({ ctx }) =>
    ctx.operatorState.elements<RedisStreamSplitState>(REDIS_SPLITS_STATE),
  );
};

describe('RedisStreamSource (real redis-server)', () => {
  it('3 streams at p=2, restored at p=3: each entry exactly once, new entries picked up', async () => {
    const streams = newStreams(3);
    await append(streams, 0, 40);
    const before = await Promise.all([0, 1].map((i) => open({ streams }, i, 2)));
    // Stream i goes to reader i % 2; each declares its streams as splits.
    expect(before[0]!.ctx.splits.ids).toEqual([streams[0], streams[2]]);
    expect(before[1]!.ctx.splits.ids).toEqual([streams[1]]);
    const beforeCheckpoint: Rec[] = [];
    await pollUntil(before, beforeCheckpoint, 50);
    const splits = snapshot(before, 1);
    expect(splits.map((s) => s.stream).sort()).toEqual([...streams].sort());
    // Read on past the checkpoint: lost with the failure, read again after the restore.
    await pollUntil(before, [], 30);
    for (const { reader } of before) await reader.close();

    await append(streams, 40, 60); // arrives while the job is down
    const after = await Promise.all(
      dealContiguous(splits, 3).map((els, i) =>
        open({ streams }, i, 3, { splits: els, enumerator: { unassigned: [] } }),
      ),
    );
    const afterRestore: Rec[] = [];
    await pollUntil(after, afterRestore, 3 * 60 - beforeCheckpoint.length);
    await append(streams, 60, 70); // arrives while running: the readers wake up
    await pollUntil(after, afterRestore, 3 * 70 - beforeCheckpoint.length);
    // Nothing more comes.
    for (const { reader } of after)
      expect(await reader.poll(() => expect.unreachable(), 100)).toBe('idle');
    const all = [...beforeCheckpoint, ...afterRestore].map(keyOf).sort();
    expect(all).toEqual(expectedKeys(3, 0, 70));
    // Per stream in order.
    for (let s = 0; s < 3; s++) {
      const seq = afterRestore.filter((r) => r.s === s).map((r) => r.i);
      expect(seq).toEqual([...seq].sort((a, b) => a - b));
    }
    for (const { reader } of after) await reader.close();
  });

  it('passes each stream’s split handle with its records', async () => {
    const streams = newStreams(2);
    await append(streams, 0, 5);
    const { reader, ctx } = await open({ streams, bounded: true }, 0, 1);
    const handles = new Map<number, Set<number>>();
    for (;;) {
      const r = await reader.poll((rec, split) => {
        if (!handles.has(rec.s)) handles.set(rec.s, new Set());
        handles.get(rec.s)!.add(split!);
      }, 3);
      if (r === 'end') break;
    }
    expect(ctx.splits.ids).toEqual(streams);
    expect([...handles.get(0)!]).toEqual([0]);
    expect([...handles.get(1)!]).toEqual([1]);
    expect(ctx.splits.finished.sort()).toEqual([0, 1]);
    await reader.close();
  });

  it('bounded: reads what the streams held at the start, keeps the bound across a restore, ends', async () => {
    const streams = newStreams(3);
    await append(streams.slice(0, 2), 0, 20); // the third stream does not exist yet
    const first = await open({ streams, bounded: true }, 0, 1);
    await append(streams, 20, 30); // after the start: not read
    const got: Rec[] = [];
    await pollUntil([first], got, 15);
    const splits = snapshot([first], 1);
    expect(splits.find((s) => s.stream === streams[2])).toMatchObject({
      end: '0-0',
      finished: true,
    });
    await first.reader.close();

    const restored = await open({ streams, bounded: true }, 0, 2, {
      splits,
      enumerator: { unassigned: [] },
    });
    got.push(...(await pollAll(restored.reader, 6)));
    expect(got.map(keyOf).sort()).toEqual(expectedKeys(2, 0, 20));
    await restored.reader.close();
  });

  it('bad entries fail naming stream and id, or go to dead letters', async () => {
    const [stream] = newStreams(1);
    await append([stream!], 0, 2);
    const badId = await redis.xadd(stream!, '*', 'data', '{oops');
    await redis.xadd(stream!, '*', 'other', 'x');
    await append([stream!], 2, 3);

    const failing = await open({ streams: [stream!], bounded: true }, 0, 1);
    const error = await pollAll(failing.reader).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(BadRecordError);
    expect((error as Error).message).toContain(`Redis stream '${stream}' at entry ${badId}`);
    await failing.reader.close();

    const deadLetterDir = join(tmp, 'dlq');
    const lenient = await open(
      { streams: [stream!], bounded: true, badRecords: { deadLetterDir } },
      0,
      1,
    );
    const records = await pollAll(lenient.reader);
    await lenient.reader.close();
    expect(records.map((r) => r.i)).toEqual([0, 1, 2]);
    const letters = readFileSync(join(deadLetterDir, 'dead-letters-0.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(letters).toHaveLength(2);
    expect(letters[0]).toMatchObject({
      file: stream,
      error: expect.stringMatching(/invalid JSON/),
    });
    expect(JSON.parse(letters[0].raw)).toEqual({ id: badId, fields: { data: '{oops' } });
    expect(letters[1].error).toMatch(/no field 'data'/);
  });

  it('divides the total rate over the streams, not the subtasks (fake clock)', async () => {
    const streams = newStreams(3);
    await append(streams, 0, 100);
    let read = 0;
    for (let i = 0; i < 4; i++) {
      const clock = new FakeClock();
      const { reader } = await open({ streams, bounded: true, ratePerSecond: 300, clock }, i, 4);
      const out = await pollAll(reader, 50);
      await reader.close();
      read += out.length;
      if (i === 3) {
        expect(out).toHaveLength(0); // no stream, no share, no waiting
        expect(clock.now()).toBe(0);
      } else {
        // One stream of three: 100 records/s with a burst of 2: 98 records of waiting.
        expect(clock.now()).toBeGreaterThanOrEqual(980);
        expect(clock.now()).toBeLessThanOrEqual(1000);
      }
    }
    expect(read).toBe(300);
  });

  it('an idle reader is woken by a new entry (XREAD BLOCK)', async () => {
    const streams = newStreams(2);
    const { reader, ctx } = await open({ streams }, 0, 1);
    expect(await reader.poll(() => {}, 10)).toBe('idle');
    const before = ctx.wakeups();
    await redis.xadd(streams[1]!, '*', 'data', JSON.stringify({ s: 1, i: 0 }));
    const deadline = performance.now() + 5000;
    while (ctx.wakeups() === before && performance.now() < deadline) {
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(ctx.wakeups()).toBeGreaterThan(before);
    const out: Rec[] = [];
    expect(await reader.poll(emitInto(out), 10)).toBe('more');
    expect(out).toEqual([{ s: 1, i: 0 }]);
    await reader.close();
  });

  it('a custom deserialize gets the fields and the entry’s stream and id', async () => {
    const [stream] = newStreams(1);
    const id = await redis.xadd(stream!, '*', 'a', '1', 'b', 'two');
    const ctx = createTestContext();
    const source = RedisStreamSource.of({
      url: server.url,
      streams: [stream!],
      bounded: true,
      deserialize: (fields, meta) => ({ fields, meta }),
    });
    const reader = await openSourceReader(source, ctx);
    expect(await pollAll(reader)).toEqual([{ fields: { a: '1', b: 'two' }, meta: { stream, id } }]);
    await reader.close();
  });

  it('a key of another type fails with EDDY_CONNECTOR_CONFIG naming server, key and fix', async () => {
    const [good, bad] = newStreams(2);
    await append([good!], 0, 1);
    await redis.set(bad!, 'not a stream');
    const { reader } = await open({ streams: [good!, bad!] }, 0, 1);
    const error = await pollAll(reader).then(
      () => undefined,
      (e: unknown) => e,
    );
    await reader.close();
    expect(error).toBeInstanceOf(EddyError);
    expect((error as EddyError).code).toBe('EDDY_CONNECTOR_CONFIG');
    expect((error as EddyError).retriable).toBe(false);
    expect((error as EddyError).message).toContain(server.url);
    expect((error as EddyError).message).toContain(`key '${bad}'`);
    expect((error as EddyError).message).toMatch(/Fix: .*DEL/);
  });

  it('bounded with a wrong-type key fails at start (split enumerator)', async () => {
    const [bad] = newStreams(1);
    await redis.set(bad!, 'x');
    const error = await open({ streams: [bad!], bounded: true }, 0, 1).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((error as EddyError).code).toBe('EDDY_CONNECTOR_CONFIG');
    expect((error as EddyError).message).toContain(`'${bad}'`);
  });
});

describe('RedisStreamSource outages (own server)', () => {
  let own: ServerHandle;
  beforeAll(async () => {
    own = await startRedis();
  }, 30_000);
  afterAll(() => own?.destroy());

  it('a server stop/start mid-run loses and duplicates nothing', async () => {
    const streams = newStreams(2);
    const client = new Redis(own.url, { maxRetriesPerRequest: null });
    client.on('error', () => {});
    await append(streams, 0, 30, client);
    const ctx = createTestContext({ operatorName: 'redis-in' });
    const source = RedisStreamSource.of<Rec>({ url: own.url, streams, maxOutageMs: 20_000 });
    const reader = await openSourceReader(source, ctx);
    const got: Rec[] = [];
    await pollUntil([{ reader, ctx }], got, 20);
    await own.stop();
    // Polls go on (idle) while the server is down: checkpoints and stops are not held up.
    for (let i = 0; i < 5; i++) {
      const r = await reader.poll(emitInto(got), 7);
      expect(['more', 'idle']).toContain(r);
    }
    await own.start();
    await append(streams, 30, 40, client);
    await pollUntil([{ reader, ctx }], got, 80);
    expect(got.map(keyOf).sort()).toEqual(expectedKeys(2, 0, 40));
    await reader.close();
    client.disconnect();
  });

  it('fails with a retriable EDDY_SOURCE_IO naming the server past maxOutageMs', async () => {
    const streams = newStreams(1);
    const ctx = createTestContext();
    const source = RedisStreamSource.of<Rec>({ url: own.url, streams, maxOutageMs: 200 });
    const reader = await openSourceReader(source, ctx);
    await own.stop();
    try {
      let error: unknown;
      const deadline = performance.now() + 10_000;
      while (error === undefined && performance.now() < deadline) {
        try {
          await reader.poll(() => {}, 10);
          await new Promise((r) => setTimeout(r, 20));
        } catch (e) {
          error = e;
        }
      }
      expect(error).toBeInstanceOf(EddyError);
      expect((error as EddyError).code).toBe('EDDY_SOURCE_IO');
      expect((error as EddyError).retriable).toBe(true);
      expect((error as EddyError).message).toContain(own.url);
      expect((error as EddyError).message).toMatch(/unreachable for more than 200 ms/);
    } finally {
      await reader.close();
      await own.start();
    }
  });
});
