/**
 * The disk backend's write-back overlay, its write path: the adaptive batch, the flush of the
 * overlay to the store in one batch, and the overlays frozen by views (`freeze`), read under the
 * current overlay until the next flush, or a waiting view's first read, stores them. See
 * index.ts, "Writes go to a bounded write-back overlay" and "Views do not write".
 */

import { EddyError } from '../../core/errors.js';
import type { NormalizedKey } from '../types.js';
import type { DiskKeyedStateBackend, DiskKeyedStateBackendOptions } from './disk-keyed-backend.js';
import { KeyWriter, prefixEnd } from './key-codec.js';
import type { LsmSnapshot as Transaction } from './lsm/index.js';
import { anyWithPrefix, removePrefix, sortedOrder, storeWrite } from './store-writes.js';
import { DELETED, type DiskTable, layoutOf, type MapPending } from './table.js';
import { packValue, unpackValue } from './value-codec.js';

/**
 * The smallest adaptive {@link DiskKeyedStateBackendOptions.writeBatch} (a store up to 512k
 * entries).
 */
export const DEFAULT_WRITE_BATCH = 32_768;

/**
 * The largest adaptive {@link DiskKeyedStateBackendOptions.writeBatch} (a store from 4M
 * entries).
 */
export const MAX_WRITE_BATCH = 262_144;

/** @internal The adaptive write batch of a store of `entries` entries. */
export const adaptiveBatch = (entries: number): number =>
  Math.min(MAX_WRITE_BATCH, Math.max(DEFAULT_WRITE_BATCH, Math.floor(entries / 16)));

/** One table's write-back overlay, per key-group slot. */
export type Overlay = DiskTable['overlay'];

/** A view waiting for its store snapshot. */
export interface Waiting {
  attach(txn: Transaction): void;
}

/** An overlay frozen by a view and not yet stored (see `freeze`). */
export interface Frozen {
  readonly overlays: ReadonlyMap<DiskTable, Overlay>;
  /** Views whose store snapshot is taken once this (and every older one) is stored. */
  readonly views: Set<Waiting>;
}

/** A value as a store read would return it: a copy by the store's codec. */
export const copyValue = (value: unknown): unknown => unpackValue(packValue(value));

/**
 * A value's bytes for the store. A value msgpack cannot encode (a symbol, a function) is the
 * user's: a non-retriable user error naming the state and key (the heap backend fails the same
 * value when a checkpoint writes it), not a failure of the store.
 */
const encodeValue = (name: string, key: NormalizedKey, value: unknown): Buffer => {
  try {
    return packValue(value) as Buffer;
  } catch (error) {
    throw new EddyError(
      'EDDY_STATE',
      `cannot store the value of state '${name}' for key ${String(key)}: ${error instanceof Error ? error.message : String(error)}`,
      { domain: 'user', cause: error },
    );
  }
};

/**
 * Writes the overlay to the store in one batch and empties it.
 * @throws EddyError `EDDY_STATE` (retriable) if the write fails or the store's files vanished.
 */
export const flush = (b: DiskKeyedStateBackend): void => {
  if (b.frozen.length > 0) storeFrozen(b);
  if (b.pending === 0) return;
  b.store.check();
  // Entry-count changes per (table, slot), applied once the batch is written.
  const delta: Array<[DiskTable, number, number]> = [];
  const overlays = new Map<DiskTable, Overlay>();
  for (const t of b.tables.values()) overlays.set(t, t.overlay);
  writeOverlays(b, overlays, (t, index, d) => {
    if (d !== 0) delta.push([t, index, d]);
  });
  for (const t of b.tables.values()) {
    t.overlay.fill(undefined);
    resetTracking(t);
  }
  for (const [t, index, d] of delta) {
    t.counts[index]! += d;
    b.counts[index]! += d;
  }
  b.pending = 0;
  b.lastRead = undefined;
  adapt(b);
};

/** Sets the adaptive write batch from the store's entries (O(key groups)). */
export const adapt = (b: DiskKeyedStateBackend): void => {
  if (!b.adaptive) return;
  let n = 0;
  for (let i = 0; i < b.size; i++) n += b.counts[i]!;
  b.writeBatch = adaptiveBatch(n);
};

/**
 * Writes `overlays` in one batch. With `note`, reports each entry's change of the
 * entry counts (learnt before the batch lands); without, the counts already include them (a
 * frozen overlay: see {@link freeze}).
 */
