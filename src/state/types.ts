/**
 * The state contract shared by the runtime, user functions and every backend.
 * Keyed state is scoped to the *current key*, which the runtime sets before each call
 * into user code; operator state is per subtask and redistributed as list elements.
 */

import type { NormalizedKey } from '../keygroups/normalize.js';

/** A key after normalisation (see keygroups/normalizeKey): usable as a Map key by value. */
export type { NormalizedKey };

/** Keyed state holding one value per key. */
export interface ValueState<T> {
  /** The value for the current key, or the descriptor's default (undefined if none). */
  value(): T | undefined;
  update(value: T): void;
  clear(): void;
}

/** Keyed state holding a list per key. */
export interface ListState<T> {
  /** The elements for the current key (a fresh array; empty if none). */
  get(): T[];
  add(value: T): void;
  addAll(values: readonly T[]): void;
  update(values: readonly T[]): void;
  clear(): void;
}

/** Keyed state holding a map per key. */
export interface MapState<K, V> {
  get(key: K): V | undefined;
  put(key: K, value: V): void;
  putAll(entries: Iterable<readonly [K, V]>): void;
  has(key: K): boolean;
  delete(key: K): void;
  entries(): IterableIterator<[K, V]>;
  keys(): IterableIterator<K>;
  values(): IterableIterator<V>;
  isEmpty(): boolean;
  clear(): void;
}

/** Keyed state folding added values with a reduce function. */
export interface ReducingState<T> {
  get(): T | undefined;
  /** Folds `value` into the current aggregate with the descriptor's reduce function. */
  add(value: T): void;
  clear(): void;
}

/** Keyed state folding added values into an accumulator; `get` returns the result. */
export interface AggregatingState<IN, OUT> {
  get(): OUT | undefined;
  add(value: IN): void;
  clear(): void;
}

/** Incremental aggregation through an accumulator (aggregating state, window `aggregate`). */
export interface AggregateFunction<IN, ACC, OUT> {
  createAccumulator(): ACC;
  add(value: IN, accumulator: ACC): ACC;
  getResult(accumulator: ACC): OUT;
  /** Needed by merging windows; optional elsewhere. */
  merge?(a: ACC, b: ACC): ACC;
}

/** Operator (non-keyed) list state redistribution on restore at another parallelism. */
export type RedistributionMode = 'split' | 'union' | 'broadcast';

/** Per-subtask list state whose elements the engine may redistribute independently. */
export interface OperatorListState<T> extends ListState<T> {
  readonly mode: RedistributionMode;
}

/** A subtask's operator (non-keyed) list state, by name. */
export interface OperatorStateStore {
  /**
   * Returns the list state registered under `name`, creating it on first use. The same
   * name must always be used with the same mode.
   */
  getListState<T>(name: string, mode?: RedistributionMode): OperatorListState<T>;
}

/** Snapshot of one subtask's operator state: each element individually addressable. */
export interface OperatorStateSnapshot {
  readonly states: ReadonlyArray<{
    readonly name: string;
    readonly mode: RedistributionMode;
    readonly elements: readonly unknown[];
  }>;
}

/** The kind of a keyed state, as named by its descriptor. */
export type StateKind = 'value' | 'list' | 'map' | 'reducing' | 'aggregating';

/** Snapshot of one key group: for each named state, its (normalised key, value) entries. */
export interface KeyGroupSnapshot {
  readonly keyGroup: number;
  readonly states: ReadonlyArray<{
    readonly name: string;
    /**
     * The state's kind when the snapshot was taken (absent in snapshots that do not record it).
     * Lets a restore detect a state re-registered under the same name with another kind.
     */
    readonly kind?: StateKind;
    readonly entries: ReadonlyArray<readonly [NormalizedKey, unknown]>;
  }>;
}

