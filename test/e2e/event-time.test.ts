/**
 * Event time through the whole runtime, in one thread: source watermarks, keyed event-time
 * timers fired by the watermark and by the end of input, side outputs, and timers that stay
 * pending across a stop-with-savepoint and fire exactly once after a restore at another
 * parallelism.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { defineJob, runJobInThread } from '../../src/api/job.js';
import { CheckpointStorage } from '../../src/checkpoint/index.js';
import { FileSink, GeneratorSource } from '../../src/connectors/index.js';
import type { Source } from '../../src/runtime/io.js';
import { OutputTag } from '../../src/runtime/time.js';
import { WatermarkStrategy } from '../../src/runtime/watermarks.js';
import { TumblingEventTimeWindows } from '../../src/runtime/windows/index.js';
import { MapStateDescriptor } from '../../src/state/descriptors.js';
import type { MapState } from '../../src/state/types.js';
import { sale as fixtureSale, SALES, WINDOW_MS } from './fixtures/mapped-window-job.js';
import { eddy, readParts } from './helpers.js';

interface Ev {
  user: string;
  ts: number;
}

const tmp = () => mkdtempSync(join(tmpdir(), 'eddy-et-'));
const USERS = 13;
/** Per user, events every 10 ms of event time; user u's last event is at ts(u, n - 1). */
const event = (i: number): Ev => ({ user: `u${i % USERS}`, ts: 1_000 + 10 * i });

/**
 * The source's readers emit `at` records in all, then answer 'idle' until the job is stopped:
 * a stop triggered once `at` records were processed is mid-stream on any machine (without it,
 * a loaded machine could let the sources emit everything before the stop took effect).
 */
const holdAfter = <T>(source: Source<T>, at: number): Source<T> => {
  let emitted = 0;
  return {
    defaultName: source.defaultName,
    createReader(ctx) {
      const inner = source.createReader(ctx);
      return {
        open: () => inner.open(),
        async poll(emit, max) {
          if (emitted >= at) return 'idle';
          return inner.poll(
            (r, split) => {
              emitted++;
              emit(r, split);
            },
            Math.min(max, at - emitted),
          );
        },
        snapshotState: (id) => inner.snapshotState(id),
        close: () => inner.close(),
      };
    },
  };
};

/**
 * Per user and second of event time: counts the events in a map state and emits the count
 * when the watermark passes the end of the second (one deduplicated event-time timer per
 * user and second): a tumbling window built from timers, deterministic whatever the batching.
 * Odd counts also go to a side output.
 */
const job = (
  output: string,
  sideOutput: string,
  count: number,
  rate?: number,
  /** Called once, when the job has processed `at` records: e.g. a stop mid-stream. */
  midway?: { at: number; run: () => void },
) => {
  let processed = 0;
  const odd = new OutputTag<{ user: string; n: number }>('odd');
  const generator = GeneratorSource.of({
    count,
    generate: event,
    ...(rate === undefined ? {} : { ratePerSecond: rate }),
  });
  return defineJob({
    name: 'timers',
    build(env) {
      const counted = env
        .fromSource(midway === undefined ? generator : holdAfter(generator, midway.at), {
          uid: 'events',
          watermarks: WatermarkStrategy.forMonotonousTimestamps<Ev>().withTimestampAssigner(
            (e) => e.ts,
          ),
        })
        .keyBy((e) => e.user)
        .process<{ user: string; at: number; n: number }>(
          () => {
            let buckets: MapState<number, number>;
            return {
              open(ctx) {
                buckets = ctx.getState(new MapStateDescriptor<number, number>('per-second'));
              },
              processElement(e, ctx) {
                if (++processed === midway?.at) midway.run();
                expect(ctx.timestamp()).toBe(e.ts);
                const end = Math.floor(e.ts / 1000) * 1000 + 1000;
                expect(ctx.timerService.currentWatermark()).toBeLessThan(end);
                buckets.put(end, (buckets.get(end) ?? 0) + 1);
                ctx.timerService.registerEventTimeTimer(end);
              },
              onTimer(ts, ctx, out) {
                expect(ctx.timeDomain).toBe('event');
                expect(ctx.timerService.currentWatermark()).toBeGreaterThanOrEqual(ts);
                const total = buckets.get(ts)!;
                buckets.delete(ts);
                out.collect({ user: ctx.currentKey, at: ts, n: total });
                if (total % 2 === 1) ctx.output(odd, { user: ctx.currentKey, n: total });
              },
            };
          },
          { uid: 'count' },
        );
      counted.sinkTo(FileSink.jsonl({ path: output }), { uid: 'out' });
      counted.getSideOutput(odd).sinkTo(FileSink.jsonl({ path: sideOutput }), { uid: 'odd-out' });
    },
  });
};

