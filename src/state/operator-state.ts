/**
 * Operator (non-keyed) state on the heap: per-subtask named lists whose elements the engine
 * redistributes independently on rescale (docs/DESIGN.md §3). Redistribution itself happens
 * elsewhere; this store only snapshots and restores one subtask's lists.
 */
import { EddyError, InvalidArgumentError } from '../core/errors.js';
import type {
  OperatorListState,
  OperatorStateSnapshot,
  OperatorStateStore,
  RedistributionMode,
} from './types.js';

const MODES: readonly RedistributionMode[] = ['split', 'union', 'broadcast'];

/** One named operator list. Elements are held by reference and treated as immutable. */
class HeapOperatorListState<T> implements OperatorListState<T> {
  readonly mode: RedistributionMode;
  /** Owned by the store, never a caller's array: update() and restore copy. */
  elements: T[] = [];

  constructor(mode: RedistributionMode) {
    this.mode = mode;
  }

  get(): T[] {
    return this.elements.slice();
  }

  add(value: T): void {
    this.elements.push(value);
  }

  addAll(values: readonly T[]): void {
    // A loop, not push(...values): spreading a very large array overflows the call stack.
    for (const v of values) this.elements.push(v);
  }

  update(values: readonly T[]): void {
    this.elements = values.slice();
  }

  clear(): void {
    this.elements = [];
  }
}

const modeConflict = (name: string, existing: RedistributionMode, wanted: RedistributionMode) =>
  new EddyError(
    'EDDY_STATE',
    `operator state '${name}' has redistribution mode '${existing}' and cannot be used with ` +
      `mode '${wanted}'; use one mode per name`,
    { domain: 'user' },
  );

/** Operator-state store of one subtask, on the heap. */
export class HeapOperatorStateStore implements OperatorStateStore {
  private readonly lists = new Map<string, HeapOperatorListState<unknown>>();
  private restored = false;

  /** A store holding the elements of `snapshot`, ready for the operator to ask for them. */
  static restore(snapshot: OperatorStateSnapshot): HeapOperatorStateStore {
    const store = new HeapOperatorStateStore();
    store.restore(snapshot);
    return store;
  }

  /** True once {@link restore} was called, even with an empty snapshot (Flink's `isRestored`). */
  get isRestored(): boolean {
    return this.restored;
  }

  /**
   * The list registered under `name`, created on first use (or by a restore).
   * @throws InvalidArgumentError for an empty name or unknown mode.
   * @throws EddyError `EDDY_STATE` if `name` already has another mode.
   */
  getListState<T>(name: string, mode: RedistributionMode = 'split'): OperatorListState<T> {
    if (typeof name !== 'string' || name.length === 0) {
      throw new InvalidArgumentError('operator state name must be a non-empty string');
    }
    if (!MODES.includes(mode)) {
      throw new InvalidArgumentError(
        `operator state '${name}': unknown redistribution mode '${String(mode)}' (expected ${MODES.join(', ')})`,
      );
    }
    return this.list(name, mode) as OperatorListState<T>;
  }

  /**
   * A copy of every list, sorted by name. Includes empty lists so their modes survive.
   * Elements are shared by reference (treated as immutable).
   */
  snapshot(): OperatorStateSnapshot {
    const names = [...this.lists.keys()].sort();
    return {
      states: names.map((name) => {
        const list = this.lists.get(name)!;
        return { name, mode: list.mode, elements: list.elements.slice() };
      }),
    };
  }

  /**
   * Appends the snapshot's elements to the named lists (creating them), so that several
   * snapshots, or one listing a name twice, merge. Call before the operator reads its state.
   * @throws EddyError `EDDY_STATE` if a name comes with two different modes.
   */
  restore(snapshot: OperatorStateSnapshot): void {
    for (const { name, mode, elements } of snapshot.states) {
      this.list(name, mode).addAll(elements);
    }
    this.restored = true;
  }

  private list(name: string, mode: RedistributionMode): HeapOperatorListState<unknown> {
    let list = this.lists.get(name);
    if (list === undefined) {
      list = new HeapOperatorListState(mode);
      this.lists.set(name, list);
    } else if (list.mode !== mode) {
      throw modeConflict(name, list.mode, mode);
    }
    return list;
  }
}
