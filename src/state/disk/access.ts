/**
 * The disk backend's reads and writes of the state objects (disk-states.ts) for the current
 * key: through the write-back overlay (the current one, then frozen ones newest first) and the
 * store. The hot path: no store write here but the flush a full batch triggers.
 */

import type { NormalizedKey } from '../types.js';
import type { DiskKeyedStateBackend } from './disk-keyed-backend.js';
import { prefixEnd, readUserKey } from './key-codec.js';
import { copyValue, flush, frozenPlain, mapEmptyWith, mapLayers } from './overlay.js';
import { sameKey } from './scan.js';
import { DELETED, type DiskTable, layoutOf, type MapPending } from './table.js';
import { unpackValue } from './value-codec.js';

const NOT_FOUND = Object.freeze({ found: false, value: undefined });

/** Records that the current key's entry of `t` is about to change. */
export const noteChange = (b: DiskKeyedStateBackend, t: DiskTable, key: NormalizedKey): void => {
  const changed = t.changed;
  if (changed === undefined) return;
  const index = b.ctx.index;
  let keys = changed[index];
  if (keys === undefined) {
    keys = new Set();
    changed[index] = keys;
  }
  keys.add(key);
};

/** The current key's live value of a plain-layout state, or undefined. */
export const readPlain = (b: DiskKeyedStateBackend, t: DiskTable, key: NormalizedKey): unknown => {
  const index = b.ctx.index;
  const pending = t.overlay[index]?.get(key);
  if (pending !== undefined) return pending === DELETED ? undefined : pending;
  let found: boolean;
  let value: unknown;
  const frozen = b.frozen.length === 0 ? undefined : frozenPlain(b, t, index, key);
  if (frozen !== undefined) {
    found = frozen !== DELETED;
    // A copy, as from the store: a frozen value must not change under its view.
    value = found ? copyValue(frozen) : undefined;
  } else {
    const bytes = b.store.db.getFast(b.w.header(b.ctx.keyGroup, t.id).key(key).view());
    found = bytes !== undefined;
    value = found ? unpackValue(bytes!) : undefined;
  }
  // Remembered for a write of the same key that follows (see `knownDelta`).
  b.lastRead = t;
  b.lastReadKey = key;
  b.lastReadIndex = index;
  b.lastReadFound = found;
  return value;
};

/** Sets (undefined: deletes) the current key's value of a plain-layout state. */
export const writePlain = (
  b: DiskKeyedStateBackend,
  t: DiskTable,
  key: NormalizedKey,
  value: unknown,
): void => {
  const slot = overlaySlot(b, t);
  const index = b.ctx.index;
  const now = value === undefined ? DELETED : value;
  const prev = slot.get(key);
  if (prev === undefined) {
    b.pending++;
    if (b.lastRead === t && b.lastReadIndex === index && sameKey(b.lastReadKey, key)) {
      t.knownDelta[index]! += Number(now !== DELETED) - Number(b.lastReadFound);
    } else {
      let unknown = t.unknown[index];
      if (unknown === undefined) {
        unknown = new Set();
        t.unknown[index] = unknown;
      }
      unknown.add(key);
    }
  } else if (t.unknown[index]?.has(key) !== true) {
    t.knownDelta[index]! += Number(now !== DELETED) - Number(prev !== DELETED);
  }
  b.lastRead = undefined;
  slot.set(key, now);
  if (b.pending >= b.writeBatch) flush(b);
};

/** Whether the current key has an entry in `t` (no value is decoded). */
export const exists = (b: DiskKeyedStateBackend, t: DiskTable, key: NormalizedKey): boolean => {
  if (layoutOf(t) === 'map') return !mapIsEmpty(b, t, key);
  const pending =
    t.overlay[b.ctx.index]?.get(key) ??
    (b.frozen.length === 0 ? undefined : frozenPlain(b, t, b.ctx.index, key));
  if (pending !== undefined) return pending !== DELETED;
  const w = b.w.header(b.ctx.keyGroup, t.id).key(key);
  return b.store.db.getFast(w.view()) !== undefined;
};

