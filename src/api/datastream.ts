/** Typed streams. Types flow from source to sink through every transformation. */
import { InvalidArgumentError } from '../core/errors.js';
import type { Key } from '../keygroups/index.js';
import type {
  FilterFunction,
  FlatMapFunction,
  KeyedProcessFunction,
  MapFunction,
  ProcessFunction,
  ReduceFunction,
} from '../runtime/functions.js';
import type { Partitioning } from '../runtime/graph.js';
import type { Sink } from '../runtime/io.js';
import type { StreamOperator } from '../runtime/operator.js';
import { KeyedProcessOperator, ProcessOperator } from '../runtime/operators/process.js';
import { SinkOperator } from '../runtime/operators/sink.js';
import { FilterOperator, FlatMapOperator, MapOperator } from '../runtime/operators/stateless.js';
import { carriedTimestamp } from '../runtime/record-time.js';
import type { OutputTag } from '../runtime/time.js';
import type { TimeWindow, WindowAssigner } from '../runtime/windows/assigners.js';
import { MapStateDescriptor, ValueStateDescriptor } from '../state/descriptors.js';
import {
  BroadcastConnectedStream,
  BroadcastStream,
  ConnectedStreams,
  KeyedBroadcastConnectedStream,
  KeyedConnectedStreams,
} from './connected-streams.js';
import type { InputSpec, OperatorOptions, StreamExecutionEnvironment } from './environment.js';
import { IntervalJoin, requireKeyed } from './interval-join.js';
import { CoGroupedStreams, JoinedStreams } from './joined-streams.js';
import { KeyedJoin } from './keyed-join.js';
import { WindowedStream } from './windowed-stream.js';

/** A stream of records of type `T`: apply operations to build the job graph. */
export class DataStream<T> {
  /** @internal */
  constructor(
    protected readonly env: StreamExecutionEnvironment,
    /** @internal Upstream nodes (several after union) and their routing. */
    readonly inputs: readonly InputSpec[],
    /**
     * The records' event time, when the stream has timestamps: a source's watermark strategy
     * or `assignTimestamps` (a function of the record, kept by operations that keep the record
     * type), or `carriedTimestamp` after map, flatMap, process or a window: their outputs
     * carry the timestamp of the input that produced them (docs/ARCHITECTURE.md "Event time").
     */
    readonly timestampOf?: ((value: T) => number) | undefined,
  ) {}

  map<O>(fn: MapFunction<T, O>, options: OperatorOptions = {}): DataStream<O> {
    requireFunction(fn, 'map');
    const stamp = stampOf(this.timestampOf);
    return this.add<O>('map', options, () => new MapOperator(fn, stamp)).carrying(this.timestampOf);
  }

  /** Keeps the records `fn` accepts; a type guard narrows the stream's type. */
  filter<S extends T>(fn: (value: T) => value is S, options?: OperatorOptions): DataStream<S>;
  filter(fn: FilterFunction<T>, options?: OperatorOptions): DataStream<T>;
  filter(fn: FilterFunction<T>, options: OperatorOptions = {}): DataStream<T> {
    requireFunction(fn, 'filter');
    const out = this.add<T>('filter', options, () => new FilterOperator(fn));
    return new DataStream<T>(
      this.env,
      withTimestamps(out.inputs, this.timestampOf),
      this.timestampOf,
    );
  }

  /**
   * @internal The stream an operator returned, given the timestamps of its input: none, or
   * carried (each output record has the event time of the input record that produced it).
   */
  carrying<U>(inputTimestamps: ((value: U) => number) | undefined): DataStream<T> {
    if (inputTimestamps === undefined) return this;
    return new DataStream<T>(
      this.env,
      withTimestamps(this.inputs, carriedTimestamp),
      carriedTimestamp,
    );
  }

  /**
   * Gives the records an event time for event-time operators downstream (windows,
   * `ctx.timestamp()`), e.g. after a map changed their type. Watermarks still come from the
   * sources' watermark strategies.
   */
  assignTimestamps(timestampOf: (value: T) => number): DataStream<T> {
    requireFunction(timestampOf, 'assignTimestamps');
    return new DataStream<T>(this.env, withTimestamps(this.inputs, timestampOf), timestampOf);
  }

