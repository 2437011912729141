/**
 * Interval join of two keyed streams, as Flink's `KeyedStream.intervalJoin`: a left record
 * with timestamp `l` and a right record of the same key with timestamp `r` join when
 * `l + lower <= r <= l + upper`. Built on a keyed two-input process function: each side's
 * records are buffered in keyed map state by timestamp, every arriving record is joined with
 * the other side's buffered records in range, and event-time timers prune a buffered record
 * once the watermark has passed the last time a partner could still arrive. The state is
 * ordinary keyed state (and timers), so it checkpoints and rescales by key group.
 */
import { InvalidArgumentError } from '../core/errors.js';
import type { Key } from '../keygroups/index.js';
import type { Collector, KeyedContext, RuntimeContext } from '../runtime/functions.js';
import type { Counter } from '../runtime/io.js';
import { recordTime } from '../runtime/record-time.js';
import type { OutputTag } from '../runtime/time.js';
import type { KeyedCoProcessFunction } from '../runtime/two-input-functions.js';
import { MapStateDescriptor } from '../state/descriptors.js';
import type { MapState } from '../state/types.js';
import { type DataStream, describe, functionFactory, type KeyedStream } from './datastream.js';
import type { OperatorOptions, StreamExecutionEnvironment } from './environment.js';

/** What {@link ProcessJoinFunction.processElement} learns about a joined pair. */
export interface ProcessJoinContext {
  /** The left record's event time. */
  readonly leftTimestamp: number;
  /** The right record's event time. */
  readonly rightTimestamp: number;
  /** The pair's event time: the larger of the two; outputs carry it. */
  readonly timestamp: number;
  /** Emits `value` to the side output `tag` (read it with `getSideOutput(tag)`). */
  output<X>(tag: OutputTag<X>, value: X): void;
}

/** The function of an interval join: called once per joined pair (Flink's ProcessJoinFunction). */
export interface ProcessJoinFunction<T, U, O> {
  processElement(left: T, right: U, ctx: ProcessJoinContext, out: Collector<O>): void;
  open?(ctx: RuntimeContext): void | Promise<void>;
  close?(): void | Promise<void>;
}

/** The name of the counter of records dropped because they arrived behind the watermark. */
export const LATE_RECORDS_DROPPED = 'interval-join-late-records-dropped';

/** Both keyed inputs, and the environment (to name their streams in messages). */
interface IntervalJoinInputs<T, U, K extends Key> {
  readonly env: StreamExecutionEnvironment;
  readonly left: KeyedStream<T, K>;
  readonly right: KeyedStream<U, K>;
}

/**
 * `a.keyBy(f).intervalJoin(b.keyBy(g))`: give the interval with `between(lowerMs, upperMs)`.
 * @example
 * orders.keyBy((o) => o.id)
 *   .intervalJoin(shipments.keyBy((s) => s.orderId))
 *   .between(0, 86_400_000) // a shipment within a day after its order
 *   .process({ processElement: (o, s, ctx, out) => out.collect({ id: o.id, at: s.ts }) })
 */
export class IntervalJoin<T, U, K extends Key> {
  /**
   * @internal
   * @throws InvalidArgumentError when the other side is not keyed or a side has no timestamps.
   */
  constructor(private readonly inputs: IntervalJoinInputs<T, U, K>) {
    const { env, left, right } = inputs;
    requireKeyed(env, left, right, 'intervalJoin', 'a.keyBy(f).intervalJoin(b.keyBy(g))');
    const sides = [
      ['left (first)', left],
      ['right (second)', right],
    ] as const;
    for (const [side, stream] of sides) {
      if (typeof stream.timestampOf !== 'function') {
        throw new InvalidArgumentError(
          `intervalJoin joins by event time but its ${side} input (the keyed stream from ${env.describeInputs(stream.inputs)}) has no timestamps: give its source a WatermarkStrategy (fromSource(source, { watermarks })) or call assignTimestamps(...) before keyBy`,
        );
      }
    }
  }

