/**
 * NATS source -> NATS sink through a real job (in-process runtime) with checkpoints, injected
 * failures and restarts, and a server restart: the output stream must hold every input
 * message exactly once, and no consumer may be left on the server.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type JetStreamManager, jetstreamManager, StorageType } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type ServerHandle, startNats } from '../../../test/servers/index.js';
import { defineJob, type JobControl, runJobInThread } from '../../api/job.js';
import { loadMetadata } from '../../checkpoint/metadata-io.js';
import { setFaults } from '../../runtime/faults.js';
import { NatsSink } from './sink.js';
import { NatsSource } from './source.js';

let nats: ServerHandle;
let nc: NatsConnection;
let jsm: JetStreamManager;
const tmp = mkdtempSync(join(tmpdir(), 'eddy-nats-job-'));

beforeAll(async () => {
  nats = await startNats();
  nc = await connect({ servers: nats.url, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
  jsm = await jetstreamManager(nc);
});

afterAll(async () => {
  await nc?.close();
  await nats?.destroy();
  rmSync(tmp, { recursive: true, force: true });
});

afterEach(() => setFaults([]));

interface Rec {
  s: number;
  i: number;
}

const PER_SUBJECT = 1000;

/** Input stream `<name>` with subjects `<name>.0..2` filled; output stream `<name>_OUT`. */
const setUp = async (name: string) => {
  await jsm.streams.add({ name, subjects: [`${name}.>`], storage: StorageType.File });
  await jsm.streams.add({
    name: `${name}_OUT`,
    subjects: [`${name}_out.>`],
    storage: StorageType.File,
  });
  const js = jsm.jetstream();
  for (let i = 0; i < PER_SUBJECT; i += 250) {
    const acks: Promise<unknown>[] = [];
    for (let j = i; j < i + 250; j++) {
      for (let s = 0; s < 3; s++)
        acks.push(js.publish(`${name}.${s}`, JSON.stringify({ s, i: j })));
    }
    await Promise.all(acks);
  }
};

const job = (name: string, faults: Set<number>, rate = 20_000, bounded = true) => {
  let seen = 0;
  return defineJob({
    name: 'nats-copy',
    build(env) {
      env
        .fromSource(
          NatsSource.of<Rec>({
            servers: nats.url,
            stream: name,
            bounded,
            ratePerSecond: rate,
            fetchBatch: 200,
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
        .sinkTo(NatsSink.of<Rec>({ servers: nats.url, subject: (r) => `${name}_out.${r.s}` }), {
          uid: 'out',
        });
    },
  });
};

/** Every record in the output stream, as `s:i`. */
const output = async (name: string): Promise<string[]> => {
  const stream = `${name}_OUT`;
  const info = await jsm.streams.info(stream);
  const c = await jsm.jetstream().consumers.get(stream);
  const out: string[] = [];
  while (out.length < info.state.messages) {
    const batch = await c.fetch({ max_messages: info.state.messages - out.length, expires: 2000 });
    for await (const m of batch) {
      const r = m.json<Rec>();
      out.push(`${r.s}:${r.i}`);
    }
  }
  await c.delete();
  return out;
};

describe('NATS source -> NATS sink job (real nats-server)', () => {
  it('failures at records and between checkpoint and commit: every message exactly once', async () => {
    await setUp('JOBA');
    // The sink's publish of a completed checkpoint is cut off twice (the worker fails after
    // the checkpoint completed, before its sinks published): the restore publishes it.
    setFaults([
      { point: 'commit-notify', action: 'throw', hit: 3 },
      { point: 'commit-notify', action: 'throw', hit: 6 },
    ]);
    const logs: string[] = [];
    const result = await runJobInThread(
      job('JOBA', new Set([800, 1600]), 5_000),
      { parallelism: 2 },
      {
        checkpoint: { intervalMs: 10, dir: join(tmp, 'chk') },
        restart: { kind: 'fixed-delay', attempts: 20, delayMs: 0 },
        log: (l) => logs.push(l),
      },
    );
    expect(result.restarts).toBeGreaterThanOrEqual(3);
    expect(logs.filter((l) => l.includes('injected fault at commit-notify')).length).toBe(2);
    const got = await output('JOBA');
    expect(got.length).toBe(3 * PER_SUBJECT);
    expect(new Set(got).size).toBe(3 * PER_SUBJECT);
    expect((await jsm.consumers.list('JOBA').next()).length).toBe(0);
  }, 60_000);

  it('a server stop/start mid-job loses and duplicates nothing', async () => {
    await setUp('JOBB');
    const running = runJobInThread(
      job('JOBB', new Set(), 3_000),
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
    // Stop the server once some output is published, well before the end.
    while (failed === undefined && (await jsm.streams.info('JOBB_OUT')).state.messages < 500) {
      await new Promise((r) => setTimeout(r, 20));
    }
    await nats.stop();
    await new Promise((r) => setTimeout(r, 200));
    await nats.start();
    const result = await running;
    expect(result.restarts).toBe(0);
    const got = await output('JOBB');
    expect(got.length).toBe(3 * PER_SUBJECT);
    expect(new Set(got).size).toBe(3 * PER_SUBJECT);
  }, 60_000);

  it('unbounded: stop with a savepoint at p=2, publish more, restore at p=3: exactly once', async () => {
    await setUp('JOBC');
    const published = await jsm.streams.info('JOBC');
    expect(published.state.messages).toBe(3 * PER_SUBJECT);
    const runUntil = async (parallelism: number, restore: string | undefined, until: number) => {
      let control: JobControl | undefined;
      const running = runJobInThread(
        job('JOBC', new Set(), 20_000, false),
        { parallelism },
        {
          checkpoint: { intervalMs: 20, dir: join(tmp, `chk-c-${parallelism}`) },
          restore:
            restore === undefined
              ? undefined
              : { dir: restore, metadata: await loadMetadata(restore) },
          onMaster: (c) => {
            control = c;
          },
        },
      );
      let failed: unknown;
      running.catch((e: unknown) => {
        failed = e;
      });
      while (failed === undefined && (await jsm.streams.info('JOBC_OUT')).state.messages < until) {
        await new Promise((r) => setTimeout(r, 20));
      }
      control!.stop(join(tmp, `sp-c-${parallelism}`));
      const result = await running;
      expect(result.stopped).toBe(true);
      return result.savepoint!;
    };
    const savepoint = await runUntil(2, undefined, 1000);
    // More input while the job is away, on the old subjects.
    const js = jsm.jetstream();
    const acks: Promise<unknown>[] = [];
    for (let s = 0; s < 3; s++) {
      for (let i = PER_SUBJECT; i < PER_SUBJECT + 200; i++) {
        acks.push(js.publish(`JOBC.${s}`, JSON.stringify({ s, i })));
      }
    }
    await Promise.all(acks);
    await runUntil(3, savepoint, 3 * (PER_SUBJECT + 200));
    const got = await output('JOBC');
    expect(got.length).toBe(3 * (PER_SUBJECT + 200));
    expect(new Set(got).size).toBe(got.length);
    expect((await jsm.consumers.list('JOBC').next()).length).toBe(0);
  }, 60_000);
});
