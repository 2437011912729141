/**
 * What users give a windowed stream: a reduce function or an aggregate function (incremental:
 * one accumulator per window), or a process window function (sees all of a window's records
 * at once), or an incremental function followed by a process window function that gets the
 * one pre-aggregated result and the window's metadata (Flink's `aggregate(agg, windowFn)`).
 */
import type { Collector, ReduceFunction, RuntimeContext } from '../functions.js';
import type { OutputTag } from '../time.js';
import type { TimeWindow } from './assigners.js';

export type { AggregateFunction } from '../../state/types.js';
export type { ReduceFunction };

/** What a {@link ProcessWindowFunction} learns about the window firing. */
export interface ProcessWindowContext<W extends TimeWindow = TimeWindow> {
  readonly window: W;
  /** The operator's watermark when the window fires (MIN_WATERMARK before any). */
  readonly currentWatermark: number;
  readonly currentProcessingTime: number;
  /** Emits `value` to the side output `tag`. */
  output<X>(tag: OutputTag<X>, value: X): void;
}

/**
 * Called once per window firing, with the key, the window and its records (in arrival order;
 * with an incremental function in front, the single pre-aggregated value).
 * Windows keep firing until cleaned up: with allowed lateness a late record fires its window
 * again with all its records.
 */
export interface ProcessWindowFunction<IN, OUT, K, W extends TimeWindow = TimeWindow> {
  process(
    key: K,
    context: ProcessWindowContext<W>,
    elements: readonly IN[],
    out: Collector<OUT>,
  ): void;
  open?(ctx: RuntimeContext): void | Promise<void>;
  close?(): void | Promise<void>;
}
