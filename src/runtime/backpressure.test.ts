import { describe, expect, it } from 'vitest';
import { StreamExecutionEnvironment } from '../api/environment.js';
import { runGraphInThread } from '../api/job.js';
import type { PollResult, Sink, Source } from './io.js';
import { fanOutBatchSize } from './subtask.js';
import { DEFAULT_WORKER_OPTIONS } from './worker-runtime.js';

/** A source that can produce far faster than the sink consumes. */
const fastSource = (limit: number, counter: { emitted: number }): Source<number> => ({
  defaultName: 'fast',
  createReader: () => ({
    async open() {},
    async poll(emit, max): Promise<PollResult> {
      for (let i = 0; i < max && counter.emitted < limit; i++) emit(counter.emitted++);
      return counter.emitted >= limit ? 'end' : 'more';
    },
    snapshotState() {},
    async close() {},
  }),
});

/** A sink that takes 1 ms per batch and tracks the most records ever in flight. */
const slowSink = (counter: {
  emitted: number;
  sunk: number;
  maxInFlight: number;
}): Sink<number> => ({
  defaultName: 'slow',
  createWriter: () => ({
    async open() {},
    write() {
      counter.sunk++;
      counter.maxInFlight = Math.max(counter.maxInFlight, counter.emitted - counter.sunk);
    },
    flush: () => new Promise((r) => setTimeout(r, 1)),
    async finish() {},
    async abort() {},
  }),
});

describe('backpressure', () => {
  it('bounds records in flight between a fast source and a slow sink', async () => {
    const counter = { emitted: 0, sunk: 0, maxInFlight: 0 };
    const limit = 300_000;
    const env = new StreamExecutionEnvironment({ jobName: 'bp', parallelism: 1 });
    env
      .fromSource(fastSource(limit, counter))
      .rebalance()
      .sinkTo(slowSink(counter), { parallelism: 2 });
    await runGraphInThread(env.buildGraph());
    expect(counter.sunk).toBe(limit);
    const { batchSize, creditsPerChannel } = DEFAULT_WORKER_OPTIONS;
    // Per channel: `credits` frames in flight, one frame queued from the last poll, one partial batch.
    const bound = 2 * (creditsPerChannel + 2) * batchSize;
    expect(counter.maxInFlight).toBeLessThanOrEqual(bound);
    expect(limit).toBeGreaterThan(10 * bound);
  });
});

describe('fanOutBatchSize', () => {
  it('keeps the batch size up to 16 channels, then bounds a sender over all its channels', () => {
    expect(fanOutBatchSize(1024, 1)).toBe(1024);
    expect(fanOutBatchSize(1024, 16)).toBe(1024);
    expect(fanOutBatchSize(1024, 32)).toBe(512);
    expect(fanOutBatchSize(1024, 128)).toBe(128);
    expect(fanOutBatchSize(1024, 1024)).toBe(64);
    expect(fanOutBatchSize(10, 1000)).toBe(10); // a small configured batch stays as it is
    for (const fanOut of [1, 2, 16, 17, 100, 128, 256]) {
      expect(fanOut * fanOutBatchSize(1024, fanOut)).toBeLessThanOrEqual(
        Math.max(16 * 1024, 64 * fanOut),
      );
    }
  });
});