const writeOverlays = (
  b: DiskKeyedStateBackend,
  overlays: ReadonlyMap<DiskTable, Overlay>,
  note: ((t: DiskTable, index: number, d: number) => void) | undefined,
): void => {
  const db = b.store.db;
  const w = b.w;
  const start = b.keyGroupRange.start;
  // Plain-layout entries go to the store as one sorted run (`ingest`): gathered first, with
  // the entry counts of keys not read before their write learnt now, before the batch lands.
  const keys: string[] = [];
  const values: unknown[] = [];
  // Whose entry each is (for a value's encoding error): parallel arrays, no tuple per entry.
  const ownerTables: DiskTable[] = [];
  const ownerKeys: NormalizedKey[] = [];
  storeWrite(b, () => {
    for (const [t, overlay] of overlays) {
      const map = layoutOf(t) === 'map';
      overlay.forEach((slot, index) => {
        if (slot === undefined) return;
        const kg = start + index;
        // Keys read before their write are counted already (`knownDelta`); others are read
        // here, before the batch is written.
        const unknown = map || note === undefined ? undefined : t.unknown[index];
        if (!map && note !== undefined) note(t, index, t.knownDelta[index]!);
        for (const [key, value] of slot) {
          if (!map) {
            w.header(kg, t.id).key(key);
            if (unknown?.has(key) === true) {
              const had = db.getFast(w.view()) !== undefined;
              const d = Number(value !== DELETED) - Number(had);
              if (d !== 0) note!(t, index, d);
            }
            keys.push(w.latin1());
            values.push(value);
            ownerTables.push(t);
            ownerKeys.push(key);
            continue;
          }
          const pend = value as MapPending;
          const prefix = w.header(kg, t.id).key(key).copy();
          const before = note !== undefined && anyWithPrefix(b, prefix);
          if (pend.cleared) removePrefix(b, prefix);
          for (const [encoded, { v }] of pend.puts) {
            const k = Buffer.from(encoded, 'latin1');
            if (v === DELETED) db.del(k);
            else db.put(k, encodeValue(t.name, key, v));
          }
          if (note !== undefined) {
            note(t, index, Number(anyWithPrefix(b, prefix)) - Number(before));
          }
        }
      });
    }
    const order = sortedOrder(keys);
    db.ingest(keys.length, (sink) => {
      for (let j = 0; j < order.length; j++) {
        const i = order[j]!;
        const v = values[i];
        if (v === DELETED) sink.add(keys[i]!, null);
        else sink.add(keys[i]!, encodeValue(ownerTables[i]!.name, ownerKeys[i]!, v));
      }
    });
  });
};

/**
 * Freezes the overlay for a view, without writing it (a view's synchronous part: O(key groups
 * × states), no store write): its entry-count changes are applied now (kept as written for
 * keys read first, `knownDelta`; one read per other key, and per map-state key), it moves to
 * the backend's `frozen` list and a new empty overlay starts. Live reads see it (current
 * overlay, then frozen ones newest first, then the store); the next flush, or the first read
 * of a view waiting for it, writes it and takes those views' store snapshots.
 */
export const freeze = (b: DiskKeyedStateBackend): void => {
  if (b.pending === 0) return;
  const delta: Array<[DiskTable, number, number]> = [];
  const overlays = new Map<DiskTable, Overlay>();
  const w = new KeyWriter();
  for (const t of b.tables.values()) {
    if (layoutOf(t) === 'plain') {
      // Kept as written for keys read first (the usual read-modify-write); others read now.
      for (let index = 0; index < b.size; index++) {
        let d = t.knownDelta[index]!;
        const unknown = t.unknown[index];
        if (unknown !== undefined) {
          const slot = t.overlay[index]!;
          for (const key of unknown) {
            const had = storedBelow(b, t, index, key, w);
            d += Number(slot.get(key) !== DELETED) - Number(had);
          }
        }
        if (d !== 0) delta.push([t, index, d]);
      }
      continue;
    }
    t.overlay.forEach((slot, index) => {
      if (slot === undefined) return;
      for (const [key, value] of slot) {
        const prefix = w
          .header(b.start + index, t.id)
          .key(key)
          .copy();
        const after = mapLayers(b, t, index, key, value as MapPending);
        const before = mapLayers(b, t, index, key, undefined);
        const d =
          Number(!mapEmptyWith(b, after, prefix)) - Number(!mapEmptyWith(b, before, prefix));
        if (d !== 0) delta.push([t, index, d]);
      }
    });
  }
  for (const t of b.tables.values()) {
    overlays.set(t, t.overlay);
    t.overlay = new Array<Map<NormalizedKey, unknown> | undefined>(b.size).fill(undefined);
    resetTracking(t);
  }
  for (const [t, index, d] of delta) {
    t.counts[index]! += d;
    b.counts[index]! += d;
  }
  b.frozen.push({ overlays, views: new Set() });
  b.pending = 0;
  b.lastRead = undefined;
};

