import { describe, expect, it } from 'vitest';
import { InvalidArgumentError, UserFunctionError } from '../../core/errors.js';
import { assignToKeyGroup } from '../../keygroups/index.js';
import { BACKENDS } from '../../state/backend.testkit.js';
import type { AggregateFunction, KeyGroupSnapshot, NormalizedKey } from '../../state/types.js';
import { MAX_WATERMARK, OutputTag } from '../time.js';
import {
  EventTimeSessionWindows,
  ProcessingTimeSessionWindows,
  SlidingEventTimeWindows,
  TumblingEventTimeWindows,
  TumblingProcessingTimeWindows,
  type WindowAssigner,
} from './assigners.js';
import type { ProcessWindowFunction } from './functions.js';
import type { WindowFunctionSpec } from './window-operator.js';
import {
  WINDOW_CONTENTS_STATE,
  WINDOW_SESSION_SET_STATE,
  WINDOW_SESSIONS_STATE,
  WindowOperator,
} from './window-operator.js';
import { ManualClock, openWindowOperator } from './window-operator.testkit.js';

interface Ev {
  k: string;
  t: number;
  v: number;
}

const ev = (k: string, t: number, v = 1): Ev => ({ k, t, v });

const sum = (a: Ev, b: Ev): Ev => ({ k: a.k, t: Math.max(a.t, b.t), v: a.v + b.v });

interface Described {
  key: string;
  start: number;
  end: number;
  values: number[];
}

/** Lists each window's values, in the order the operator hands them over. */
const describeWindow: ProcessWindowFunction<Ev, Described, string> = {
  process(key, ctx, elements, out) {
    out.collect({
      key,
      start: ctx.window.start,
      end: ctx.window.end,
      values: elements.map((e) => e.v),
    });
  },
};

const countAgg: AggregateFunction<Ev, number, number> = {
  createAccumulator: () => 0,
  add: (_, acc) => acc + 1,
  getResult: (acc) => acc,
  merge: (a, b) => a + b,
};

const processFn = { kind: 'process', process: describeWindow } as const;

