/**
 * The NATS sink against a real nats-server: output visible on checkpoint completion, a
 * replayed checkpoint dropped by the stream's deduplication, pending batches re-dealt on
 * rescale, retries across a server restart, refusals.
 */
import { type JetStreamManager, jetstreamManager, StorageType } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ServerHandle, startNats } from '../../../test/servers/index.js';
import { EddyError } from '../../core/errors.js';
import type { SinkWriter } from '../../runtime/io.js';
import { createTestContext, dealContiguous, type TestContextOptions } from '../testing.js';
import {
  NATS_SINK_PENDING,
  type NatsPendingBatch,
  NatsSink,
  type NatsSinkOptions,
} from './sink.js';

interface Rec {
  k: string;
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

const newStream = async (): Promise<{ stream: string; prefix: string }> => {
  const n = ++streams;
  await jsm.streams.add({ name: `O${n}`, subjects: [`o${n}.>`], storage: StorageType.File });
  return { stream: `O${n}`, prefix: `o${n}` };
};

/** Every message of the stream, in stream order, as `subject:k#i`. */
const contents = async (stream: string): Promise<string[]> => {
  const info = await jsm.streams.info(stream);
  const out: string[] = [];
  for (
    let seq = info.state.first_seq;
    seq <= info.state.last_seq && info.state.messages > 0;
    seq++
  ) {
    const m = await jsm.streams.getMessage(stream, { seq });
    if (m === null) continue;
    const r = m.json<Rec>();
    out.push(`${m.subject}:${r.k}#${r.i}`);
  }
  return out;
};

const recs = (k: string, from: number, n: number): Rec[] =>
  Array.from({ length: n }, (_, j) => ({ k, i: from + j }));

const writerFor = async (
  o: NatsSinkOptions<Rec>,
  ctxOptions: TestContextOptions,
): Promise<{ writer: Writer; ctx: ReturnType<typeof createTestContext> }> => {
  const ctx = createTestContext(ctxOptions);
  const writer = NatsSink.of<Rec>(o).createWriter(ctx) as Writer;
  await writer.open();
  return { writer, ctx };
};

/** The NATS writer implements every optional hook, and `close`. */
type Writer = Required<SinkWriter<Rec>> & { close(): Promise<void> };

const close = (w: Writer) => w.close();

describe('NatsSink against nats-server', () => {
  it('publishes on checkpoint completion; a restored checkpoint republishes as duplicates', async () => {
    const { stream, prefix } = await newStream();
    const options = { servers: nats.url, subject: (r: Rec) => `${prefix}.${r.k}` };
    const { writer, ctx } = await writerFor(options, { checkpointing: true });
    for (const r of [...recs('a', 0, 6), ...recs('b', 0, 4)]) writer.write(r);
    await writer.flush();
    writer.snapshotState(1);
    const atCheckpoint1 = ctx.operatorState.elements<NatsPendingBatch>(NATS_SINK_PENDING);
    expect(await contents(stream)).toEqual([]); // nothing visible before the checkpoint completes
    await writer.notifyCheckpointComplete(1);
    const first = await contents(stream);
    expect(first).toHaveLength(10);
    // Written after checkpoint 1, sealed by checkpoint 2, which never completes: the job fails.
    for (const r of recs('a', 6, 5)) writer.write(r);
    writer.snapshotState(2);
    await writer.abort();

    // Restore from checkpoint 1: its batch is published again and dropped as duplicates.
    const restored = await writerFor(options, {
      checkpointing: true,
      restoredState: { [NATS_SINK_PENDING]: atCheckpoint1 },
    });
    expect(restored.ctx.counters.get('duplicatesDropped')).toBe(10);
    expect(await contents(stream)).toEqual(first);
    // The source replays what came after checkpoint 1.
    for (const r of recs('a', 6, 5)) restored.writer.write(r);
    restored.writer.snapshotState(3);
    await restored.writer.notifyCheckpointComplete(3);
    await restored.writer.finish();
    restored.writer.snapshotState(4);
    await restored.writer.notifyCheckpointComplete(4);
    const all = await contents(stream);
    expect(all).toHaveLength(15);
    expect(new Set(all).size).toBe(15);
    expect(all.slice(10)).toEqual(recs('a', 6, 5).map((r) => `${prefix}.a:a#${r.i}`));
  });

  it('a completed checkpoint whose batch was never published is published on restore', async () => {
    const { stream, prefix } = await newStream();
    const options = { servers: nats.url, subject: `${prefix}.x` };
    const { writer, ctx } = await writerFor(options, { checkpointing: true });
    for (const r of recs('x', 0, 7)) writer.write(r);
    writer.snapshotState(1);
    // Checkpoint 1 completes, but the job fails before the sink hears of it.
    const pending = ctx.operatorState.elements<NatsPendingBatch>(NATS_SINK_PENDING);
    await writer.abort();
    expect(await contents(stream)).toEqual([]);
    const restored = await writerFor(options, {
      checkpointing: true,
      restoredState: { [NATS_SINK_PENDING]: pending },
    });
    await close(restored.writer);
    expect(await contents(stream)).toEqual(recs('x', 0, 7).map((r) => `${prefix}.x:x#${r.i}`));
    expect(restored.ctx.counters.get('messagesPublished')).toBe(7);
  });

  it('re-deals pending batches on rescale: each published once by one new subtask', async () => {
    const { stream, prefix } = await newStream();
    const options = { servers: nats.url, subject: (r: Rec) => `${prefix}.${r.k}` };
    const elements: NatsPendingBatch[] = [];
    for (let i = 0; i < 3; i++) {
      const { writer, ctx } = await writerFor(options, {
        checkpointing: true,
        subtaskIndex: i,
        parallelism: 3,
      });
      for (const r of recs(`s${i}`, 0, 4)) writer.write(r);
      writer.snapshotState(5);
      elements.push(...ctx.operatorState.elements<NatsPendingBatch>(NATS_SINK_PENDING));
      await writer.abort();
    }
    const dealt = dealContiguous(elements, 2);
    for (let i = 0; i < 2; i++) {
      const { writer } = await writerFor(options, {
        checkpointing: true,
        subtaskIndex: i,
        parallelism: 2,
        restoredState: { [NATS_SINK_PENDING]: dealt[i]! },
      });
      await close(writer);
    }
    expect((await contents(stream)).sort()).toEqual(
      [0, 1, 2]
        .flatMap((s) => recs(`s${s}`, 0, 4).map((r) => `${prefix}.s${s}:s${s}#${r.i}`))
        .sort(),
    );
  });

  it('without checkpointing, publishes each batch at flush and awaits the acks', async () => {
    const { stream, prefix } = await newStream();
    const { writer } = await writerFor({ servers: nats.url, subject: `${prefix}.n` }, {});
    for (const r of recs('n', 0, 3)) writer.write(r);
    await writer.flush();
    expect(await contents(stream)).toHaveLength(3);
    for (const r of recs('n', 3, 2)) writer.write(r);
    await writer.finish();
    expect(await contents(stream)).toEqual(recs('n', 0, 5).map((r) => `${prefix}.n:n#${r.i}`));
  });

  it('retries publishes across a server restart without duplicates', async () => {
    const { stream, prefix } = await newStream();
    const { writer } = await writerFor(
      { servers: nats.url, subject: `${prefix}.r`, maxOutageMs: 30_000, publishWindow: 16 },
      { checkpointing: true },
    );
    for (const r of recs('r', 0, 200)) writer.write(r);
    writer.snapshotState(1);
    await nats.stop();
    const publishing = writer.notifyCheckpointComplete(1);
    await new Promise((r) => setTimeout(r, 300));
    await nats.start();
    await publishing;
    await close(writer);
    expect(await contentsWhenBack(stream)).toEqual(
      recs('r', 0, 200).map((r) => `${prefix}.r:r#${r.i}`),
    );
  });

  it('fails with a retriable EDDY_SINK_IO naming the server after maxOutageMs', async () => {
    const own = await startNats();
    try {
      const c = await connect({ servers: own.url });
      await (await jetstreamManager(c)).streams.add({ name: 'W', subjects: ['w.>'] });
      await c.close();
      const { writer } = await writerFor(
        { servers: own.url, subject: 'w.a', maxOutageMs: 300 },
        { checkpointing: true },
      );
      writer.write({ k: 'w', i: 0 });
      writer.snapshotState(1);
      await own.stop();
      const error = await writer.notifyCheckpointComplete(1).catch((e) => e);
      await writer.abort();
      expect(error).toBeInstanceOf(EddyError);
      expect(error.code).toBe('EDDY_SINK_IO');
      expect(error.retriable).toBe(true);
      expect(error.message).toContain(own.url);
    } finally {
      await own.destroy();
    }
  });

  it('refuses at open a subject no stream captures (EDDY_CONNECTOR_CONFIG)', async () => {
    const error = await writerFor({ servers: nats.url, subject: 'nobody.listens' }, {}).catch(
      (e) => e,
    );
    expect(error).toBeInstanceOf(EddyError);
    expect(error.code).toBe('EDDY_CONNECTOR_CONFIG');
    expect(error.message).toContain(nats.url);
    expect(error.message).toContain("'nobody.listens'");
  });

  it('rejects invalid options at once', () => {
    expect(() => NatsSink.of({ servers: nats.url, subject: 'a.*' })).toThrow(/wildcard/);
    expect(() => NatsSink.of({ servers: nats.url, subject: 3 as unknown as string })).toThrow(
      /subject/,
    );
  });
});

/** The stream's contents once the restarted server answers the shared connection again. */
const contentsWhenBack = async (stream: string): Promise<string[]> => {
  const deadline = performance.now() + 15_000;
  for (;;) {
    try {
      return await contents(stream);
    } catch (e) {
      if (performance.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
};
