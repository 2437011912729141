import { afterEach, describe, expect, it } from 'vitest';
import { assignToKeyGroup, computeKeyGroupRange, normalizeKey } from '../keygroups/index.js';
import { SubtaskMetrics } from '../runtime/metrics.js';
import { KeyedCoProcessOperator } from '../runtime/operators/two-input.js';
import { memorySink, memorySource } from '../runtime/testing/memory.js';
import { wallClock } from '../runtime/time.js';
import { WatermarkStrategy } from '../runtime/watermarks.js';
import { BACKENDS } from '../state/backend.testkit.js';
import { MapStateDescriptor } from '../state/descriptors.js';
import { HeapOperatorStateStore } from '../state/operator-state.js';
import { StreamExecutionEnvironment } from './environment.js';
import {
  intervalJoinFunction,
  LATE_RECORDS_DROPPED,
  type ProcessJoinFunction,
} from './interval-join.js';
import { defineJob, runJobInThread } from './job.js';
import { joinHarness } from './join-harness.testkit.js';

interface Ev {
  id: string;
  ts: number;
}
const ev = (id: string, ts: number): Ev => ({ id, ts });
interface KEv extends Ev {
  k: string;
}

const pairs: ProcessJoinFunction<Ev, Ev, string> = {
  processElement(l, r, ctx, out) {
    expect(ctx.leftTimestamp).toBe(l.ts);
    expect(ctx.rightTimestamp).toBe(r.ts);
    expect(ctx.timestamp).toBe(Math.max(l.ts, r.ts));
    out.collect(`${l.id}-${r.id}`);
  },
};

let disposers: (() => void)[] = [];
afterEach(() => {
  for (const d of disposers) d();
  disposers = [];
});
const harness = async (lower: number, upper: number) => {
  const h = await joinHarness(
    intervalJoinFunction<string, Ev, Ev, string>(pairs, lower, upper),
    (e) => e.ts,
  );
  disposers.push(h.dispose);
  return h;
};

