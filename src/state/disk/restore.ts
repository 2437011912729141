/**
 * The disk backend's restore path: a key group written as one sorted run (`restoreKeyGroup`),
 * lazily decoded key groups and chains, and the conversion of restored-but-unregistered states
 * when a descriptor registers them (`materialise`). See index.ts, "Restore".
 */

import type { EddyError } from '../../core/errors.js';
import { misdecodedError, restoredKindError, restoreKindError } from '../backend-errors.js';
import { fromSnapshotValue } from '../state-table.js';
import type {
  KeyGroupChanges,
  KeyGroupSnapshot,
  LazyKeyGroup,
  NormalizedKey,
  StateKind,
} from '../types.js';
import type { DiskKeyedStateBackend } from './disk-keyed-backend.js';
import { KeyWriter } from './key-codec.js';
import { adapt, flush } from './overlay.js';
import { countByState, scanKeyGroup } from './scan.js';
import { removePrefix, sortedOrder, storeWrite } from './store-writes.js';
import { type DiskTable, imageOf, layoutOf } from './table.js';
import { packValue } from './value-codec.js';

type SnapshotState = KeyGroupSnapshot['states'][number];

/** A restored value kept in snapshot form (see the heap backend's `rawValue`). */
const rawValue = (kind: StateKind | undefined, value: unknown): unknown => {
  if ((kind === 'list' || kind === 'map') && Array.isArray(value) && value.length === 0) {
    return undefined;
  }
  return value;
};

/**
 * Writes one key group (a snapshot, or a chain block's changes) to the store as one sorted run,
 * after the pending writes; its entry counts are kept exact.
 */
export const restoreKeyGroup = (
  b: DiskKeyedStateBackend,
  snapshot: KeyGroupSnapshot | KeyGroupChanges,
): void => {
  b.checkLive('restore');
  const kg = snapshot.keyGroup;
  const index = b.indexOf(kg, 'restore');
  flush(b); // restores apply in order: pending writes first
  b.lastRead = undefined; // the store changes under any read remembered
  const plan: Array<{ table: DiskTable; state: SnapshotState }> = [];
  for (const state of snapshot.states) plan.push({ table: tableForRestore(b, state), state });
  const db = b.store.db;
  const w = new KeyWriter();
  // Bulk path: nothing at or above this key group yet (the usual restore, key groups
  // ascending into an empty store): sorted puts with MDB_APPEND, no deletions needed.
  const last = lastKey(b);
  const first = w.keyGroupOnly(kg).copy();
  const append = last === undefined || Buffer.compare(last, first) < 0;
  // Store keys as latin1 strings (one char per byte: string order is byte order, and V8
  // compares and sorts them natively) and their values, packed at the put.
  const keys: string[] = [];
  const vals: unknown[] = [];
  const ops: Array<() => void> = [];
  // (state, key) entries written per state, for the bulk path's counts.
  const writtenBy = new Map<DiskTable, Set<NormalizedKey>>();
  for (const { table, state } of plan) {
    const written = writtenBy.get(table) ?? new Set<NormalizedKey>();
    writtenBy.set(table, written);
    const kind = table.kind;
    const map = layoutOf(table) === 'map';
    const deleted = (state as KeyGroupChanges['states'][number]).deleted;
    if (!append && deleted !== undefined) {
      for (const key of deleted) ops.push(removeOp(b, table, kg, key));
    }
    for (const [key, value] of state.entries) {
      const live =
        kind === undefined
          ? rawValue(state.kind, value)
          : fromSnapshotValue(table.name, kind, value);
      if (!append) ops.push(removeOp(b, table, kg, key));
      if (live === undefined) {
        written.delete(key);
        continue;
      }
      written.add(key);
      if (map) {
        for (const [uk, v] of live as Map<unknown, unknown>) {
          keys.push(w.header(kg, table.id).key(key).userKey(uk).latin1());
          vals.push(v);
        }
      } else {
        keys.push(w.header(kg, table.id).key(key).latin1());
        vals.push(live);
      }
    }
  }
  // Sorted (stably: of a key written twice, the later put wins) and written as one run,
  // after the removals, which land first and are older.
  const order = sortedOrder(keys);
  const n = keys.length;
  storeWrite(b, () => {
    for (const op of ops) op();
    // Appended to the previous key group's run when it follows it (a restore of key groups
    // ascending into an empty store writes one run, and nothing to merge).
    const first = n === 0 ? undefined : { first: keys[order[0]!]! };
    db.ingest(
      n,
      (sink) => {
        for (let j = 0; j < n; j++) {
          const i = order[j]!;
          if (j + 1 < n && keys[order[j + 1]!] === keys[i]) continue;
          sink.add(keys[i]!, packValue(vals[i]) as Buffer);
        }
      },
      first,
    );
  });
  // The bulk path wrote into an empty key group; otherwise count what the store holds now.
  if (append) {
    let n = 0;
    for (const [table, written] of writtenBy) {
      table.counts[index] = written.size;
      n += written.size;
    }
    b.counts[index] = n;
  } else recount(b, index);
  adapt(b);
};

