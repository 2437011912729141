/**
 * Two-input streams: `connect` (non-keyed and keyed) and the broadcast state pattern. Each
 * builds one operator node with two sets of input edges; the second input's edges are marked
 * `input: 2`, so the subtask hands their records to the operator's `processRecord2`.
 *
 * Event time: each input keeps its own timestamps (an assigner, carried, or none); the
 * operator's outputs carry the timestamp of the record that produced them, so the resulting
 * stream has carried timestamps when either input has any. The operator's watermark is the
 * minimum over both inputs' channels, idle ones (and sources without event time) left out.
 */
import { InvalidArgumentError } from '../core/errors.js';
import type { Key } from '../keygroups/index.js';
import type { Collector } from '../runtime/functions.js';
import type { StreamOperator } from '../runtime/operator.js';
import {
  BroadcastProcessOperator,
  CoProcessOperator,
  KeyedBroadcastProcessOperator,
  KeyedCoProcessOperator,
  NO_TIMESTAMP,
} from '../runtime/operators/two-input.js';
import { carriedTimestamp } from '../runtime/record-time.js';
import type {
  BroadcastProcessFunction,
  CoProcessFunction,
  KeyedBroadcastProcessFunction,
  KeyedCoProcessFunction,
} from '../runtime/two-input-functions.js';
import type { MapStateDescriptor } from '../state/descriptors.js';
import { DataStream, functionFactory, type KeyedStream } from './datastream.js';
import type { InputSpec, OperatorOptions, StreamExecutionEnvironment } from './environment.js';

type Timestamps<T> = ((value: T) => number) | undefined;

/** One side of a two-input operator: its upstream edges and its records' event time. */
interface Side<T> {
  readonly inputs: readonly InputSpec[];
  readonly timestampOf: Timestamps<T>;
}

/**
 * What the operator computes per record of one side: its assigner; nothing when carried (the
 * subtask sets it from the batch); "none" (NaN) when this side has no event time but the other
 * has, so a record never inherits the previous record's timestamp.
 */
const operatorStamp = <T>(own: Timestamps<T>, other: unknown): Timestamps<T> => {
  if (own === carriedTimestamp) return undefined;
  if (own !== undefined) return own;
  return other === undefined ? undefined : NO_TIMESTAMP;
};

/** The same for a keyed operator, which reads carried timestamps itself (ctx.timestamp()). */
const keyedStamp = <T>(own: Timestamps<T>, other: unknown): Timestamps<T> =>
  own ?? (other === undefined ? undefined : NO_TIMESTAMP);

/**
 * Edges of `side` as input `input`. Each keeps the timestamps its stream set on it (carried
 * after map or process; each input's own assigner after a union of streams with different
 * ones), as a one-input operator's edges do.
 */
const edgesOf = <T>(side: Side<T>, input: 1 | 2, hashBy?: (r: unknown) => Key): InputSpec[] =>
  side.inputs.map(({ input: _, ...i }) => ({
    ...i,
    ...(hashBy === undefined
      ? {}
      : { partitioning: { kind: 'hash', keySelector: hashBy } as const }),
    ...(input === 2 ? { input: 2 as const } : {}),
  }));

interface TwoInputSpec {
  readonly env: StreamExecutionEnvironment;
  readonly first: Side<unknown>;
  readonly second: Side<unknown>;
  readonly name: string;
  readonly options: OperatorOptions;
  readonly create: (name: string) => StreamOperator;
  /** Keyed: both sides hashed by their selector; the node gets a keyed backend. */
  readonly keys?: readonly [(r: unknown) => Key, (r: unknown) => Key];
  readonly stateful: boolean;
}

const addTwoInput = <O>(spec: TwoInputSpec): DataStream<O> => {
  const { env, first, second, keys, options } = spec;
  const inputs = [...edgesOf(first, 1, keys?.[0]), ...edgesOf(second, 2, keys?.[1])];
  const displayName = options.name ?? spec.name;
  const id = env.addOperator(
    inputs,
    spec.name,
    options,
    () => spec.create(displayName),
    keys?.[0],
    spec.stateful,
  );
  const out = new DataStream<O>(env, [{ node: id, partitioning: undefined }]);
  return out.carrying(first.timestampOf ?? second.timestampOf);
};

