/**
 * The runtime's side of the checkpoint protocol, driven directly (one WorkerRuntime, no master):
 * barriers of different checkpoints are never aligned as one, an abort releases what a subtask
 * holds, and a newer barrier declines the older checkpoint. Reproduces the case: a
 * checkpoint aborted while only one of two inputs had delivered its barrier, then a new one.
 */
import { describe, expect, it } from 'vitest';
import { StreamExecutionEnvironment } from '../api/environment.js';
import { checkpointId } from '../core/ids.js';
import type { PollResult, Sink, Source } from './io.js';
import { planExecution } from './plan.js';
import type { TaskSnapshot } from './subtask.js';
import { DEFAULT_WORKER_OPTIONS, WorkerRuntime } from './worker-runtime.js';

/** Unbounded, never waits on I/O: the case that used to starve the thread. */
const numbers = (): Source<number> => ({
  defaultName: 'numbers',
  createReader: (ctx) => {
    let n = 0;
    return {
      async open() {},
      async poll(emit, max): Promise<PollResult> {
        if (ctx.stopSignal.aborted) return 'end';
        for (let i = 0; i < max; i++) emit(n++);
        return 'more';
      },
      snapshotState() {},
      async close() {},
    };
  },
});

const discard = (seen: { n: number }): Sink<number> => ({
  defaultName: 'discard',
  createWriter: () => ({
    async open() {},
    write() {
      seen.n++;
    },
    flush() {},
    async finish() {},
    async abort() {},
  }),
});

const barrier = (id: number) => ({
  kind: 'barrier' as const,
  checkpointId: checkpointId(id),
  timestamp: 0,
  savepoint: false,
});

const start = async () => {
  const env = new StreamExecutionEnvironment({ jobName: 'two-inputs', parallelism: 1 });
  const seen = { n: 0 };
  env
    .fromSource(numbers(), { uid: 'a' })
    .union(env.fromSource(numbers(), { uid: 'b' }))
    .map((x) => x + 1, { uid: 'merge' })
    .sinkTo(discard(seen), { uid: 'out' });
  const graph = env.buildGraph();
  const snapshots: TaskSnapshot[] = [];
  const declined: number[] = [];
  const rt = new WorkerRuntime(graph, planExecution(graph, 'single'), 0, DEFAULT_WORKER_OPTIONS, {
    checkpointing: true,
    restored: new Map(),
    onSnapshot: (s) => {
      snapshots.push(s);
      for (const op of s.operators) op.keyed?.release();
    },
    onDecline: (id) => declined.push(id),
  });
  await rt.open();
  const running = rt.run();
  const source = (uid: string) => rt.runners.find((r) => r.isSource && r.sourceUid === uid)!;
  const merge = rt.runners.find((r) => !r.isSource)!;
  const until = async (what: () => boolean) => {
    while (!what()) await new Promise((r) => setTimeout(r, 1));
  };
  return { rt, running, snapshots, declined, seen, source, merge, until };
};

describe('checkpoint protocol in the runtime', () => {
  for (const delayMs of [0, 2, 20]) {
    it(`an abort while one input delivered the barrier releases it; the next checkpoint is whole (abort after ${delayMs} ms)`, async () => {
      const t = await start();
      await t.until(() => t.seen.n > 0);
      // Checkpoint 1 reaches only source a (as if b were blocked), then the master aborts it.
      t.source('a').requestCheckpoint(barrier(1));
      await new Promise((r) => setTimeout(r, delayMs));
      t.rt.abortCheckpoint(1);
      t.rt.requestCheckpoint(barrier(2));
      await t.until(() => t.snapshots.filter((s) => s.checkpointId === 2).length === 3);
      // Records still flow after the abort: no channel is left blocked.
      const before = t.seen.n;
      await t.until(() => t.seen.n > before + 10_000);
      t.rt.requestStop();
      await t.running;
      const merged = t.snapshots.filter((s) => s.chain === t.merge.chain.index);
      expect(merged.map((s) => s.checkpointId)).toEqual([2]);
      expect(t.declined).toEqual([]);
    });
  }

  it('a newer barrier while aligning declines the older checkpoint and aligns the newer one', async () => {
    const t = await start();
    await t.until(() => t.seen.n > 0);
    t.source('a').requestCheckpoint(barrier(1));
    // Barrier 1 is held on a's channel until b's arrives, which never happens.
    await t.until(() => t.snapshots.some((s) => s.checkpointId === 1));
    t.rt.requestCheckpoint(barrier(2));
    await t.until(() => t.snapshots.filter((s) => s.checkpointId === 2).length === 3);
    t.rt.requestStop();
    await t.running;
    const merged = t.snapshots.filter((s) => s.chain === t.merge.chain.index);
    expect(merged.map((s) => s.checkpointId)).toEqual([2]);
    expect(t.declined).toEqual([1]);
  });

  it('a stop ends an unbounded source that never waits, with every subtask finished', async () => {
    const t = await start();
    await t.until(() => t.seen.n > 50_000);
    t.rt.requestStop();
    await t.running;
    expect(t.rt.runners.every((r) => r.finished)).toBe(true);
  });

  it('a stop ends a reader that keeps answering idle without looking at the stop signal', async () => {
    const env = new StreamExecutionEnvironment({ jobName: 'idle', parallelism: 1 });
    let polls = 0;
    const idle: Source<number> = {
      defaultName: 'idle',
      createReader: () => ({
        async open() {},
        async poll(): Promise<PollResult> {
          polls++;
          return 'idle';
        },
        snapshotState() {},
        async close() {},
      }),
    };
    env.fromSource(idle, { uid: 'idle' }).sinkTo(discard({ n: 0 }), { uid: 'out' });
    const graph = env.buildGraph();
    const rt = new WorkerRuntime(graph, planExecution(graph, 'single'), 0);
    await rt.open();
    const running = rt.run();
    while (polls < 2) await new Promise((r) => setTimeout(r, 5));
    rt.requestStop();
    await running;
    expect(rt.runners.every((r) => r.finished)).toBe(true);
  });
});
