/** Keyed windows: `keyedStream.window(assigner)` then a window function. */
import { InvalidArgumentError } from '../core/errors.js';
import type { Key } from '../keygroups/index.js';
import type { ReduceFunction } from '../runtime/functions.js';
import type { StreamOperator } from '../runtime/operator.js';
import { carriedTimestamp } from '../runtime/record-time.js';
import type { OutputTag } from '../runtime/time.js';
import type { TimeWindow, WindowAssigner } from '../runtime/windows/assigners.js';
import type { AggregateFunction, ProcessWindowFunction } from '../runtime/windows/functions.js';
import {
  checkAllowedLateness,
  type WindowFunctionSpec,
  WindowOperator,
} from '../runtime/windows/window-operator.js';
import type { DataStream } from './datastream.js';
import type { OperatorOptions } from './environment.js';

/** What a windowed stream needs of the keyed stream it windows. */
export interface WindowInput<T, K> {
  addKeyed<O>(name: string, options: OperatorOptions, create: () => StreamOperator): DataStream<O>;
  readonly keySelector: (value: T) => K;
  readonly timestampOf?: ((value: T) => number) | undefined;
}

interface Settings<T> {
  readonly allowedLateness: number;
  readonly lateDataTag: OutputTag<T> | undefined;
}

/**
 * A keyed stream cut into windows by an assigner. Configure lateness, then apply a window
 * function; each returns the stream of window results. Immutable: configuration methods return
 * a new WindowedStream.
 * @example
 * events.keyBy((e) => e.user)
 *   .window(TumblingEventTimeWindows.of(60_000))
 *   .allowedLateness(5_000)
 *   .sideOutputLateData(lateTag)
 *   .reduce((a, b) => ({ ...a, amount: a.amount + b.amount }))
 */
export class WindowedStream<T, K extends Key, W extends TimeWindow = TimeWindow> {
  private readonly settings: Settings<T>;

  /**
   * @throws InvalidArgumentError for an event-time assigner on a stream without timestamps.
   */
  constructor(
    private readonly keyed: WindowInput<T, K>,
    readonly assigner: WindowAssigner<W>,
    settings?: Settings<T>,
  ) {
    const ok =
      typeof assigner === 'object' &&
      assigner !== null &&
      typeof assigner.assignWindows === 'function' &&
      (assigner.timeDomain === 'event' || assigner.timeDomain === 'processing');
    if (!ok) {
      throw new InvalidArgumentError(
        `window needs a WindowAssigner (e.g. TumblingEventTimeWindows.of(ms)), got ${describe(assigner)}`,
      );
    }
    if (assigner.timeDomain === 'event' && typeof keyed.timestampOf !== 'function') {
      throw new InvalidArgumentError(
        `${assigner} is an event-time window but the stream has no timestamps: give the source a WatermarkStrategy (fromSource(source, { watermarks })) or call assignTimestamps(...) before keyBy`,
      );
    }
    this.settings = settings ?? { allowedLateness: 0, lateDataTag: undefined };
  }

  /**
   * Event time: keep each window (and fire it again for every late record) for `ms` after the
   * watermark passed its end. Default 0.
   */
  allowedLateness(ms: number): WindowedStream<T, K, W> {
    const allowedLateness = checkAllowedLateness(ms);
    if (allowedLateness > 0 && this.assigner.timeDomain !== 'event') {
      throw new InvalidArgumentError(
        `allowedLateness applies to event-time windows only; ${this.assigner} is a processing-time assigner`,
      );
    }
    return new WindowedStream(this.keyed, this.assigner, { ...this.settings, allowedLateness });
  }

  /**
   * Records too late for all their windows go to the side output `tag` (read it with
   * `getSideOutput(tag)` on the stream the window function returns) instead of being dropped.
   */
  sideOutputLateData(tag: OutputTag<T>): WindowedStream<T, K, W> {
    if (typeof tag !== 'object' || tag === null || typeof tag.id !== 'string') {
      throw new InvalidArgumentError(`sideOutputLateData needs an OutputTag, got ${describe(tag)}`);
    }
    return new WindowedStream(this.keyed, this.assigner, { ...this.settings, lateDataTag: tag });
  }

  /** Folds each window's records with `fn` (incrementally); emits the result when it fires. */
  reduce(fn: ReduceFunction<T>, options?: OperatorOptions): DataStream<T>;
  /** Folds with `fn`, then calls `windowFn` with the single result and the window. */
  reduce<O>(
    fn: ReduceFunction<T>,
    windowFn: ProcessWindowFunction<T, O, K, W>,
    options?: OperatorOptions,
  ): DataStream<O>;
  reduce<O>(
    fn: ReduceFunction<T>,
    second?: OperatorOptions | ProcessWindowFunction<T, O, K, W>,
    third?: OperatorOptions,
  ): DataStream<O> {
    if (typeof fn !== 'function') {
      throw new InvalidArgumentError(`window reduce needs a function, got ${describe(fn)}`);
    }
    const [windowFn, options] = splitArgs(second, third);
    return this.build<O>('window-reduce', options, () => ({
      kind: 'reduce',
      reduce: fn,
      window: windowFn?.() as ProcessWindowFunction<T, O, K> | undefined,
    }));
  }

