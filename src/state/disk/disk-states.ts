/**
 * The disk backend's state objects: the heap's semantics (keyed-states.ts), reading and writing
 * through the backend's write-back overlay and store. Each reads the current key per call.
 *
 * Differences a user can observe, all within the contract: values come back decoded (a fresh
 * object per read unless the key's write is still in the overlay), and map state compares user
 * keys by value (their bytes), not identity, and iterates them in byte order.
 */
import { InvalidArgumentError } from '../../core/errors.js';
import type { StateDescriptor } from '../descriptors.js';
import type {
  AggregateFunction,
  AggregatingState,
  ListState,
  MapState,
  NormalizedKey,
  ReducingState,
  ValueState,
} from '../types.js';
import {
  exists,
  mapClear,
  mapEntries,
  mapGet,
  mapIsEmpty,
  mapPut,
  noteChange,
  readPlain,
  writePlain,
} from './access.js';
import type { DiskKeyedStateBackend } from './disk-keyed-backend.js';
import { DELETED, type DiskTable } from './table.js';

abstract class DiskState {
  constructor(
    protected readonly t: DiskTable,
    protected readonly b: DiskKeyedStateBackend,
  ) {}

  protected key(): NormalizedKey {
    return this.b.currentKeyOrThrow(this.t.name);
  }

  /** The current key's live value (plain layout), or undefined. */
  protected read(): unknown {
    return readPlain(this.b, this.t, this.key());
  }

  /** Notes the change and stores `value` (undefined: deletes). */
  protected store(key: NormalizedKey, value: unknown): void {
    writePlain(this.b, this.t, key, value);
  }

  /** Removes the current key's entry; a change only if it had one (as the heap's). */
  clear(): void {
    const key = this.key();
    if (!exists(this.b, this.t, key)) return;
    noteChange(this.b, this.t, key);
    writePlain(this.b, this.t, key, undefined);
  }
}

class DiskValueState<T> extends DiskState implements ValueState<T> {
  constructor(
    t: DiskTable,
    b: DiskKeyedStateBackend,
    private readonly defaultValue: T | undefined,
  ) {
    super(t, b);
  }

  value(): T | undefined {
    const v = this.read();
    return v === undefined ? this.defaultValue : (v as T);
  }

  update(value: T): void {
    const key = this.key();
    noteChange(this.b, this.t, key);
    this.store(key, value);
  }
}

class DiskListState<T> extends DiskState implements ListState<T> {
  get(): T[] {
    const list = this.read() as T[] | undefined;
    return list === undefined ? [] : list.slice();
  }

  /**
   * Cost: a list whose write is not in the overlay is read and decoded whole, and written
   * whole at the next flush (one store value per key): O(list length) per `add`.
   */
  add(value: T): void {
    const key = this.key();
    noteChange(this.b, this.t, key);
    const list = readPlain(this.b, this.t, key) as T[] | undefined;
    if (list === undefined) this.store(key, [value]);
    else {
      list.push(value); // the overlay's own array, or a freshly decoded one
      this.store(key, list);
    }
  }

  addAll(values: readonly T[]): void {
    const key = this.key();
    if (values.length === 0) return;
    noteChange(this.b, this.t, key);
    const list = readPlain(this.b, this.t, key) as T[] | undefined;
    if (list === undefined) {
      this.store(key, values.slice());
      return;
    }
    for (const v of values) list.push(v);
    this.store(key, list);
  }

  update(values: readonly T[]): void {
    if (values.length === 0) {
      this.clear();
      return;
    }
    const key = this.key();
    noteChange(this.b, this.t, key);
    this.store(key, values.slice());
  }
}

class DiskMapState<K, V> extends DiskState implements MapState<K, V> {
  get(key: K): V | undefined {
    return mapGet(this.b, this.t, this.key(), key).value as V | undefined;
  }

  put(key: K, value: V): void {
    const stateKey = this.key();
    noteChange(this.b, this.t, stateKey);
    mapPut(this.b, this.t, stateKey, key, value);
  }

  putAll(entries: Iterable<readonly [K, V]>): void {
    const stateKey = this.key();
    let noted = false;
    for (const [k, v] of entries) {
      if (!noted) noteChange(this.b, this.t, stateKey);
      noted = true;
      mapPut(this.b, this.t, stateKey, k, v);
    }
  }

  has(key: K): boolean {
    return mapGet(this.b, this.t, this.key(), key).found;
  }

  delete(key: K): void {
    const stateKey = this.key();
    if (!mapGet(this.b, this.t, stateKey, key).found) return;
    noteChange(this.b, this.t, stateKey);
    mapPut(this.b, this.t, stateKey, key, DELETED);
  }

  entries(): IterableIterator<[K, V]> {
    return (mapEntries(this.b, this.t, this.key()) as Array<[K, V]>)[Symbol.iterator]();
  }

  keys(): IterableIterator<K> {
    return mapEntries(this.b, this.t, this.key())
      .map((e) => e[0] as K)
      [Symbol.iterator]();
  }

  values(): IterableIterator<V> {
    return mapEntries(this.b, this.t, this.key())
      .map((e) => e[1] as V)
      [Symbol.iterator]();
  }

  isEmpty(): boolean {
    return mapIsEmpty(this.b, this.t, this.key());
  }

  override clear(): void {
    const key = this.key();
    if (mapIsEmpty(this.b, this.t, key)) return;
    noteChange(this.b, this.t, key);
    mapClear(this.b, this.t, key);
  }
}

class DiskReducingState<T> extends DiskState implements ReducingState<T> {
  constructor(
    t: DiskTable,
    b: DiskKeyedStateBackend,
    private readonly reduce: (a: T, b: T) => T,
  ) {
    super(t, b);
  }

  get(): T | undefined {
    return this.read() as T | undefined;
  }

  add(value: T): void {
    const key = this.key();
    noteChange(this.b, this.t, key);
    const current = readPlain(this.b, this.t, key) as T | undefined;
    // If reduce throws, the stored value is unchanged.
    this.store(key, current === undefined ? value : this.reduce(current, value));
  }
}

class DiskAggregatingState<IN, ACC, OUT> extends DiskState implements AggregatingState<IN, OUT> {
  constructor(
    t: DiskTable,
    b: DiskKeyedStateBackend,
    private readonly fn: AggregateFunction<IN, ACC, OUT>,
  ) {
    super(t, b);
  }

  get(): OUT | undefined {
    const acc = this.read() as ACC | undefined;
    return acc === undefined ? undefined : this.fn.getResult(acc);
  }

  add(value: IN): void {
    const key = this.key();
    noteChange(this.b, this.t, key);
    const acc = readPlain(this.b, this.t, key) as ACC | undefined;
    const fn = this.fn;
    this.store(key, fn.add(value, acc === undefined ? fn.createAccumulator() : acc));
  }
}

/** Creates the state object `d` asks for over table `t` (the caller casts to `StateFor<D>`). */
export const createDiskState = (
  d: StateDescriptor,
  t: DiskTable,
  b: DiskKeyedStateBackend,
): unknown => {
  switch (d.kind) {
    case 'value':
      return new DiskValueState(t, b, d.defaultValue);
    case 'list':
      return new DiskListState(t, b);
    case 'map':
      return new DiskMapState(t, b);
    case 'reducing':
      return new DiskReducingState(t, b, d.reduce);
    case 'aggregating':
      return new DiskAggregatingState(t, b, d.fn);
    default:
      throw new InvalidArgumentError(
        `not a state descriptor: kind ${String((d as { kind?: unknown }).kind)}`,
      );
  }
};