  /**
   * Joins a left record at `l` with the right records of its key at `r` where
   * `l + lowerMs <= r <= l + upperMs` (both bounds inclusive; see `lowerBoundExclusive` and
   * `upperBoundExclusive`). Bounds may be negative; `lowerMs <= upperMs`.
   */
  between(lowerMs: number, upperMs: number): IntervalJoined<T, U, K> {
    for (const [name, v] of [
      ['lowerMs', lowerMs],
      ['upperMs', upperMs],
    ] as const) {
      if (typeof v !== 'number' || !Number.isSafeInteger(v)) {
        throw new InvalidArgumentError(
          `intervalJoin between: ${name} must be an integer number of milliseconds, got ${String(v)}`,
        );
      }
    }
    if (lowerMs > upperMs) {
      throw new InvalidArgumentError(
        `intervalJoin between: lowerMs (${lowerMs}) must be <= upperMs (${upperMs})`,
      );
    }
    return new IntervalJoined(this.inputs, { lower: lowerMs, upper: upperMs });
  }
}

interface Bounds {
  /** Inclusive, after the exclusive flags moved them by 1 ms (as Flink does). */
  readonly lower: number;
  readonly upper: number;
  readonly lowerExclusive?: boolean;
  readonly upperExclusive?: boolean;
}

/** An interval join with its bounds: apply a {@link ProcessJoinFunction} with `process`. */
export class IntervalJoined<T, U, K extends Key> {
  /** @internal */
  constructor(
    private readonly inputs: IntervalJoinInputs<T, U, K>,
    private readonly bounds: Bounds,
  ) {}

  /** The lower bound is exclusive: `l + lowerMs < r`. */
  lowerBoundExclusive(): IntervalJoined<T, U, K> {
    return new IntervalJoined(this.inputs, { ...this.bounds, lowerExclusive: true });
  }

  /** The upper bound is exclusive: `r < l + upperMs`. */
  upperBoundExclusive(): IntervalJoined<T, U, K> {
    return new IntervalJoined(this.inputs, { ...this.bounds, upperExclusive: true });
  }

  /**
   * Calls `fn.processElement(left, right, ctx, out)` for every joined pair, as soon as its
   * second record arrives; each output carries the pair's timestamp (the larger of the two).
   * A record behind its operator's watermark when it arrives is dropped, as in Flink (counted
   * in the metric `interval-join-late-records-dropped`). Buffered records are pruned once the
   * watermark passes the last timestamp a partner could have: a left record at `l` after
   * `l + upper`, a right record at `r` after `r - lower`. Pass a factory for a fresh function
   * per subtask. Default operator name 'interval-join'; set a `uid`.
   */
  process<O>(
    fn: ProcessJoinFunction<T, U, O> | (() => ProcessJoinFunction<T, U, O>),
    options: OperatorOptions = {},
  ): DataStream<O> {
    const make = functionFactory(
      fn,
      'intervalJoin(...).process',
      'processElement',
      'a ProcessJoinFunction (an object with processElement(left, right, ctx, out))',
    );
    const { lower, upper, lowerExclusive, upperExclusive } = this.bounds;
    const lo = lowerExclusive ? lower + 1 : lower;
    const hi = upperExclusive ? upper - 1 : upper;
    if (lo > hi) {
      throw new InvalidArgumentError(
        `intervalJoin between(${lower}, ${upper}) with exclusive bounds holds no timestamp`,
      );
    }
    return this.inputs.left
      .connect(this.inputs.right)
      .process<O>(() => intervalJoinFunction<K, T, U, O>(make(), lo, hi), {
        name: 'interval-join',
        ...options,
      });
  }
}

/**
 * The keyed two-input function doing the join. Bounds inclusive. Hazard: a timer at `t` prunes
 * the left bucket `t - upper - 1` and the right bucket `t + lower - 1` whichever side
 * registered it: both are due at `t` (their cleanup time is a function of the timestamp), so a
 * shared (key, timestamp) timer is never early.
 * @internal exported for the operator tests.
 */