  /**
   * Aggregates each window's records into an accumulator (incrementally); emits
   * `getResult(acc)` when it fires. Session windows need `agg.merge`.
   */
  aggregate<ACC, R>(agg: AggregateFunction<T, ACC, R>, options?: OperatorOptions): DataStream<R>;
  /** Aggregates, then calls `windowFn` with the single result and the window. */
  aggregate<ACC, R, O>(
    agg: AggregateFunction<T, ACC, R>,
    windowFn: ProcessWindowFunction<R, O, K, W>,
    options?: OperatorOptions,
  ): DataStream<O>;
  aggregate<ACC, R, O>(
    agg: AggregateFunction<T, ACC, R>,
    second?: OperatorOptions | ProcessWindowFunction<R, O, K, W>,
    third?: OperatorOptions,
  ): DataStream<O> {
    const ok =
      typeof agg === 'object' &&
      agg !== null &&
      typeof agg.createAccumulator === 'function' &&
      typeof agg.add === 'function' &&
      typeof agg.getResult === 'function';
    if (!ok) {
      throw new InvalidArgumentError(
        `window aggregate needs an AggregateFunction with createAccumulator, add and getResult, got ${describe(agg)}`,
      );
    }
    if (this.assigner.isMerging && typeof agg.merge !== 'function') {
      throw new InvalidArgumentError(
        `${this.assigner} merges windows: the AggregateFunction needs a merge(a, b) method`,
      );
    }
    const [windowFn, options] = splitArgs(second, third);
    return this.build<O>('window-aggregate', options, () => ({
      kind: 'aggregate',
      aggregate: agg as AggregateFunction<T, ACC, unknown>,
      window: windowFn?.() as ProcessWindowFunction<unknown, O, K> | undefined,
    }));
  }

  /**
   * Calls `fn` with all of a window's records when it fires. Buffers every record of every
   * open window in state: prefer reduce or aggregate (optionally with a window function) when
   * the result can be computed incrementally. Pass a factory to get a fresh instance per
   * subtask.
   */
  process<O>(
    fn: ProcessWindowFunction<T, O, K, W> | (() => ProcessWindowFunction<T, O, K, W>),
    options: OperatorOptions = {},
  ): DataStream<O> {
    const make = windowFunctionFactory(fn, 'window process');
    return this.build<O>('window-process', options, () => ({
      kind: 'process',
      process: make() as ProcessWindowFunction<T, O, K>,
    }));
  }

  private build<O>(
    name: string,
    options: OperatorOptions,
    spec: () => WindowFunctionSpec<T, unknown, O, K>,
  ): DataStream<O> {
    const { keySelector, timestampOf } = this.keyed;
    const { allowedLateness, lateDataTag } = this.settings;
    const assigner = this.assigner;
    // Flink: each result carries its window's maxTimestamp (set by the operator as it fires).
    return this.keyed
      .addKeyed<O>(
        name,
        options,
        () =>
          new WindowOperator<K, T, unknown, O>({
            assigner,
            keySelector,
            timestampOf,
            function: spec(),
            allowedLateness,
            lateDataTag,
          }) as StreamOperator,
      )
      .carrying(carriedTimestamp);
  }
}

const isWindowFunction = (v: unknown): boolean =>
  typeof v === 'function' ||
  (typeof v === 'object' &&
    v !== null &&
    typeof (v as { process?: unknown }).process === 'function');

/** (window function factory, options) from the optional second and third arguments. */
const splitArgs = <F extends object>(
  second: OperatorOptions | F | undefined,
  third: OperatorOptions | undefined,
): [(() => F) | undefined, OperatorOptions] => {
  if (second !== undefined && isWindowFunction(second)) {
    return [windowFunctionFactory(second as F, 'window function'), third ?? {}];
  }
  return [undefined, (second as OperatorOptions | undefined) ?? {}];
};

/** A fresh instance per subtask: a factory's result, or a shallow copy of an object. */
const windowFunctionFactory = <F extends object>(fn: F | (() => F), what: string): (() => F) => {
  if (typeof fn === 'function') return fn as () => F;
  if (
    typeof fn === 'object' &&
    fn !== null &&
    typeof (fn as { process?: unknown }).process === 'function'
  ) {
    return () => Object.assign(Object.create(Object.getPrototypeOf(fn)), fn) as F;
  }
  throw new InvalidArgumentError(
    `${what} needs an object with a process method, or a factory returning one; got ${describe(fn)}`,
  );
};

const describe = (v: unknown) => (v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v);