describe('interval join function', () => {
  it('joins l + lower <= r <= l + upper, in both arrival orders, stamping max(l, r)', async () => {
    const h = await harness(-2, 3);
    h.left('k', ev('L10', 10));
    h.right('k', ev('R7', 7)); // 10 - 2 = 8 > 7: no
    h.right('k', ev('R8', 8)); // lower bound, inclusive
    h.right('k', ev('R13', 13)); // upper bound, inclusive
    h.right('k', ev('R14', 14)); // no
    h.right('other', ev('X10', 10)); // another key: no
    h.left('k', ev('L11', 11)); // joins R13 (<= 14), R14 (<= 14): R8? 11 - 2 = 9 > 8: no
    expect(h.out).toEqual([
      { value: 'L10-R8', ts: 10 },
      { value: 'L10-R13', ts: 13 },
      { value: 'L11-R13', ts: 13 },
      { value: 'L11-R14', ts: 14 },
    ]);
  });

  it('moves exclusive bounds by 1 ms (as Flink)', async () => {
    // between(-2, 3) with both bounds exclusive is (-1, 2) inclusive.
    const h = await harness(-1, 2);
    h.left('k', ev('L10', 10));
    for (const t of [8, 9, 12, 13]) h.right('k', ev(`R${t}`, t));
    expect(h.out.map((o) => o.value)).toEqual(['L10-R9', 'L10-R12']);
  });

  it('prunes each side once the watermark passes the last time a partner could arrive', async () => {
    const h = await harness(-2, 3);
    h.left('k', ev('L10', 10)); // kept while the watermark <= 13
    h.right('k', ev('R20', 20)); // kept while the watermark <= 22 (a left at 22 joins it)
    h.left('j', ev('J10', 10));
    expect(h.buffered('k', 'interval-join-left')).toEqual([10]);
    h.watermark(13);
    expect(h.buffered('k', 'interval-join-left')).toEqual([10]);
    h.right('k', ev('R13', 13)); // at the watermark: not late, and still joins L10
    expect(h.out.map((o) => o.value)).toEqual(['L10-R13']);
    h.watermark(14);
    expect(h.buffered('k', 'interval-join-left')).toEqual([]);
    expect(h.buffered('j', 'interval-join-left')).toEqual([]);
    expect(h.buffered('k', 'interval-join-right')).toEqual([13, 20]);
    h.watermark(15); // R13 (needed while the watermark <= 15)
    expect(h.buffered('k', 'interval-join-right')).toEqual([13, 20]);
    h.watermark(16);
    expect(h.buffered('k', 'interval-join-right')).toEqual([20]);
    h.left('k', ev('L22', 22)); // 22 - 2 = 20: joins R20
    expect(h.out.map((o) => o.value)).toEqual(['L10-R13', 'L22-R20']);
    h.watermark(Number.POSITIVE_INFINITY);
    expect(h.buffered('k', 'interval-join-left')).toEqual([]);
    expect(h.buffered('k', 'interval-join-right')).toEqual([]);
    expect(h.pendingTimers()).toBe(0);
  });

  it('drops records behind the watermark and counts them', async () => {
    const h = await harness(0, 10);
    h.right('k', ev('R5', 5));
    h.watermark(4);
    h.left('k', ev('L3', 3)); // late: dropped, not buffered, not joined with R5
    h.right('k', ev('R2', 2)); // late
    h.left('k', ev('L4', 4)); // on time: joins R5
    expect(h.out.map((o) => o.value)).toEqual(['L4-R5']);
    expect(h.counters.get(LATE_RECORDS_DROPPED)).toBe(2);
    expect(h.buffered('k', 'interval-join-left')).toEqual([4]);
    expect(h.buffered('k', 'interval-join-right')).toEqual([5]);
  });

  it('buckets records with equal timestamps, each joined once', async () => {
    const h = await harness(0, 0);
    h.left('k', ev('A', 7));
    h.left('k', ev('B', 7));
    h.right('k', ev('X', 7));
    h.right('k', ev('Y', 7));
    h.left('k', ev('C', 7));
    expect(h.out.map((o) => o.value)).toEqual(['A-X', 'B-X', 'A-Y', 'B-Y', 'C-X', 'C-Y']);
  });

  it('sends side outputs with the pair time', async () => {
    const h = await joinHarness(
      intervalJoinFunction<string, Ev, Ev, string>(
        {
          processElement(l, r, ctx) {
            ctx.output({ id: 'side' } as never, `${l.id}/${r.id}`);
          },
        },
        0,
        5,
      ),
      (e) => e.ts,
    );
    disposers.push(h.dispose);
    h.left('k', ev('L', 1));
    h.right('k', ev('R', 4));
    expect(h.side).toEqual([{ value: 'L/R', ts: 4 }]);
  });
});

