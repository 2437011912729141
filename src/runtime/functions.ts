/**
 * The interfaces user functions implement. They live in the runtime (which calls them) and
 * are re-exported by the API layer, so imports keep pointing down.
 */
import type { StateDescriptor, StateFor } from '../state/descriptors.js';
import type { OperatorStateStore } from '../state/types.js';
import type { MetricGroup } from './io.js';
import type { OutputTag, TimeDomain, TimerService } from './time.js';

export interface Collector<T> {
  collect(record: T): void;
}

/** What a function learns about where it runs. */
export interface TaskInfo {
  readonly operatorName: string;
  readonly operatorUid: string;
  /** 0-based. */
  readonly subtaskIndex: number;
  readonly parallelism: number;
  readonly maxParallelism: number;
}

export interface RuntimeContext {
  readonly task: TaskInfo;
  readonly metrics: MetricGroup;
}

export interface KeyedRuntimeContext extends RuntimeContext {
  /** Keyed state scoped to the key of the record being processed. Register in `open`. */
  getState<D extends StateDescriptor>(descriptor: D): StateFor<D>;
}

export interface KeyedContext<K> {
  /** The key of the record being processed (of the timer firing, in `onTimer`). */
  readonly currentKey: K;
  /** Timers of the current key; stored as keyed state, so they checkpoint and rescale. */
  readonly timerService: TimerService;
  /**
   * The event time of the record being processed (the stream's timestamp assigner), or of the
   * timer firing; undefined on a stream without timestamps or for a processing-time timer.
   */
  timestamp(): number | undefined;
  /** Emits `value` to the side output `tag` (read it with `getSideOutput(tag)`). */
  output<X>(tag: OutputTag<X>, value: X): void;
}

/** The context of {@link KeyedProcessFunction.onTimer}. */
export interface OnTimerContext<K> extends KeyedContext<K> {
  readonly timeDomain: TimeDomain;
}

/** Hooks for operator (non-keyed) list state: restore in initialize, write in snapshot. */
export interface StateInitializationContext {
  readonly operatorState: OperatorStateStore;
  readonly isRestored: boolean;
}

export interface StateSnapshotContext {
  readonly checkpointId: number;
  readonly operatorState: OperatorStateStore;
}

interface Lifecycle<C> {
  open?(ctx: C): void | Promise<void>;
  close?(): void | Promise<void>;
}

interface OperatorStateHooks {
  /** Called before `open`: register operator list state and read restored elements. */
  initializeState?(ctx: StateInitializationContext): void;
  /** Called before a checkpoint: write operator list state. */
  snapshotState?(ctx: StateSnapshotContext): void;
}

/** A stateful function after keyBy. */
export interface KeyedProcessFunction<K, IN, OUT>
  extends Lifecycle<KeyedRuntimeContext>,
    OperatorStateHooks {
  processElement(value: IN, ctx: KeyedContext<K>, out: Collector<OUT>): void;
  /**
   * A timer of `ctx.currentKey` fired: event time when the watermark reached `timestamp`,
   * processing time when the clock did. Each registered (key, timestamp) fires once, also
   * across restores and rescaling.
   */
  onTimer?(timestamp: number, ctx: OnTimerContext<K>, out: Collector<OUT>): void;
  /** End of (bounded) input: emit what is still pending. */
  finish?(out: Collector<OUT>): void;
}

/** A function on a non-keyed stream; may keep operator list state. */
/** Side outputs of a non-keyed process function. */
export interface ProcessContext {
  output<X>(tag: OutputTag<X>, value: X): void;
}

export interface ProcessFunction<IN, OUT> extends Lifecycle<RuntimeContext>, OperatorStateHooks {
  processElement(value: IN, out: Collector<OUT>, ctx: ProcessContext): void;
  finish?(out: Collector<OUT>): void;
}

export type MapFunction<IN, OUT> = (value: IN) => OUT;
export type FilterFunction<T> = (value: T) => boolean;
export type FlatMapFunction<IN, OUT> = (value: IN, out: Collector<OUT>) => void;
export type ReduceFunction<T> = (accumulator: T, value: T) => T;
