/**
 * The on-disk keyed state backend (issue 16): keyed state of one keyed operator subtask in an
 * lmdb store in its own directory, with the heap backend's semantics and the same
 * backend-independent checkpoint format (docs/ARCHITECTURE.md, "State backends").
 *
 * Design notes:
 * - Store: one lmdb environment per backend at `options.dir` (`store.ts`), a local working copy:
 *   no fsync, deleted on dispose; durability comes from checkpoints. Memory: the store's pages
 *   are file-backed (counted in RSS while resident, reclaimable); the overlay and a flush's
 *   dirty pages are anonymous (see the write batch below).
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
 *   writes, and before every restore or scan (not before a view: see below). Cost model
 *   (measured 2026-11-27 with a scratch driver of the bench's job, a count per key, get +
 *   update of new keys, one store): a random get costs ~2.7 us (a B-tree descent, mostly cache
 *   misses) and is paid per record whatever the batch; a flush copies and rewrites every
 *   B-tree leaf page its keys touch (lmdb is copy-on-write): P·(1 - e^(-B/P)) pages for a batch
 *   of B random keys over P leaf pages (P ≈ entries / 70 here), so once P outgrows B a record
 *   costs a 4 KiB page copy and the file grows by the pages a held reader pins (below). Hence
 *   the batch adapts: the store's entries / 16 within [16,384, 65,536] (B ≈ 4P while the
 *   store is small). One store, 4M keys, views every 1M records held 500k: fixed 16,384 37.7k
 *   records/s, 103 s cpu, file 1,531 MiB; fixed 65,536 72k/s, 57 s, 768 MiB; fixed 131,072
 *   85-98k/s, 42-48 s, 473 MiB. The cap is memory's: the whole bench (10M keys, -p 2,
 *   2026-11-27) with the cap at 16,384 / 65,536 / 131,072: 40.3k / 87.4k / 94.3k events/s,
 *   peak anon 360 / 562 / 639 MiB (peak file-backed ~1,040 MiB in all three). The overlay
 *   holds one Map entry per pending write (the key and its decoded value; reads before
 *   writes leave no per-key record: `knownDelta`), the flush's dirty pages are malloc'd by
 *   lmdb (at most min(B, P) × 4 KiB); the rest of the anon growth comes with the throughput
 *   (not broken down). Measured and not
 *   kept: flushes sorted by key (slower: 54 vs 46 s cpu, the sort costs more than the locality
 *   gains), `useWritemap` (no change in time or anonymous memory).
 * - Per key group the number of (state, key) entries is kept exact in memory (for keys read
 *   just before their write, at the write, `knownDelta`; for others the flush learns whether a
 *   put created an entry and a delete removed one, in its transaction, or a view's freeze reads
 *   them; a restore onto existing state recounts its key group): views, sizes and the delta
 *   view's compaction rule never scan.
 * - Views do not write (their synchronous part is O(key groups × states), measured < 1.2 ms
 *   at 4M keys where a flush in it took up to 1 s): the view freezes the overlay (its
 *   entry-count changes applied at once, kept as written for keys read before their write,
 *   `knownDelta`; other keys and map keys read now), a new empty overlay starts; live reads
 *   see frozen overlays under the current one (their values copied: a frozen value must not
 *   change under its view). The next flush, or the view's first read, writes them, oldest
 *   first, each in its own transaction, and opens each waiting view's read transaction right
 *   after the overlay it froze: the view sees exactly the state at the view, the work moves to
 *   the asynchronous part. A view released unread leaves nothing behind; dispose writes what
 *   waiting views still need.
 * - Snapshot view: a read transaction held until release; `keyGroups` from the counts
 *   (O(key groups), and per state, O(key groups × states)); `read` scans one key
 *   group's range in the transaction; `readMaps` hands the checkpoint writer each state as a
 *   map-like object streaming from the store, so a large key group is encoded in slices
 *   (the job runs between them) without an array of its entries. Its iterators have no
 *   `return()` (a `for...of` that stops after a slice must not close them); the view closes
 *   any left open when it is released, so no cursor pins the transaction.
 * - File growth: a reader pins the pages of its snapshot, so while a view is open lmdb cannot
 *   reuse the pages later flushes free: the file grows by the pages each flush dirties,
 *   (records written during the view / B) × P·(1 - e^(-B/P)) × 4 KiB, and stops growing when
 *   the view is released (the space is reused; the file never shrinks). Not without bound:
 *   bounded by the longest checkpoint's asynchronous part. Reading a key group per fresh
 *   transaction would not be a consistent snapshot, so the levers are fewer pages per record
 *   (the adaptive batch, above: 4M keys, views every 1M records held 500k: 1,531 MiB at 16,384,
 *   768 at 65,536, 473 at 131,072; without views ~190 MiB at 2M keys and 131,072, where held
 *   readers add ~2%) and shorter checkpoints.
 * - Delta view: changed keys tracked in memory per state and key group (Sets) between delta
 *   views; the view captures them, the live counts (frozen overlay included) and, later, its
 *   read transaction as above; the `whole` rule is asked at view time, as the heap asks it;
 *   `readDelta` reads the captured keys in the transaction (absent: deleted). Released without
 *   `complete()`: the keys are given back.
 * - Restore: `restoreKeyGroup` writes a key group in one transaction, sorted puts with
 *   MDB_APPEND when nothing in the store is at or above it (the usual case); a chain block's
 *   deletions first. Keys are kept as latin1 strings (string order is byte order), sorted only
 *   if a one-pass check finds them unsorted (a disk checkpoint is in store order, a heap one in
 *   insertion order); values are packed at the put. Cost ~2 us per entry (470k entries/s
 *   unloaded), of which lmdb's append is ~0.6 us: the rest is decoding the snapshot value,
 *   encoding key and value and lmdb-js's call overhead. `restoreKeyGroupLazily` decodes and
 *   writes at once (no pending state, no `encoded` pass-through of untouched key groups).
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
