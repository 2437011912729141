/**
 * The on-disk keyed state backend (issue 16): keyed state of one keyed operator subtask in a
 * log-structured store (`lsm/`) in its own directory, with the heap backend's semantics and
 * the same backend-independent checkpoint format (docs/ARCHITECTURE.md, "State backends").
 *
 * Design notes:
 * - Files: `disk-keyed-backend.ts` (the backend: the contract, views, sizes, dispose),
 *   `access.ts` (the state objects' reads and writes of the current key, `disk-states.ts`
 *   their objects), `overlay.ts` (the write-back overlay: flush, adaptive batch, overlays
 *   frozen by views), `restore.ts` (restore; restored-but-unregistered states converted at
 *   registration), `store-writes.ts` (batches, prefix removal, sorted runs: both write paths),
 *   `views.ts` (snapshot and delta views), `scan.ts` (key-group scans), `table.ts` (one named
 *   state), `key-codec.ts`, `value-codec.ts`, `store.ts` and `lsm/` (the store).
 * - Store: `store.ts` opens one `LsmStore` per backend at `options.dir`, a local working copy:
 *   no fsync, deleted on dispose; durability comes from checkpoints. Memory: the overlay, the
 *   store's memtables, and per run file its Bloom filter and block index; run files are read
 *   with `pread` (page cache, not RSS).
 * - Keys (`key-codec.ts`): [key group u16 BE][state id u16 BE][key, tagged and prefix-free]
 *   and, for map state, [user key]. One key group is one contiguous range. State ids are
 *   assigned per backend instance (the store never outlives it). Map state user keys are
 *   stored as bytes: they compare by value (msgpack for non-primitives), not identity, and
 *   iterate in byte order (numbers ascending, then strings, shorter first), not insertion
 *   order. A key longer than `MAX_KEY_BYTES` encoded fails at the call.
 * - Values (`value-codec.ts`): msgpack as the checkpoint codec, so the same values round-trip.
 *   Value, reducing and aggregating state: the value; list state: the whole array (an `add` to
 *   a list not in the overlay reads and rewrites it: O(length)); map state: one store entry
 *   per user key; restored-but-unregistered states: their snapshot value, converted when a
 *   descriptor registers them (lists drop empties, maps are split per user key).
 * - Writes go to a bounded write-back overlay (per state and key group, decoded values) that
 *   reads check first. When it holds `writeBatch` pending writes (adaptive: the store's
 *   entries / 16 within [DEFAULT_WRITE_BATCH, MAX_WRITE_BATCH]), and before every restore or
 *   scan (not before a view: see below), its plain-layout entries are sorted and written as
 *   one run (`LsmStore.ingest`: sequential writes, no per-key insert); map-state entries go
 *   through the store's memtable (their counts need reads of the writes just made). A larger
 *   batch means fewer, larger runs and fewer merges, for overlay memory (~100 bytes a write).
 * - Per key group the number of (state, key) entries is kept exact in memory (for keys read
 *   just before their write, at the write, `knownDelta`; for others the flush reads whether
 *   the store had the key before writing, or a view's freeze does; a restore onto existing
 *   state recounts its key group): views, sizes and the delta view's compaction rule never
 *   scan.
 * - Views do not write (their synchronous part is O(key groups × states)): the view freezes
 *   the overlay (its entry-count changes applied at once, kept as written for keys read before
 *   their write, `knownDelta`; other keys and map keys read now), a new empty overlay starts;
 *   live reads see frozen overlays under the current one (their values copied: a frozen value
 *   must not change under its view). The next flush, or the view's first read, writes them,
 *   oldest first, and takes each waiting view's store snapshot right after the overlay it
 *   froze: the view sees exactly the state at the view, the work moves to the asynchronous
 *   part. A view released unread leaves nothing behind; dispose writes what waiting views
 *   still need.
 * - Snapshot view: a store snapshot held until release (its runs stay readable while merges
 *   replace them); `keyGroups` from the counts (O(key groups), and per state, O(key groups ×
 *   states)); `read` scans one key group's range in the snapshot; `readMaps` hands the
 *   checkpoint writer each state as a map-like object streaming from the store, so a large
 *   key group is encoded in slices (the job runs between them) without an array of its
 *   entries. Its iterators have no `return()` (a `for...of` that stops after a slice must not
 *   close them); the view closes any left open when it is released.
 * - Delta view: changed keys tracked in memory per state and key group (Sets) between delta
 *   views; the view captures them, the live counts (frozen overlay included) and, later, its
 *   store snapshot as above; the `whole` rule is asked at view time, as the heap asks it;
 *   `readDelta` reads the captured keys in the snapshot (absent: deleted). Released without
 *   `complete()`: the keys are given back.
 * - Restore: `restoreKeyGroup` writes a key group as one sorted run (a chain block's deletions
 *   first, through the memtable: they are older). Keys are kept as latin1 strings (string
 *   order is byte order), sorted only if a one-pass check finds them unsorted (a disk
 *   checkpoint is in store order, a heap one in insertion order); values are packed as they
 *   are written. `restoreKeyGroupLazily` decodes and writes at once (no pending state, no
 *   `encoded` pass-through of untouched key groups).
 * - Errors: `EDDY_STATE` naming the path and the operator subtask; a store that cannot be
 *   opened is not retriable, a failed write or a vanished directory (checked by a marker
 *   file's inode at every flush and view) are, so the job restarts from its last checkpoint.
 *   A value msgpack cannot encode is the user's error (non-retriable), reported at the flush.
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