describe.each(BACKENDS)('$name backend', (backend) => {
  const open = <OUT>(
    assigner: WindowAssigner,
    fn: WindowFunctionSpec<Ev, unknown, OUT, string>,
    extra: { allowedLateness?: number; lateDataTag?: OutputTag<Ev>; clock?: ManualClock } = {},
  ) =>
    openWindowOperator<Ev, OUT>(
      {
        assigner,
        keySelector: (e: Ev) => e.k,
        timestampOf: (e: Ev) => e.t,
        function: fn as WindowFunctionSpec<Ev, unknown, OUT, string>,
        allowedLateness: extra.allowedLateness,
        lateDataTag: extra.lateDataTag,
      } as never,
      { clock: extra.clock, backend },
    );

  describe('tumbling event-time windows', () => {
    it('reduces per key and window, firing when the watermark reaches the window end', async () => {
      const h = await open<Ev>(TumblingEventTimeWindows.of(10), { kind: 'reduce', reduce: sum });
      for (const e of [ev('a', 1, 1), ev('b', 2, 10), ev('a', 9, 2), ev('a', 10, 100)]) {
        h.operator.processRecord(e);
      }
      h.operator.processWatermark(8);
      expect(h.take()).toEqual([{ kind: 'watermark', timestamp: 8 }]);
      h.operator.processWatermark(9); // maxTimestamp of [0, 10)
      expect(h.take()).toEqual([
        { kind: 'out', value: { k: 'a', t: 9, v: 3 } },
        { kind: 'out', value: { k: 'b', t: 2, v: 10 } },
        { kind: 'watermark', timestamp: 9 },
      ]);
      h.operator.processWatermark(MAX_WATERMARK);
      expect(h.take()).toEqual([
        { kind: 'out', value: { k: 'a', t: 10, v: 100 } },
        { kind: 'watermark', timestamp: MAX_WATERMARK },
      ]);
      // Everything cleaned up: no window contents, no timers.
      expect(h.backend.numEntries()).toBe(0);
    });

    it('handles negative timestamps and offsets', async () => {
      const h = await open(TumblingEventTimeWindows.of(10, 3), processFn);
      for (const e of [ev('a', -8, 1), ev('a', 2, 2), ev('a', 3, 3), ev('a', -7, 4)]) {
        h.operator.processRecord(e);
      }
      h.operator.processWatermark(MAX_WATERMARK);
      expect(h.outputs()).toEqual([
        { key: 'a', start: -17, end: -7, values: [1] },
        { key: 'a', start: -7, end: 3, values: [2, 4] },
        { key: 'a', start: 3, end: 13, values: [3] },
      ]);
    });

    it('does not fire anything without a watermark (finish fires nothing)', async () => {
      const h = await open(TumblingEventTimeWindows.of(10), processFn);
      h.operator.processRecord(ev('a', 1));
      expect('finish' in h.operator).toBe(false);
      await h.operator.close();
      expect(h.outputs()).toEqual([]);
    });
  });

  describe('sliding event-time windows', () => {
    it('counts every window a record falls into, emitting in window order', async () => {
      const h = await open(SlidingEventTimeWindows.of(10, 5), {
        kind: 'aggregate',
        aggregate: countAgg,
        window: {
          process(key, ctx, [count], out) {
            out.collect(`${key}[${ctx.window.start},${ctx.window.end})=${count}`);
          },
        } as ProcessWindowFunction<unknown, string, string>,
      });
      for (const e of [ev('a', 1), ev('a', 6), ev('a', 12), ev('b', 7)])
        h.operator.processRecord(e);
      h.operator.processWatermark(14);
      expect(h.outputs()).toEqual([
        'a[-5,5)=1',
        'a[0,10)=2',
        'b[0,10)=1',
        'a[5,15)=2',
        'b[5,15)=1',
      ]);
      h.operator.processWatermark(MAX_WATERMARK);
      expect(h.outputs().slice(5)).toEqual(['a[10,20)=1']);
    });
  });

  describe('sliding windows with gaps (size < slide)', () => {
    it('ignores records in no window without calling them late', async () => {
      const late = new OutputTag<Ev>('late');
      const h = await open(SlidingEventTimeWindows.of(2, 5), processFn, { lateDataTag: late });
      h.operator.processRecord(ev('a', 1, 1)); // [0,2)
      h.operator.processRecord(ev('a', 3, 2)); // in no window
      h.operator.processWatermark(MAX_WATERMARK);
      expect(h.outputs()).toEqual([{ key: 'a', start: 0, end: 2, values: [1] }]);
      expect(h.side('late')).toEqual([]);
      expect(h.metrics.snapshot().lateRecordsDropped ?? 0).toBe(0);
    });
  });

  describe('late data', () => {
    it('sends records late for all their windows to the side output', async () => {
      const late = new OutputTag<Ev>('late');
      const h = await open(
        SlidingEventTimeWindows.of(10, 5),
        { kind: 'reduce', reduce: sum },
        {
          lateDataTag: late,
        },
      );
      h.operator.processWatermark(9);
      h.operator.processRecord(ev('a', 4, 1)); // windows [-5,5) and [0,10): both past
      h.operator.processRecord(ev('a', 5, 2)); // [5,15) still open: not late
      h.operator.processWatermark(MAX_WATERMARK);
      expect(h.side('late')).toEqual([ev('a', 4, 1)]);
      expect(h.outputs()).toEqual([ev('a', 5, 2)]);
      expect(h.metrics.snapshot().lateRecordsDropped ?? 0).toBe(0);
    });

    it('drops and counts late records without a side output', async () => {
      const h = await open(TumblingEventTimeWindows.of(10), { kind: 'reduce', reduce: sum });
      h.operator.processWatermark(20);
      h.operator.processRecord(ev('a', 19));
      h.operator.processRecord(ev('a', 20)); // ts == watermark: late too
      h.operator.processRecord(ev('a', 21));
      expect(h.metrics.snapshot().lateRecordsDropped).toBe(1);
      h.operator.processWatermark(MAX_WATERMARK);
      expect(h.outputs()).toEqual([{ k: 'a', t: 21, v: 2 }]);
    });

    it('keeps windows for the allowed lateness and fires them again on each late record', async () => {
      const late = new OutputTag<Ev>('late');
      const h = await open(TumblingEventTimeWindows.of(10), processFn, {
        allowedLateness: 5,
        lateDataTag: late,
      });
      h.operator.processRecord(ev('a', 1, 1));
      h.operator.processWatermark(9);
      expect(h.outputs()).toEqual([{ key: 'a', start: 0, end: 10, values: [1] }]);
      h.take();
      h.operator.processRecord(ev('a', 2, 2)); // late but allowed: fires at once
      expect(h.take()).toEqual([
        { kind: 'out', value: { key: 'a', start: 0, end: 10, values: [1, 2] } },
      ]);
      h.operator.processWatermark(13);
      h.operator.processRecord(ev('a', 3, 3));
      expect(h.outputs()).toEqual([{ key: 'a', start: 0, end: 10, values: [1, 2, 3] }]);
      h.take();
      // A window first seen within the lateness fires at once too, by itself.
      h.operator.processRecord(ev('b', 5, 7));
      expect(h.outputs()).toEqual([{ key: 'b', start: 0, end: 10, values: [7] }]);
      h.take();
      h.operator.processWatermark(14); // cleanup time 9 + 5
      expect(h.take()).toEqual([{ kind: 'watermark', timestamp: 14 }]);
      expect(h.backend.numEntries()).toBe(0);
      h.operator.processRecord(ev('a', 4, 4));
      expect(h.side('late')).toEqual([ev('a', 4, 4)]);
    });

    it('rejects negative or fractional lateness', () => {
      const base = {
        assigner: TumblingEventTimeWindows.of(10),
        keySelector: (e: Ev) => e.k,
        timestampOf: (e: Ev) => e.t,
        function: { kind: 'reduce', reduce: sum } as const,
      };
      expect(() => new WindowOperator({ ...base, allowedLateness: -1 })).toThrow(/got -1/);
      expect(() => new WindowOperator({ ...base, allowedLateness: 0.5 })).toThrow(
        InvalidArgumentError,
      );
    });
  });

  describe('session windows', () => {
    it('merges events less than a gap apart, per key', async () => {
      const h = await open(EventTimeSessionWindows.withGap(10), processFn);
      for (const e of [
        ev('a', 0, 1),
        ev('a', 5, 2),
        ev('b', 6, 9),
        ev('a', 14, 3),
        ev('a', 30, 4),
      ]) {
        h.operator.processRecord(e);
      }
      h.operator.processWatermark(MAX_WATERMARK);
      expect(h.outputs()).toEqual([
        { key: 'b', start: 6, end: 16, values: [9] },
        { key: 'a', start: 0, end: 24, values: [1, 2, 3] },
        { key: 'a', start: 30, end: 40, values: [4] },
      ]);
      expect(h.backend.numEntries()).toBe(0);
    });

    it('merges touching sessions ([0,10) and [10,20)), as Flink does', async () => {
      const h = await open(EventTimeSessionWindows.withGap(10), processFn);
      h.operator.processRecord(ev('a', 0, 1));
      h.operator.processRecord(ev('a', 10, 2));
      h.operator.processRecord(ev('a', 31, 3)); // [31,41) does not touch [0,20)
      h.operator.processWatermark(MAX_WATERMARK);
      expect(h.outputs()).toEqual([
        { key: 'a', start: 0, end: 20, values: [1, 2] },
        { key: 'a', start: 31, end: 41, values: [3] },
      ]);
    });

    it('merges both sessions when an out-of-order event bridges them, in arrival order', async () => {
      const h = await open(EventTimeSessionWindows.withGap(10), processFn);
      const events = [ev('a', 40, 1), ev('a', 0, 2), ev('a', 15, 3), ev('a', 3, 4), ev('a', 8, 5)];
      for (const e of events) h.operator.processRecord(e);
      // Before the last event: [0,13) holding 2 and 4, [15,25) holding 3, [40,50) holding 1.
      // [8,18) bridges the first two; their records merge in arrival order, not window order.
      h.operator.processWatermark(MAX_WATERMARK);
      expect(h.outputs()).toEqual([
        { key: 'a', start: 0, end: 25, values: [2, 3, 4, 5] },
        { key: 'a', start: 40, end: 50, values: [1] },
      ]);
    });

    it('keeps equal timestamps in one session', async () => {
      const h = await open(EventTimeSessionWindows.withGap(5), {
        kind: 'aggregate',
        aggregate: countAgg,
      });
      for (let i = 0; i < 3; i++) h.operator.processRecord(ev('a', 7));
      h.operator.processWatermark(MAX_WATERMARK);
      expect(h.outputs()).toEqual([3]);
    });

    it('reduces merged sessions with the reduce function', async () => {
      const h = await open(EventTimeSessionWindows.withGap(10), { kind: 'reduce', reduce: sum });
      for (const e of [ev('a', 0, 1), ev('a', 20, 2), ev('a', 10, 4)]) h.operator.processRecord(e);
      h.operator.processWatermark(MAX_WATERMARK);
      expect(h.outputs()).toEqual([{ k: 'a', t: 20, v: 7 }]);
    });

    it('fires a session once, at its final end, after it grew', async () => {
      const h = await open(EventTimeSessionWindows.withGap(10), processFn);
      h.operator.processRecord(ev('a', 0, 1)); // [0,10): timer at 9
      h.operator.processRecord(ev('a', 8, 2)); // [0,18): timer at 17, the one at 9 deleted
      h.operator.processWatermark(9);
      expect(h.outputs()).toEqual([]);
      h.operator.processWatermark(17);
      expect(h.outputs()).toEqual([{ key: 'a', start: 0, end: 18, values: [1, 2] }]);
      expect(h.backend.numEntries()).toBe(0);
    });

    it('lets a late event join a session still within its lateness (Flink)', async () => {
      const late = new OutputTag<Ev>('late');
      const h = await open(EventTimeSessionWindows.withGap(10), processFn, { lateDataTag: late });
      h.operator.processRecord(ev('a', 100, 1));
      h.operator.processWatermark(105);
      h.operator.processRecord(ev('a', 92, 2)); // [92,102) is past, but merges into [100,110)
      h.operator.processRecord(ev('a', 80, 3)); // [80,90) merges with nothing: late
      h.operator.processWatermark(MAX_WATERMARK);
      expect(h.outputs()).toEqual([{ key: 'a', start: 92, end: 110, values: [1, 2] }]);
      expect(h.side('late')).toEqual([ev('a', 80, 3)]);
    });

    it('keeps timers other windows still need when merging (timers are per key and time)', async () => {
      // gap 10, lateness 20: r = [0,10) cleans up at 29, which is when m = [20,30) fires.
      // Merging m away into [20,35) must not delete the timer at 29 that r still needs.
      const h = await open(EventTimeSessionWindows.withGap(10), processFn, { allowedLateness: 20 });
      h.operator.processRecord(ev('a', 0, 1));
      h.operator.processRecord(ev('a', 20, 2));
      h.operator.processRecord(ev('a', 25, 3));
      h.operator.processWatermark(29);
      expect(h.outputs()).toEqual([{ key: 'a', start: 0, end: 10, values: [1] }]);
      h.operator.processWatermark(MAX_WATERMARK);
      expect(h.outputs().slice(1)).toEqual([{ key: 'a', start: 20, end: 35, values: [2, 3] }]);
      expect(h.backend.numEntries()).toBe(0);
    });

    it('keeps the fire timer when a merge leaves the end unchanged', async () => {
      const h = await open(EventTimeSessionWindows.withGap(10), processFn);
      h.operator.processRecord(ev('a', 0, 1)); // [0,10)
      h.operator.processRecord(ev('a', -1, 2)); // [-1,9) -> [-1,10): same end, same timer
      h.operator.processWatermark(9);
      expect(h.take()).toEqual([
        { kind: 'out', value: { key: 'a', start: -1, end: 10, values: [1, 2] } },
        { kind: 'watermark', timestamp: 9 },
      ]);
      expect(h.backend.numEntries()).toBe(0);
    });

    it('needs merge on an AggregateFunction', () => {
      const { merge: _merge, ...noMerge } = countAgg;
      expect(
        () =>
          new WindowOperator({
            assigner: EventTimeSessionWindows.withGap(5),
            keySelector: (e: Ev) => e.k,
            timestampOf: (e: Ev) => e.t,
            function: { kind: 'aggregate', aggregate: noMerge },
          }),
      ).toThrow(/EventTimeSessionWindows\(5\) merges windows: the AggregateFunction needs a merge/);
    });
  });

  describe('processing-time windows', () => {
    it('uses the arrival time and fires on the clock', async () => {
      const clock = new ManualClock(1000);
      const h = await open(TumblingProcessingTimeWindows.of(100), processFn, { clock });
      h.operator.processRecord(ev('a', 0, 1)); // at 1000: [1000,1100)
      clock.advanceTo(1050);
      h.operator.processRecord(ev('b', 0, 2));
      h.operator.processRecord(ev('a', 0, 3));
      h.operator.processWatermark(MAX_WATERMARK); // event time does not fire processing windows
      expect(h.outputs()).toEqual([]);
      clock.advanceTo(1098);
      expect(h.outputs()).toEqual([]);
      clock.advanceTo(1099);
      expect(h.outputs()).toEqual([
        { key: 'a', start: 1000, end: 1100, values: [1, 3] },
        { key: 'b', start: 1000, end: 1100, values: [2] },
      ]);
      h.operator.processRecord(ev('a', 0, 4)); // at 1099: still [1000,1100), a new window
      clock.advanceTo(2000);
      expect(h.outputs().slice(2)).toEqual([{ key: 'a', start: 1000, end: 1100, values: [4] }]);
      expect(h.backend.numEntries()).toBe(0);
    });

    it('runs sessions on the clock', async () => {
      const clock = new ManualClock(0);
      const h = await open(ProcessingTimeSessionWindows.withGap(10), processFn, { clock });
      h.operator.processRecord(ev('a', 0, 1));
      clock.advanceTo(5);
      h.operator.processRecord(ev('a', 0, 2));
      clock.advanceTo(14);
      expect(h.outputs()).toEqual([{ key: 'a', start: 0, end: 15, values: [1, 2] }]);
    });

    it('refuses allowed lateness', () => {
      expect(
        () =>
          new WindowOperator({
            assigner: TumblingProcessingTimeWindows.of(10),
            keySelector: (e: Ev) => e.k,
            function: { kind: 'reduce', reduce: sum },
            allowedLateness: 5,
          }),
      ).toThrow(/event-time windows only/);
    });
  });

  describe('failures', () => {
    it('needs timestamps for event-time windows', () => {
      expect(
        () =>
          new WindowOperator({
            assigner: TumblingEventTimeWindows.of(10),
            keySelector: (e: Ev) => e.k,
            function: { kind: 'reduce', reduce: sum },
          }),
      ).toThrow(
        /needs record timestamps: give the source a WatermarkStrategy or call assignTimestamps/,
      );
    });

    it('names the record position when the reduce function fails on a record', async () => {
      const h = await open(TumblingEventTimeWindows.of(10), {
        kind: 'reduce',
        reduce: () => {
          throw new Error('boom');
        },
      });
      h.operator.processRecord(ev('a', 1));
      const error = (() => {
        try {
          h.operator.processRecord(ev('a', 2));
        } catch (e) {
          return e;
        }
      })();
      expect(error).toBeInstanceOf(UserFunctionError);
      expect((error as UserFunctionError).recordPosition).toBe(2);
      expect((error as Error).message).toMatch(/failed in window reduce at record #2: boom/);
    });

    it('names no position when a firing fails', async () => {
      const h = await open(TumblingEventTimeWindows.of(10), {
        kind: 'process',
        process: {
          process() {
            throw new Error('bad window');
          },
        },
      });
      h.operator.processRecord(ev('a', 1));
      expect(() => h.operator.processWatermark(9)).toThrow(/failed in window process: bad window/);
    });

    it('labels aggregate failures and bad timestamps', async () => {
      const h = await open(TumblingEventTimeWindows.of(10), {
        kind: 'aggregate',
        aggregate: {
          ...countAgg,
          getResult: () => {
            throw new Error('no result');
          },
        },
      });
      h.operator.processRecord(ev('a', 1));
      expect(() => h.operator.processWatermark(9)).toThrow(/failed in window aggregate: no result/);
      expect(() => h.operator.processRecord(ev('a', Number.NaN))).toThrow(
        /failed in window timestamp assigner at record #2: the timestamp assigner returned NaN/,
      );
    });
  });

  describe('state', () => {
    it("lives only in the keyed backend, in each key's key group", async () => {
      const h = await open(SlidingEventTimeWindows.of(10, 5), processFn);
      h.operator.processRecord(ev('a', 1));
      h.operator.processRecord(ev('b', 1));
      const groups = h.backend.keyGroupsWithState();
      expect(groups).toEqual(
        [...new Set([assignToKeyGroup('a', 128), assignToKeyGroup('b', 128)])].sort(
          (x, y) => x - y,
        ),
      );
      const names = h.backend.snapshot().flatMap((g) => g.states.map((s) => s.name));
      expect(new Set(names)).toEqual(
        new Set(['__eddy.timers.event', '__eddy.window.contents', '__eddy.window.elements']),
      );
    });

    it('continues after a restore from a snapshot as if uninterrupted', async () => {
      const spec = { kind: 'process', process: describeWindow } as const;
      const first = await open(EventTimeSessionWindows.withGap(10), spec, { allowedLateness: 3 });
      const before = [ev('a', 0, 1), ev('b', 3, 2), ev('a', 30, 3)];
      const after = [ev('a', 15, 4), ev('b', 9, 5), ev('a', 5, 6)];
      for (const e of before) first.operator.processRecord(e);
      first.operator.processWatermark(12);
      const snapshot = first.backend.snapshot();
      for (const e of after) first.operator.processRecord(e);
      first.operator.processWatermark(MAX_WATERMARK);

      const second = await openWindowOperator<Ev, Described>(
        {
          assigner: EventTimeSessionWindows.withGap(10),
          keySelector: (e: Ev) => e.k,
          timestampOf: (e: Ev) => e.t,
          function: spec as never,
          allowedLateness: 3,
        },
        { restore: snapshot, backend },
      );
      second.operator.processWatermark(12); // the watermark is not state: the source resends it
      for (const e of after) second.operator.processRecord(e);
      second.operator.processWatermark(MAX_WATERMARK);
      const tail = first.outputs().slice(first.outputs().length - second.outputs().length);
      expect(second.outputs()).toEqual(tail);
      expect(second.outputs().length).toBeGreaterThan(0);
    });
    it("keeps a key's sessions and accumulators in one state entry (reduce, aggregate)", async () => {
      const h = await open(EventTimeSessionWindows.withGap(10), {
        kind: 'aggregate',
        aggregate: countAgg,
      });
      for (const e of [ev('a', 0), ev('a', 5), ev('a', 40), ev('b', 3)])
        h.operator.processRecord(e);
      const states = h.backend.snapshot().flatMap((g) => g.states);
      expect(new Set(states.map((s) => s.name))).toEqual(
        new Set(['__eddy.timers.event', WINDOW_SESSION_SET_STATE]),
      );
      const sessions = new Map(
        states.filter((s) => s.name === WINDOW_SESSION_SET_STATE).flatMap((s) => s.entries),
      );
      expect(sessions.get('a')).toEqual([0, 15, 2, 40, 50, 1]);
      expect(sessions.get('b')).toEqual([3, 13, 1]);
    });

    it('restores sessions checkpointed in the older layout (sessions + contents by state id)', async () => {
      const spec = { kind: 'aggregate', aggregate: countAgg } as const;
      const before = [ev('a', 0), ev('b', 3), ev('a', 30), ev('a', 5), ev('c', 100)];
      const after = [ev('a', 15), ev('b', 9), ev('a', 42), ev('c', 95)];
      const whole = await open(EventTimeSessionWindows.withGap(10), spec);
      for (const e of before) whole.operator.processRecord(e);
      whole.operator.processWatermark(12);
      // The same state as the layout before `sessionset` wrote it: sessions with a state id each,
      // accumulators in the contents map under those ids.
      const legacy: KeyGroupSnapshot[] = whole.backend.snapshot().map((g) => ({
        keyGroup: g.keyGroup,
        states: g.states.flatMap((s) => {
          if (s.name !== WINDOW_SESSION_SET_STATE) return [s];
          const sessions: Array<readonly [NormalizedKey, unknown]> = [];
          const contents: Array<readonly [NormalizedKey, unknown]> = [];
          for (const [key, packed] of s.entries) {
            const flat = packed as unknown[];
            const stored: Array<[number, number, string]> = [];
            const accs: Array<[string, unknown]> = [];
            for (let i = 0; i < flat.length; i += 3) {
              const id = `${flat[i]}:${flat[i + 1]}`;
              stored.push([flat[i] as number, flat[i + 1] as number, id]);
              accs.push([id, flat[i + 2]]);
            }
            sessions.push([key, stored]);
            contents.push([key, accs]);
          }
          return [
            { name: WINDOW_SESSIONS_STATE, kind: 'value' as const, entries: sessions },
            { name: WINDOW_CONTENTS_STATE, kind: 'map' as const, entries: contents },
          ];
        }),
      }));
      expect(legacy.flatMap((g) => g.states.map((s) => s.name))).toContain(WINDOW_SESSIONS_STATE);
      for (const e of after) whole.operator.processRecord(e);
      whole.operator.processWatermark(MAX_WATERMARK);

      const restored = await openWindowOperator<Ev, number>(
        {
          assigner: EventTimeSessionWindows.withGap(10),
          keySelector: (e: Ev) => e.k,
          timestampOf: (e: Ev) => e.t,
          function: spec as never,
        },
        { restore: legacy, backend },
      );
      const converted = restored.backend.snapshot().flatMap((g) => g.states.map((s) => s.name));
      expect(new Set(converted)).toEqual(
        new Set(['__eddy.timers.event', WINDOW_SESSION_SET_STATE]),
      );
      restored.operator.processWatermark(12);
      for (const e of after) restored.operator.processRecord(e);
      restored.operator.processWatermark(MAX_WATERMARK);
      const tail = whole.outputs().slice(whole.outputs().length - restored.outputs().length);
      expect(restored.outputs()).toEqual(tail);
      // b [9, 19), a [0, 25) of 3, a [30, 40), a [42, 52), c [95, 110) of 2.
      expect(restored.outputs()).toEqual([1, 3, 1, 1, 2]);
    });
  });
});
