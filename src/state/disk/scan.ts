/**
 * Reads of the store by key group, in a given store snapshot (a view's) or the live store:
 * a key group's snapshot in snapshot form, one key's snapshot value, entry counts, and the key
 * groups holding state. Every read decodes at once: the store may reuse the bytes it hands out.
 */

import type { KeyGroupSnapshot, NormalizedKey } from '../types.js';
import {
  cursor,
  HEADER_BYTES,
  KeyWriter,
  prefixEnd,
  readKey,
  readUserKey,
  stateIdAt,
} from './key-codec.js';
import type { LsmSnapshot as Transaction } from './lsm/index.js';
import type { Db } from './store.js';
import type { TableImage } from './table.js';
import { unpackValue, unpackValueAt } from './value-codec.js';

/** A point read in a given snapshot (undefined: the live store). */
export const getFast = (db: Db, key: Buffer, txn: Transaction | undefined): Buffer | undefined =>
  db.getFast(key, txn);

type Entry = readonly [NormalizedKey, unknown];
type SnapshotState = KeyGroupSnapshot['states'][number];

/** SameValueZero on normalized keys (NaN is one key, as in a JS Map). */
export const sameKey = (a: unknown, b: unknown): boolean =>
  a === b || (Number.isNaN(a) && Number.isNaN(b));

const kgStart = (kg: number): Buffer => Buffer.from([kg >> 8, kg & 0xff]);
const kgEnd = (kg: number): Buffer | undefined => (kg + 1 > 0xffff ? undefined : kgStart(kg + 1));

/**
 * Calls `fn` per (state, key) entry of key group `kg` in store order, with its value in
 * snapshot form (map layout: [user key, value] pairs gathered from its user-key entries).
 * `only`: restrict to one state id.
 */
export const scanKeyGroup = (
  db: Db,
  kg: number,
  images: ReadonlyMap<number, TableImage>,
  txn: Transaction | undefined,
  fn: (image: TableImage, key: NormalizedKey, value: unknown) => void,
  only?: number,
): void => {
  let start = kgStart(kg);
  let end = kgEnd(kg);
  if (only !== undefined) {
    start = new KeyWriter().header(kg, only).copy();
    end = prefixEnd(start);
  }
  let pendingImage: TableImage | undefined;
  let pendingKey: NormalizedKey | undefined;
  let pairs: Array<[unknown, unknown]> = [];
  const emit = () => {
    if (pendingImage !== undefined) fn(pendingImage, pendingKey!, pairs);
    pendingImage = undefined;
  };
  // Entries decoded where the store holds them (offsets, no view or object per entry).
  const sc = db.scan(start, end, txn);
  while (sc.next()) {
    const { buf, kOff, vOff } = sc;
    const image = images.get(stateIdAt(buf, kOff));
    if (image === undefined) continue; // a state created after the view: not in its snapshot
    const k = readKey(buf, kOff + HEADER_BYTES);
    const value = unpackValueAt(buf, vOff, vOff + sc.vLen);
    if (image.layout === 'plain') {
      emit();
      fn(image, k, value);
      continue;
    }
    const uk = readUserKey(buf, cursor.pos);
    if (pendingImage !== image || !sameKey(pendingKey, k)) {
      emit();
      pendingImage = image;
      pendingKey = k;
      pairs = [];
    }
    pairs.push([uk, value]);
  }
  emit();
};

/** Key group `kg` in snapshot form (states sorted by name; `states` empty if none). */
export const readKeyGroup = (
  db: Db,
  kg: number,
  images: ReadonlyMap<number, TableImage>,
  txn: Transaction | undefined,
): KeyGroupSnapshot => {
  const byId = new Map<number, Entry[]>();
  scanKeyGroup(db, kg, images, txn, (image, key, value) => {
    let entries = byId.get(image.id);
    if (entries === undefined) {
      entries = [];
      byId.set(image.id, entries);
    }
    entries.push([key, value]);
  });
  const states: SnapshotState[] = [];
  for (const [id, entries] of byId) {
    const { name, kind } = images.get(id)!;
    states.push(kind === undefined ? { name, entries } : { name, kind, entries });
  }
  states.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return { keyGroup: kg, states };
};

/** Entries (keys) of key group `kg` per state id. */
export const countByState = (
  db: Db,
  kg: number,
  images: ReadonlyMap<number, TableImage>,
  txn: Transaction | undefined,
): Map<number, number> => {
  const out = new Map<number, number>();
  scanKeyGroup(db, kg, images, txn, (image) => {
    out.set(image.id, (out.get(image.id) ?? 0) + 1);
  });
  return out;
};

/** The snapshot value of one key of one state, or undefined if it has no entry. */
export const readOne = (
  db: Db,
  kg: number,
  image: TableImage,
  key: NormalizedKey,
  txn: Transaction | undefined,
  w: KeyWriter,
): unknown => {
  w.header(kg, image.id).key(key);
  if (image.layout === 'plain') {
    const bytes = getFast(db, w.view(), txn);
    return bytes === undefined ? undefined : unpackValue(bytes);
  }
  const start = w.copy();
  const pairs: Array<[unknown, unknown]> = [];
  for (const { key: k, value } of db.range(start, prefixEnd(start), txn)) {
    pairs.push([readUserKey(k, start.length), unpackValue(value)]);
  }
  return pairs.length === 0 ? undefined : pairs;
};
