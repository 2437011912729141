/**
 * The interfaces of user functions with two inputs: connected streams (`connect`), keyed
 * connected streams, and the broadcast state pattern. Like functions.ts, they live in the
 * runtime (which calls them) and the API re-exports them.
 */
import type { Key } from '../keygroups/index.js';
import type { MapStateDescriptor, StateDescriptor, StateFor } from '../state/descriptors.js';
import type { BroadcastState, ReadOnlyBroadcastState } from '../state/types.js';
import type {
  Collector,
  KeyedContext,
  KeyedRuntimeContext,
  Lifecycle,
  OnTimerContext,
  OperatorStateHooks,
  ProcessContext,
  RuntimeContext,
} from './functions.js';
import type { OutputTag } from './time.js';

/**
 * A function over two connected non-keyed streams (`a.connect(b).process(fn)`): one method
 * per input. May keep operator list state, like {@link ProcessFunction}.
 */
export interface CoProcessFunction<IN1, IN2, OUT>
  extends Lifecycle<RuntimeContext>,
    OperatorStateHooks {
  /** A record of the first input. */
  processElement1(value: IN1, ctx: ProcessContext, out: Collector<OUT>): void;
  /** A record of the second input. */
  processElement2(value: IN2, ctx: ProcessContext, out: Collector<OUT>): void;
  /** End of (bounded) input on both sides: emit what is still pending. */
  finish?(out: Collector<OUT>): void;
}

/**
 * A function over two keyed streams connected on the same key
 * (`a.keyBy(f).connect(b.keyBy(g)).process(fn)`): both inputs' records of one key see the same
 * keyed state and timers, so it can enrich, join or correlate them.
 */
export interface KeyedCoProcessFunction<K, IN1, IN2, OUT>
  extends Lifecycle<KeyedRuntimeContext>,
    OperatorStateHooks {
  processElement1(value: IN1, ctx: KeyedContext<K>, out: Collector<OUT>): void;
  processElement2(value: IN2, ctx: KeyedContext<K>, out: Collector<OUT>): void;
  /** A timer of `ctx.currentKey` fired (see {@link KeyedProcessFunction.onTimer}). */
  onTimer?(timestamp: number, ctx: OnTimerContext<K>, out: Collector<OUT>): void;
  finish?(out: Collector<OUT>): void;
}

/** Reads broadcast state; what the non-broadcast side's `processElement` gets. */
export interface ReadOnlyBroadcastContext {
  /**
   * The broadcast state of `descriptor` (one of those passed to `broadcast(...)`), read-only:
   * its writers throw `EDDY_STATE`.
   */
  getBroadcastState<UK extends Key, UV>(
    descriptor: MapStateDescriptor<UK, UV>,
  ): ReadOnlyBroadcastState<UK, UV>;
}

/** Writes broadcast state; what `processBroadcastElement` gets. */
export interface BroadcastContext {
  /** The broadcast state of `descriptor`, writable. Update it the same way in every subtask. */
  getBroadcastState<UK extends Key, UV>(
    descriptor: MapStateDescriptor<UK, UV>,
  ): BroadcastState<UK, UV>;
  /** The event time of the broadcast record, if its stream has timestamps. */
  timestamp(): number | undefined;
  /** Emits `value` to the side output `tag`. */
  output<X>(tag: OutputTag<X>, value: X): void;
}

/** `processElement`'s context of a non-keyed broadcast function. */
export interface ReadOnlyProcessBroadcastContext extends ProcessContext, ReadOnlyBroadcastContext {
  /** The event time of the record, if its stream has timestamps. */
  timestamp(): number | undefined;
}

/**
 * The broadcast state pattern on a non-keyed stream
 * (`events.connect(rules.broadcast(d)).process(fn)`): rules reach every subtask and are kept
 * in broadcast state; events read them.
 */
export interface BroadcastProcessFunction<IN1, IN2, OUT>
  extends Lifecycle<RuntimeContext>,
    OperatorStateHooks {
  /** A record of the non-broadcast input; broadcast state is read-only here. */
  processElement(value: IN1, ctx: ReadOnlyProcessBroadcastContext, out: Collector<OUT>): void;
  /** A record of the broadcast input, seen by every subtask; may write broadcast state. */
  processBroadcastElement(value: IN2, ctx: BroadcastContext, out: Collector<OUT>): void;
  finish?(out: Collector<OUT>): void;
}

/** `processElement`'s context of a keyed broadcast function: the key, timers, read-only broadcast state. */
export interface ReadOnlyKeyedBroadcastContext<K>
  extends KeyedContext<K>,
    ReadOnlyBroadcastContext {}

/** `onTimer`'s context of a keyed broadcast function. */
export interface KeyedBroadcastTimerContext<K>
  extends OnTimerContext<K>,
    ReadOnlyBroadcastContext {}

/** `processBroadcastElement`'s context of a keyed broadcast function. */
export interface KeyedBroadcastContext extends BroadcastContext {
  /**
   * Calls `fn` for every key with state `descriptor` in this subtask's key groups, with that
   * key's state (Flink's `applyToKeyedState`): e.g. to clear or update per-key state when a
   * rule changes. Runs in the subtask's key-group order; writes go to that key's state.
   */
  applyToKeyedState<D extends StateDescriptor>(
    descriptor: D,
    fn: (key: Key, state: StateFor<D>) => void,
  ): void;
  /** The operator's current event-time watermark. */
  currentWatermark(): number;
}

/**
 * The broadcast state pattern on a keyed stream
 * (`events.keyBy(f).connect(rules.broadcast(d)).process(fn)`): full keyed state and timers
 * for the events, broadcast state for the rules.
 */
export interface KeyedBroadcastProcessFunction<K, IN1, IN2, OUT>
  extends Lifecycle<KeyedRuntimeContext>,
    OperatorStateHooks {
  processElement(value: IN1, ctx: ReadOnlyKeyedBroadcastContext<K>, out: Collector<OUT>): void;
  /**
   * A broadcast record. There is no current key here: keyed state only through
   * `ctx.applyToKeyedState`.
   */
  processBroadcastElement(value: IN2, ctx: KeyedBroadcastContext, out: Collector<OUT>): void;
  onTimer?(timestamp: number, ctx: KeyedBroadcastTimerContext<K>, out: Collector<OUT>): void;
  finish?(out: Collector<OUT>): void;
}
