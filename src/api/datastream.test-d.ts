import { describe, expectTypeOf, it } from 'vitest';
import type { Sink } from '../runtime/io.js';
import { memorySource } from '../runtime/testing/memory.js';
import { TumblingEventTimeWindows } from '../runtime/windows/index.js';
import { ValueStateDescriptor } from '../state/descriptors.js';
import type { ValueState } from '../state/types.js';
import type { DataStream, KeyedStream } from './datastream.js';
import { StreamExecutionEnvironment } from './environment.js';

interface Event {
  user: string;
  amount: number;
  meta: { region: string };
}

const env = new StreamExecutionEnvironment({ jobName: 't', parallelism: 1 });
const events = env.fromSource(memorySource<Event>([]));

describe('DataStream types', () => {
  it('flows element types through transformations', () => {
    expectTypeOf(events).toEqualTypeOf<DataStream<Event>>();
    expectTypeOf(events.map((e) => e.amount)).toEqualTypeOf<DataStream<number>>();
    expectTypeOf(events.filter((e) => e.amount > 0)).toEqualTypeOf<DataStream<Event>>();
    expectTypeOf(events.flatMap<string>((e, out) => out.collect(e.user))).toEqualTypeOf<
      DataStream<string>
    >();
    expectTypeOf(events.union(events)).toEqualTypeOf<DataStream<Event>>();
    const big = (e: Event): e is Event & { amount: 100 } => e.amount === 100;
    expectTypeOf(events.filter(big)).toEqualTypeOf<DataStream<Event & { amount: 100 }>>();
  });

  it('keys by selector or field, and only by hashable keys', () => {
    expectTypeOf(events.keyBy((e) => e.user)).toEqualTypeOf<KeyedStream<Event, string>>();
    expectTypeOf(events.keyBy((e) => [e.user, e.amount] as const)).toEqualTypeOf<
      KeyedStream<Event, readonly [string, number]>
    >();
    expectTypeOf(events.keyBy('amount')).toEqualTypeOf<KeyedStream<Event, number>>();
    // @ts-expect-error a plain object is not a key
    events.keyBy((e) => e.meta);
    // @ts-expect-error 'meta' holds an object, not a key
    events.keyBy('meta');
  });

  it('gives keyed functions the key type and typed state', () => {
    const out = events
      .keyBy((e) => e.user)
      .process<{ user: string; n: number }>(() => {
        let n: ValueState<number>;
        return {
          open(ctx) {
            n = ctx.getState(new ValueStateDescriptor<number>('n'));
            expectTypeOf(n).toEqualTypeOf<ValueState<number>>();
          },
          processElement(value, ctx, collector) {
            expectTypeOf(value).toEqualTypeOf<Event>();
            expectTypeOf(ctx.currentKey).toEqualTypeOf<string>();
            collector.collect({ user: ctx.currentKey, n: n.value() ?? 0 });
          },
        };
      });
    expectTypeOf(out).toEqualTypeOf<DataStream<{ user: string; n: number }>>();
    expectTypeOf(
      events.keyBy('user').reduce((a, b) => (b.amount > a.amount ? b : a)),
    ).toEqualTypeOf<DataStream<Event>>();
  });

  it('gives non-keyed process functions (value, ctx, out), as keyed ones', () => {
    const out = events.process<string>({
      processElement(value, ctx, collector) {
        expectTypeOf(value).toEqualTypeOf<Event>();
        expectTypeOf(ctx.output).toBeFunction();
        expectTypeOf(collector.collect).parameter(0).toEqualTypeOf<string>();
        collector.collect(value.user);
      },
    });
    expectTypeOf(out).toEqualTypeOf<DataStream<string>>();
    events.process<string>({
      // @ts-expect-error the collector comes last, after the context
      processElement(value: Event, collector: { collect(s: string): void }) {
        collector.collect(value.user);
      },
    });
  });

  it('only accepts sinks of the stream type', () => {
    const numberSink = {} as Sink<number>;
    events.map((e) => e.amount).sinkTo(numberSink);
    // @ts-expect-error a Sink<number> cannot take Event records
    events.sinkTo(numberSink);
  });

  it('an event-time window after a type-changing map keeps the result type', () => {
    expectTypeOf(
      events
        .map((e): [string, number] => [e.user, e.amount])
        .keyBy((p) => p[0])
        .window(TumblingEventTimeWindows.of(1000))
        .reduce((a, b) => [a[0], a[1] + b[1]] as [string, number]),
    ).toEqualTypeOf<DataStream<[string, number]>>();
  });
});
