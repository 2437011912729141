/**
 * Broadcast state on the heap (Flink's broadcast state pattern): one map per descriptor name,
 * the same in every subtask because only the broadcast input writes it and every subtask sees
 * every broadcast record. It is checkpointed as operator list state in `broadcast` mode (one
 * `[key, value]` element per entry), so a restore at any parallelism gives each new subtask
 * one old subtask's copy (docs/ARCHITECTURE.md "Two-input operators").
 */
import { EddyError, InvalidArgumentError } from '../core/errors.js';
import { type Key, normalizeKey } from '../keygroups/index.js';
import type { NormalizedKey } from '../keygroups/normalize.js';
import type { MapStateDescriptor } from './descriptors.js';
import type { BroadcastState, OperatorStateStore, ReadOnlyBroadcastState } from './types.js';

/** Operator list state holding broadcast state `name`. */
export const broadcastStateListName = (name: string): string => `broadcast-state:${name}`;

class HeapBroadcastState<K extends Key, V> implements BroadcastState<K, V> {
  /** By normalized key (tuples and Dates compare by value), holding the key as given. */
  readonly map = new Map<NormalizedKey, [K, V]>();

  get size(): number {
    return this.map.size;
  }

  get(key: K): V | undefined {
    return this.map.get(normalizeKey(key))?.[1];
  }

  has(key: K): boolean {
    return this.map.has(normalizeKey(key));
  }

  *entries(): IterableIterator<[K, V]> {
    for (const [k, v] of this.map.values()) yield [k, v];
  }

  *keys(): IterableIterator<K> {
    for (const e of this.map.values()) yield e[0];
  }

  *values(): IterableIterator<V> {
    for (const e of this.map.values()) yield e[1];
  }

  isEmpty(): boolean {
    return this.map.size === 0;
  }

  put(key: K, value: V): void {
    this.map.set(normalizeKey(key), [key, value]);
  }

  putAll(entries: Iterable<readonly [K, V]>): void {
    for (const [k, v] of entries) this.put(k, v);
  }

  delete(key: K): void {
    this.map.delete(normalizeKey(key));
  }

  clear(): void {
    this.map.clear();
  }
}

/**
 * The broadcast states of one operator subtask: declared by the broadcast stream's
 * descriptors, restored from and snapshotted to its operator state store.
 */
export class BroadcastStates {
  private readonly states = new Map<string, HeapBroadcastState<Key, unknown>>();
  private readonly readOnly = new Map<string, ReadOnlyBroadcastState<Key, unknown>>();

  constructor(
    descriptors: readonly MapStateDescriptor<unknown, unknown>[],
    private readonly store: OperatorStateStore,
    /** Names the operator in errors. */
    private readonly operator: string,
  ) {
    for (const d of descriptors) {
      const state = new HeapBroadcastState<Key, unknown>();
      const list = store.getListState<[Key, unknown]>(broadcastStateListName(d.name), 'broadcast');
      for (const [k, v] of list.get()) state.put(k, v);
      this.states.set(d.name, state);
      this.readOnly.set(d.name, readOnlyView(state, operator, d.name));
    }
  }

  /**
   * The state of `descriptor`, writable.
   * @throws InvalidArgumentError if the broadcast stream did not declare it.
   */
  get<K extends Key, V>(descriptor: MapStateDescriptor<K, V>): BroadcastState<K, V> {
    return this.find(this.states, descriptor) as unknown as BroadcastState<K, V>;
  }

  /** The state of `descriptor`, whose writes throw (for `processElement`). */
  getReadOnly<K extends Key, V>(
    descriptor: MapStateDescriptor<K, V>,
  ): ReadOnlyBroadcastState<K, V> {
    return this.find(this.readOnly, descriptor) as unknown as ReadOnlyBroadcastState<K, V>;
  }

  /** Writes every state into its operator list (before a checkpoint). */
  snapshot(): void {
    for (const [name, state] of this.states) {
      const list = this.store.getListState<[Key, unknown]>(
        broadcastStateListName(name),
        'broadcast',
      );
      list.update([...state.map.values()]);
    }
  }

  private find<S>(from: Map<string, S>, descriptor: MapStateDescriptor<unknown, unknown>): S {
    const state = from.get(descriptor?.name);
    if (state === undefined) {
      throw new InvalidArgumentError(
        `operator '${this.operator}': broadcast state '${String(descriptor?.name)}' was not declared; pass its MapStateDescriptor to broadcast(...) (declared: ${[...this.states.keys()].map((n) => `'${n}'`).join(', ') || 'none'})`,
      );
    }
    return state;
  }
}

const readOnlyView = <K extends Key, V>(
  state: HeapBroadcastState<K, V>,
  operator: string,
  name: string,
): ReadOnlyBroadcastState<K, V> => {
  const refuse = (what: string) => () => {
    throw new EddyError(
      'EDDY_STATE',
      `operator '${operator}': broadcast state '${name}' is read-only in processElement (${what} called); only processBroadcastElement may write it, so every subtask keeps the same copy`,
      { domain: 'user' },
    );
  };
  return Object.freeze({
    get: (key: K) => state.get(key),
    has: (key: K) => state.has(key),
    entries: () => state.entries(),
    keys: () => state.keys(),
    values: () => state.values(),
    isEmpty: () => state.isEmpty(),
    get size() {
      return state.size;
    },
    put: refuse('put'),
    putAll: refuse('putAll'),
    delete: refuse('delete'),
    clear: refuse('clear'),
  }) as ReadOnlyBroadcastState<K, V>;
};