  /**
   * The side output `tag` of the operator that produced this stream (records it emitted with
   * `ctx.output(tag, value)`, or a window's late records).
   */
  getSideOutput<X>(tag: OutputTag<X>): DataStream<X> {
    const [only, ...rest] = this.inputs;
    if (only === undefined || rest.length > 0 || only.partitioning !== undefined) {
      throw new InvalidArgumentError(
        `getSideOutput('${tag.id}') must be called on the stream an operator returned, not after union, keyBy or a repartitioning`,
      );
    }
    return new DataStream<X>(this.env, [
      { node: only.node, partitioning: undefined, sideOutput: tag.id },
    ]);
  }

  flatMap<O>(fn: FlatMapFunction<T, O>, options: OperatorOptions = {}): DataStream<O> {
    requireFunction(fn, 'flatMap');
    const stamp = stampOf(this.timestampOf);
    return this.add<O>('flatMap', options, () => new FlatMapOperator(fn, stamp)).carrying(
      this.timestampOf,
    );
  }

  /**
   * A process function on a non-keyed stream. Its operator list state (declared in
   * `initializeState`) is redistributed by the mode it was registered with.
   */
  process<O>(
    fn: ProcessFunction<T, O> | (() => ProcessFunction<T, O>),
    options: OperatorOptions = {},
  ): DataStream<O> {
    const make = functionFactory(fn, 'process');
    // Stateful if it declares operator state hooks; a factory may, so it counts as stateful.
    const stateful =
      typeof fn === 'function' ||
      typeof fn.initializeState === 'function' ||
      typeof fn.snapshotState === 'function';
    const stamp = stampOf(this.timestampOf);
    return this.add<O>(
      'process',
      options,
      () => new ProcessOperator(make(), stamp),
      undefined,
      stateful,
    ).carrying(this.timestampOf);
  }

  /**
   * Partitions the stream by key: each key's records go to the one subtask that owns the
   * key's key group. `selector` is a function or the name of a field holding the key.
   * @example stream.keyBy((e) => e.user)
   */
  keyBy<K extends Key>(selector: (value: T) => K): KeyedStream<T, K>;
  keyBy<F extends KeyFields<T>>(field: F): KeyedStream<T, Extract<T[F], Key>>;
  keyBy(selector: unknown): KeyedStream<T, Key> {
    return new KeyedStream<T, Key>(
      this.env,
      this.inputs,
      toKeySelector<T>(selector),
      this.timestampOf,
    );
  }

  /**
   * Windows over the whole (non-keyed) stream: every record goes to one window operator with
   * parallelism 1, as Flink's `windowAll`. Prefer `keyBy(...).window(...)` when you can.
   */
  windowAll<W extends TimeWindow>(assigner: WindowAssigner<W>): WindowedStream<T, number, W> {
    const keyed = this.keyBy(() => 0);
    const single = {
      keySelector: keyed.keySelector,
      timestampOf: keyed.timestampOf,
      addKeyed: <O>(name: string, options: OperatorOptions, create: () => StreamOperator) => {
        if (options.parallelism !== undefined && options.parallelism !== 1) {
          throw new InvalidArgumentError(
            `windowAll runs with parallelism 1; got parallelism ${options.parallelism}`,
          );
        }
        return keyed.addKeyed<O>(name, { ...options, parallelism: 1 }, create);
      },
    };
    return new WindowedStream<T, number, W>(single, assigner);
  }

  /**
   * Merges streams of the same type. Each keeps its timestamps: one assigner if they share
   * it, else each record carries its own. A stream without timestamps uses this stream's
   * assigner when that is a function of the record; if none applies the union has none.
   */
  union(...others: DataStream<T>[]): DataStream<T> {
    const own = stampOf(this.timestampOf);
    const all = [this, ...others].map((s) => ({ s, ts: s.timestampOf ?? own }));
    const first = all[0]!.ts;
    if (all.every((a) => a.ts === first)) {
      return new DataStream<T>(
        this.env,
        all.flatMap((a) => withTimestamps(a.s.inputs, first)),
        first,
      );
    }
    if (all.some((a) => a.ts === undefined)) {
      return new DataStream<T>(
        this.env,
        all.flatMap((a) => withTimestamps(a.s.inputs, undefined)),
      );
    }
    // Different assigners: every edge carries its records' timestamps.
    const inputs = all.flatMap((a) =>
      a.s.inputs.map((i) => ({ ...i, timestamps: a.ts as (r: unknown) => number })),
    );
    return new DataStream<T>(this.env, inputs, carriedTimestamp);
  }

  /** Round-robin to the next operator's subtasks (evens out skew). */
  rebalance(): DataStream<T> {
    return this.partition({ kind: 'rebalance' });
  }

