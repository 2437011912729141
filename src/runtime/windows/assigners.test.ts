import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../core/errors.js';
import {
  EventTimeSessionWindows,
  ProcessingTimeSessionWindows,
  SlidingEventTimeWindows,
  SlidingProcessingTimeWindows,
  TimeWindow,
  TumblingEventTimeWindows,
  TumblingProcessingTimeWindows,
  windowStart,
} from './assigners.js';

const bounds = (ws: TimeWindow[]) => ws.map((w) => [w.start, w.end]);

describe('TimeWindow', () => {
  it('is [start, end) with maxTimestamp end - 1', () => {
    const w = new TimeWindow(10, 20);
    expect(w.maxTimestamp).toBe(19);
    expect(String(w)).toBe('[10, 20)');
  });

  it('intersects as Flink does: touching windows intersect', () => {
    const w = new TimeWindow(10, 20);
    expect(w.intersects(new TimeWindow(20, 30))).toBe(true);
    expect(w.intersects(new TimeWindow(0, 10))).toBe(true);
    expect(w.intersects(new TimeWindow(21, 30))).toBe(false);
    expect(w.intersects(new TimeWindow(0, 9))).toBe(false);
    expect(w.cover(new TimeWindow(25, 30))).toEqual(new TimeWindow(10, 30));
  });
});

describe('windowStart', () => {
  it('floors to the window grid, also for negative timestamps and offsets', () => {
    expect(windowStart(0, 0, 10)).toBe(0);
    expect(windowStart(9, 0, 10)).toBe(0);
    expect(windowStart(10, 0, 10)).toBe(10);
    expect(windowStart(-1, 0, 10)).toBe(-10);
    expect(windowStart(-10, 0, 10)).toBe(-10);
    expect(windowStart(-11, 0, 10)).toBe(-20);
    expect(windowStart(2, 3, 10)).toBe(-7);
    expect(windowStart(3, 3, 10)).toBe(3);
    expect(windowStart(2, -3, 10)).toBe(-3);
    expect(windowStart(-4, -3, 10)).toBe(-13);
  });

  it('always gives the start of a window holding the timestamp', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: -1e12, max: 1e12 }),
        fc.integer({ min: 1, max: 1e6 }),
        fc.integer({ min: -1e6, max: 1e6 }),
        (ts, size, rawOffset) => {
          const offset = rawOffset % size;
          const start = windowStart(ts, offset, size);
          expect(start <= ts && ts < start + size).toBe(true);
          expect((((start - offset) % size) + size) % size).toBe(0);
        },
      ),
    );
  });
});

describe('tumbling windows', () => {
  it('assigns one window', () => {
    const t = TumblingEventTimeWindows.of(10);
    expect(bounds(t.assignWindows(15))).toEqual([[10, 20]]);
    expect(bounds(t.assignWindows(-1))).toEqual([[-10, 0]]);
    expect(bounds(t.assignWindows(-10))).toEqual([[-10, 0]]);
    expect(t.timeDomain).toBe('event');
    expect(t.isMerging).toBe(false);
    expect(String(t)).toBe('TumblingEventTimeWindows(10)');
  });

  it('shifts windows by the offset', () => {
    const t = TumblingEventTimeWindows.of(10, 3);
    expect(bounds(t.assignWindows(2))).toEqual([[-7, 3]]);
    expect(bounds(t.assignWindows(3))).toEqual([[3, 13]]);
    expect(bounds(TumblingEventTimeWindows.of(10, -3).assignWindows(-4))).toEqual([[-13, -3]]);
    expect(String(t)).toBe('TumblingEventTimeWindows(10, offset 3)');
  });

  it('has a processing-time variant', () => {
    const t = TumblingProcessingTimeWindows.of(100);
    expect(t.timeDomain).toBe('processing');
    expect(bounds(t.assignWindows(250))).toEqual([[200, 300]]);
  });

  it('rejects bad sizes and offsets, naming the value', () => {
    expect(() => TumblingEventTimeWindows.of(0)).toThrow(InvalidArgumentError);
    expect(() => TumblingEventTimeWindows.of(0)).toThrow(/size .* got 0/);
    expect(() => TumblingEventTimeWindows.of(-5)).toThrow(/got -5/);
    expect(() => TumblingEventTimeWindows.of(1.5)).toThrow(/got 1.5/);
    expect(() => TumblingEventTimeWindows.of(Number.NaN)).toThrow(/got NaN/);
    expect(() => TumblingProcessingTimeWindows.of(10, 10)).toThrow(
      /\|offset\| < size \(10\), got 10/,
    );
    expect(() => TumblingEventTimeWindows.of(10, -10)).toThrow(/got -10/);
    expect(() => TumblingEventTimeWindows.of(10, 0.5)).toThrow(/offset .* got 0.5/);
  });
});

