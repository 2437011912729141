import { describe, expectTypeOf, it } from 'vitest';
import {
  SourceWatermarks,
  WatermarkStrategy,
  type WatermarkStrategyBuilder,
  type WatermarkTiming,
} from './watermarks.js';

interface Event {
  user: string;
  ts: number;
}

const clock = { now: () => 0 };

describe('WatermarkStrategy types', () => {
  it('a builder without a timestamp assigner is not a WatermarkStrategy', () => {
    const builder = WatermarkStrategy.forBoundedOutOfOrderness<Event>(1000);
    expectTypeOf(builder).toEqualTypeOf<WatermarkStrategyBuilder<Event>>();
    expectTypeOf(builder).not.toExtend<WatermarkStrategy<Event>>();
    expectTypeOf(builder.withIdleness(10)).not.toExtend<WatermarkStrategy<Event>>();
    expectTypeOf(WatermarkStrategy.forMonotonousTimestamps<Event>()).not.toExtend<
      WatermarkStrategy<Event>
    >();
    // @ts-expect-error no timestamp assigner yet
    const strategy: WatermarkStrategy<Event> = builder;
    void strategy;
  });

  it('types the assigner parameter as T and returns a WatermarkStrategy<T>', () => {
    const s = WatermarkStrategy.forBoundedOutOfOrderness<Event>(1000).withTimestampAssigner((e) => {
      expectTypeOf(e).toEqualTypeOf<Event>();
      return e.ts;
    });
    expectTypeOf(s).toEqualTypeOf<WatermarkStrategy<Event>>();
    expectTypeOf(s.timestampOf).parameter(0).toEqualTypeOf<Event>();
    expectTypeOf(s.timestampOf).returns.toEqualTypeOf<number>();
    expectTypeOf(s.withIdleness(5000)).toEqualTypeOf<WatermarkStrategy<Event>>();
    expectTypeOf(
      WatermarkStrategy.forMonotonousTimestamps<Event>()
        .withIdleness(10)
        .withTimestampAssigner((e) => e.ts),
    ).toEqualTypeOf<WatermarkStrategy<Event>>();
    // @ts-expect-error the assigner must return a number (epoch ms)
    WatermarkStrategy.forMonotonousTimestamps<Event>().withTimestampAssigner((e) => e.user);
    // @ts-expect-error Event has no `time` field
    WatermarkStrategy.forMonotonousTimestamps<Event>().withTimestampAssigner((e) => e.time);
  });

  it('is read-only', () => {
    const s = WatermarkStrategy.forMonotonousTimestamps<Event>().withTimestampAssigner((e) => e.ts);
    // @ts-expect-error strategies are immutable
    s.idleTimeoutMs = 5;
    expectTypeOf<WatermarkStrategy<Event>['kind']>().toEqualTypeOf<'bounded' | 'monotonous'>();
    expectTypeOf<WatermarkStrategy<Event>['idleTimeoutMs']>().toEqualTypeOf<number | undefined>();
  });

  it('SourceWatermarks accepts a strategy of any record type', () => {
    const s = WatermarkStrategy.forBoundedOutOfOrderness<Event>(5).withTimestampAssigner(
      (e) => e.ts,
    );
    expectTypeOf(s).toExtend<WatermarkTiming>();
    expectTypeOf(new SourceWatermarks(s, clock)).toEqualTypeOf<SourceWatermarks>();
    const erased = s as unknown as WatermarkStrategy<unknown>;
    expectTypeOf(new SourceWatermarks(erased, clock)).toEqualTypeOf<SourceWatermarks>();
    const wm = new SourceWatermarks(s, clock);
    expectTypeOf(wm.add).returns.toEqualTypeOf<number>();
    expectTypeOf(wm.onRecord).parameters.toEqualTypeOf<[number | undefined, number]>();
    expectTypeOf(wm.current()).toEqualTypeOf<{
      readonly watermark: number;
      readonly idle: boolean;
    }>();
  });
});