  /** Every record to every subtask of the next operator. */
  broadcast(): DataStream<T>;
  /**
   * A broadcast stream for the broadcast state pattern: every record reaches every subtask of
   * the operator it is connected to (`events.connect(rules.broadcast(d))`), which keeps the
   * broadcast states `descriptors` (the same in every subtask; checkpointed; on rescale each
   * new subtask gets one copy).
   */
  broadcast(...descriptors: MapStateDescriptor<unknown, unknown>[]): BroadcastStream<T>;
  broadcast(
    ...descriptors: MapStateDescriptor<unknown, unknown>[]
  ): DataStream<T> | BroadcastStream<T> {
    const spread = this.partition({ kind: 'broadcast' });
    if (descriptors.length === 0) return spread;
    for (const d of descriptors) {
      if (!(d instanceof MapStateDescriptor)) {
        throw new InvalidArgumentError(
          `broadcast(...) takes MapStateDescriptors (one per broadcast state), got ${describe(d)}`,
        );
      }
    }
    const names = descriptors.map((d) => d.name);
    const twice = names.find((n, i) => names.indexOf(n) !== i);
    if (twice !== undefined) {
      throw new InvalidArgumentError(`broadcast(...): two broadcast states are named '${twice}'`);
    }
    return new BroadcastStream<T>(spread.inputs, this.timestampOf, descriptors);
  }

  /**
   * Connects a second stream: one operator reads both, each with its own method
   * (`process(CoProcessFunction)`, `map(f1, f2)`, `flatMap(f1, f2)`); or, with a broadcast
   * stream, the broadcast state pattern (`process(BroadcastProcessFunction)`).
   */
  connect<U>(other: BroadcastStream<U>): BroadcastConnectedStream<T, U>;
  connect<U>(other: DataStream<U>): ConnectedStreams<T, U>;
  connect<U>(
    other: DataStream<U> | BroadcastStream<U>,
  ): ConnectedStreams<T, U> | BroadcastConnectedStream<T, U> {
    if (other instanceof BroadcastStream) {
      return new BroadcastConnectedStream<T, U>(this.env, this, other);
    }
    if (other instanceof KeyedStream) {
      throw new InvalidArgumentError(
        `connect: ${this.env.describeInputs(this.inputs)} is not keyed but the stream it connects (from ${this.env.describeInputs((other as KeyedStream<U, Key>).inputs)}) is; key both: a.keyBy(f).connect(b.keyBy(g))`,
      );
    }
    if (!(other instanceof DataStream)) {
      throw new InvalidArgumentError(
        `connect needs a DataStream or a BroadcastStream, got ${describe(other)}`,
      );
    }
    return new ConnectedStreams<T, U>(this.env, this, other);
  }

  sinkTo(sink: Sink<T>, options: OperatorOptions = {}): void {
    // A sink reads no event time: its input edges carry none.
    const plain = new DataStream<T>(this.env, withTimestamps(this.inputs, undefined));
    this.env.addOperator(
      plain.inputs,
      sink.defaultName,
      options,
      () => new SinkOperator(sink),
      undefined,
      true,
      sink as Sink<unknown>,
    );
  }

  /** @internal */
  protected add<O>(
    name: string,
    options: OperatorOptions,
    create: () => unknown,
    key?: (r: unknown) => Key,
    stateful?: boolean,
  ): DataStream<O> {
    const id = this.env.addOperator(this.inputs, name, options, create as never, key, stateful);
    return new DataStream<O>(this.env, [{ node: id, partitioning: undefined }]);
  }

  private partition(p: Partitioning): DataStream<T> {
    return new DataStream<T>(
      this.env,
      this.inputs.map((i) => ({ ...i, partitioning: p })),
      this.timestampOf,
    );
  }

  // Window join and coGroup (issue 17).

  /**
   * A window join with `other`, as Flink's: `a.join(b).where(f).equalTo(g).window(assigner)
   * .apply((left, right) => out)` emits one result per pair of left and right records with
   * equal keys in the same window (inner join).
   */
  join<U>(other: DataStream<U>): JoinedStreams<T, U> {
    return new JoinedStreams<T, U>({
      env: this.env,
      left: this,
      right: other,
      kind: 'join',
    });
  }

