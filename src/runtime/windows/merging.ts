/**
 * Merging of session windows, per key (Flink's `TimeWindow.mergeWindows` and
 * `MergingWindowSet.addWindow`). Pure: the window operator keeps the windows in keyed state
 * and moves contents and timers as these functions say.
 *
 * Windows merge when they intersect in Flink's sense (closed on both ends), so [0, 10) and
 * [10, 20) merge into [0, 20). A key's windows are kept pairwise disjoint in that sense, so a
 * new window merges with every window it intersects and nothing else: an event bridging two
 * sessions merges both into one.
 */
import { TimeWindow } from './assigners.js';

/** One group of {@link mergeWindows}: `merged` (ascending by start) became `result`. */
export interface MergeGroup {
  readonly result: TimeWindow;
  readonly merged: readonly TimeWindow[];
}

/**
 * Flink's sweep: sorts by start and merges each window into the current group while they
 * intersect. Every input window is in exactly one group; groups ascend by start.
 */
export const mergeWindows = (windows: readonly TimeWindow[]): MergeGroup[] => {
  const sorted = [...windows].sort((a, b) => a.start - b.start || a.end - b.end);
  const groups: Array<{ result: TimeWindow; merged: TimeWindow[] }> = [];
  let current: { result: TimeWindow; merged: TimeWindow[] } | undefined;
  for (const w of sorted) {
    if (current?.result.intersects(w)) {
      current.result = current.result.cover(w);
      current.merged.push(w);
    } else {
      current = { result: w, merged: [w] };
      groups.push(current);
    }
  }
  return groups;
};

/** What adding a window to a key's windows does. */
export interface AddWindowResult {
  /** The window the added one ends up in: the added one itself if it merged with nothing. */
  readonly result: TimeWindow;
  /**
   * The existing windows merged into `result`, ascending by start (empty if none). May
   * contain a window equal to `result` (the added one fell inside it).
   */
  readonly merged: readonly TimeWindow[];
  /** The key's windows afterwards, ascending by start. */
  readonly windows: readonly TimeWindow[];
}

/**
 * Adds `added` to `existing` (a key's windows, pairwise non-intersecting): it merges with every
 * existing window it intersects, transitively through the growing result (which cannot reach
 * further windows when `existing` is pairwise non-intersecting, but is handled if it does).
 */
export const addWindow = (existing: readonly TimeWindow[], added: TimeWindow): AddWindowResult => {
  let result = added;
  const merged: TimeWindow[] = [];
  let rest = existing;
  for (let grew = true; grew; ) {
    grew = false;
    const keep: TimeWindow[] = [];
    for (const w of rest) {
      if (result.intersects(w)) {
        result = result.cover(w);
        merged.push(w);
        grew = true;
      } else {
        keep.push(w);
      }
    }
    rest = keep;
  }
  merged.sort((a, b) => a.start - b.start);
  const windows = [...rest, result].sort((a, b) => a.start - b.start);
  return { result, merged, windows };
};

/** `[start, end)` of a window as a state map key. */
export const windowId = (w: TimeWindow): string => `${w.start}:${w.end}`;

/** Inverse of {@link windowId}. */
export const parseWindowId = (id: string): TimeWindow => {
  const at = id.indexOf(':');
  return new TimeWindow(Number(id.slice(0, at)), Number(id.slice(at + 1)));
};
