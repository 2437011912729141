/**
 * The NATS source against a real nats-server (JetStream, 2.9): exactly once across a snapshot
 * and a restore at another parallelism, bounded and unbounded reads, a server restart
 * mid-read, outages and refusals.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type JetStreamManager, jetstreamManager, StorageType } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ServerHandle, startNats } from '../../../test/servers/index.js';
import { EddyError } from '../../core/errors.js';
import type { SourceReader } from '../../runtime/io.js';
import {
  createTestContext,
  type DrivenSourceReader,
  dealContiguous,
  FakeClock,
  openSourceReader,
  type TestConnectorContext,
} from '../testing.js';
import type { SequenceSplitState } from './positions.js';
import { NATS_SPLITS_STATE, NatsSource, type NatsSourceOptions } from './source.js';

interface Msg {
  s: string;
  i: number;
}

let nats: ServerHandle;
let nc: NatsConnection;
let jsm: JetStreamManager;
let streams = 0;

beforeAll(async () => {
  nats = await startNats();
  nc = await connect({ servers: nats.url });
  jsm = await jetstreamManager(nc);
});

afterAll(async () => {
  await nc?.close();
  await nats?.destroy();
});

/** A new file-backed stream `S<n>` on subjects `s<n>.>`; returns its name and subject prefix. */
const newStream = async (): Promise<{ stream: string; prefix: string }> => {
  const n = ++streams;
  await jsm.streams.add({ name: `S${n}`, subjects: [`s${n}.>`], storage: StorageType.File });
  return { stream: `S${n}`, prefix: `s${n}` };
};

/** Publishes `count` messages `{ s: subject, i }` to `subject` (i from `from`), awaiting acks. */
const publish = async (subject: string, count: number, from = 0): Promise<Msg[]> => {
  const js = jsm.jetstream();
  const out: Msg[] = [];
  const acks: Promise<unknown>[] = [];
  for (let i = from; i < from + count; i++) {
    const m = { s: subject, i };
    out.push(m);
    acks.push(js.publish(subject, JSON.stringify(m), { msgID: key(m) }));
  }
  await Promise.all(acks);
  return out;
};

const key = (m: Msg) => `${m.s}#${m.i}`;
const sortedKeys = (ms: readonly Msg[]) => ms.map(key).sort();

/** Polls (waiting like the runtime after 'idle') until `until()` or the source ends. */
const pollUntil = async <T>(
  reader: DrivenSourceReader<T>,
  out: T[],
  until: () => boolean,
  timeoutMs = 20_000,
): Promise<void> => {
  const deadline = performance.now() + timeoutMs;
  while (!until()) {
    if (performance.now() > deadline) throw new Error(`timed out with ${out.length} records`);
    const r = await reader.poll((x) => void out.push(x), 100);
    if (r === 'end') return;
    if (r === 'idle') await reader.idle();
  }
};

/** Polls until the reader ends (idle polls wait for a wake-up), with a deadline. */
const drain = async <T>(reader: SourceReader<T>, timeoutMs = 20_000): Promise<T[]> => {
  const out: T[] = [];
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    if (performance.now() > deadline) throw new Error(`did not end; ${out.length} records`);
    const r = await reader.poll((x) => void out.push(x), 100);
    if (r === 'end') return out;
    if (r === 'idle') await (reader as DrivenSourceReader<T>).idle();
  }
};

const open = (o: NatsSourceOptions<Msg>, ctx: TestConnectorContext) =>
  openSourceReader(NatsSource.of<Msg>(o), ctx);

