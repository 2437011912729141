/**
 * The interfaces user functions implement. They live in the runtime (which calls them) and
 * are re-exported by the API layer, so imports keep pointing down.
 */
import type { StateDescriptor, StateFor } from '../state/descriptors.js';
import type { OperatorStateStore } from '../state/types.js';
import type { MetricGroup } from './io.js';
import type { OutputTag, TimeDomain, TimerService } from './time.js';

/** Where a function emits its output records. */
export interface Collector<T> {
  /** Emits one record downstream. */
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

/** What `open` receives on a non-keyed function. */
export interface RuntimeContext {
  readonly task: TaskInfo;
  readonly metrics: MetricGroup;
}

/** What `open` receives on a keyed function: also the keyed state. */
export interface KeyedRuntimeContext extends RuntimeContext {
  /** Keyed state scoped to the key of the record being processed. Register in `open`. */
  getState<D extends StateDescriptor>(descriptor: D): StateFor<D>;
}

/** The context of {@link KeyedProcessFunction.processElement}: key, timers, side outputs. */
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

/** What `snapshotState` receives: the checkpoint and the operator list state to write. */
export interface StateSnapshotContext {
  readonly checkpointId: number;
  readonly operatorState: OperatorStateStore;
}

export interface Lifecycle<C> {
  open?(ctx: C): void | Promise<void>;
  close?(): void | Promise<void>;
}

export interface OperatorStateHooks {
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

/** The context of {@link ProcessFunction.processElement}: side outputs. */
export interface ProcessContext {
  /** Emits `value` to the side output `tag` (read it with `getSideOutput(tag)`). */
  output<X>(tag: OutputTag<X>, value: X): void;
}

/**
 * A function on a non-keyed stream; may keep operator list state. Its `processElement` takes
 * `(value, ctx, out)`, the same order as {@link KeyedProcessFunction} (and Flink).
 */
export interface ProcessFunction<IN, OUT> extends Lifecycle<RuntimeContext>, OperatorStateHooks {
  /** Called once per record; emit results to `out`, side outputs through `ctx`. */
  processElement(value: IN, ctx: ProcessContext, out: Collector<OUT>): void;
  /** End of (bounded) input: emit what is still pending. */
  finish?(out: Collector<OUT>): void;
}

/** `DataStream.map`: one output per input. */
export type MapFunction<IN, OUT> = (value: IN) => OUT;
/** `DataStream.filter`: keep the records for which it returns true. */
export type FilterFunction<T> = (value: T) => boolean;
/** `DataStream.flatMap`: zero or more outputs per input, emitted to `out`. */
export type FlatMapFunction<IN, OUT> = (value: IN, out: Collector<OUT>) => void;
/** `KeyedStream.reduce`: folds each key's records; emits the running value per record. */
export type ReduceFunction<T> = (accumulator: T, value: T) => T;