/** Whether a user function object (not a factory) declares operator state hooks. */
const declaresState = (fn: object): boolean =>
  typeof fn === 'function' ||
  typeof (fn as { initializeState?: unknown }).initializeState === 'function' ||
  typeof (fn as { snapshotState?: unknown }).snapshotState === 'function';

/** Two non-keyed streams connected: `a.connect(b)`. Types flow through each side. */
export class ConnectedStreams<T1, T2> {
  /** @internal */
  constructor(
    private readonly env: StreamExecutionEnvironment,
    private readonly first: DataStream<T1>,
    private readonly second: DataStream<T2>,
  ) {}

  /** A function with one method per input; may keep operator list state. */
  process<O>(
    fn: CoProcessFunction<T1, T2, O> | (() => CoProcessFunction<T1, T2, O>),
    options: OperatorOptions = {},
  ): DataStream<O> {
    const make = functionFactory(fn, 'connect(...).process', 'processElement1');
    const [t1, t2] = [this.first.timestampOf, this.second.timestampOf];
    return addTwoInput<O>({
      env: this.env,
      first: this.first as Side<unknown>,
      second: this.second as Side<unknown>,
      name: 'co-process',
      options,
      create: () =>
        new CoProcessOperator(make(), operatorStamp(t1, t2), operatorStamp(t2, t1)) as never,
      stateful: declaresState(fn),
    });
  }

  /** One output per record of either input: `f1` for the first, `f2` for the second. */
  map<O>(f1: (value: T1) => O, f2: (value: T2) => O, options: OperatorOptions = {}): DataStream<O> {
    requireFunctions('connect(...).map', f1, f2);
    return this.process<O>(
      {
        processElement1: (v, _ctx, out) => out.collect(f1(v)),
        processElement2: (v, _ctx, out) => out.collect(f2(v)),
      },
      { name: 'co-map', ...options },
    );
  }

  /** Zero or more outputs per record of either input. */
  flatMap<O>(
    f1: (value: T1, out: Collector<O>) => void,
    f2: (value: T2, out: Collector<O>) => void,
    options: OperatorOptions = {},
  ): DataStream<O> {
    requireFunctions('connect(...).flatMap', f1, f2);
    return this.process<O>(
      {
        processElement1: (v, _ctx, out) => f1(v, out),
        processElement2: (v, _ctx, out) => f2(v, out),
      },
      { name: 'co-flat-map', ...options },
    );
  }

  /** Keys both inputs (same key type), as `a.keyBy(s1).connect(b.keyBy(s2))`. */
  keyBy<K extends Key>(
    s1: (value: T1) => K,
    s2: (value: T2) => K,
  ): KeyedConnectedStreams<T1, T2, K> {
    return this.first.keyBy(s1).connect(this.second.keyBy(s2));
  }
}

/** Two keyed streams connected on the same key type: `a.keyBy(f).connect(b.keyBy(g))`. */
export class KeyedConnectedStreams<T1, T2, K extends Key> {
  /** @internal */
  constructor(
    private readonly env: StreamExecutionEnvironment,
    private readonly first: KeyedStream<T1, K>,
    private readonly second: KeyedStream<T2, K>,
  ) {}

  /**
   * A function with one method per input, sharing one keyed state and timers per key.
   * Pass a factory to get a fresh instance per subtask.
   */
  process<O>(
    fn: KeyedCoProcessFunction<K, T1, T2, O> | (() => KeyedCoProcessFunction<K, T1, T2, O>),
    options: OperatorOptions = {},
  ): DataStream<O> {
    const make = functionFactory(fn, 'connect(...).process', 'processElement1');
    const { first, second } = this;
    const [t1, t2] = [first.timestampOf, second.timestampOf];
    return addTwoInput<O>({
      env: this.env,
      first: first as Side<unknown>,
      second: second as Side<unknown>,
      name: 'keyed-co-process',
      options,
      create: (name) =>
        new KeyedCoProcessOperator(
          make(),
          name,
          first.keySelector,
          second.keySelector,
          keyedStamp(t1, t2),
          keyedStamp(t2, t1),
        ) as never,
      keys: [first.keySelector as (r: unknown) => Key, second.keySelector as (r: unknown) => Key],
      stateful: true,
    });
  }
}