describe('sliding windows', () => {
  it('assigns size/slide windows, latest first', () => {
    const s = SlidingEventTimeWindows.of(10, 5);
    expect(bounds(s.assignWindows(7))).toEqual([
      [5, 15],
      [0, 10],
    ]);
    expect(bounds(s.assignWindows(5))).toEqual([
      [5, 15],
      [0, 10],
    ]);
    expect(bounds(s.assignWindows(-1))).toEqual([
      [-5, 5],
      [-10, 0],
    ]);
    expect(String(s)).toBe('SlidingEventTimeWindows(10, 5)');
  });

  it('handles a slide that does not divide the size, and offsets', () => {
    expect(bounds(SlidingEventTimeWindows.of(10, 3).assignWindows(9))).toEqual([
      [9, 19],
      [6, 16],
      [3, 13],
      [0, 10],
    ]);
    expect(bounds(SlidingEventTimeWindows.of(10, 5, 2).assignWindows(1))).toEqual([
      [-3, 7],
      [-8, 2],
    ]);
  });

  it('gives every window holding the timestamp, and no other', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: -1e9, max: 1e9 }),
        fc.integer({ min: 1, max: 50 }),
        fc.integer({ min: 1, max: 50 }),
        fc.integer({ min: -49, max: 49 }),
        (ts, size, slide, rawOffset) => {
          const offset = rawOffset % slide;
          const got = SlidingProcessingTimeWindows.of(size, slide, offset).assignWindows(ts);
          const expected: number[][] = [];
          // Brute force: every grid start within (ts - size, ts].
          for (let start = ts - size + 1; start <= ts; start++) {
            if ((((start - offset) % slide) + slide) % slide === 0) {
              expected.push([start, start + size]);
            }
          }
          expect(bounds(got).sort((a, b) => a[0]! - b[0]!)).toEqual(expected);
        },
      ),
    );
  });

  it('rejects bad arguments', () => {
    expect(() => SlidingEventTimeWindows.of(10, 0)).toThrow(/slide .* got 0/);
    expect(() => SlidingEventTimeWindows.of(0, 5)).toThrow(/size .* got 0/);
    expect(() => SlidingEventTimeWindows.of(10, 5, 5)).toThrow(/\|offset\| < slide \(5\), got 5/);
    expect(() => SlidingProcessingTimeWindows.of(10, -1)).toThrow(InvalidArgumentError);
  });
});

describe('session windows', () => {
  it('gives each timestamp [ts, ts + gap), merging', () => {
    const s = EventTimeSessionWindows.withGap(30);
    expect(bounds(s.assignWindows(-5))).toEqual([[-5, 25]]);
    expect(s.isMerging).toBe(true);
    expect(s.timeDomain).toBe('event');
    expect(String(s)).toBe('EventTimeSessionWindows(30)');
    expect(ProcessingTimeSessionWindows.withGap(5).timeDomain).toBe('processing');
  });

  it('rejects a non-positive gap', () => {
    expect(() => EventTimeSessionWindows.withGap(0)).toThrow(/gap .* got 0/);
    expect(() => ProcessingTimeSessionWindows.withGap(-1)).toThrow(InvalidArgumentError);
    expect(() => EventTimeSessionWindows.withGap(Number.POSITIVE_INFINITY)).toThrow(/Infinity/);
  });
});
