/**
 * The connector contract end to end in one thread (runtime/io.ts): a sink's asynchronous
 * snapshot part is awaited before its checkpoint can complete, a rejected one declines only
 * that checkpoint, and sources and sinks hear of completed and aborted checkpoints.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { StreamExecutionEnvironment } from '../api/environment.js';
import { runGraphInThread } from '../api/job.js';
import type { PollResult, Sink, Source } from './io.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'eddy-cc-'));

/** Bounded, throttled by checkpoints: emits one batch per poll, `batches` in all. */
const counting = (batches: number, events: string[]): Source<number> => ({
  defaultName: 'counting',
  createReader: () => {
    let n = 0;
    return {
      async open() {},
      async poll(emit): Promise<PollResult> {
        if (n >= batches * 100) return 'end';
        for (let i = 0; i < 100; i++) emit(n++);
        await new Promise((r) => setTimeout(r, 2));
        return 'more';
      },
      snapshotState() {},
      async notifyCheckpointComplete(id) {
        events.push(`source complete ${id}`);
      },
      notifyCheckpointAborted(id) {
        events.push(`source aborted ${id}`);
      },
      async close() {},
    };
  },
});

/** A sink whose asynchronous snapshot part takes 30 ms, and fails for checkpoint `failOn`. */
const preparing = (events: string[], failOn?: number): Sink<number> => ({
  defaultName: 'preparing',
  createWriter: () => ({
    async open() {},
    write() {},
    flush() {},
    async finish() {},
    async abort() {},
    snapshotState(id) {
      events.push(`prepare ${id}`);
    },
    async snapshotStateAsync(id) {
      await new Promise((r) => setTimeout(r, 30));
      if (id === failOn) throw new Error(`cannot prepare ${id}`);
      events.push(`prepared ${id}`);
    },
    async notifyCheckpointComplete(id) {
      events.push(`sink complete ${id}`);
    },
    notifyCheckpointAborted(id) {
      events.push(`sink aborted ${id}`);
    },
  }),
});

const run = async (failOn?: number) => {
  const events: string[] = [];
  const logs: string[] = [];
  const env = new StreamExecutionEnvironment({ jobName: 'contract', parallelism: 1 });
  env.fromSource(counting(60, events), { uid: 'src' }).sinkTo(preparing(events, failOn), {
    uid: 'sink',
  });
  await runGraphInThread(env.buildGraph(), {
    checkpoint: { intervalMs: 10, dir: tmp() },
    log: (l) => logs.push(l),
    onCheckpoint: (s) => events.push(`completed ${s.checkpointId}`),
  });
  return { events, logs };
};

describe('the connector contract', () => {
  it("awaits a sink's asynchronous snapshot part before the checkpoint completes", async () => {
    const { events } = await run();
    const completed = events.filter((e) => e.startsWith('completed ')).map((e) => e.slice(10));
    expect(completed.length).toBeGreaterThan(1);
    for (const id of completed) {
      const at = (e: string) => events.indexOf(e);
      expect(at(`prepare ${id}`)).toBeGreaterThanOrEqual(0);
      expect(at(`prepared ${id}`)).toBeGreaterThan(at(`prepare ${id}`));
      expect(at(`completed ${id}`)).toBeGreaterThan(at(`prepared ${id}`));
      expect(at(`sink complete ${id}`)).toBeGreaterThan(at(`prepared ${id}`));
      expect(at(`source complete ${id}`)).toBeGreaterThan(at(`completed ${id}`));
    }
  });

  it('a rejected asynchronous part declines that checkpoint only; both ends hear of it', async () => {
    const { events, logs } = await run(2);
    expect(events).not.toContain('completed 2');
    expect(events).toContain('sink aborted 2');
    expect(events).toContain('source aborted 2');
    expect(logs.some((l) => /checkpoint 2 failed: .*cannot prepare 2/.test(l))).toBe(true);
    // The job went on: later checkpoints completed, the final one included.
    const completed = events
      .filter((e) => e.startsWith('completed '))
      .map((e) => Number(e.slice(10)));
    expect(completed.some((id) => id > 2)).toBe(true);
  });
});
