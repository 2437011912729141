import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../core/errors.js';
import { memorySink, memorySource } from '../runtime/testing/memory.js';
import { OutputTag } from '../runtime/time.js';
import { WatermarkStrategy } from '../runtime/watermarks.js';
import {
  EventTimeSessionWindows,
  TumblingEventTimeWindows,
  TumblingProcessingTimeWindows,
} from '../runtime/windows/index.js';
import { StreamExecutionEnvironment } from './environment.js';
import { defineJob, runJobInThread } from './job.js';
import { WindowedStream } from './windowed-stream.js';

interface Event {
  user: string;
  amount: number;
  ts: number;
}

const env = () => new StreamExecutionEnvironment({ jobName: 't', parallelism: 1 });

describe('WindowedStream at build time', () => {
  it('refuses an event-time window on a stream without timestamps', () => {
    const keyed = env()
      .fromSource(memorySource<Event>([]))
      .keyBy((e) => e.user);
    const build = () => new WindowedStream(keyed, TumblingEventTimeWindows.of(10));
    expect(build).toThrow(InvalidArgumentError);
    expect(build).toThrow(/no timestamps: give the source a WatermarkStrategy .* assignTimestamps/);
    // Processing time needs no timestamps.
    expect(() => new WindowedStream(keyed, TumblingProcessingTimeWindows.of(10))).not.toThrow();
  });

  it('validates lateness, tags and functions', () => {
    const keyed = env()
      .fromSource(memorySource<Event>([]))
      .assignTimestamps((e) => e.ts)
      .keyBy((e) => e.user);
    const w = new WindowedStream(keyed, TumblingEventTimeWindows.of(10));
    expect(() => w.allowedLateness(-1)).toThrow(/allowedLateness .* got -1/);
    expect(() => w.sideOutputLateData('late' as never)).toThrow(/needs an OutputTag/);
    expect(() => w.reduce(42 as never)).toThrow(/window reduce needs a function, got number/);
    expect(() => w.process({} as never)).toThrow(/process method/);
    expect(() => w.aggregate({ add() {} } as never)).toThrow(
      /createAccumulator, add and getResult/,
    );
    const sessions = new WindowedStream(keyed, EventTimeSessionWindows.withGap(5));
    expect(() =>
      sessions.aggregate({
        createAccumulator: () => 0,
        add: (_e, a) => a + 1,
        getResult: (a) => a,
      }),
    ).toThrow(/EventTimeSessionWindows\(5\) merges windows: the AggregateFunction needs a merge/);
    const processing = new WindowedStream(keyed, TumblingProcessingTimeWindows.of(10));
    expect(() => processing.allowedLateness(5)).toThrow(/event-time windows only/);
  });

  it('is immutable: configuration returns a new stream', () => {
    const keyed = env()
      .fromSource(memorySource<Event>([]))
      .assignTimestamps((e) => e.ts)
      .keyBy((e) => e.user);
    const w = new WindowedStream(keyed, TumblingEventTimeWindows.of(10));
    expect(w.allowedLateness(5)).not.toBe(w);
  });
});

describe('WindowedStream in a job', () => {
  it('sums per user and window, with late records on the side output', async () => {
    const late = new OutputTag<Event>('late');
    const events: Event[] = [
      { user: 'a', amount: 1, ts: 1 },
      { user: 'b', amount: 2, ts: 3 },
      { user: 'a', amount: 3, ts: 12 },
      { user: 'a', amount: 4, ts: 5 }, // watermark 12 - 0 - 1 = 11 passed [0,10): late
      { user: 'b', amount: 5, ts: 25 },
    ];
    const sums: Event[] = [];
    const lateOut: Event[] = [];
    await runJobInThread(
      defineJob({
        name: 'windows',
        build(e) {
          const keyed = e
            .fromSource(memorySource(events, { batch: 1 }), {
              uid: 'events',
              watermarks: WatermarkStrategy.forMonotonousTimestamps<Event>().withTimestampAssigner(
                (x) => x.ts,
              ),
            })
            .keyBy((x) => x.user);
          const summed = new WindowedStream(keyed, TumblingEventTimeWindows.of(10))
            .sideOutputLateData(late)
            .reduce((x, y) => ({ user: x.user, amount: x.amount + y.amount, ts: x.ts }), {
              uid: 'sums',
            });
          summed.sinkTo(memorySink(sums), { uid: 'sums-out' });
          summed.getSideOutput(late).sinkTo(memorySink(lateOut), { uid: 'late-out' });
        },
      }),
      { parallelism: 1 },
    );
    expect(sums).toEqual([
      { user: 'a', amount: 1, ts: 1 },
      { user: 'b', amount: 2, ts: 3 },
      { user: 'a', amount: 3, ts: 12 },
      { user: 'b', amount: 5, ts: 25 },
    ]);
    expect(lateOut).toEqual([{ user: 'a', amount: 4, ts: 5 }]);
  });
});