/** What the job must emit: per user and second, the user's events in that second. */
const expected = (count: number) => {
  const rows: string[] = [];
  const perUser = new Map<string, number[]>();
  for (let i = 0; i < count; i++) {
    const e = event(i);
    const list = perUser.get(e.user) ?? [];
    list.push(e.ts);
    perUser.set(e.user, list);
  }
  for (const [user, tss] of perUser) {
    const timers = [...new Set(tss.map((t) => Math.floor(t / 1000) * 1000 + 1000))];
    for (const at of timers) {
      const n = tss.filter((t) => t >= at - 1000 && t < at).length;
      rows.push(JSON.stringify({ user, at, n }));
    }
  }
  return rows.sort();
};

const sortedParts = (dir: string) => readParts(dir).sort();

describe('event time in the runtime', () => {
  it('fires event-time timers on the watermark and at the end of input; side outputs reach their sink', async () => {
    const count = 3_000;
    const out = join(tmp(), 'out');
    const side = join(tmp(), 'side');
    await runJobInThread(job(out, side, count), { parallelism: 3 }, { log: () => {} });
    const want = expected(count);
    expect(sortedParts(out)).toEqual(want);
    const odd = want
      .map((l) => JSON.parse(l) as { user: string; n: number })
      .filter((r) => r.n % 2 === 1)
      .map((r) => JSON.stringify({ user: r.user, n: r.n }))
      .sort();
    expect(sortedParts(side)).toEqual(odd);
  });

  it('keeps timers pending across stop-with-savepoint and fires each once after a restore at another parallelism', async () => {
    const count = 6_000;
    const out = join(tmp(), 'out');
    const side = join(tmp(), 'side');
    const savepoints = tmp();
    let master: { stop(dir?: string): void } | undefined;
    // Stopped from inside the job after 1500 records: mid-stream whatever the machine's speed.
    const stopMidway = { at: 1_500, run: () => master!.stop(savepoints) };
    const first = await runJobInThread(
      job(out, side, count, 20_000, stopMidway),
      { parallelism: 2, maxParallelism: 16 },
      {
        checkpoint: { intervalMs: 20, dir: join(tmp(), 'chk') },
        log: () => {},
        onMaster: (m) => {
          master = m;
        },
      },
    );
    expect(first.savepoint).toBeDefined();
    const partial = sortedParts(out);
    expect(partial.length).toBeLessThan(expected(count).length);
    const metadata = await new CheckpointStorage(first.savepoint!).loadMetadata(first.savepoint!);
    await runJobInThread(
      job(out, side, count),
      { parallelism: 3, maxParallelism: 16 },
      { restore: { dir: first.savepoint!, metadata }, log: () => {} },
    );
    expect(sortedParts(out)).toEqual(expected(count));
  });

  /**
   * Two source subtasks; subtask 1 never emits (an unbounded, quiet partition). With an
   * idleness timeout it stops holding the watermark back and subtask 0's timers fire while
   * the job runs; without one nothing fires until the job is stopped.
   */
  const quietSource = (n: number): Source<Ev> => ({
    defaultName: 'quiet',
    createReader: (ctx) => {
      let next = 0;
      return {
        async open() {},
        async poll(emit, max) {
          if (ctx.stopSignal.aborted) return 'end';
          if (ctx.subtask.subtaskIndex === 0 && next < n) {
            for (const end = Math.min(n, next + max); next < end; next++) {
              emit({ user: `u${next % 5}`, ts: 1_000 + 10 * next });
            }
          } else {
            await new Promise((r) => setTimeout(r, 5));
          }
          return 'more';
        },
        snapshotState() {},
        async close() {},
      };
    },
  });

  const runQuiet = async (idleMs: number | undefined) => {
    const out = join(tmp(), 'out');
    const fired: number[] = [];
    const strategy = WatermarkStrategy.forMonotonousTimestamps<Ev>().withTimestampAssigner(
      (e) => e.ts,
    );
    const job = defineJob({
      name: 'idle',
      build(env) {
        env
          .fromSource(quietSource(500), {
            uid: 'quiet',
            parallelism: 2,
            watermarks: idleMs === undefined ? strategy : strategy.withIdleness(idleMs),
          })
          .keyBy((e) => e.user)
          .process<number>(
            () => ({
              processElement(e, ctx) {
                ctx.timerService.registerEventTimeTimer(Math.floor(e.ts / 1000) * 1000 + 1000);
              },
              onTimer(ts, _ctx, o) {
                fired.push(ts);
                o.collect(ts);
              },
            }),
            { uid: 'timers', parallelism: 1 },
          )
          .sinkTo(FileSink.jsonl({ path: out }), { uid: 'out', parallelism: 1 });
      },
    });
    let firedWhileRunning = 0;
    await runJobInThread(
      job,
      { parallelism: 2 },
      {
        log: () => {},
        onMaster: (m) =>
          setTimeout(() => {
            firedWhileRunning = fired.length;
            m.stop();
          }, 800),
      },
    );
    return firedWhileRunning;
  };

  it('an idle source subtask does not hold the watermark back (with an idleness timeout)', async () => {
    // 500 events at 10 ms steps from ts 1000: seconds 1..5 end at 2000..6000; the watermark
    // of subtask 0 stops at 5989, so the timers of 2000..5000 fire, 6000 does not.
    expect(await runQuiet(50)).toBe(4 * 5);
    expect(await runQuiet(undefined)).toBe(0);
  });

  it('windowAll counts every record of all subtasks in one window operator of parallelism 1', async () => {
    const count = 2_500;
    const out = join(tmp(), 'out');
    const job = defineJob({
      name: 'window-all',
      build(env) {
        const events = env.fromSource(GeneratorSource.of({ count, generate: event }), {
          uid: 'events',
          watermarks: WatermarkStrategy.forMonotonousTimestamps<Ev>().withTimestampAssigner(
            (e) => e.ts,
          ),
        });
        expect(() =>
          events
            .windowAll(TumblingEventTimeWindows.of(1000))
            .aggregate(
              { createAccumulator: () => 0, add: (_e, n) => n + 1, getResult: (n) => n },
              { parallelism: 2 },
            ),
        ).toThrow(/parallelism 1/);
        events
          .windowAll(TumblingEventTimeWindows.of(1000))
          .process<{ start: number; n: number }>(
            {
              process(_key, ctx, elements, o) {
                o.collect({ start: ctx.window.start, n: elements.length });
              },
            },
            { uid: 'per-second' },
          )
          .sinkTo(FileSink.jsonl({ path: out }), { uid: 'out' });
      },
    });
    await runJobInThread(job, { parallelism: 3 }, { log: () => {} });
    const perSecond = new Map<number, number>();
    for (let i = 0; i < count; i++) {
      const start = Math.floor(event(i).ts / 1000) * 1000;
      perSecond.set(start, (perSecond.get(start) ?? 0) + 1);
    }
    const want = [...perSecond].map(([start, n]) => JSON.stringify({ start, n })).sort();
    expect(sortedParts(out)).toEqual(want);
  });

  it('a non-keyed process function emits to a side output through its context', async () => {
    const count = 1_000;
    const evens = join(tmp(), 'evens');
    const odds = join(tmp(), 'odds');
    const oddTag = new OutputTag<number>('odd');
    const job = defineJob({
      name: 'split',
      build(env) {
        const split = env
          .fromSource(GeneratorSource.of({ count, generate: (i) => i }), { uid: 'numbers' })
          .process<number>(
            {
              processElement(n, ctx, out) {
                if (n % 2 === 0) out.collect(n);
                else ctx.output(oddTag, n);
              },
            },
            { uid: 'split' },
          );
        split.sinkTo(FileSink.jsonl({ path: evens }), { uid: 'evens' });
        split.getSideOutput(oddTag).sinkTo(FileSink.jsonl({ path: odds }), { uid: 'odds' });
      },
    });
    await runJobInThread(job, { parallelism: 2 }, { log: () => {} });
    const numbers = (dir: string) =>
      readParts(dir)
        .map(Number)
        .sort((a, b) => a - b);
    const all = Array.from({ length: count }, (_, i) => i);
    expect(numbers(evens)).toEqual(all.filter((n) => n % 2 === 0));
    expect(numbers(odds)).toEqual(all.filter((n) => n % 2 === 1));
  });
});

