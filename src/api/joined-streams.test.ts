import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../core/errors.js';
import type { Collector } from '../runtime/functions.js';
import { memorySink, memorySource } from '../runtime/testing/memory.js';
import { WatermarkStrategy } from '../runtime/watermarks.js';
import {
  EventTimeSessionWindows,
  SlidingEventTimeWindows,
  TumblingEventTimeWindows,
  TumblingProcessingTimeWindows,
} from '../runtime/windows/index.js';
import type { DataStream } from './datastream.js';
import { StreamExecutionEnvironment } from './environment.js';
import { defineJob, runJobInThread } from './job.js';

interface L {
  k: string;
  id: string;
  ts: number;
}
interface R {
  key: string;
  n: number;
  ts: number;
}

const env = () => new StreamExecutionEnvironment({ jobName: 't', parallelism: 1 });
const timed = <T extends { ts: number }>() =>
  WatermarkStrategy.forMonotonousTimestamps<T>().withTimestampAssigner((x) => x.ts);

describe('window join and coGroup at build time', () => {
  it('refuses an event-time window when a side has no timestamps, naming the side and stream', () => {
    const e = env();
    const withTs = e.fromSource(memorySource<L>([]), { name: 'lefts', watermarks: timed<L>() });
    const without = e.fromSource(memorySource<R>([]), { name: 'rights' });
    const join = () =>
      withTs
        .join(without)
        .where((l) => l.k)
        .equalTo((r) => r.key)
        .window(TumblingEventTimeWindows.of(10))
        .apply((l, r) => [l, r], { name: 'orders-payments' });
    expect(join).toThrow(InvalidArgumentError);
    expect(join).toThrow(
      /join 'orders-payments': TumblingEventTimeWindows\(10\) is an event-time window but the right \(second\) input \(the stream from 'rights' \(uid rights-1\)\) has no timestamps/,
    );
    const coGroup = () =>
      without
        .coGroup(withTs)
        .where((r) => r.key)
        .equalTo((l) => l.k)
        .window(SlidingEventTimeWindows.of(10, 5))
        .apply(() => {});
    expect(coGroup).toThrow(
      /coGroup 'window-cogroup': .* the left \(first\) input \(the stream from 'rights' \(uid rights-1\)\) has no timestamps/,
    );
    // Processing time needs none.
    expect(() =>
      without
        .join(without)
        .where((r) => r.key)
        .equalTo((r) => r.key)
        .window(TumblingProcessingTimeWindows.of(10))
        .apply((a, b) => a.n + b.n),
    ).not.toThrow();
  });

  it('validates the other input, the key selectors, the assigner and the function', () => {
    const e = env();
    const s = e.fromSource(memorySource<L>([]), { watermarks: timed<L>() });
    expect(() => s.join(s.keyBy((l) => l.k) as unknown as DataStream<L>)).toThrow(
      /join needs a DataStream as the other input .* got a KeyedStream/,
    );
    expect(() => s.coGroup(42 as never)).toThrow(/coGroup needs a DataStream .* got number/);
    expect(() => s.join(s).where('k' as never)).toThrow(
      /join\(\.\.\.\)\.where needs a key selector function, got string/,
    );
    expect(() =>
      s
        .coGroup(s)
        .where((l) => l.k)
        .equalTo(null as never),
    ).toThrow(/coGroup\(\.\.\.\)\.equalTo needs a key selector function, got null/);
    const eq = s
      .join(s)
      .where((l) => l.k)
      .equalTo((l) => l.k);
    expect(() => eq.window({} as never).apply((a) => a)).toThrow(/window needs a WindowAssigner/);
    expect(() => eq.window(TumblingEventTimeWindows.of(5)).apply(1 as never)).toThrow(
      /join apply needs a function, got number/,
    );
  });
});

const lefts: L[] = [
  { k: 'a', id: 'a1', ts: 1 },
  { k: 'b', id: 'b1', ts: 2 },
  { k: 'a', id: 'a2', ts: 4 },
  { k: 'c', id: 'c1', ts: 5 }, // no right c: dropped by the join, alone in the coGroup
  { k: 'a', id: 'a3', ts: 12 }, // next window
  { k: 'a', id: 'a4', ts: 30 },
];
const rights: R[] = [
  { key: 'a', n: 1, ts: 3 },
  { key: 'a', n: 2, ts: 9 },
  { key: 'b', n: 3, ts: 10 }, // window [10, 20): b1 is in [0, 10)
  { key: 'a', n: 4, ts: 15 },
  { key: 'd', n: 5, ts: 16 },
];

