/**
 * The heap backend's storage layout and the conversions between live values and snapshot
 * values. Kept apart from the backend so the state primitives and the backend share one
 * definition of "what is stored where".
 */
import { EddyError } from '../core/errors.js';
import type { NormalizedKey, StateKind } from './types.js';

/**
 * An inclusive range of key groups. Structurally the same as the keygroups layer's range; declared
 * here so the state layer does not depend on it.
 */
export interface KeyGroupRange {
  readonly start: number;
  readonly end: number;
}

/**
 * The key the runtime set before calling into user code, shared by a backend and every state
 * object it handed out: the state objects read it on each call instead of being re-bound.
 * Also carries the backend's copy-on-write clock (see {@link writableGroup}), which the state
 * objects consult on every write.
 */
export interface KeyContext {
  /** Undefined until the runtime sets a key (and again after dispose). */
  key: NormalizedKey | undefined;
  /** `keyGroup - range.start`: the slot in every table's `groups`. */
  index: number;
  /**
   * The current epoch: the number of snapshot views taken so far. A key-group map created or
   * copied now is stamped with it; snapshot view `e` (taken when the epoch became `e`) holds
   * exactly the maps stamped below `e` that were live when it was taken.
   */
  epoch: number;
  /** Epoch of the newest open snapshot view; 0 when none is open (then nothing is copied). */
  newestOpen: number;
  /**
   * Copy-on-write work because a view shared state (diagnostics; see `cowCopies`): per view, a
   * key group counts once (its first saved key, or its copy), a list or map once per copy.
   */
  copies: number;
}

/** Keys of one key group: a slot of {@link StateTable.changed}. */
export type ChangedKeys = Set<NormalizedKey>;

/** Per-key maps of one key group; created lazily, kept (possibly empty) once created. */
export type KeyGroupMap = Map<NormalizedKey, unknown>;

/**
 * All entries of one named state, organised by key group so that snapshot and restore work
 * per key-group range. Live values per kind: value/reducing/aggregating → the user value or
 * accumulator; list → a backend-owned array; map → a backend-owned `Map`.
 *
 * Invariant: no entry holds an empty list or map (clearing removes the entry), so snapshots
 * never contain empty entries.
 */
export interface StateTable {
  readonly name: string;
  /**
   * The registered kind, or undefined while the state was restored but not yet registered: its
   * values are then still in snapshot form and converted when a descriptor registers it.
   */
  kind: StateKind | undefined;
  /** The kind recorded in the restored snapshot, if any, to check against the registration. */
  restoredKind: StateKind | undefined;
  /** Indexed by `keyGroup - range.start`. */
  readonly groups: Array<KeyGroupMap | undefined>;
  /**
   * Per slot of `groups`, the epoch ({@link KeyContext.epoch}) at which that map object was
   * created or last copied. The map is shared with an open snapshot view iff its stamp is below
   * {@link KeyContext.newestOpen}; it must then be copied before it is mutated.
   */
  readonly stamps: Float64Array;
  /**
   * Change tracking for incremental checkpoints, per slot the keys written or deleted since
   * the last delta view; undefined when the backend does not track changes.
   */
  changed: Array<ChangedKeys | undefined> | undefined;
  /**
   * While a delta view is open: per slot the keys it reads (the changes it captured), and the
   * values those keys had when it was taken, saved at their first write since (key-level
   * copy-on-write; a saved undefined means the key had no entry).
   */
  viewKeys: ReadonlyArray<ChangedKeys | undefined> | undefined;
  viewSaved: Array<Map<NormalizedKey, unknown> | undefined> | undefined;
  /**
   * While a delta view is open: 1 for a slot it captured whole (every key's value at the view,
   * not only the changed keys'), shared by all tables of the backend.
   */
  viewWhole: Uint8Array | undefined;
  /**
   * The open snapshot views' captures of this table (key-level copy-on-write, see
   * {@link writableEntry}); empty when none is open. Usually zero or one.
   */
  captures: SnapshotCapture[];
}

/**
 * What one open snapshot view holds of one table: the key-group maps as they were when it was
 * taken (`groups`, the same objects as the live ones until a whole-group copy replaces one),
 * and per slot the values at that time of the keys written since (`saved`, in live form;
 * undefined: the key had no entry). A view reads a slot's map, taking a key's value from
 * `saved` if it is there. A map the view holds is only ever updated in place or appended to:
 * deleting a key the view holds copies the group first (order of the view's entries kept).
 */
