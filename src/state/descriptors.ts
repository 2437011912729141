/**
 * State descriptors: what a user function declares (usually in `open()`) to obtain keyed state.
 * A descriptor names the state and fixes its kind; the `kind` field is the discriminant the
 * backends and {@link StateFor} dispatch on.
 */
import { InvalidArgumentError } from '../core/errors.js';
import type {
  AggregateFunction,
  AggregatingState,
  ListState,
  MapState,
  ReducingState,
  StateKind,
  ValueState,
} from './types.js';

// Phantom member: keeps element types in the descriptor's structure so `StateFor` can infer
// them (a class that never mentions T is structurally identical for every T). Emits no code.
declare const phantom: unique symbol;

const describeValue = (v: unknown): string =>
  typeof v === 'string' ? JSON.stringify(v) : v === null ? 'null' : typeof v;

/** Throws unless `name` is a non-empty string; returns it. */
const checkName = (kind: StateKind, name: unknown): string => {
  if (typeof name !== 'string' || name.length === 0) {
    throw new InvalidArgumentError(
      `${kind} state name must be a non-empty string, got ${describeValue(name)}`,
    );
  }
  return name;
};

/** Options of a {@link ValueStateDescriptor}. */
export interface ValueStateOptions<T> {
  /**
   * Returned by `value()` while the current key has no value. It is returned by reference and
   * never stored, so it must not be mutated.
   */
  defaultValue?: T;
}

/** Declares a {@link ValueState}: one value per key. */
export class ValueStateDescriptor<T> {
  readonly kind = 'value';
  readonly name: string;
  readonly defaultValue: T | undefined;

  constructor(name: string, options: ValueStateOptions<T> = {}) {
    this.name = checkName(this.kind, name);
    this.defaultValue = options.defaultValue;
  }
}

/** Declares a {@link ListState}: a list of elements per key. */
export class ListStateDescriptor<T> {
  readonly kind = 'list';
  readonly name: string;
  declare readonly [phantom]?: T;

  constructor(name: string) {
    this.name = checkName(this.kind, name);
  }
}

/**
 * Declares a {@link MapState}: a map per key. User map keys are compared by identity (JS `Map`
 * semantics), so they should be primitives: two equal-looking objects are two different keys.
 */
export class MapStateDescriptor<K, V> {
  readonly kind = 'map';
  readonly name: string;
  declare readonly [phantom]?: [K, V];

  constructor(name: string) {
    this.name = checkName(this.kind, name);
  }
}

/** Declares a {@link ReducingState}: one value per key, folded with `reduce(current, added)`. */
export class ReducingStateDescriptor<T> {
  readonly kind = 'reducing';
  readonly name: string;
  readonly reduce: (a: T, b: T) => T;

  constructor(name: string, reduce: (a: T, b: T) => T) {
    this.name = checkName(this.kind, name);
    if (typeof reduce !== 'function') {
      throw new InvalidArgumentError(`reducing state '${name}' needs a reduce function`);
    }
    this.reduce = reduce;
  }
}

/**
 * Declares an {@link AggregatingState}: an accumulator per key, built with an
 * {@link AggregateFunction}.
 *
 * Hazard: snapshots hold accumulators by reference. An `add` that mutates the accumulator in
 * place changes an already-taken snapshot unless the snapshot is serialised before the next
 * call into user code; returning a fresh accumulator is always safe.
 */
export class AggregatingStateDescriptor<IN, ACC, OUT> {
  readonly kind = 'aggregating';
  readonly name: string;
  readonly fn: AggregateFunction<IN, ACC, OUT>;

  constructor(name: string, fn: AggregateFunction<IN, ACC, OUT>) {
    this.name = checkName(this.kind, name);
    const ok =
      typeof fn === 'object' &&
      fn !== null &&
      typeof fn.createAccumulator === 'function' &&
      typeof fn.add === 'function' &&
      typeof fn.getResult === 'function';
    if (!ok) {
      throw new InvalidArgumentError(
        `aggregating state '${name}' needs an AggregateFunction with createAccumulator, add and getResult`,
      );
    }
    this.fn = fn;
  }
}

/** Any keyed-state descriptor. */
export type StateDescriptor =
  // biome-ignore lint/suspicious/noExplicitAny: element types are irrelevant to membership
  | ValueStateDescriptor<any>
  // biome-ignore lint/suspicious/noExplicitAny: as above
  | ListStateDescriptor<any>
  // biome-ignore lint/suspicious/noExplicitAny: as above
  | MapStateDescriptor<any, any>
  // biome-ignore lint/suspicious/noExplicitAny: as above
  | ReducingStateDescriptor<any>
  // biome-ignore lint/suspicious/noExplicitAny: as above
  | AggregatingStateDescriptor<any, any, any>;

/** The state interface a descriptor yields, e.g. `StateFor<ListStateDescriptor<number>>` is `ListState<number>`. */
export type StateFor<D> =
  D extends ValueStateDescriptor<infer T>
    ? ValueState<T>
    : D extends ListStateDescriptor<infer T>
      ? ListState<T>
      : D extends MapStateDescriptor<infer K, infer V>
        ? MapState<K, V>
        : D extends ReducingStateDescriptor<infer T>
          ? ReducingState<T>
          : D extends AggregatingStateDescriptor<infer IN, infer _ACC, infer OUT>
            ? AggregatingState<IN, OUT>
            : never;
