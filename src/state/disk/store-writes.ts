/**
 * The disk backend's store writes shared by the overlay's flush (overlay.ts) and the restore
 * (restore.ts): a batch of writes, a prefix's removal, and the sorted order of a run's keys.
 */

import type { DiskKeyedStateBackend } from './disk-keyed-backend.js';
import { prefixEnd } from './key-codec.js';

/**
 * Runs `fn` (writes), then lets the store write runs and merge; failures become retriable store
 * errors.
 */
export const storeWrite = (b: DiskKeyedStateBackend, fn: () => void): void => {
  try {
    fn();
    b.store.db.commit();
  } catch (error) {
    throw b.store.writeFailed(error);
  }
};

/** Removes every store key starting with `prefix`. */
export const removePrefix = (b: DiskKeyedStateBackend, prefix: Buffer): void => {
  const db = b.store.db;
  const keys: Buffer[] = [];
  for (const { key } of db.range(prefix, prefixEnd(prefix))) keys.push(Buffer.from(key));
  for (const k of keys) db.del(k);
};

/** Whether the store has a key starting with `prefix` (writes made so far included). */
export const anyWithPrefix = (b: DiskKeyedStateBackend, prefix: Buffer): boolean => {
  return b.store.db.any(prefix, prefixEnd(prefix));
};

/**
 * The indices of `keys` in ascending order, equal keys in index order. A restore's keys are
 * usually sorted already (the disk backend checkpoints in store order),
 * checked in one pass before sorting (a heap checkpoint is in insertion order).
 */
export const sortedOrder = (keys: readonly string[]): Uint32Array => {
  const n = keys.length;
  const order = new Uint32Array(n);
  let sorted = true;
  for (let i = 0; i < n; i++) {
    order[i] = i;
    if (i > 0 && !(keys[i - 1]! < keys[i]!)) sorted = false;
  }
  if (sorted) return order;
  return order.sort((a, b) => {
    const x = keys[a]!;
    const y = keys[b]!;
    return x < y ? -1 : x > y ? 1 : a - b;
  });
};