export interface SnapshotCapture {
  readonly groups: ReadonlyArray<KeyGroupMap | undefined>;
  readonly saved: Array<Map<NormalizedKey, unknown> | undefined>;
}

/**
 * Records that the entry of `key` in slot `index` is about to change; call it before the
 * change. The first change of a key since the last delta view adds it to the slot's changed
 * keys and, if the open delta view reads that key, saves the value the view must see.
 * One compare when changes are not tracked; one set lookup for a key already changed.
 */
export const noteChange = (table: StateTable, index: number, key: NormalizedKey): void => {
  const changed = table.changed;
  if (changed === undefined) return;
  let keys = changed[index];
  if (keys === undefined) {
    keys = new Set();
    changed[index] = keys;
  } else if (keys.has(key)) {
    return;
  }
  keys.add(key);
  if (table.viewWhole?.[index] === 1 || table.viewKeys?.[index]?.has(key) === true) {
    const saved = table.viewSaved!;
    let slot = saved[index];
    if (slot === undefined) {
      slot = new Map();
      saved[index] = slot;
    }
    // Only the first save counts: changes forgotten while the view is open (a base taken
    // meanwhile) make a later write look like a first one, and its value is not the view's.
    if (slot.has(key)) return;
    const live = table.groups[index]?.get(key);
    slot.set(key, live === undefined ? undefined : toSnapshotValue(table.kind, live));
  }
};

/**
 * Copy-on-write, key level: the map of slot `index` ready for a write to `key`'s entry (a set,
 * or an in-place change of its list or map after {@link ownList}/{@link ownMap}; not a delete:
 * see {@link removeEntry}). Created if absent. If an open snapshot view holds the map, the key's
 * value is saved for that view first, once per view and key; no key group is copied. With no
 * view open this is one extra compare.
 */
export const writableEntry = (
  table: StateTable,
  ctx: KeyContext,
  index: number,
  key: NormalizedKey,
): KeyGroupMap => {
  const map = table.groups[index];
  if (map === undefined) return writableGroup(table, ctx, index);
  if (table.stamps[index]! < ctx.newestOpen) saveForViews(table, ctx, map, index, key);
  return map;
};

/** Saves `key`'s value in `map` (slot `index`) for every open view holding that map. */
const saveForViews = (
  table: StateTable,
  ctx: KeyContext,
  map: KeyGroupMap,
  index: number,
  key: NormalizedKey,
): void => {
  for (const capture of table.captures) {
    if (capture.groups[index] !== map) continue;
    let saved = capture.saved[index];
    if (saved === undefined) {
      saved = new Map();
      capture.saved[index] = saved;
    }
    if (saved.has(key)) continue;
    // Counted once per view and key group, as the whole-group copy it replaces was.
    if (saved.size === 0) ctx.copies++;
    // The live value itself, not a copy: a list or map an open view may hold is never mutated
    // again (ownList/ownMap copy it first), and other values are immutable (module note).
    saved.set(key, map.get(key));
  }
};

/** Whether an open view holding `map` (slot `index`) has saved a key of it. */
const savedAny = (table: StateTable, map: KeyGroupMap, index: number): boolean => {
  for (const capture of table.captures) {
    if (capture.groups[index] === map && (capture.saved[index]?.size ?? 0) > 0) return true;
  }
  return false;
};

/** Whether an open view holds `key`'s entry of `map` (slot `index`), i.e. had it when taken. */
const heldByView = (
  table: StateTable,
  map: KeyGroupMap,
  index: number,
  key: NormalizedKey,
): boolean => {
  for (const capture of table.captures) {
    if (capture.groups[index] !== map) continue;
    const saved = capture.saved[index];
    // Not saved: not written since the view, so present then. Saved: present iff defined.
    if (saved === undefined || !saved.has(key) || saved.get(key) !== undefined) return true;
  }
  return false;
};

/**
 * Copy-on-write, group level: the map of slot `index` ready to be mutated. Created if absent;
 * if an open snapshot view holds it, replaced by a copy first (the view keeps the old object,
 * which is never mutated again). With no view open this is one extra compare.
 *
 * Hazard: the copy shares its lists and maps (containers) with the view; mutate a container
 * only after {@link ownList}/{@link ownMap}.
 */
