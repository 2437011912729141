/**
 * One named state of the disk backend: its id in the store's keys, its kind, its share of the
 * write-back overlay and its tracked changes.
 */
import type { NormalizedKey, StateKind } from '../types.js';

/** An overlay value meaning "deleted" (undefined is never stored). */
export const DELETED: unique symbol = Symbol('eddy.disk.deleted');

/**
 * The pending writes of one map-state entry: `cleared` drops what the store holds for it
 * first; `puts` by encoded user key (latin1 of its key bytes: JS string order is byte order),
 * the user key and its value or {@link DELETED}.
 */
export interface MapPending {
  cleared: boolean;
  readonly puts: Map<string, { readonly k: unknown; readonly v: unknown }>;
}

/**
 * Store layout of a state: `map` for registered map state (one store entry per user key),
 * `plain` for everything else (one store entry per key: the live value, a list's array, or a
 * restored-but-unregistered state's snapshot value).
 */
export type Layout = 'plain' | 'map';

export interface DiskTable {
  readonly name: string;
  /** The state's id in store keys (u16), per backend instance. */
  readonly id: number;
  /** Registered kind; undefined while restored but unregistered (values in snapshot form). */
  kind: StateKind | undefined;
  restoredKind: StateKind | undefined;
  /**
   * The write-back overlay, per key-group slot: key → live value, {@link DELETED}, or (map
   * layout) a {@link MapPending}. Flushed to the store in one batch.
   */
  overlay: Array<Map<NormalizedKey, unknown> | undefined>;
  /**
   * Per slot, the overlay's keys whose first write did not follow a read of them (plain
   * layout): whether the store had them is not known, so a flush or a freeze reads them.
   */
  unknown: Array<Set<NormalizedKey> | undefined>;
  /**
   * Per slot, the change of the entry count made by the overlay's other keys, those read just
   * before their first write (the usual read-modify-write): for each, whether its pending value
   * is an entry minus whether the store had it; kept at every write, so neither a flush nor a
   * freeze looks them up, and no per-key record is held.
   */
  readonly knownDelta: Float64Array;
  /** Per slot, the state's entries (keys) in the store; exact (see the backend's counts). */
  readonly counts: Float64Array;
  /** Keys written since the last delta view, per slot; undefined when not tracking. */
  changed: Array<Set<NormalizedKey> | undefined> | undefined;
}

export const layoutOf = (t: { readonly kind: StateKind | undefined }): Layout =>
  t.kind === 'map' ? 'map' : 'plain';

/** What a view keeps of a table: the store's layout of it at the view and its kind to record. */
export interface TableImage {
  readonly name: string;
  readonly id: number;
  readonly kind: StateKind | undefined;
  readonly layout: Layout;
}

export const imageOf = (t: DiskTable): TableImage => ({
  name: t.name,
  id: t.id,
  kind: t.kind ?? t.restoredKind,
  layout: layoutOf(t),
});

/** Per key-group slot of `size`, no changed keys. */
export const noChanges = (size: number): Array<Set<NormalizedKey> | undefined> =>
  new Array<Set<NormalizedKey> | undefined>(size).fill(undefined);

/** A new table with `size` key-group slots, nothing in its overlay, counts or changes. */
export const newTable = (
  name: string,
  id: number,
  kind: StateKind | undefined,
  restoredKind: StateKind | undefined,
  size: number,
  trackChanges: boolean,
): DiskTable => ({
  name,
  id,
  kind,
  restoredKind,
  overlay: new Array<Map<NormalizedKey, unknown> | undefined>(size).fill(undefined),
  unknown: new Array<Set<NormalizedKey> | undefined>(size).fill(undefined),
  knownDelta: new Float64Array(size),
  counts: new Float64Array(size),
  changed: trackChanges ? noChanges(size) : undefined,
});

/**
 * Gives a delta view's captured changed keys back to `tables` (a view released without
 * `complete()`): merged into the keys changed since.
 */
export const giveBack = (
  tables: readonly DiskTable[],
  captured: ReadonlyMap<number, Array<Set<NormalizedKey> | undefined>>,
): void => {
  for (const t of tables) {
    const changed = t.changed;
    const keys = captured.get(t.id);
    if (changed === undefined || keys === undefined) continue;
    keys.forEach((set, index) => {
      if (set === undefined || set.size === 0) return;
      const now = changed[index];
      if (now === undefined) changed[index] = set;
      else for (const k of set) now.add(k);
    });
  }
};