describe.each(BACKENDS)(
  '$name backend: interval join on the keyed two-input operator',
  ({ create }) => {
    const operator = async (lower: number, upper: number) => {
      const keyedState = create({
        keyGroupRange: computeKeyGroupRange(128, 1, 0),
        maxParallelism: 128,
      });
      const metrics = new SubtaskMetrics();
      const out: string[] = [];
      const op = new KeyedCoProcessOperator<string, KEv, KEv, string>(
        intervalJoinFunction(
          {
            processElement: (l, r, _ctx, o) => o.collect(`${l.id}-${r.id}`),
          },
          lower,
          upper,
        ),
        'interval-join',
        (e) => e.k,
        (e) => e.k,
        (e) => e.ts,
        (e) => e.ts,
      );
      await op.open(
        {
          subtask: { operatorName: 'ij', operatorUid: 'ij', subtaskIndex: 0, parallelism: 1 },
          jobName: 'test-job',
          maxParallelism: 128,
          operatorState: new HeapOperatorStateStore(),
          keyedState,
          isRestored: false,
          metrics,
          stopSignal: new AbortController().signal,
          checkpointing: false,
          clock: wallClock,
          runInMailbox: (action) => action(),
        },
        { collect: (v) => out.push(v), emitWatermark() {}, collectSide() {} },
      );
      return { op, out, keyedState, metrics };
    };

    it('state size drops once the watermark passes; late records are dropped', async () => {
      const { op, out, keyedState, metrics } = await operator(0, 5);
      for (let t = 0; t < 10; t++) {
        op.processRecord({ k: `k${t % 3}`, id: `L${t}`, ts: t });
        op.processRecord2({ k: `k${t % 3}`, id: `R${t}`, ts: t + 2 });
      }
      /** Buffered timestamps of both sides over all keys. */
      const buffered = () => {
        let n = 0;
        for (const k of ['k0', 'k1', 'k2']) {
          keyedState.setCurrentKey(normalizeKey(k), assignToKeyGroup(k, 128));
          for (const side of ['left', 'right']) {
            const map = keyedState.getState(new MapStateDescriptor(`interval-join-${side}`));
            n += [...map.keys()].length;
          }
        }
        return n;
      };
      expect(buffered()).toBe(20);
      // A left at l is kept while the watermark <= l + 5, a right at r while it <= r: at 6
      // the left at 0 and the rights at 2..5 go.
      op.processWatermark(6);
      const fewer = buffered();
      expect(fewer).toBe(20 - 1 - 4);
      op.processRecord({ k: 'k0', id: 'late', ts: 5 }); // behind the watermark: dropped
      op.processRecord2({ k: 'k0', id: 'late', ts: 1 });
      expect(buffered()).toBe(fewer);
      expect(out.some((o) => o.includes('late'))).toBe(false);
      expect(metrics.snapshot()[LATE_RECORDS_DROPPED]).toBe(2);
      op.processWatermark(Number.POSITIVE_INFINITY);
      expect(buffered()).toBe(0);
      expect(keyedState.numEntries()).toBe(0); // emptied maps and fired timers leave nothing
      // Every pair with l <= r <= l + 5 and the same key (t % 3): the model.
      const expected: string[] = [];
      for (let l = 0; l < 10; l++)
        for (let r = 0; r < 10; r++)
          if (l % 3 === r % 3 && l <= r + 2 && r + 2 <= l + 5) expected.push(`L${l}-R${r}`);
      expect([...out].sort()).toEqual(expected.sort());
    });
  },
);

