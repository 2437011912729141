/**
 * The on-disk keyed state backend (issue 16): keyed state of one keyed operator subtask in an
 * lmdb store in its own directory, with the heap backend's semantics and the same
 * backend-independent checkpoint format (docs/ARCHITECTURE.md, "State backends").
 *
 * Design notes:
 * - Store: one lmdb environment per backend at `options.dir` (`store.ts`), a local working copy:
 *   no fsync, deleted on dispose; durability comes from checkpoints. Memory: the store's pages
 *   are file-backed (counted in RSS while resident, reclaimable), a flush's dirty pages are
 *   anonymous: at most about `writeBatch` pages of 4 KiB (each pending write may touch its own
 *   leaf page), kept by lmdb for reuse.
 * - Keys (`key-codec.ts`): [key group u16 BE][state id u16 BE][key, tagged and prefix-free]
 *   and, for map state, [user key]. One key group is one contiguous range. State ids are
 *   assigned per backend instance (the store never outlives it). Map state user keys are
 *   stored as bytes: they compare by value (msgpack for non-primitives), not identity, and
 *   iterate in byte order (numbers ascending, then strings, shorter first), not insertion
 *   order. A key longer than lmdb's limit (1978 bytes encoded) fails at the call.
 * - Values (`value-codec.ts`): msgpack as the checkpoint codec, so the same values round-trip.
 *   Value, reducing and aggregating state: the value; list state: the whole array (an `add` to
 *   a list not in the overlay reads and rewrites it: O(length)); map state: one store entry
 *   per user key; restored-but-unregistered states: their snapshot value, converted when a
 *   descriptor registers them (lists drop empties, maps are split per user key).
 * - Writes go to a bounded write-back overlay (per state and key group, decoded values) that
 *   reads check first; it is written in one transaction when it holds `writeBatch` pending
 *   writes (default 16,384), and before every view, snapshot, restore or scan. Heap:
 *   O(writeBatch). Cost model: a flush copies and rewrites every B-tree leaf page its keys
 *   touch (lmdb is copy-on-write), about min(writeBatch, leaf pages) pages of 4 KiB, so random
 *   updates cost up to a page written per record once the store has more leaf pages than the
 *   batch (keyed sum, 1M updates: ~150-220k records/s at 1M keys, ~75k at 3M keys). A larger
 *   batch amortises pages over more records but its dirty pages (anonymous memory, kept by
 *   lmdb for reuse) grow with it: 16,384 bounds them near 64 MiB per store.
 * - Per key group the number of (state, key) entries is kept exact in memory (each flush
 *   learns whether a put created an entry and a delete removed one, in its transaction; a
 *   restore onto existing state recounts its key group): views, sizes and the delta view's
 *   compaction rule never scan.
 * - Snapshot view: flush, then a read transaction held until release; `keyGroups` from the
 *   counts (O(key groups), and per state, O(key groups × states)); `read` scans one key
 *   group's range in the transaction; `readMaps` hands the checkpoint writer each state as a
 *   map-like object streaming from the store, so a large key group is encoded in slices
 *   (the job runs between them) without an array of its entries. Its iterators have no
 *   `return()` (a `for...of` that stops after a slice must not close them); the view closes
 *   any left open when it is released, so no cursor pins the transaction.
 * - Delta view: changed keys tracked in memory per state and key group (Sets) between delta
 *   views; the view captures them, the live counts and a read transaction; the `whole` rule is
 *   asked at view time, as the heap asks it; `readDelta` reads the captured keys in the
 *   transaction (absent: deleted). Released without `complete()`: the keys are given back.
 * - Restore: `restoreKeyGroup` writes a key group in one transaction, sorted puts with
 *   MDB_APPEND when nothing in the store is at or above it (the usual case); a chain block's
 *   deletions first. `restoreKeyGroupLazily` decodes and writes at once (no pending state, no
 *   `encoded` pass-through of untouched key groups).
 * - Errors: `EDDY_STATE` naming the path and the operator subtask; a store that cannot be
 *   opened is not retriable, a failed write or vanished files (checked by the data file's
 *   inode at every flush and view) are, so the job restarts from its last checkpoint. A value
 *   msgpack cannot encode is the user's error (non-retriable), reported at the flush.
 */
import { join } from 'node:path';
import { threadId } from 'node:worker_threads';
import type { KeyedStateBackendFactory } from '../backend.js';
import { DiskKeyedStateBackend } from './disk-keyed-backend.js';

export {
  DEFAULT_WRITE_BATCH,
  DiskKeyedStateBackend,
  type DiskKeyedStateBackendOptions,
  MAX_WRITE_BATCH,
} from './disk-keyed-backend.js';

let storeCounter = 0;

const safeName = (s: string): string => s.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 64);

/**
 * Each subtask's store in its own new directory under `stateDir` (created if missing), named
 * from the operator uid, subtask index and a unique suffix (pid, thread id and a counter: subtasks of one
 * process run on several worker threads).
 */
export const diskBackendFactory =
  (stateDir: string): KeyedStateBackendFactory =>
  (options) =>
    new DiskKeyedStateBackend({
      ...options,
      dir: join(
        stateDir,
        `${safeName(options.operatorUid ?? 'keyed')}-${options.subtaskIndex ?? 0}-${process.pid}-${threadId}-${++storeCounter}`,
      ),
    });