/**
 * Timestamps travel with records through map, flatMap and process (and union), as in Flink:
 * each output carries the timestamp of the input that produced it; a window's results carry
 * the window's maxTimestamp.
 */
describe('timestamps through type-changing operators', () => {
  interface Sale {
    user: string;
    amount: number;
    ts: number;
  }
  const N = 3_000;
  /** Out of order within 50 ms; event time is `ts`, which the map below drops. */
  const sale = (i: number): Sale => ({
    user: `u${i % 7}`,
    amount: 1 + (i % 5),
    ts: 10_000 + 7 * i + ((i * 37) % 50),
  });
  const strategy = () =>
    WatermarkStrategy.forBoundedOutOfOrderness<Sale>(100).withTimestampAssigner((s) => s.ts);
  const WINDOW = 1_000;
  /** Per user and window start: the sum of amounts, from the raw events. */
  const expected = (filter: (s: Sale) => boolean = () => true, factor = 1): string[] => {
    const sums = new Map<string, number>();
    for (let i = 0; i < N; i++) {
      const s = sale(i);
      if (!filter(s)) continue;
      const id = `${s.user}|${Math.floor(s.ts / WINDOW) * WINDOW}`;
      sums.set(id, (sums.get(id) ?? 0) + s.amount * factor);
    }
    return [...sums]
      .map(([id, sum]) => {
        const [user, start] = id.split('|');
        return JSON.stringify({ user, start: Number(start), sum });
      })
      .sort();
  };
  type Pair = [string, number];
  const sumPerWindow = (pairs: import('../../src/api/datastream.js').DataStream<Pair>) =>
    pairs
      .keyBy((p) => p[0])
      .window(TumblingEventTimeWindows.of(WINDOW))
      .reduce((a, b) => [a[0], a[1] + b[1]] as Pair, {
        process(user, ctx, sums, o) {
          o.collect({ user, start: ctx.window.start, sum: sums[0]![1] });
        },
      });
  const run = async <R>(
    shape: (
      events: import('../../src/api/datastream.js').DataStream<Sale>,
      env: import('../../src/api/environment.js').StreamExecutionEnvironment,
    ) => import('../../src/api/datastream.js').DataStream<R>,
    parallelism = 2,
  ) => {
    const out = join(tmp(), 'out');
    const job = defineJob({
      name: 'carried',
      build(env) {
        const events = env.fromSource(GeneratorSource.of({ count: N, generate: sale }), {
          uid: 'sales',
          watermarks: strategy(),
        });
        shape(events, env).sinkTo(FileSink.jsonl({ path: out }), { uid: 'out' });
      },
    });
    await runJobInThread(job, { parallelism }, { log: () => {} });
    return sortedParts(out);
  };

  it("the issue's pipeline: source with a WatermarkStrategy -> map -> keyBy -> tumbling event-time window -> sum", async () => {
    const got = await run((events) =>
      sumPerWindow(events.map((s): Pair => [s.user, s.amount], { uid: 'to-pair' })),
    );
    expect(got).toEqual(expected());
  });

  it('map at another parallelism (a network edge carrying timestamps before keyBy)', async () => {
    const got = await run((events) =>
      sumPerWindow(
        events.rebalance().map((s): Pair => [s.user, s.amount], { uid: 'p3', parallelism: 3 }),
      ),
    );
    expect(got).toEqual(expected());
  });

  it('filter after map, flatMap, non-keyed process', async () => {
    const big = (s: Sale) => s.amount > 2;
    expect(
      await run((events) =>
        sumPerWindow(
          events.map((s): Pair => [s.user, s.amount], { uid: 'm' }).filter((p) => p[1] > 2),
        ),
      ),
    ).toEqual(expected(big));
    expect(
      await run((events) =>
        sumPerWindow(
          events.flatMap<Pair>(
            (s, o) => {
              o.collect([s.user, s.amount]);
              o.collect([s.user, s.amount]);
            },
            { uid: 'twice' },
          ),
        ),
      ),
    ).toEqual(expected(() => true, 2));
    expect(
      await run((events) =>
        sumPerWindow(
          events.process<Pair>(
            {
              processElement(s, _ctx, o) {
                o.collect([s.user, s.amount]);
              },
            },
            { uid: 'proc' },
          ),
        ),
      ),
    ).toEqual(expected());
  });

  it('union keeps each input its own timestamps (mapped stream with a stream of another assigner)', async () => {
    const got = await run((events, env) => {
      const mapped = events.map((s): Pair => [s.user, s.amount], { uid: 'm' });
      // The same sales again as pairs from a second source, timestamps from its own assigner.
      const again = env
        .fromSource(
          GeneratorSource.of({
            count: N,
            generate: (i): [string, number, number] => [sale(i).user, sale(i).amount, sale(i).ts],
          }),
          {
            uid: 'sales-2',
            watermarks: WatermarkStrategy.forBoundedOutOfOrderness<[string, number, number]>(
              100,
            ).withTimestampAssigner((t) => t[2]),
          },
        )
        .filter(() => true, { uid: 'f' });
      const pairs = mapped.union(again as unknown as typeof mapped);
      return sumPerWindow(pairs);
    });
    expect(got).toEqual(expected(() => true, 2));
  });

  it('ctx.timestamp() after a map; window results carry window.maxTimestamp into a second window', async () => {
    const stamps = await run((events) =>
      events
        .map((s) => ({ user: s.user, ts: s.ts }), { uid: 'm' })
        .keyBy((s) => s.user)
        .process<boolean>(
          {
            processElement(s, ctx, o) {
              o.collect(ctx.timestamp() === s.ts);
            },
          },
          { uid: 'check' },
        )
        .filter((ok) => !ok, { uid: 'bad' }),
    );
    expect(stamps).toEqual([]);
    // Per-second sums, then per 5 s windows of those results without assignTimestamps.
    const fives = await run((events) =>
      sumPerWindow(events.map((s): Pair => [s.user, s.amount], { uid: 'm' }))
        .map((r) => ['all', (r as { sum: number }).sum] as Pair, { uid: 'all' })
        .keyBy((p) => p[0])
        .window(TumblingEventTimeWindows.of(5 * WINDOW))
        .process<{ start: number; sum: number }>(
          {
            process(_k, ctx, ps, o) {
              o.collect({ start: ctx.window.start, sum: ps.reduce((a, p) => a + p[1], 0) });
            },
          },
          { uid: 'five' },
        ),
    );
    const want = new Map<number, number>();
    for (let i = 0; i < N; i++) {
      const s = sale(i);
      const start = Math.floor(s.ts / (5 * WINDOW)) * 5 * WINDOW;
      want.set(start, (want.get(start) ?? 0) + s.amount);
    }
    expect(fives).toEqual([...want].map(([start, sum]) => JSON.stringify({ start, sum })).sort());
  });

  it("the issue's pipeline through worker threads at p=2: timestamps travel on the wire", async () => {
    const out = join(tmp(), 'out');
    const r = await eddy(['run', 'test/e2e/fixtures/mapped-window-job.ts', '-p', '2', '--', out]);
    expect(r.code, r.stderr).toBe(0);
    const sums = new Map<string, number>();
    for (let i = 0; i < SALES; i++) {
      const s = fixtureSale(i);
      const id = JSON.stringify([s.user, Math.floor(s.ts / WINDOW_MS) * WINDOW_MS]);
      sums.set(id, (sums.get(id) ?? 0) + s.amount);
    }
    const want = [...sums].map(([id, sum]) => {
      const [user, start] = JSON.parse(id) as [string, number];
      return JSON.stringify({ user, start, sum });
    });
    expect(sortedParts(out)).toEqual(want.sort());
  });
});