/** One block of a key group's chain: entries written and, per state, keys deleted. */
export interface KeyGroupChanges {
  readonly keyGroup: number;
  readonly states: ReadonlyArray<
    KeyGroupSnapshot['states'][number] & { readonly deleted?: readonly NormalizedKey[] }
  >;
}

/**
 * A restored key group not decoded yet (lazy restore): the backend calls {@link load} on the
 * first access to the key group and never before, so a restore only has to read and verify
 * the bytes. `encoded` is the block the snapshot was decoded from, if the producer can hand it
 * out: a checkpoint taken before the key group was touched writes those bytes unchanged.
 */
export interface LazyKeyGroup {
  readonly keyGroup: number;
  /** Decodes the key group; pure (may be called more than once, e.g. by a snapshot view). */
  load(): KeyGroupSnapshot;
  /**
   * The key group as the blocks of its chain (incremental checkpoints), decoded, oldest
   * first: a backend applies them one after the other (deleting each block's deleted keys,
   * then setting its entries), which is cheaper than {@link load}'s merged snapshot followed
   * by a restore. Absent for a key group of one block.
   */
  loadChain?(): readonly KeyGroupChanges[];
  readonly encoded?: Uint8Array;
}

/**
 * A consistent snapshot of a keyed backend's whole key-group range, taken at one instant and
 * read later, key group by key group (a checkpoint's asynchronous part), while the job keeps
 * writing state. Release it once written: until then the backend copies what it shares with it.
 */
export interface KeyedStateSnapshotView {
  /** The key groups that held state when the view was taken, ascending. */
  readonly keyGroups: readonly number[];
  /**
   * The key group's state as it was when the view was taken; a fresh object on every call,
   * deterministic (states sorted by name, entries in insertion order). `states` is empty for a
   * key group of the range that had no state.
   * @throws EddyError `EDDY_STATE` (internal) after release, or outside the backend's range.
   */
  read(keyGroup: number): KeyGroupSnapshot;
  /**
   * The key group's block exactly as restored, if it was restored lazily and not touched
   * before the view was taken (a checkpoint writes it as is); otherwise undefined.
   */
  encoded?(keyGroup: number): Uint8Array | undefined;
  /** Ends the view; idempotent. Reads throw afterwards. */
  release(): void;
}

/**
 * One state of a key group given as a list of keys whose values are looked up as they are
 * written, then a tail of entries: how a delta view hands out a key group it captured whole,
 * without building a [key, value] array per entry or copying the key group's map.
 */
export interface KeyListState {
  readonly name: string;
  /** The kind to record (as a snapshot's `kind`). */
  readonly kind: StateKind | undefined;
  /** True for map state: a value that is a `Map` is written as its snapshot form. */
  readonly mapValues: boolean;
  /** The number of entries written: the keys whose value is defined, plus the tail. */
  readonly count: number;
  readonly keys: readonly NormalizedKey[];
  /** The value to write for `key` when it is written; undefined: skip the key. */
  readonly valueAt: (key: NormalizedKey) => unknown;
  readonly tail: ReadonlyArray<readonly [NormalizedKey, unknown]>;
}

/**
 * Broadcast state, read-only: what `processElement` of a broadcast process function sees.
 * Every subtask holds the same copy (written only from the broadcast input).
 */
export interface ReadOnlyBroadcastState<K, V> {
  get(key: K): V | undefined;
  has(key: K): boolean;
  entries(): IterableIterator<[K, V]>;
  keys(): IterableIterator<K>;
  values(): IterableIterator<V>;
  isEmpty(): boolean;
  readonly size: number;
}

/**
 * Broadcast state: a map every subtask holds one copy of, written from the broadcast input
 * (`processBroadcastElement`) with the same updates in every subtask, so the copies stay equal.
 */
export interface BroadcastState<K, V> extends ReadOnlyBroadcastState<K, V> {
  put(key: K, value: V): void;
  putAll(entries: Iterable<readonly [K, V]>): void;
  delete(key: K): void;
  clear(): void;
}
