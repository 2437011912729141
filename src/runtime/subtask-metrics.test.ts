/**
 * The metrics a subtask reports beside its counters (for the REST API and /metrics): the time
 * it spent blocked on output credit, its watermark, and the worker it runs on.
 */
import { describe, expect, it } from 'vitest';
import { StreamExecutionEnvironment } from '../api/environment.js';
import { runGraphInThread } from '../api/job.js';
import type { PollResult, Sink, Source } from './io.js';
import { type SubtaskMetricsReport, totals } from './metrics.js';
import { WatermarkStrategy } from './watermarks.js';

/** `limit` numbers, at most `perPoll` per poll, each poll after `pollDelayMs`. */
const numbers = (limit: number, pollDelayMs = 0, perPoll = Infinity): Source<number> => ({
  defaultName: 'numbers',
  createReader: () => {
    let next = 0;
    return {
      async open() {},
      async poll(emit, max): Promise<PollResult> {
        if (pollDelayMs > 0) await new Promise((r) => setTimeout(r, pollDelayMs));
        for (let i = 0; i < Math.min(max, perPoll) && next < limit; i++) emit(next++);
        return next >= limit ? 'end' : 'more';
      },
      snapshotState() {},
      async close() {},
    };
  },
});

const sink = (flushMs: number): Sink<number> => ({
  defaultName: 'sink',
  createWriter: () => ({
    async open() {},
    write() {},
    flush: () => (flushMs > 0 ? new Promise((r) => setTimeout(r, flushMs)) : undefined),
    async finish() {},
    async abort() {},
  }),
});

describe('subtask metrics', () => {
  it('count every operator’s records out: chained, at the chain’s tail, and not twice for a source', async () => {
    const env = new StreamExecutionEnvironment({ jobName: 'counts', parallelism: 1 });
    env
      .fromSource(numbers(1000))
      .map((n) => n * 2, { name: 'double' })
      .filter((n) => n % 3 === 0, { name: 'thirds' })
      .rebalance()
      .flatMap(
        (n: number, out) => {
          out.collect(n);
          out.collect(n);
        },
        { name: 'twice', parallelism: 2 },
      )
      .sinkTo(sink(0), { parallelism: 2 });
    const result = await runGraphInThread(env.buildGraph());
    const sum = (name: string, field: 'recordsIn' | 'recordsOut') =>
      result.metrics
        .filter((r) => r.operatorName === name)
        .reduce((a, r) => a + (r.values[field] ?? 0), 0);
    const thirds = Math.ceil(1000 / 3); // 0, 3, 6, … of the doubled numbers 0..1998
    expect(sum('numbers', 'recordsOut')).toBe(1000);
    expect([sum('double', 'recordsIn'), sum('double', 'recordsOut')]).toEqual([1000, 1000]);
    expect([sum('thirds', 'recordsIn'), sum('thirds', 'recordsOut')]).toEqual([1000, thirds]);
    expect([sum('twice', 'recordsIn'), sum('twice', 'recordsOut')]).toEqual([thirds, 2 * thirds]);
    expect(sum('sink', 'recordsIn')).toBe(2 * thirds);
  });

  it('count as written by sinks only what sinks took in, not what an unread operator did', async () => {
    const env = new StreamExecutionEnvironment({ jobName: 'dangling', parallelism: 1 });
    const all = env.fromSource(numbers(1000));
    all.filter((n) => n % 2 === 0, { name: 'unread' });
    all.filter((n) => n % 10 === 0, { name: 'tens' }).sinkTo(sink(0));
    const result = await runGraphInThread(env.buildGraph());
    expect(result.metrics.find((r) => r.operatorName === 'unread')?.kind).toBe('operator');
    expect(totals(result.metrics)).toEqual({ recordsIn: 1000, recordsOut: 100, deadLetters: 0 });
  });

  it('count the time a fast source waits for a slow sink as backpressure', async () => {
    const env = new StreamExecutionEnvironment({ jobName: 'bp', parallelism: 1 });
    env.fromSource(numbers(200_000)).rebalance().sinkTo(sink(1), { parallelism: 2 });
    const started = performance.now();
    const result = await runGraphInThread(env.buildGraph());
    const wall = performance.now() - started;
    const source = result.metrics.find((r) => r.kind === 'source')!;
    const sinks = result.metrics.filter((r) => r.kind === 'sink');
    // The sink is the bottleneck: the source spends most of the run blocked on it.
    expect(source.values.backpressuredMs).toBeGreaterThan(wall * 0.3);
    expect(source.values.backpressuredMs).toBeLessThanOrEqual(wall);
    for (const s of sinks) expect(s.values.backpressuredMs).toBe(0);
    for (const r of result.metrics) expect(r.worker).toBe(0);
  });

  it('report the event-time watermark a subtask reached', async () => {
    const env = new StreamExecutionEnvironment({ jobName: 'wm', parallelism: 1 });
    env
      // ~100 polls over at least 200 ms: sampled many times while it runs.
      .fromSource(numbers(2_000, 2, 20), {
        watermarks: WatermarkStrategy.forMonotonousTimestamps<number>().withTimestampAssigner(
          (n) => 1_000_000 + n,
        ),
      })
      .rebalance()
      .sinkTo(sink(0), { parallelism: 1 });
    const samples: SubtaskMetricsReport[][] = [];
    await runGraphInThread(env.buildGraph(), {
      metricsIntervalMs: 5,
      onMetrics: (r) => samples.push(r),
    });
    const seen = (kind: string) =>
      samples.flat().filter((r) => r.kind === kind && r.values.watermark !== undefined);
    for (const kind of ['source', 'sink']) {
      const wms = seen(kind).map((r) => r.values.watermark!);
      expect(wms.length, kind).toBeGreaterThan(0);
      expect(Math.min(...wms)).toBeGreaterThanOrEqual(1_000_000 - 1);
      expect(Math.max(...wms)).toBeLessThan(1_002_000);
      // Never going back.
      expect(wms).toEqual([...wms].sort((a, b) => a - b));
    }
  });
});