export const intervalJoinFunction = <K, T, U, O>(
  user: ProcessJoinFunction<T, U, O>,
  lower: number,
  upper: number,
): KeyedCoProcessFunction<K, T, U, O> => {
  let lefts: MapState<number, T[]>;
  let rights: MapState<number, U[]>;
  let late: Counter;
  let keyed: KeyedContext<K>;
  const ctx = {
    leftTimestamp: 0,
    rightTimestamp: 0,
    timestamp: 0,
    output<X>(tag: OutputTag<X>, value: X): void {
      recordTime.value = ctx.timestamp;
      keyed.output(tag, value);
    },
  };
  const emit = (l: T, r: U, lts: number, rts: number, out: Collector<O>) => {
    ctx.leftTimestamp = lts;
    ctx.rightTimestamp = rts;
    ctx.timestamp = lts > rts ? lts : rts;
    // Outputs carry the pair's time: the operator's outputs read the carried-time slot.
    recordTime.value = ctx.timestamp;
    user.processElement(l, r, ctx, out);
  };
  /** The record's timestamp, or undefined when it is late (dropped). */
  const admit = (c: KeyedContext<K>): number | undefined => {
    const ts = c.timestamp();
    if (ts === undefined) throw new InvalidArgumentError('intervalJoin: a record has no timestamp');
    if (ts < c.timerService.currentWatermark()) {
      late.inc();
      return undefined;
    }
    return ts;
  };
  return {
    async open(rc) {
      lefts = rc.getState(new MapStateDescriptor<number, T[]>('interval-join-left'));
      rights = rc.getState(new MapStateDescriptor<number, U[]>('interval-join-right'));
      late = rc.metrics.counter(LATE_RECORDS_DROPPED);
      await user.open?.(rc);
    },
    async close() {
      await user.close?.();
    },
    processElement1(left, c, out) {
      const ts = admit(c);
      if (ts === undefined) return;
      keyed = c;
      append(lefts, ts, left);
      for (const [rts, bucket] of rights.entries()) {
        if (rts < ts + lower || rts > ts + upper) continue;
        for (const right of bucket) emit(left, right, ts, rts, out);
      }
      // A right record at r >= watermark joins it while r <= ts + upper.
      c.timerService.registerEventTimeTimer(ts + upper + 1);
    },
    processElement2(right, c, out) {
      const ts = admit(c);
      if (ts === undefined) return;
      keyed = c;
      append(rights, ts, right);
      for (const [lts, bucket] of lefts.entries()) {
        if (lts < ts - upper || lts > ts - lower) continue;
        for (const left of bucket) emit(left, right, lts, ts, out);
      }
      // A left record at l >= watermark joins it while l <= ts - lower.
      c.timerService.registerEventTimeTimer(ts - lower + 1);
    },
    onTimer(timestamp) {
      lefts.delete(timestamp - upper - 1);
      rights.delete(timestamp + lower - 1);
    },
  };
};

/** Adds `value` to the bucket of `ts` (state values are written back, never mutated in place). */
const append = <V>(buffer: MapState<number, V[]>, ts: number, value: V): void => {
  const bucket = buffer.get(ts);
  buffer.put(ts, bucket === undefined ? [value] : [...bucket, value]);
};

/**
 * @internal The other side of a keyed join must be keyed too: a clear error naming both
 * streams (TypeScript catches it too, but not a caller in JavaScript or through a cast).
 */
export const requireKeyed = (
  env: StreamExecutionEnvironment,
  left: { readonly inputs: DataStream<unknown>['inputs'] },
  right: unknown,
  op: string,
  shape: string,
): void => {
  const r = right as { keySelector?: unknown; inputs?: DataStream<unknown>['inputs'] } | null;
  if (typeof r === 'object' && r !== null && typeof r.keySelector === 'function') return;
  const got =
    typeof r === 'object' && r !== null && Array.isArray(r.inputs)
      ? `the non-keyed stream from ${env.describeInputs(r.inputs)}`
      : describe(right);
  throw new InvalidArgumentError(
    `${op}: the keyed stream from ${env.describeInputs(left.inputs)} needs another keyed stream, got ${got}; key both: ${shape}`,
  );
};
