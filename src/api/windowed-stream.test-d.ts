import { describe, expectTypeOf, it } from 'vitest';
import { memorySource } from '../runtime/testing/memory.js';
import { OutputTag } from '../runtime/time.js';
import type { AggregateFunction, ProcessWindowFunction } from '../runtime/windows/functions.js';
import {
  EventTimeSessionWindows,
  SlidingEventTimeWindows,
  type TimeWindow,
  TumblingEventTimeWindows,
  TumblingProcessingTimeWindows,
} from '../runtime/windows/index.js';
import type { DataStream } from './datastream.js';
import { StreamExecutionEnvironment } from './environment.js';
import { WindowedStream } from './windowed-stream.js';

interface Event {
  user: string;
  amount: number;
  ts: number;
}

const env = new StreamExecutionEnvironment({ jobName: 't', parallelism: 1 });
const keyed = env
  .fromSource(memorySource<Event>([]))
  .assignTimestamps((e) => e.ts)
  .keyBy((e) => e.user);
const windowed = new WindowedStream(keyed, TumblingEventTimeWindows.of(1000));

const average: AggregateFunction<Event, { n: number; sum: number }, number> = {
  createAccumulator: () => ({ n: 0, sum: 0 }),
  add: (e, acc) => ({ n: acc.n + 1, sum: acc.sum + e.amount }),
  getResult: (acc) => acc.sum / acc.n,
  merge: (a, b) => ({ n: a.n + b.n, sum: a.sum + b.sum }),
};

describe('WindowedStream types', () => {
  it('carries the record, key and window types', () => {
    expectTypeOf(windowed).toEqualTypeOf<WindowedStream<Event, string, TimeWindow>>();
    expectTypeOf(windowed.allowedLateness(10)).toEqualTypeOf<
      WindowedStream<Event, string, TimeWindow>
    >();
    expectTypeOf(windowed.sideOutputLateData(new OutputTag<Event>('late'))).toEqualTypeOf<
      WindowedStream<Event, string, TimeWindow>
    >();
  });

  it('reduce keeps the record type; with a window function it takes its output type', () => {
    expectTypeOf(
      windowed.reduce((a, b) => ({ user: a.user, ts: a.ts, amount: a.amount + b.amount })),
    ).toEqualTypeOf<DataStream<Event>>();
    const withWindow = windowed.reduce<{ user: string; end: number }>(
      (a, b) => ({ user: a.user, ts: a.ts, amount: a.amount + b.amount }),
      {
        process(key, ctx, [total], out) {
          expectTypeOf(key).toEqualTypeOf<string>();
          expectTypeOf(total).toEqualTypeOf<Event | undefined>();
          out.collect({ user: key, end: ctx.window.end });
        },
      },
      { uid: 'totals' },
    );
    expectTypeOf(withWindow).toEqualTypeOf<DataStream<{ user: string; end: number }>>();
  });

  it('aggregate gives the result type; with a window function its output type', () => {
    expectTypeOf(windowed.aggregate(average)).toEqualTypeOf<DataStream<number>>();
    expectTypeOf(windowed.aggregate(average, { name: 'avg' })).toEqualTypeOf<DataStream<number>>();
    // A window function declared with its types gives the output type.
    const label: ProcessWindowFunction<number, string, string> = {
      process(key, ctx, elements, out) {
        expectTypeOf(elements).toEqualTypeOf<readonly number[]>();
        out.collect(`${key}@${ctx.window.start}: ${elements[0]}`);
      },
    };
    expectTypeOf(windowed.aggregate(average, label)).toEqualTypeOf<DataStream<string>>();
    expectTypeOf(windowed.aggregate(average, label, { uid: 'x' })).toEqualTypeOf<
      DataStream<string>
    >();
    // @ts-expect-error: the window function takes the aggregate's result type
    windowed.aggregate(average, {} as ProcessWindowFunction<Event, string, string>);
  });

  it('process sees the key, the window and the records', () => {
    const counts = windowed.process<{ user: string; n: number }>({
      process(key, ctx, elements, out) {
        expectTypeOf(key).toEqualTypeOf<string>();
        expectTypeOf(ctx.window).toEqualTypeOf<TimeWindow>();
        expectTypeOf(ctx.currentWatermark).toEqualTypeOf<number>();
        expectTypeOf(elements).toEqualTypeOf<readonly Event[]>();
        out.collect({ user: key, n: elements.length });
      },
    });
    expectTypeOf(counts).toEqualTypeOf<DataStream<{ user: string; n: number }>>();
    const fn: ProcessWindowFunction<Event, number, string> = {
      process: (_k, _c, els, out) => out.collect(els.length),
    };
    expectTypeOf(windowed.process(() => fn)).toEqualTypeOf<DataStream<number>>();
  });

  it('rejects mismatched functions', () => {
    // @ts-expect-error: the reduce function must return the record type
    windowed.reduce((a: Event, b: Event) => a.amount + b.amount);
    // @ts-expect-error: the aggregate function must take the record type
    windowed.aggregate({} as AggregateFunction<string, number, number>);
    // @ts-expect-error: late data is of the record type
    windowed.sideOutputLateData(new OutputTag<number>('late'));
    windowed.process<number>({
      process(_key, _ctx, _elements, out) {
        // @ts-expect-error: the output type is number
        out.collect('x');
      },
    });
    // @ts-expect-error: the window function's key type is the stream's
    windowed.process({} as ProcessWindowFunction<Event, number, number>);
  });

  it('accepts every assigner', () => {
    new WindowedStream(keyed, SlidingEventTimeWindows.of(10, 5));
    new WindowedStream(keyed, EventTimeSessionWindows.withGap(10));
    new WindowedStream(keyed, TumblingProcessingTimeWindows.of(10));
  });
});