describe('NatsSource against nats-server', () => {
  it('reads 3 subjects at p=2, snapshots mid-read, restores at p=3: every message once', async () => {
    const { stream, prefix } = await newStream();
    const all = [
      ...(await publish(`${prefix}.a`, 250)),
      ...(await publish(`${prefix}.b`, 120)),
      ...(await publish(`${prefix}.c`, 40)),
    ];
    const options = { servers: nats.url, stream, bounded: true, fetchBatch: 64 };
    const emitted: Msg[] = [];
    const elements: SequenceSplitState[] = [];
    for (let i = 0; i < 2; i++) {
      const ctx = createTestContext({ subtaskIndex: i, parallelism: 2 });
      const reader = await open(options, ctx);
      const mine: Msg[] = [];
      // Read part of it: at least 70 records, not all of them.
      await pollUntil(reader, mine, () => mine.length >= 70);
      expect(mine.length).toBeLessThan(all.length);
      emitted.push(...mine);
      reader.snapshotState(1);
      await reader.close();
      elements.push(...ctx.operatorState.elements<SequenceSplitState>(NATS_SPLITS_STATE));
      expect(ctx.operatorState.modeOf(NATS_SPLITS_STATE)).toBe('split');
    }
    expect(elements.map((e) => e.split).sort()).toEqual([
      `${prefix}.a`,
      `${prefix}.b`,
      `${prefix}.c`,
    ]);
    // Published after the first start: past the bound kept in the split state.
    await publish(`${prefix}.a`, 10, 1000);
    const dealt = dealContiguous(elements, 3);
    for (let i = 0; i < 3; i++) {
      const ctx = createTestContext({
        subtaskIndex: i,
        parallelism: 3,
        restoredState: { [NATS_SPLITS_STATE]: dealt[i]! },
      });
      const reader = await open(options, ctx);
      emitted.push(...(await drain(reader)));
      reader.snapshotState(2);
      await reader.close();
      const after = ctx.operatorState.elements<SequenceSplitState>(NATS_SPLITS_STATE);
      expect(after.every((s) => s.finished)).toBe(true);
      expect(ctx.splits.finished.length).toBe(ctx.splits.ids.length);
    }
    expect(sortedKeys(emitted)).toEqual(sortedKeys(all));
    // No consumer left behind on the server.
    const consumers = await jsm.consumers.list(stream).next();
    expect(consumers).toEqual([]);
  });

  it('bounded: ends after the messages present at start, per subject split handles', async () => {
    const { stream, prefix } = await newStream();
    const all = [...(await publish(`${prefix}.x`, 30)), ...(await publish(`${prefix}.y`, 5))];
    const ctx = createTestContext();
    const reader = await open(
      { servers: nats.url, stream, subjects: `${prefix}.*`, bounded: true },
      ctx,
    );
    await publish(`${prefix}.x`, 5, 100); // after the start: not read
    const batches: { split: number | undefined; m: Msg }[] = [];
    for (;;) {
      const r = await reader.poll((m, split) => void batches.push({ split, m }), 1000);
      if (r === 'end') break;
      if (r === 'idle') await reader.idle();
    }
    await reader.close();
    expect(sortedKeys(batches.map((b) => b.m))).toEqual(sortedKeys(all));
    expect(ctx.splits.ids).toEqual([`${prefix}.x`, `${prefix}.y`]);
    for (const b of batches) expect(ctx.splits.ids[b.split!]).toBe(b.m.s);
    expect(ctx.splits.finished.sort()).toEqual([0, 1]);
  });

  it('unbounded: picks up messages published later, woken without spinning, ends on stop', async () => {
    const { stream, prefix } = await newStream();
    await publish(`${prefix}.a`, 3);
    const ctx = createTestContext();
    const reader = await open(
      { servers: nats.url, stream, subjects: [`${prefix}.a`, `${prefix}.b`] },
      ctx,
    );
    const got: Msg[] = [];
    await pollUntil(reader, got, () => got.length === 3);
    // Nothing more: the poll says idle at once.
    expect(await reader.poll((m) => void got.push(m), 100)).toBe('idle');
    const wakeups = ctx.wakeups();
    await publish(`${prefix}.b`, 4);
    await publish(`${prefix}.a`, 2, 3);
    await pollUntil(reader, got, () => got.length === 9);
    expect(ctx.wakeups()).toBeGreaterThan(wakeups);
    expect(got.length).toBe(9);
    ctx.stop();
    expect(await reader.poll((m) => void got.push(m), 100)).toBe('end');
    await reader.close();
    // Closing deleted the consumers.
    expect(await jsm.consumers.list(stream).next()).toEqual([]);
  });

  it('divides ratePerSecond over the subjects', async () => {
    const { stream, prefix } = await newStream();
    await publish(`${prefix}.a`, 60);
    await publish(`${prefix}.b`, 60);
    const clock = new FakeClock();
    const ctx = createTestContext();
    const reader = await open(
      { servers: nats.url, stream, bounded: true, ratePerSecond: 100, clock },
      ctx,
    );
    expect(await drain(reader)).toHaveLength(120);
    await reader.close();
    // 120 records at 100/s in all, 50/s per subject (a burst of 20 ms' worth aside): at least
    // ~1.2 s of clock time; up to 2.4 s if one subject were read entirely after the other.
    expect(clock.now()).toBeGreaterThan(1100);
    expect(clock.now()).toBeLessThan(2500);
  });

  it('a server stopped and started mid-read loses and duplicates nothing', async () => {
    const { stream, prefix } = await newStream();
    const before = await publish(`${prefix}.a`, 200);
    const ctx = createTestContext();
    const reader = await open(
      { servers: nats.url, stream, fetchBatch: 50, maxOutageMs: 30_000 },
      ctx,
    );
    const got: Msg[] = [];
    await pollUntil(reader, got, () => got.length >= 60);
    expect(got.length).toBeLessThan(200);
    await nats.stop();
    // While the server is away the reader keeps polling: buffered records, then idle.
    for (let i = 0; i < 5; i++) {
      const r = await reader.poll((m) => void got.push(m), 100);
      if (r === 'idle') await reader.idle();
    }
    await nats.start();
    const after = await publishWhenBack(`${prefix}.a`, 50, 200);
    await pollUntil(reader, got, () => got.length >= 250);
    // Nothing more arrives (no duplicate comes late).
    for (let i = 0; i < 3; i++) {
      const r = await reader.poll((m) => void got.push(m), 100);
      if (r === 'idle') await reader.idle();
    }
    await reader.close();
    expect(got.map(key)).toEqual([...before, ...after].map(key));
    // The consumer (memory storage) was lost with the server and recreated after the cursor.
    expect(ctx.counters.get('consumersCreated')).toBeGreaterThan(1);
  });

  it('fails with a retriable EDDY_SOURCE_IO naming the server after maxOutageMs', async () => {
    const own = await startNats();
    try {
      const c = await connect({ servers: own.url });
      const m = await jetstreamManager(c);
      await m.streams.add({ name: 'OUT', subjects: ['out.>'] });
      await m.jetstream().publish('out.a', JSON.stringify({ s: 'out.a', i: 0 }));
      await c.close();
      const ctx = createTestContext();
      const reader = await open({ servers: own.url, stream: 'OUT', maxOutageMs: 300 }, ctx);
      const got: Msg[] = [];
      await pollUntil(reader, got, () => got.length === 1);
      await own.stop();
      const error = await (async () => {
        const deadline = performance.now() + 15_000;
        while (performance.now() < deadline) {
          try {
            const r = await reader.poll((x) => void got.push(x), 100);
            if (r === 'idle') await reader.idle();
          } catch (e) {
            return e;
          }
        }
        return undefined;
      })();
      await reader.close();
      expect(error).toBeInstanceOf(EddyError);
      expect((error as EddyError).code).toBe('EDDY_SOURCE_IO');
      expect((error as EddyError).retriable).toBe(true);
      expect((error as EddyError).message).toContain(own.url);
    } finally {
      await own.destroy();
    }
  });

  it('a missing stream fails at once with EDDY_CONNECTOR_CONFIG naming server, stream and fix', async () => {
    const ctx = createTestContext();
    const error = await open({ servers: nats.url, stream: 'NO_SUCH_STREAM' }, ctx).catch((e) => e);
    expect(error).toBeInstanceOf(EddyError);
    expect(error.code).toBe('EDDY_CONNECTOR_CONFIG');
    expect(error.retriable).toBe(false);
    expect(error.message).toContain(nats.url);
    expect(error.message).toContain("'NO_SUCH_STREAM'");
    expect(error.message).toMatch(/create it/);
  });

  it('subjects matching nothing, or outside the stream, fail with EDDY_CONNECTOR_CONFIG', async () => {
    const { stream, prefix } = await newStream();
    await publish(`${prefix}.a`, 1);
    for (const subjects of [`${prefix}.zz.*`, 'elsewhere.a']) {
      const error = await open({ servers: nats.url, stream, subjects }, createTestContext()).catch(
        (e) => e,
      );
      expect(error.code).toBe('EDDY_CONNECTOR_CONFIG');
      expect(error.message).toContain(stream);
    }
  });

  it('a bad message fails the job naming stream, subject and sequence; or is dead-lettered', async () => {
    const { stream, prefix } = await newStream();
    const js = jsm.jetstream();
    await js.publish(`${prefix}.a`, JSON.stringify({ s: 'ok', i: 1 }));
    await js.publish(`${prefix}.a`, '{oops');
    const error = await drainSource({ servers: nats.url, stream, bounded: true }).catch((e) => e);
    expect(error.code).toBe('EDDY_BAD_RECORD');
    expect(error.message).toContain(`stream '${stream}' subject '${prefix}.a' at sequence 2`);
    const deadLetterDir = mkdtempSync(join(tmpdir(), 'eddy-nats-dl-'));
    const ctx = createTestContext();
    const reader = await open(
      { servers: nats.url, stream, bounded: true, badRecords: { deadLetterDir } },
      ctx,
    );
    const good = await drain(reader);
    await reader.close();
    expect(good).toEqual([{ s: 'ok', i: 1 }]);
    const letters = readFileSync(join(deadLetterDir, 'dead-letters-0.jsonl'), 'utf8')
      .trim()
      .split('\n');
    expect(letters.map((l) => JSON.parse(l))).toEqual([
      {
        file: `nats stream '${stream}' subject '${prefix}.a'`,
        line: 2,
        error: expect.any(String),
        raw: '{oops',
      },
    ]);
    // A dead-lettered message is consumed: the position moves past it.
    reader.snapshotState(1);
    expect(ctx.operatorState.elements<SequenceSplitState>(NATS_SPLITS_STATE)[0]!.position).toBe(2);
  });

  it('rejects invalid options at once', () => {
    expect(() => NatsSource.of({ servers: nats.url, stream: 'a.b' })).toThrow(/stream name/);
    expect(() => NatsSource.of({ servers: [], stream: 'A' })).toThrow(/servers/);
    expect(() => NatsSource.of({ servers: nats.url, stream: 'A', subjects: 'a.>.b' })).toThrow(
      /last token/,
    );
    expect(() => NatsSource.of({ servers: nats.url, stream: 'A', fetchExpiresMs: 10 })).toThrow(
      /fetchExpiresMs/,
    );
  });
});

/** Drains a fresh bounded source at p=1. */
const drainSource = async (o: NatsSourceOptions<Msg>): Promise<Msg[]> => {
  const reader = await open(o, createTestContext());
  try {
    return await drain(reader);
  } finally {
    await reader.close();
  }
};

/** Publishes once the restarted server takes publishes again (JetStream may lag the port). */
const publishWhenBack = async (subject: string, count: number, from: number): Promise<Msg[]> => {
  // A connection of its own: the shared one may be waiting between reconnect attempts.
  const c = await connect({ servers: nats.url });
  try {
    const js = (await jetstreamManager(c)).jetstream();
    const out: Msg[] = [];
    for (let i = from; i < from + count; i++) out.push({ s: subject, i });
    const deadline = performance.now() + 15_000;
    for (;;) {
      try {
        // Ids make a retry after a partial success harmless.
        await Promise.all(
          out.map((m) => js.publish(subject, JSON.stringify(m), { msgID: key(m), timeout: 1000 })),
        );
        return out;
      } catch (e) {
        if (performance.now() > deadline) throw e;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  } finally {
    await c.close();
  }
};