  /**
   * A window coGroup with `other`, as Flink's: `a.coGroup(b).where(f).equalTo(g)
   * .window(assigner).apply((lefts, rights, out) => ...)` is called once per window and key
   * with the records of both sides (at least one on either side).
   */
  coGroup<U>(other: DataStream<U>): CoGroupedStreams<T, U> {
    return new CoGroupedStreams<T, U>({
      env: this.env,
      left: this,
      right: other,
      kind: 'coGroup',
    });
  }

  /**
   * Not on a non-keyed stream: an interval join needs both streams keyed,
   * `a.keyBy(f).intervalJoin(b.keyBy(g))` (a compile error here; at run time it throws).
   * @throws InvalidArgumentError always, naming this stream.
   */
  intervalJoin(_other: never): never {
    throw new InvalidArgumentError(
      `intervalJoin: the stream from ${this.env.describeInputs(this.inputs)} is not keyed; an interval join joins two keyed streams: a.keyBy(f).intervalJoin(b.keyBy(g))`,
    );
  }
}

/** A stream partitioned by key: its operators get keyed state. */
export class KeyedStream<T, K extends Key> {
  /** @internal */
  constructor(
    private readonly env: StreamExecutionEnvironment,
    /** @internal The upstream nodes, before the hash partitioning (added per operator). */
    readonly inputs: readonly InputSpec[],
    /** @internal */
    readonly keySelector: (value: T) => K,
    /** The records' event time, if the stream has timestamps. */
    readonly timestampOf?: ((value: T) => number) | undefined,
  ) {}

  /** A stateful function per key. Pass a factory to get a fresh instance per subtask. */
  process<O>(
    fn: KeyedProcessFunction<K, T, O> | (() => KeyedProcessFunction<K, T, O>),
    options: OperatorOptions = {},
  ): DataStream<O> {
    const make = functionFactory(fn, 'process');
    const sel = this.keySelector;
    const ts = this.timestampOf;
    return this.addKeyed<O>(
      'keyed-process',
      options,
      () => new KeyedProcessOperator<K, T, O>(make(), sel, ts),
    ).carrying(ts);
  }

  /**
   * Cuts each key's records into windows (tumbling, sliding, session; event or processing
   * time); apply a window function to the result.
   * @example keyed.window(EventTimeSessionWindows.withGap(30_000)).aggregate(countAgg)
   */
  window<W extends TimeWindow>(assigner: WindowAssigner<W>): WindowedStream<T, K, W> {
    return new WindowedStream<T, K, W>(this, assigner);
  }

  /**
   * Connects another keyed stream with the same key type (a compile error otherwise; a
   * runtime check compares the first keys of both sides): one operator gets both inputs with
   * one keyed state and timers per key (`process(KeyedCoProcessFunction)`). With a broadcast
   * stream: the broadcast state pattern (`process(KeyedBroadcastProcessFunction)`).
   */
  connect<U>(other: BroadcastStream<U>): KeyedBroadcastConnectedStream<T, U, K>;
  connect<U>(other: KeyedStream<U, K>): KeyedConnectedStreams<T, U, K>;
  connect<U>(
    other: KeyedStream<U, K> | BroadcastStream<U>,
  ): KeyedConnectedStreams<T, U, K> | KeyedBroadcastConnectedStream<T, U, K> {
    if (other instanceof BroadcastStream) {
      return new KeyedBroadcastConnectedStream<T, U, K>(this.env, this, other);
    }
    requireKeyed(
      this.env,
      this,
      other,
      'connect',
      'a.keyBy(f).connect(b.keyBy(g)), or connect a broadcast stream: rules.broadcast(descriptor)',
    );
    return new KeyedConnectedStreams<T, U, K>(this.env, this, other);
  }

  /** Rolling reduce per key: emits the new aggregate after every record. */
  reduce(fn: ReduceFunction<T>, options: OperatorOptions = {}): DataStream<T> {
    requireFunction(fn, 'reduce');
    return this.process<T>(() => reduceFunction<K, T>(fn), { name: 'reduce', ...options });
  }

  /** @internal Appends a keyed operator fed by this stream's key-group routing. */
  addKeyed<O>(
    name: string,
    options: OperatorOptions,
    create: () => StreamOperator<never, unknown>,
  ): DataStream<O> {
    const sel = this.keySelector as (r: unknown) => Key;
    const hashed = this.inputs.map((i) => ({
      node: i.node,
      partitioning: { kind: 'hash', keySelector: sel } as const,
      timestamps: i.timestamps,
    }));
    const id = this.env.addOperator(hashed, name, options, create as never, sel);
    return new DataStream<O>(this.env, [{ node: id, partitioning: undefined }]);
  }