export const writableGroup = (table: StateTable, ctx: KeyContext, index: number): KeyGroupMap => {
  let map = table.groups[index];
  if (map === undefined) {
    map = new Map();
    table.groups[index] = map;
    table.stamps[index] = ctx.epoch;
  } else if (table.stamps[index]! < ctx.newestOpen) {
    // Counted unless a view already counted this key group for a saved key (see `copies`).
    if (!savedAny(table, map, index)) ctx.copies++;
    map = new Map(map);
    table.groups[index] = map;
    table.stamps[index] = ctx.epoch;
  }
  return map;
};

/**
 * Removes `key`'s entry from slot `index` (noting the change), copying the group first only if
 * it holds the key and an open view holds that entry.
 */
export const removeEntry = (
  table: StateTable,
  ctx: KeyContext,
  index: number,
  key: NormalizedKey,
): void => {
  const map = table.groups[index];
  if (map === undefined || !map.has(key)) return;
  noteChange(table, index, key);
  // A view reads its keys from the live map in its order: deleting one of them there would
  // move it (a later re-insert goes to the end) and let a sliced reader miss or repeat it, so
  // the group is copied once instead. Keys created after every view are deleted in place.
  if (table.stamps[index]! < ctx.newestOpen && heldByView(table, map, index, key)) {
    writableGroup(table, ctx, index).delete(key);
    return;
  }
  map.delete(key);
};

/**
 * The epoch stamp of a list or map entry (the containers the backend mutates in place), as for
 * key-group maps: set when it is created or copied while a view is open. No stamp means it was
 * created while no view was open, i.e. before every open view, so every open view may hold it.
 * The property never leaves the backend: lists and maps are copied on the way out (`get()`,
 * snapshots), and copies do not carry symbol properties. (A WeakSet of fresh containers was
 * measured 3-5x slower per copied entry: its entries are ephemerons the GC has to trace.)
 */
const STAMP: unique symbol = Symbol('eddy.stateEpoch');
type Stamped = { [STAMP]?: number };

/** Whether an open view may hold `container`: true iff one was taken after it was created. */
export const isShared = (ctx: KeyContext, container: object): boolean => {
  const open = ctx.newestOpen;
  return open !== 0 && ((container as Stamped)[STAMP] ?? -1) < open;
};

/**
 * Copy-on-write, container level: `list` (the entry of `key` in the writable `group`) ready to
 * be mutated in place; replaced by a copy first if an open view may hold it.
 */
export const ownList = <T>(ctx: KeyContext, group: KeyGroupMap, key: NormalizedKey, list: T[]) => {
  if (!isShared(ctx, list)) return list;
  const copy = adopt(ctx, list.slice());
  group.set(key, copy);
  ctx.copies++;
  return copy;
};

/** {@link ownList} for the inner maps of map state. */
export const ownMap = <K, V>(
  ctx: KeyContext,
  group: KeyGroupMap,
  key: NormalizedKey,
  map: Map<K, V>,
): Map<K, V> => {
  if (!isShared(ctx, map)) return map;
  const copy = adopt(ctx, new Map(map));
  group.set(key, copy);
  ctx.copies++;
  return copy;
};

/** Stamps a list or map created now (only needed while a view is open; see {@link STAMP}). */
export const adopt = <C extends object>(ctx: KeyContext, container: C): C => {
  if (ctx.newestOpen !== 0) (container as Stamped)[STAMP] = ctx.epoch;
  return container;
};

/**
 * Live value → snapshot value. Lists and maps are mutated in place by the backend and are
 * copied; other values are shared, because user values are treated as immutable (as Flink's
 * heap backend holds them by reference).
 */
export const toSnapshotValue = (kind: StateKind | undefined, live: unknown): unknown => {
  if (kind === 'list') return (live as unknown[]).slice();
  if (kind === 'map') return Array.from(live as Map<unknown, unknown>);
  return live;
};

/**
 * Snapshot value → live value, copying so that later in-place updates never reach the
 * snapshot (one snapshot may be restored into several backends). Undefined means "no entry"
 * (an empty list or map). Throws if a list or map value is not an array (corrupt snapshot).
 */
export const fromSnapshotValue = (name: string, kind: StateKind, value: unknown): unknown => {
  if (kind !== 'list' && kind !== 'map') return value;
  if (!Array.isArray(value)) {
    throw new EddyError(
      'EDDY_STATE',
      `cannot restore ${kind} state '${name}': snapshot value is ${typeof value}, expected an array`,
      { domain: 'internal' },
    );
  }
  if (value.length === 0) return undefined;
  return kind === 'list' ? value.slice() : new Map(value as Array<readonly [unknown, unknown]>);
};