const run = async <O>(
  build: (l: DataStream<L>, r: DataStream<R>) => DataStream<O>,
  parallelism = 1,
): Promise<O[]> => {
  const out: O[] = [];
  await runJobInThread(
    defineJob({
      name: 'joins',
      build(e) {
        const l = e.fromSource(memorySource(lefts, { batch: 1 }), {
          uid: 'lefts',
          watermarks: timed<L>(),
        });
        const r = e.fromSource(memorySource(rights, { batch: 1 }), {
          uid: 'rights',
          watermarks: timed<R>(),
        });
        build(l, r).sinkTo(memorySink(out), { uid: 'out' });
      },
    }),
    { parallelism },
  );
  return out;
};

describe('window join and coGroup in a job', () => {
  it('join: the cross product per window and key, lefts outer, rights inner, arrival order', async () => {
    const out = await run((l, r) =>
      l
        .join(r)
        .where((x) => x.k)
        .equalTo((y) => y.key)
        .window(TumblingEventTimeWindows.of(10))
        .apply((x, y) => `${x.id}-${y.n}`, { uid: 'join' }),
    );
    expect(out).toEqual(['a1-1', 'a1-2', 'a2-1', 'a2-2', 'a3-4']);
  });

  it('join: the same results at parallelism 3, and with sliding windows once per window', async () => {
    const join = (l: DataStream<L>, r: DataStream<R>) =>
      l
        .join(r)
        .where((x) => x.k)
        .equalTo((y) => y.key)
        .window(SlidingEventTimeWindows.of(10, 5))
        .apply((x, y) => `${x.id}-${y.n}`, { uid: 'join' });
    const one = await run(join);
    // Windows [-5,5) [0,10) [5,15) [10,20) hold key a's pairs: a1-1 and a2-1 twice, a1-2 and
    // a2-2 once ([0,10)), a3-2 once ([5,15)), a3-4 once ([10,20)); b1(2) and 3(10) share none.
    expect([...one].sort()).toEqual(
      ['a1-1', 'a1-1', 'a2-1', 'a2-1', 'a1-2', 'a2-2', 'a3-2', 'a3-4'].sort(),
    );
    expect([...(await run(join, 3))].sort()).toEqual([...one].sort());
  });

  it('coGroup: every window and key with a record on either side', async () => {
    const out = await run((l, r) =>
      l
        .coGroup(r)
        .where((x) => x.k)
        .equalTo((y) => y.key)
        .window(TumblingEventTimeWindows.of(10))
        .apply(
          (ls: L[], rs: R[], o: Collector<string>) =>
            o.collect(`${ls.map((x) => x.id).join('+')}|${rs.map((y) => y.n).join('+')}`),
          { uid: 'cogroup' },
        ),
    );
    expect([...out].sort()).toEqual(['a1+a2|1+2', 'b1|', 'c1|', '|3', 'a3|4', '|5', 'a4|'].sort());
  });

  it('coGroup with session windows: both sides merge into one session', async () => {
    const out = await run((l, r) =>
      l
        .coGroup(r)
        .where((x) => x.k)
        .equalTo((y) => y.key)
        .window(EventTimeSessionWindows.withGap(4))
        .apply((ls, rs, o: Collector<string>) =>
          o.collect(`${ls.map((x) => x.id).join('+')}|${rs.map((y) => y.n).join('+')}`),
        ),
    );
    // key a: 1, 3, 4 chain (gap 4), 9 is 5 after 4: new session [9, 13) meets 12 -> [9, 16),
    // 15 joins it; 30 alone.
    expect([...out].sort()).toEqual(['a1+a2|1', 'a3|2+4', 'a4|', 'b1|', '|3', 'c1|', '|5'].sort());
  });

  it('fails the job, naming the operator, when the two sides key by different kinds', async () => {
    const failing = run((l, r) =>
      l
        .join(r)
        .where((x) => x.k)
        .equalTo((y) => y.n as unknown as string)
        .window(TumblingEventTimeWindows.of(10))
        .apply((x, y) => `${x.id}-${y.n}`, { name: 'mismatched', uid: 'join' }),
    );
    await expect(failing).rejects.toThrow(
      /operator 'mismatched': its two inputs' keys are of different types: where\(\.\.\.\) gave the string key "a", equalTo\(\.\.\.\) gave the number key 1/,
    );
  });
});