/** Map state: the value of user key `uk`, with `found` telling absence apart. */
export const mapGet = (
  b: DiskKeyedStateBackend,
  t: DiskTable,
  key: NormalizedKey,
  uk: unknown,
): { found: boolean; value: unknown } => {
  const w = b.w.header(b.ctx.keyGroup, t.id).key(key).userKey(uk);
  const pend = mapLayers(b, t, b.ctx.index, key, currentPend(b, t, key));
  if (pend !== undefined) {
    const p = pend.puts.get(w.latin1());
    if (p !== undefined) return p.v === DELETED ? NOT_FOUND : { found: true, value: p.v };
    if (pend.cleared) return NOT_FOUND;
  }
  const bytes = b.store.db.getFast(w.view());
  return bytes === undefined ? NOT_FOUND : { found: true, value: unpackValue(bytes) };
};

/** Map state: puts (or with {@link DELETED}, deletes) user key `uk`. */
export const mapPut = (
  b: DiskKeyedStateBackend,
  t: DiskTable,
  key: NormalizedKey,
  uk: unknown,
  value: unknown,
): void => {
  const w = b.w.header(b.ctx.keyGroup, t.id).key(key).userKey(uk);
  const pend = mapPending(b, t, key);
  const encoded = w.latin1();
  if (!pend.puts.has(encoded)) b.pending++;
  pend.puts.set(encoded, { k: uk, v: value });
  if (b.pending >= b.writeBatch) flush(b);
};

/** Map state: removes the current key's whole map. */
export const mapClear = (b: DiskKeyedStateBackend, t: DiskTable, key: NormalizedKey): void => {
  const pend = mapPending(b, t, key);
  b.pending -= pend.puts.size;
  pend.puts.clear();
  if (!pend.cleared) b.pending++; // the clear itself is one pending write
  pend.cleared = true;
  if (b.pending >= b.writeBatch) flush(b);
};

/** Map state: the current key's entries, merged, in key byte order. */
export const mapEntries = (
  b: DiskKeyedStateBackend,
  t: DiskTable,
  key: NormalizedKey,
): Array<[unknown, unknown]> => {
  const pend = mapLayers(b, t, b.ctx.index, key, currentPend(b, t, key));
  const prefix = b.w.header(b.ctx.keyGroup, t.id).key(key).copy();
  const merged = new Map<string, [unknown, unknown]>();
  if (pend?.cleared !== true) {
    for (const { key: k, value } of b.store.db.range(prefix, prefixEnd(prefix))) {
      const kb = k as Buffer;
      merged.set(kb.toString('latin1', 0, kb.length), [
        readUserKey(kb, prefix.length),
        unpackValue(value),
      ]);
    }
  }
  if (pend !== undefined) {
    for (const [encoded, { k, v }] of pend.puts) {
      if (v === DELETED) merged.delete(encoded);
      else merged.set(encoded, [k, v]);
    }
  }
  if (pend === undefined || pend.puts.size === 0) return [...merged.values()];
  return [...merged.entries()]
    .sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0))
    .map((e) => e[1]);
};

/** Map state: whether the current key's map is empty. */
export const mapIsEmpty = (b: DiskKeyedStateBackend, t: DiskTable, key: NormalizedKey): boolean => {
  const pend = mapLayers(b, t, b.ctx.index, key, currentPend(b, t, key));
  return mapEmptyWith(b, pend, b.w.header(b.ctx.keyGroup, t.id).key(key).copy());
};

const currentPend = (
  b: DiskKeyedStateBackend,
  t: DiskTable,
  key: NormalizedKey,
): MapPending | undefined => {
  return t.overlay[b.ctx.index]?.get(key) as MapPending | undefined;
};

const mapPending = (b: DiskKeyedStateBackend, t: DiskTable, key: NormalizedKey): MapPending => {
  const slot = overlaySlot(b, t);
  let pend = slot.get(key) as MapPending | undefined;
  if (pend === undefined) {
    pend = { cleared: false, puts: new Map() };
    slot.set(key, pend);
  }
  return pend;
};

const overlaySlot = (b: DiskKeyedStateBackend, t: DiskTable): Map<NormalizedKey, unknown> => {
  const index = b.ctx.index;
  let slot = t.overlay[index];
  if (slot === undefined) {
    slot = new Map();
    t.overlay[index] = slot;
  }
  return slot;
};
