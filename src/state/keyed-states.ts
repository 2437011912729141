/**
 * The heap backend's state objects. Each is bound to one {@link StateTable} and to the
 * backend's {@link KeyContext}, and reads the current key on every call, so one object serves
 * every key (the runtime switches keys with plain field writes).
 *
 * Hot path: `value()`/`update()`/`add()` are one or two Map operations on the current key group's
 * map, with no allocation beyond the Map's own (plus the list or map a new key needs).
 *
 * Copy-on-write (see state-table.ts): every write goes through {@link writableEntry} (which saves
 * the key's value for an open snapshot view first) or {@link removeEntry}, and every in-place
 * mutation of a list or map entry through {@link ownList}/{@link ownMap}, so an open snapshot
 * view never sees a later write. With no view open each costs one extra compare.
 */
import { EddyError, InvalidArgumentError } from '../core/errors.js';
import type { StateDescriptor } from './descriptors.js';
import {
  adopt,
  isShared,
  type KeyContext,
  type KeyGroupMap,
  noteChange,
  ownList,
  ownMap,
  removeEntry,
  type StateTable,
  writableEntry,
} from './state-table.js';
import type {
  AggregateFunction,
  AggregatingState,
  ListState,
  MapState,
  NormalizedKey,
  ReducingState,
  ValueState,
} from './types.js';

const noCurrentKey = (name: string) =>
  new EddyError(
    'EDDY_STATE',
    `keyed state '${name}' was used with no current key: keyed state is only available while ` +
      'processing a record or timer of a keyed stream (not in open() or close())',
    { domain: 'user' },
  );

/** Shared plumbing: locating the current key's entry. */
abstract class HeapKeyedState {
  protected readonly table: StateTable;
  protected readonly ctx: KeyContext;

  constructor(table: StateTable, ctx: KeyContext) {
    this.table = table;
    this.ctx = ctx;
  }

  /** The current key; throws if the runtime has not set one. */
  protected key(): NormalizedKey {
    const key = this.ctx.key;
    if (key === undefined) throw noCurrentKey(this.table.name);
    return key;
  }

  /** The current key's live value, or undefined. */
  protected read(): unknown {
    const key = this.key();
    return this.table.groups[this.ctx.index]?.get(key);
  }

  /**
   * The current key group's map for writing the current key's entry: created on first write,
   * unshared from views, the change noted for incremental checkpoints (before it happens).
   * Hazard: only for writes to the current key's entry.
   */
  protected group(): KeyGroupMap {
    const { table, ctx } = this;
    const key = ctx.key!;
    noteChange(table, ctx.index, key);
    return writableEntry(table, ctx, ctx.index, key);
  }

  /** Stores `value` for `key`; undefined removes the entry (undefined is never stored). */
  protected store(map: KeyGroupMap, key: NormalizedKey, value: unknown): void {
    if (value === undefined) map.delete(key);
    else map.set(key, value);
  }

  /** Removes the current key's entry. */
  clear(): void {
    const key = this.key();
    removeEntry(this.table, this.ctx, this.ctx.index, key);
  }
}

/** {@link ValueState} on the heap. `update(undefined)` is the same as `clear()`. */
export class HeapValueState<T> extends HeapKeyedState implements ValueState<T> {
  private readonly defaultValue: T | undefined;

  constructor(table: StateTable, ctx: KeyContext, defaultValue: T | undefined) {
    super(table, ctx);
    this.defaultValue = defaultValue;
  }

  value(): T | undefined {
    const v = this.read();
    // The default is returned, never stored: snapshots hold only values the user wrote.
    return v === undefined ? this.defaultValue : (v as T);
  }

  update(value: T): void {
    const key = this.key();
    this.store(this.group(), key, value);
  }
}

/** {@link ListState} on the heap: stores a backend-owned array per key. */
export class HeapListState<T> extends HeapKeyedState implements ListState<T> {
  get(): T[] {
    const list = this.read() as T[] | undefined;
    return list === undefined ? [] : list.slice();
  }

  add(value: T): void {
    const key = this.key();
    const map = this.group();
    const list = map.get(key) as T[] | undefined;
    if (list === undefined) map.set(key, adopt(this.ctx, [value]));
    else ownList(this.ctx, map, key, list).push(value);
  }

  addAll(values: readonly T[]): void {
    const key = this.key();
    if (values.length === 0) return; // never create an empty entry
    const map = this.group();
    const list = map.get(key) as T[] | undefined;
    if (list === undefined) {
      map.set(key, adopt(this.ctx, values.slice())); // copy: the caller may keep mutating its array
      return;
    }
    const own = ownList(this.ctx, map, key, list);
    // A loop, not push(...values): spreading a very large array overflows the call stack.
    for (const v of values) own.push(v);
  }

  update(values: readonly T[]): void {
    const key = this.key();
    if (values.length === 0) removeEntry(this.table, this.ctx, this.ctx.index, key);
    else this.group().set(key, adopt(this.ctx, values.slice()));
  }
}

const EMPTY_MAP: ReadonlyMap<unknown, unknown> = new Map();