describe('interval join at build time', () => {
  const streams = () => {
    const e = new StreamExecutionEnvironment({ jobName: 't', parallelism: 1 });
    const timed = WatermarkStrategy.forMonotonousTimestamps<KEv>().withTimestampAssigner(
      (x) => x.ts,
    );
    const a = e.fromSource(memorySource<KEv>([]), { name: 'orders', watermarks: timed });
    const b = e.fromSource(memorySource<KEv>([]), { name: 'shipments', watermarks: timed });
    const plain = e.fromSource(memorySource<KEv>([]), { name: 'plain' });
    return { a, b, plain };
  };

  it('refuses a non-keyed side, naming the streams', () => {
    const { a, b } = streams();
    expect(() => a.keyBy((x) => x.k).intervalJoin(b as never)).toThrow(
      /intervalJoin: the keyed stream from 'orders' \(uid orders-0\) needs another keyed stream, got the non-keyed stream from 'shipments' \(uid shipments-1\); key both/,
    );
    expect(() => a.intervalJoin(b.keyBy((x) => x.k) as never)).toThrow(
      /intervalJoin: the stream from 'orders' \(uid orders-0\) is not keyed/,
    );
    expect(() => a.keyBy((x) => x.k).intervalJoin(42 as never)).toThrow(/got number/);
  });

  it('refuses an input without timestamps, naming it', () => {
    const { a, plain } = streams();
    expect(() => a.keyBy((x) => x.k).intervalJoin(plain.keyBy((x) => x.k))).toThrow(
      /its right \(second\) input \(the keyed stream from 'plain' \(uid plain-2\)\) has no timestamps/,
    );
    expect(() => plain.keyBy((x) => x.k).intervalJoin(a.keyBy((x) => x.k))).toThrow(
      /its left \(first\) input .*'plain'.* has no timestamps/,
    );
  });

  it('validates the bounds and the function', () => {
    const { a, b } = streams();
    const ij = a.keyBy((x) => x.k).intervalJoin(b.keyBy((x) => x.k));
    expect(() => ij.between(5, 4)).toThrow(/lowerMs \(5\) must be <= upperMs \(4\)/);
    expect(() => ij.between(0.5, 4)).toThrow(/lowerMs must be an integer/);
    expect(() => ij.between(0, 'x' as never)).toThrow(/upperMs must be an integer/);
    const fn = { processElement() {} };
    expect(() => ij.between(3, 4).lowerBoundExclusive().upperBoundExclusive().process(fn)).toThrow(
      /between\(3, 4\) with exclusive bounds holds no timestamp/,
    );
    expect(() => ij.between(3, 3).process({} as never)).toThrow(/needs a ProcessJoinFunction/);
    expect(() => ij.between(3, 3).process(fn)).not.toThrow();
  });
});

describe('interval join in a job', () => {
  const orders: KEv[] = [
    { k: 'a', id: 'o1', ts: 10 },
    { k: 'b', id: 'o2', ts: 12 },
    { k: 'a', id: 'o3', ts: 30 },
  ];
  const shipments: KEv[] = [
    { k: 'a', id: 's1', ts: 9 }, // before o1: not in [l, l + 5]
    { k: 'a', id: 's2', ts: 15 }, // o1 + 5: joins o1
    { k: 'b', id: 's3', ts: 16 }, // joins o2 (12 + 4)
    { k: 'a', id: 's4', ts: 31 }, // joins o3
    { k: 'c', id: 's5', ts: 31 },
  ];

  const run = async (parallelism: number) => {
    const out: { pair: string; at: number | undefined }[] = [];
    await runJobInThread(
      defineJob({
        name: 'interval',
        build(e) {
          const timed = WatermarkStrategy.forMonotonousTimestamps<KEv>().withTimestampAssigner(
            (x) => x.ts,
          );
          const a = e.fromSource(memorySource(orders, { batch: 1 }), {
            uid: 'orders',
            watermarks: timed,
          });
          const b = e.fromSource(memorySource(shipments, { batch: 1 }), {
            uid: 'shipments',
            watermarks: timed,
          });
          a.keyBy((x) => x.k)
            .intervalJoin(b.keyBy((x) => x.k))
            .between(0, 5)
            .process<string>(
              { processElement: (l, r, _ctx, o) => o.collect(`${l.id}-${r.id}`) },
              { uid: 'join' },
            )
            // The outputs carry the pair's time, max(l, r): read it downstream.
            .keyBy(() => 0)
            .process<{ pair: string; at: number | undefined }>(
              { processElement: (pair, ctx, o) => o.collect({ pair, at: ctx.timestamp() }) },
              { uid: 'stamps' },
            )
            .sinkTo(memorySink(out), { uid: 'out' });
        },
      }),
      { parallelism },
    );
    return out.sort((x, y) => (x.pair < y.pair ? -1 : 1));
  };

  it('joins by key and interval, outputs stamped max(l, r), at p=1 and p=3', async () => {
    const expected = [
      { pair: 'o1-s2', at: 15 },
      { pair: 'o2-s3', at: 16 },
      { pair: 'o3-s4', at: 31 },
    ];
    expect(await run(1)).toEqual(expected);
    expect(await run(3)).toEqual(expected);
  });
});
