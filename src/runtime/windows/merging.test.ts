import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TimeWindow } from './assigners.js';
import { addWindow, mergeWindows, parseWindowId, windowId } from './merging.js';

const w = (start: number, end: number) => new TimeWindow(start, end);
const bounds = (ws: readonly TimeWindow[]) => ws.map((x) => [x.start, x.end]);

describe('addWindow', () => {
  it('keeps a window that intersects nothing on its own', () => {
    const r = addWindow([w(0, 10)], w(20, 30));
    expect(bounds([r.result])).toEqual([[20, 30]]);
    expect(r.merged).toEqual([]);
    expect(bounds(r.windows)).toEqual([
      [0, 10],
      [20, 30],
    ]);
  });

  it('extends an overlapping session', () => {
    const existing = w(0, 10);
    const r = addWindow([existing], w(5, 15));
    expect(bounds([r.result])).toEqual([[0, 15]]);
    expect(r.merged).toEqual([existing]);
    expect(r.merged[0]).toBe(existing); // the caller's objects, to find their state
    expect(bounds(r.windows)).toEqual([[0, 15]]);
  });

  it('merges touching windows, as Flink does', () => {
    expect(bounds([addWindow([w(0, 10)], w(10, 20)).result])).toEqual([[0, 20]]);
    expect(bounds([addWindow([w(10, 20)], w(0, 10)).result])).toEqual([[0, 20]]);
  });

  it('merges both sessions an event bridges', () => {
    const a = w(0, 10);
    const b = w(15, 25);
    const c = w(40, 50);
    const r = addWindow([c, b, a], w(8, 18));
    expect(bounds([r.result])).toEqual([[0, 25]]);
    expect(r.merged).toEqual([a, b]);
    expect(bounds(r.windows)).toEqual([
      [0, 25],
      [40, 50],
    ]);
  });

  it('absorbs an equal or contained window into the existing one', () => {
    const a = w(5, 15);
    const same = addWindow([a], w(5, 15));
    expect(same.result.equals(a)).toBe(true);
    expect(same.merged).toEqual([a]);
    const inner = addWindow([w(0, 30)], w(5, 15));
    expect(bounds([inner.result])).toEqual([[0, 30]]);
  });

  it('handles out-of-order arrival: an earlier event extends a session backwards', () => {
    const r = addWindow([w(100, 110)], w(95, 105));
    expect(bounds([r.result])).toEqual([[95, 110]]);
  });

  it('agrees with the sweep of mergeWindows over the old windows plus the new one', () => {
    const timestamps = fc.array(fc.integer({ min: -50, max: 50 }), { maxLength: 30 });
    fc.assert(
      fc.property(timestamps, fc.integer({ min: 1, max: 10 }), (ts, gap) => {
        let windows: readonly TimeWindow[] = [];
        for (const t of ts) {
          const added = w(t, t + gap);
          const sweep = mergeWindows([...windows, added]);
          const r = addWindow(windows, added);
          windows = r.windows;
          expect(bounds(windows)).toEqual(sweep.map((g) => [g.result.start, g.result.end]));
          // Pairwise non-intersecting, sorted.
          for (let i = 1; i < windows.length; i++) {
            expect(windows[i - 1]!.end).toBeLessThan(windows[i]!.start);
          }
        }
        // Every event is in exactly one window.
        for (const t of ts) expect(windows.filter((x) => x.start <= t && t < x.end).length).toBe(1);
      }),
    );
  });
});

describe('mergeWindows', () => {
  it('groups intersecting windows sorted by start', () => {
    const groups = mergeWindows([w(20, 30), w(0, 10), w(5, 12), w(12, 15), w(40, 41)]);
    expect(groups.map((g) => [g.result.start, g.result.end, g.merged.length])).toEqual([
      [0, 15, 3],
      [20, 30, 1],
      [40, 41, 1],
    ]);
  });
});

describe('window ids', () => {
  it('round-trip, negative and fractional bounds included', () => {
    for (const x of [w(0, 10), w(-20, -10), w(-5, 5), w(0.1 + 0.2, 7.25)]) {
      expect(parseWindowId(windowId(x))).toEqual(x);
    }
  });
});