  // Interval join and unbounded keyed join (issue 17).

  /**
   * An interval join with the keyed stream `other`, as Flink's: `a.keyBy(f).intervalJoin(
   * b.keyBy(g)).between(lowerMs, upperMs).process(fn)` calls `fn` for every left record at `l`
   * and right record of the same key at `r` with `l + lowerMs <= r <= l + upperMs`. Event time
   * on both inputs; state is pruned as the watermark passes.
   * @throws InvalidArgumentError when `other` is not keyed or an input has no timestamps.
   */
  intervalJoin<U>(other: KeyedStream<U, K>): IntervalJoin<T, U, K> {
    return new IntervalJoin<T, U, K>({ env: this.env, left: this, right: other });
  }

  /**
   * An unbounded inner join with the keyed stream `other`: `a.keyBy(f).join(b.keyBy(g))
   * .apply((left, right) => out)` emits one result per left and right record with the same
   * key, whenever the second of the two arrives. Unbounded state: both sides' records are
   * kept forever. For a window join use `a.join(b).where(f).equalTo(g).window(...)`.
   * @throws InvalidArgumentError when `other` is not keyed.
   */
  join<U>(other: KeyedStream<U, K>): KeyedJoin<T, U, K> {
    return new KeyedJoin<T, U, K>(this, other, this.env);
  }
}

/** What map, flatMap and process compute per record to stamp their outputs: the input's assigner when it is a function of the record; none when carried (already set) or absent. */
const stampOf = <T>(ts: ((value: T) => number) | undefined): ((value: T) => number) | undefined =>
  ts === carriedTimestamp ? undefined : ts;

/** `inputs` whose edges carry timestamps exactly when the stream's timestamps are carried. */
const withTimestamps = (
  inputs: readonly InputSpec[],
  ts: ((value: never) => number) | undefined,
): InputSpec[] =>
  inputs.map(({ timestamps: _, ...i }) =>
    ts === carriedTimestamp ? { ...i, timestamps: carriedTimestamp } : i,
  );

const reduceFunction = <K, T>(fn: ReduceFunction<T>): KeyedProcessFunction<K, T, T> => {
  const descriptor = new ValueStateDescriptor<T>('reduce');
  let state: import('../state/types.js').ValueState<T>;
  return {
    open(ctx) {
      state = ctx.getState(descriptor);
    },
    processElement(value, _ctx, out) {
      const acc = state.value();
      const next = acc === undefined ? value : fn(acc, value);
      state.update(next);
      out.collect(next);
    },
  };
};

/** Field names of T whose values can be keys. */
export type KeyFields<T> = { [F in keyof T]: T[F] extends Key ? F : never }[keyof T] &
  (string | number);

const toKeySelector = <T>(selector: unknown): ((value: T) => Key) => {
  if (typeof selector === 'function') return selector as (value: T) => Key;
  if (typeof selector === 'string' || typeof selector === 'number') {
    const field = selector;
    return (value: T) => (value as Record<string | number, Key>)[field]!;
  }
  throw new InvalidArgumentError(
    `keyBy needs a key selector function or a field name, got ${describe(selector)}; a key must be a string, number, bigint, boolean, Date or a tuple of these`,
    'EDDY_UNHASHABLE_KEY',
  );
};

/**
 * @internal A per-subtask factory of a user function given as an object with `method`, or
 * as a factory already.
 */
export const functionFactory = <F extends object>(
  fn: F | (() => F),
  what: string,
  method = 'processElement',
  /** What the error says is needed. */
  needs = `a function object with ${method}`,
): (() => F) => {
  if (typeof fn === 'function') return fn as () => F;
  if (fn && typeof fn === 'object' && method in fn) {
    // Each subtask gets its own shallow copy (Flink gives each a deserialised copy), so
    // fields set in open() - state handles above all - are never shared between subtasks
    // that run in the same thread.
    return () => Object.assign(Object.create(Object.getPrototypeOf(fn)), fn) as F;
  }
  throw new InvalidArgumentError(
    `${what} needs ${needs}, or a factory returning one; got ${describe(fn)}`,
  );
};

const requireFunction = (fn: unknown, what: string) => {
  if (typeof fn !== 'function') {
    throw new InvalidArgumentError(`${what} needs a function, got ${describe(fn)}`);
  }
};

/** @internal A value's kind, for error messages: 'null', 'an array', or its typeof. */
export const describe = (v: unknown) =>
  v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v;
