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
 */
export interface KeyContext {
  /** Undefined until the runtime sets a key (and again after dispose). */
  key: NormalizedKey | undefined;
  /** `keyGroup - range.start`: the slot in every table's `groups`. */
  index: number;
}

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
}

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