/**
 * Decodes the key group at once and writes it to the store (no pending state is kept: the
 * store is where state lives), a chain block after block.
 */
export const restoreKeyGroupLazily = (b: DiskKeyedStateBackend, group: LazyKeyGroup): void => {
  b.checkLive('restore');
  b.indexOf(group.keyGroup, 'restore');
  if (group.loadChain === undefined) {
    const snapshot = group.load();
    if (snapshot.keyGroup !== group.keyGroup) throw misdecoded(group, snapshot.keyGroup);
    restoreKeyGroup(b, snapshot);
    return;
  }
  for (const block of group.loadChain()) {
    if (block.keyGroup !== group.keyGroup) throw misdecoded(group, block.keyGroup);
    restoreKeyGroup(b, block);
  }
};

/** The table a restored state goes to (added, unregistered, if new): its kind must agree. */
const tableForRestore = (b: DiskKeyedStateBackend, state: SnapshotState): DiskTable => {
  const { name, kind } = state;
  const table = b.tables.get(name);
  if (table === undefined) return b.addTable(name, undefined, kind);
  const known = table.kind ?? table.restoredKind;
  if (kind !== undefined && known !== undefined && kind !== known) {
    throw restoreKindError(name, kind, known, table.kind !== undefined);
  }
  table.restoredKind ??= kind;
  return table;
};

/**
 * Registers a restored, unregistered table as `kind`: its entries were stored in snapshot
 * form; list state drops empty lists (and checks they are arrays), map state is split into
 * one store entry per user key. One batch per key group (memory bounded by one).
 */
export const materialise = (
  b: DiskKeyedStateBackend,
  table: DiskTable,
  kind: StateKind,
): DiskTable => {
  const restored = table.restoredKind;
  if (restored !== undefined && restored !== kind) {
    throw restoredKindError(table.name, restored, kind);
  }
  if (kind === 'list' || kind === 'map') {
    flush(b);
    b.lastRead = undefined;
    const db = b.store.db;
    const images = new Map([[table.id, imageOf(table)]]);
    // Every state as the store holds it once this one is converted, for the recount.
    const converted = b.images();
    converted.set(table.id, { ...imageOf(table), layout: layoutOf({ kind }) });
    const w = new KeyWriter();
    for (const kg of b.nonEmpty()) {
      const entries: Array<[NormalizedKey, unknown]> = [];
      scanKeyGroup(
        db,
        kg,
        images,
        undefined,
        (_, key, value) => {
          entries.push([key, fromSnapshotValue(table.name, kind, value)]);
        },
        table.id,
      );
      if (entries.length === 0) continue;
      storeWrite(b, () => {
        for (const [key, live] of entries) {
          const k = w.header(kg, table.id).key(key).copy();
          if (live === undefined || kind === 'map') db.del(k);
          if (live === undefined || kind === 'list') continue;
          for (const [uk, v] of live as Map<unknown, unknown>) {
            db.put(w.header(kg, table.id).key(key).userKey(uk).copy(), packValue(v) as Buffer);
          }
        }
      });
      recount(b, kg - b.start, converted);
    }
  }
  table.kind = kind;
  return table;
};

/** Recounts slot `index`'s entries by a scan (after a restore onto existing state). */
const recount = (b: DiskKeyedStateBackend, index: number, images = b.images()): void => {
  const byId = countByState(b.store.db, b.start + index, images, undefined);
  let n = 0;
  for (const t of b.tables.values()) {
    const c = byId.get(t.id) ?? 0;
    t.counts[index] = c;
    n += c;
  }
  b.counts[index] = n;
};

/** A restore's removal of `key`'s entry. */
const removeOp = (
  b: DiskKeyedStateBackend,
  table: DiskTable,
  kg: number,
  key: NormalizedKey,
): (() => void) => {
  const prefix = new KeyWriter().header(kg, table.id).key(key).copy();
  if (layoutOf(table) === 'map') return () => removePrefix(b, prefix);
  return () => {
    b.store.db.del(prefix);
  };
};

const lastKey = (b: DiskKeyedStateBackend): Buffer | undefined => {
  return b.store.db.lastKey();
};

const misdecoded = (group: LazyKeyGroup, found: number): EddyError => {
  return misdecodedError(group.keyGroup, found);
};
