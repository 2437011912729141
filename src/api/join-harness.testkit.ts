/**
 * A small harness for the keyed two-input join functions: real heap keyed state, event-time
 * timers per (key, timestamp) fired in timestamp order when the watermark reaches them, a
 * collector, counters. It drives a KeyedCoProcessFunction directly, so the tests see its state
 * (how many buckets each side buffers) and what it emits.
 */
import { assignToKeyGroup, computeKeyGroupRange, normalizeKey } from '../keygroups/index.js';
import type { KeyedRuntimeContext } from '../runtime/functions.js';
import { recordTime } from '../runtime/record-time.js';
import { MIN_WATERMARK, type OutputTag } from '../runtime/time.js';
import type { KeyedCoProcessFunction } from '../runtime/two-input-functions.js';
import { MapStateDescriptor } from '../state/descriptors.js';
import { HeapKeyedStateBackend } from '../state/heap-keyed-backend.js';

const MAX_PARALLELISM = 16;

export interface Emitted<O> {
  value: O;
  /** The carried event time when it was emitted. */
  ts: number;
}

export const joinHarness = async <T, U, O>(
  fn: KeyedCoProcessFunction<string, T, U, O>,
  timestampOf: (record: T | U) => number,
) => {
  const backend = new HeapKeyedStateBackend({
    keyGroupRange: computeKeyGroupRange(MAX_PARALLELISM, 1, 0),
    maxParallelism: MAX_PARALLELISM,
  });
  let watermark = MIN_WATERMARK;
  let currentKey = '';
  let currentTime: number | undefined;
  const timers = new Map<string, { key: string; ts: number }>();
  const counters = new Map<string, number>();
  const out: Emitted<O>[] = [];
  const side: Emitted<unknown>[] = [];
  const setKey = (key: string) => {
    currentKey = key;
    backend.setCurrentKey(normalizeKey(key), assignToKeyGroup(key, MAX_PARALLELISM));
  };
  const collector = { collect: (value: O) => out.push({ value, ts: recordTime.value }) };
  const ctx = {
    get currentKey() {
      return currentKey;
    },
    timestamp: () => currentTime,
    output<X>(_tag: OutputTag<X>, value: X) {
      side.push({ value, ts: recordTime.value });
    },
    timerService: {
      currentWatermark: () => watermark,
      currentProcessingTime: () => 0,
      registerEventTimeTimer(ts: number) {
        timers.set(`${currentKey}\u0000${ts}`, { key: currentKey, ts });
      },
      registerProcessingTimeTimer() {},
      deleteEventTimeTimer(ts: number) {
        timers.delete(`${currentKey}\u0000${ts}`);
      },
      deleteProcessingTimeTimer() {},
    },
    timeDomain: 'event' as const,
  };
  const runtime = {
    task: {
      operatorName: 'join',
      operatorUid: 'join',
      subtaskIndex: 0,
      parallelism: 1,
      maxParallelism: MAX_PARALLELISM,
    },
    metrics: {
      counter: (name: string) => ({
        inc: (n = 1) => counters.set(name, (counters.get(name) ?? 0) + n),
      }),
    },
    getState: (d: never) => backend.getState(d),
  } as unknown as KeyedRuntimeContext;
  await fn.open?.(runtime);
  return {
    out,
    side,
    counters,
    left(key: string, value: T) {
      setKey(key);
      currentTime = timestampOf(value);
      recordTime.value = currentTime;
      fn.processElement1(value, ctx, collector);
    },
    right(key: string, value: U) {
      setKey(key);
      currentTime = timestampOf(value);
      recordTime.value = currentTime;
      fn.processElement2(value, ctx, collector);
    },
    /** Fires the timers the watermark reached, in timestamp order (then key). */
    watermark(to: number) {
      watermark = to;
      const due = [...timers.values()]
        .filter((t) => t.ts <= to)
        .sort((a, b) => a.ts - b.ts || (a.key < b.key ? -1 : 1));
      for (const t of due) {
        timers.delete(`${t.key}\u0000${t.ts}`);
        setKey(t.key);
        currentTime = t.ts;
        fn.onTimer?.(t.ts, ctx, collector);
      }
    },
    /** The timestamps buffered for `key` in the map state `name`. */
    buffered(key: string, name: string): number[] {
      setKey(key);
      const map = backend.getState(new MapStateDescriptor<number, unknown[]>(name));
      return [...map.keys()].sort((a, b) => a - b);
    },
    pendingTimers: () => timers.size,
    dispose: () => backend.dispose(),
  };
};