/**
 * A stream sent whole to every subtask of the operator it is connected to, with the broadcast
 * states (map state descriptors) that operator keeps: `rules.broadcast(descriptor)`.
 */
export class BroadcastStream<T> {
  /** @internal */
  constructor(
    /** @internal */
    readonly inputs: readonly InputSpec[],
    /** @internal */
    readonly timestampOf: Timestamps<T>,
    /** The broadcast states this stream's records are kept in. */
    readonly descriptors: readonly MapStateDescriptor<unknown, unknown>[],
  ) {}
}

/** A non-keyed stream connected to a broadcast stream: `events.connect(rules.broadcast(d))`. */
export class BroadcastConnectedStream<T1, T2> {
  /** @internal */
  constructor(
    private readonly env: StreamExecutionEnvironment,
    private readonly first: DataStream<T1>,
    private readonly broadcast: BroadcastStream<T2>,
  ) {}

  /** Events through `processElement` (broadcast state read-only), rules through `processBroadcastElement`. */
  process<O>(
    fn: BroadcastProcessFunction<T1, T2, O> | (() => BroadcastProcessFunction<T1, T2, O>),
    options: OperatorOptions = {},
  ): DataStream<O> {
    const make = functionFactory(fn, 'connect(broadcast).process', 'processBroadcastElement');
    const { first, broadcast } = this;
    const [t1, t2] = [first.timestampOf, broadcast.timestampOf];
    return addTwoInput<O>({
      env: this.env,
      first: first as Side<unknown>,
      second: broadcast as Side<unknown>,
      name: 'broadcast-process',
      options,
      create: () =>
        new BroadcastProcessOperator(
          make(),
          broadcast.descriptors,
          operatorStamp(t1, t2),
          operatorStamp(t2, t1),
        ) as never,
      stateful: true,
    });
  }
}

/** A keyed stream connected to a broadcast stream: `events.keyBy(f).connect(rules.broadcast(d))`. */
export class KeyedBroadcastConnectedStream<T1, T2, K extends Key> {
  /** @internal */
  constructor(
    private readonly env: StreamExecutionEnvironment,
    private readonly first: KeyedStream<T1, K>,
    private readonly broadcast: BroadcastStream<T2>,
  ) {}

  /**
   * Events through `processElement` with their key's state and timers (broadcast state
   * read-only), rules through `processBroadcastElement` (broadcast state writable,
   * `applyToKeyedState`).
   */
  process<O>(
    fn:
      | KeyedBroadcastProcessFunction<K, T1, T2, O>
      | (() => KeyedBroadcastProcessFunction<K, T1, T2, O>),
    options: OperatorOptions = {},
  ): DataStream<O> {
    const make = functionFactory(fn, 'connect(broadcast).process', 'processBroadcastElement');
    const { first, broadcast } = this;
    const [t1, t2] = [first.timestampOf, broadcast.timestampOf];
    const selector = first.keySelector as (r: unknown) => Key;
    return addTwoInput<O>({
      env: this.env,
      first: first as Side<unknown>,
      second: broadcast as Side<unknown>,
      name: 'keyed-broadcast-process',
      options,
      create: () =>
        new KeyedBroadcastProcessOperator(
          make(),
          broadcast.descriptors,
          first.keySelector,
          keyedStamp(t1, t2),
          operatorStamp(t2, t1),
        ) as never,
      // Only the first input is hashed: the broadcast edge keeps its partitioning.
      keys: [selector, undefined as never],
      stateful: true,
    });
  }
}

const requireFunctions = (what: string, ...fns: unknown[]) => {
  fns.forEach((f, i) => {
    if (typeof f !== 'function') {
      throw new InvalidArgumentError(
        `${what} needs a function for input ${i + 1}, got ${f === null ? 'null' : typeof f}`,
      );
    }
  });
};