/** Forgets what the overlay's keys were before their writes (the overlay was emptied). */
export const resetTracking = (t: DiskTable): void => {
  t.unknown.fill(undefined);
  t.knownDelta.fill(0);
};

/** Whether key `key` of plain-layout `t` has an entry in the frozen overlays or the store. */
const storedBelow = (
  b: DiskKeyedStateBackend,
  t: DiskTable,
  index: number,
  key: NormalizedKey,
  w: KeyWriter,
): boolean => {
  const frozen = b.frozen.length === 0 ? undefined : frozenPlain(b, t, index, key);
  if (frozen !== undefined) return frozen !== DELETED;
  return (
    b.store.db.getFast(
      w
        .header(b.start + index, t.id)
        .key(key)
        .view(),
    ) !== undefined
  );
};

/** The newest frozen overlay's pending value of a plain-layout key, or undefined. */
export const frozenPlain = (
  b: DiskKeyedStateBackend,
  t: DiskTable,
  index: number,
  key: NormalizedKey,
): unknown => {
  for (let i = b.frozen.length - 1; i >= 0; i--) {
    const v = b.frozen[i]!.overlays.get(t)?.[index]?.get(key);
    if (v !== undefined) return v;
  }
  return undefined;
};

/**
 * A map entry's pending writes over the store: `top` (the current overlay's) over the frozen
 * overlays', merged (values of frozen ones copied: they must not change under their view).
 * With no frozen overlay, `top` itself.
 */
export const mapLayers = (
  b: DiskKeyedStateBackend,
  t: DiskTable,
  index: number,
  key: NormalizedKey,
  top: MapPending | undefined,
): MapPending | undefined => {
  if (b.frozen.length === 0 || top?.cleared === true) return top;
  const layers: MapPending[] = [];
  for (let i = b.frozen.length - 1; i >= 0; i--) {
    const p = b.frozen[i]!.overlays.get(t)?.[index]?.get(key) as MapPending | undefined;
    if (p === undefined) continue;
    layers.push(p);
    if (p.cleared) break; // older layers are hidden
  }
  if (layers.length === 0) return top;
  const merged: MapPending = { cleared: false, puts: new Map() };
  for (let i = layers.length - 1; i >= 0; i--) {
    const p = layers[i]!;
    if (p.cleared) {
      merged.cleared = true;
      merged.puts.clear();
    }
    for (const [e, { k, v }] of p.puts) {
      merged.puts.set(e, { k, v: v === DELETED ? DELETED : copyValue(v) });
    }
  }
  if (top !== undefined) for (const [e, x] of top.puts) merged.puts.set(e, x);
  return merged;
};

/** Whether a map entry with `pend` over the store's entries under `prefix` is empty. */
export const mapEmptyWith = (
  b: DiskKeyedStateBackend,
  pend: MapPending | undefined,
  prefix: Buffer,
): boolean => {
  if (pend !== undefined) {
    for (const { v } of pend.puts.values()) if (v !== DELETED) return false;
  }
  if (pend?.cleared === true) return true;
  for (const { key: kb } of b.store.db.range(prefix, prefixEnd(prefix))) {
    if (pend === undefined) return false;
    const p = pend.puts.get(kb.toString('latin1', 0, kb.length));
    if (p === undefined || p.v !== DELETED) return false;
  }
  return true;
};

/** Writes the frozen overlays, oldest first, and takes the store snapshots waiting for each. */
export const storeFrozen = (b: DiskKeyedStateBackend): void => {
  while (b.frozen.length > 0) {
    const f = b.frozen[0]!;
    b.store.check();
    writeOverlays(b, f.overlays, undefined);
    b.frozen.shift();
    b.lastRead = undefined;
    for (const v of f.views) v.attach(b.store.db.snapshot());
  }
};

/** A new view: its store snapshot now, or once the newest frozen overlay is stored. */
export const awaitSnapshot = (b: DiskKeyedStateBackend, view: Waiting): void => {
  const last = b.frozen.at(-1);
  if (last === undefined) view.attach(b.store.db.snapshot());
  else last.views.add(view);
};

/** A released view: it no longer waits for a frozen overlay. */
export const unwait = (b: DiskKeyedStateBackend, view: Waiting): void => {
  for (const f of b.frozen) f.views.delete(view);
};