/**
 * {@link MapState} on the heap: stores a JS `Map` per key. User map keys are compared by
 * identity, so they should be primitives. `entries()`/`keys()`/`values()` iterate the current
 * key's map. Writing to the same key's map while iterating is allowed, but whether the iterator
 * sees those writes is unspecified: usually it does (JS `Map` semantics), but the first write
 * after a checkpoint's snapshot replaces the map with a copy and the iterator keeps the old one.
 */
export class HeapMapState<K, V> extends HeapKeyedState implements MapState<K, V> {
  private current(): Map<K, V> | undefined {
    return this.read() as Map<K, V> | undefined;
  }

  /** The current key's map, created if absent. Callers must add to it (no empty entries). */
  private currentForWrite(): Map<K, V> {
    const key = this.key();
    const group = this.group();
    const map = group.get(key) as Map<K, V> | undefined;
    if (map !== undefined) return ownMap(this.ctx, group, key, map);
    const created = adopt(this.ctx, new Map<K, V>());
    group.set(key, created);
    return created;
  }

  get(key: K): V | undefined {
    return this.current()?.get(key);
  }

  put(key: K, value: V): void {
    this.currentForWrite().set(key, value);
  }

  putAll(entries: Iterable<readonly [K, V]>): void {
    let map: Map<K, V> | undefined;
    for (const [k, v] of entries) {
      map ??= this.currentForWrite();
      map.set(k, v);
    }
    if (map === undefined) this.key(); // still reject a call with no current key
  }

  has(key: K): boolean {
    return this.current()?.has(key) ?? false;
  }

  delete(key: K): void {
    const stateKey = this.key();
    const { table, ctx } = this;
    const map = table.groups[ctx.index]?.get(stateKey) as Map<K, V> | undefined;
    if (map === undefined || !map.has(key)) return;
    if (map.size === 1) {
      removeEntry(table, ctx, ctx.index, stateKey); // no empty entries
      return;
    }
    // A view may hold this map: never mutate it, delete from a copy.
    if (isShared(ctx, map)) {
      ownMap(ctx, this.group(), stateKey, map).delete(key);
      return;
    }
    noteChange(table, ctx.index, stateKey);
    map.delete(key);
  }

  entries(): IterableIterator<[K, V]> {
    return (this.current() ?? (EMPTY_MAP as ReadonlyMap<K, V>)).entries();
  }

  keys(): IterableIterator<K> {
    return (this.current() ?? (EMPTY_MAP as ReadonlyMap<K, V>)).keys();
  }

  values(): IterableIterator<V> {
    return (this.current() ?? (EMPTY_MAP as ReadonlyMap<K, V>)).values();
  }

  isEmpty(): boolean {
    return this.current() === undefined;
  }
}

/** {@link ReducingState} on the heap: stores the reduced value per key. */
export class HeapReducingState<T> extends HeapKeyedState implements ReducingState<T> {
  private readonly reduce: (a: T, b: T) => T;

  constructor(table: StateTable, ctx: KeyContext, reduce: (a: T, b: T) => T) {
    super(table, ctx);
    this.reduce = reduce;
  }

  get(): T | undefined {
    return this.read() as T | undefined;
  }

  add(value: T): void {
    const key = this.key();
    const map = this.group();
    const current = map.get(key) as T | undefined;
    // If reduce throws, the stored value is unchanged.
    this.store(map, key, current === undefined ? value : this.reduce(current, value));
  }
}

/**
 * {@link AggregatingState} on the heap: stores the accumulator per key. An accumulator must not
 * be undefined (undefined means "no entry"); see AggregatingStateDescriptor on mutating it.
 */
export class HeapAggregatingState<IN, ACC, OUT>
  extends HeapKeyedState
  implements AggregatingState<IN, OUT>
{
  private readonly fn: AggregateFunction<IN, ACC, OUT>;

  constructor(table: StateTable, ctx: KeyContext, fn: AggregateFunction<IN, ACC, OUT>) {
    super(table, ctx);
    this.fn = fn;
  }

  get(): OUT | undefined {
    const acc = this.read() as ACC | undefined;
    return acc === undefined ? undefined : this.fn.getResult(acc);
  }

  add(value: IN): void {
    const key = this.key();
    const map = this.group();
    const acc = map.get(key) as ACC | undefined;
    const fn = this.fn;
    this.store(map, key, fn.add(value, acc === undefined ? fn.createAccumulator() : acc));
  }
}

/**
 * Creates the state object `d` asks for, over `table`. Returns `unknown`: the caller casts to
 * `StateFor<D>`, which TypeScript cannot relate to the concrete classes inside the switch.
 */
export const createKeyedState = (
  d: StateDescriptor,
  table: StateTable,
  ctx: KeyContext,
): unknown => {
  switch (d.kind) {
    case 'value':
      return new HeapValueState(table, ctx, d.defaultValue);
    case 'list':
      return new HeapListState(table, ctx);
    case 'map':
      return new HeapMapState(table, ctx);
    case 'reducing':
      return new HeapReducingState(table, ctx, d.reduce);
    case 'aggregating':
      return new HeapAggregatingState(table, ctx, d.fn);
    default:
      // Only reachable from untyped callers passing something that is not a descriptor.
      throw new InvalidArgumentError(
        `not a state descriptor: kind ${String((d as { kind?: unknown }).kind)}`,
      );
  }
};
