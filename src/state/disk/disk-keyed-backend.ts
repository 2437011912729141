/**
 * The on-disk keyed state backend: the same contract and semantics as the heap backend
 * (heap-keyed-backend.ts), state held in a log-structured store (`lsm/`) in its own directory. See index.ts for
 * the design notes.
 */

import { EddyError, InvalidArgumentError } from '../../core/errors.js';
import type {
  KeyedStateBackend,
  KeyedStateBackendOptions,
  KeyedStateDeltaView,
  WholeKeyGroupRule,
} from '../backend.js';
import {
  disposedError,
  kindConflictError,
  misdecodedError,
  outOfRangeError,
  restoredKindError,
  restoreKindError,
  stateError,
} from '../backend-errors.js';
import type { StateDescriptor, StateFor } from '../descriptors.js';
import { fromSnapshotValue, type KeyGroupRange } from '../state-table.js';
import type {
  KeyedStateSnapshotView,
  KeyGroupChanges,
  KeyGroupSnapshot,
  LazyKeyGroup,
  NormalizedKey,
  StateKind,
} from '../types.js';
import { createDiskState } from './disk-states.js';
import { KeyWriter, MAX_STATE_ID, prefixEnd, readUserKey } from './key-codec.js';
import type { LsmSnapshot as Transaction } from './lsm/index.js';
import { countByState, readKeyGroup, sameKey, scanKeyGroup } from './scan.js';
import { Store, type StoreTuning } from './store.js';
import {
  DELETED,
  type DiskTable,
  imageOf,
  layoutOf,
  type MapPending,
  type TableImage,
} from './table.js';
import { packValue, unpackValue } from './value-codec.js';
import { DiskDeltaView, DiskSnapshotView } from './views.js';

/** Options of {@link DiskKeyedStateBackend}. */
export interface DiskKeyedStateBackendOptions extends KeyedStateBackendOptions {
  /** The store's own directory: created (with parents) if missing; deleted on dispose. */
  readonly dir: string;
  /**
   * Pending writes (entries, and user keys of map state) held in memory before they are
   * written to the store in one batch: a fixed number. Default: adaptive, the store's
   * entries / 16 within [{@link DEFAULT_WRITE_BATCH}, {@link MAX_WRITE_BATCH}] (see index.ts,
   * the cost model).
   */
  readonly writeBatch?: number;
  /** The store's tunables (memtable size, merge fan-in, block size, filter bits): tests only. */
  readonly storeTuning?: StoreTuning;
}

/** The smallest adaptive {@link DiskKeyedStateBackendOptions.writeBatch} (a store up to 512k entries). */
export const DEFAULT_WRITE_BATCH = 32_768;

/** The largest adaptive {@link DiskKeyedStateBackendOptions.writeBatch} (a store from 4M entries). */
export const MAX_WRITE_BATCH = 262_144;

/** @internal The adaptive write batch of a store of `entries` entries. */
export const adaptiveBatch = (entries: number): number =>
  Math.min(MAX_WRITE_BATCH, Math.max(DEFAULT_WRITE_BATCH, Math.floor(entries / 16)));

type SnapshotState = KeyGroupSnapshot['states'][number];

const isInt = (n: unknown): n is number => Number.isSafeInteger(n);

/** The current key, shared with the state objects (they read it on every call). */
export interface DiskKeyContext {
  key: NormalizedKey | undefined;
  index: number;
  keyGroup: number;
}

/** A restored value kept in snapshot form (see the heap backend's `rawValue`). */
const rawValue = (kind: StateKind | undefined, value: unknown): unknown => {
  if ((kind === 'list' || kind === 'map') && Array.isArray(value) && value.length === 0) {
    return undefined;
  }
  return value;
};

/** On-disk keyed-state backend of one subtask of one keyed operator. */
export class DiskKeyedStateBackend implements KeyedStateBackend {
  readonly keyGroupRange: KeyGroupRange;
  readonly maxParallelism: number;
  /** @internal the store; state objects and views read it. */
  readonly store: Store;
  /** @internal */
  readonly ctx: DiskKeyContext = { key: undefined, index: 0, keyGroup: 0 };
  private readonly start: number;
  /** Number of key groups in the range; 0 after dispose, which fails every range check. */
  private size: number;
  /**
   * Per key-group slot, the (state, key) entries in the store: kept exact at every write to the
   * store (flush, restore, registration), so views and size queries never scan for them.
   */
  private readonly counts: Float64Array;
  private keyGroup: number | undefined;
  private readonly tables = new Map<string, DiskTable>();
  private readonly byId = new Map<number, DiskTable>();
  private readonly states = new Map<string, unknown>();
  private sortedNames: string[] | undefined;
  private disposed = false;
  private readonly trackChanges: boolean;
  private openDelta: DiskDeltaView | undefined;
  private openViews = 0;
  /** Pending overlay entries (entries, and user keys of map state). */
  private pending = 0;
  /**
   * Overlays frozen by views and not yet in the store, oldest first (see {@link freeze}): live
   * reads see them under the current overlay; the next flush writes them first, each in its
   * own batch, and takes the store snapshots of the views waiting for it.
   */
  private readonly frozen: Frozen[] = [];
  private writeBatch: number;
  /** Whether {@link writeBatch} follows the store's size (no `writeBatch` option). */
  private readonly adaptive: boolean;
  /**
   * The last store read of `readPlain` (table, key, slot) and whether the store had the key.
   * Valid until the store changes: every flush, restore and registration forgets it.
   */
  private lastRead: DiskTable | undefined;
  private lastReadKey: NormalizedKey | undefined;
  private lastReadIndex = 0;
  private lastReadFound = false;
  /** @internal scratch key writer of the hot path. */
  readonly w = new KeyWriter();

  constructor(options: DiskKeyedStateBackendOptions) {
    const { keyGroupRange: range, maxParallelism } = options;
    if (!isInt(maxParallelism) || maxParallelism < 1 || maxParallelism > 0x8000) {
      throw new InvalidArgumentError(
        `maxParallelism must be a positive integer up to 32768, got ${maxParallelism}`,
      );
    }
    const { start, end } = range;
    if (!isInt(start) || !isInt(end) || start < 0 || end < start || end >= maxParallelism) {
      throw new InvalidArgumentError(
        `key-group range [${start}, ${end}] must be non-empty integers within [0, ${maxParallelism - 1}]`,
      );
    }
    const batch = options.writeBatch ?? DEFAULT_WRITE_BATCH;
    if (!isInt(batch) || batch < 1) {
      throw new InvalidArgumentError(`writeBatch must be a positive integer, got ${batch}`);
    }
    this.keyGroupRange = Object.freeze({ start, end });
    this.maxParallelism = maxParallelism;
    this.start = start;
    this.size = end - start + 1;
    this.counts = new Float64Array(this.size);
    this.trackChanges = options.trackChanges === true;
    this.writeBatch = batch;
    this.adaptive = options.writeBatch === undefined;
    this.store = new Store(options.dir, options, options.storeTuning);
  }

  /** The store's directory. */
  get dir(): string {
    return this.store.dir;
  }

  setCurrentKey(key: NormalizedKey, keyGroup: number): void {
    const index = keyGroup - this.start;
    if (index >>> 0 !== index || index >= this.size) throw this.outOfRange(keyGroup, 'set key in');
    const ctx = this.ctx;
    ctx.key = key;
    ctx.index = index;
    ctx.keyGroup = keyGroup;
    this.keyGroup = keyGroup;
  }

  get currentKey(): NormalizedKey | undefined {
    return this.ctx.key;
  }

  get currentKeyGroup(): number | undefined {
    return this.keyGroup;
  }

  getState<D extends StateDescriptor>(descriptor: D): StateFor<D> {
    this.checkLive('register state in');
    const { name, kind } = descriptor;
    const table = this.tables.get(name);
    if (table?.kind !== undefined) {
      if (table.kind !== kind) {
        throw kindConflictError(name, table.kind, kind);
      }
      return this.states.get(name) as StateFor<D>;
    }
    const ready = table === undefined ? this.addTable(name, kind) : this.materialise(table, kind);
    const state = createDiskState(descriptor, ready, this);
    this.states.set(name, state);
    return state as StateFor<D>;
  }

  /** Snapshot of one key group of this backend's range (`states` empty if it has no state). */
  snapshotKeyGroup(keyGroup: number): KeyGroupSnapshot {
    this.checkLive('snapshot');
    this.indexOf(keyGroup, 'snapshot');
    this.flush();
    this.store.check();
    return readKeyGroup(this.store.db, keyGroup, this.images(), undefined);
  }

  snapshotView(): KeyedStateSnapshotView {
    this.checkLive('snapshot');
    this.store.check();
    this.freeze(); // no write: the view's store snapshot is taken once the frozen overlay is stored
    const keyGroups = this.nonEmpty(); // from the entry counts: O(key groups), no seek
    this.openViews++;
    const counts = new Map<number, Float64Array>();
    for (const t of this.tables.values()) counts.set(t.id, t.counts.slice());
    const view = new DiskSnapshotView(
      this.store.db,
      this.keyGroupRange,
      keyGroups,
      this.images(),
      counts,
      () => this.storeFrozen(),
      () => {
        this.unwait(view);
        this.viewReleased();
      },
    );
    this.await(view);
    return view;
  }

  deltaView(whole?: WholeKeyGroupRule): KeyedStateDeltaView | undefined {
    this.checkLive('snapshot');
    if (!this.trackChanges) {
      throw stateError('cannot take a delta view: this backend does not track changes', 'internal');
    }
    if (this.openDelta !== undefined) return undefined;
    this.store.check();
    this.freeze();
    const tables = this.names().map((n) => this.tables.get(n)!);
    const captured = new Map<number, Array<Set<NormalizedKey> | undefined>>();
    for (const t of tables) {
      captured.set(t.id, t.changed!);
      t.changed = this.noChanges();
    }
    // As the heap's: O(key groups × states) now, the rule asked with the live entries counts.
    const keyGroups: number[] = [];
    const live = new Map<number, number>();
    const wholeGroups = new Set<number>();
    for (let index = 0; index < this.size; index++) {
      let changed = 0;
      for (const t of tables) changed += captured.get(t.id)![index]?.size ?? 0;
      if (changed === 0) continue;
      const keyGroup = this.start + index;
      const n = this.counts[index]!;
      keyGroups.push(keyGroup);
      live.set(keyGroup, n);
      if (whole?.(keyGroup, changed, n) === true) wholeGroups.add(keyGroup);
    }
    this.openViews++;
    const view = new DiskDeltaView(
      this.store.db,
      this.keyGroupRange,
      keyGroups,
      tables.map(imageOf),
      captured,
      live,
      wholeGroups,
      () => this.storeFrozen(),
      (completed) => {
        this.unwait(view);
        if (this.openDelta === view) this.openDelta = undefined;
        if (!completed && !this.disposed) this.giveBack(tables, captured);
        this.viewReleased();
      },
    );
    this.await(view);
    this.openDelta = view;
    return view;
  }

  forgetChanges(): void {
    this.checkLive('snapshot');
    if (!this.trackChanges) return;
    for (const t of this.tables.values()) t.changed = this.noChanges();
  }

  /** Whether a delta view is open (diagnostics, tests). */
  get deltaViewOpen(): boolean {
    return this.openDelta !== undefined;
  }

  /** The pending writes that make a flush now (adaptive unless the option fixed it). */
  get currentWriteBatch(): number {
    return this.writeBatch;
  }

  /** Number of snapshot and delta views not yet released. */
  get openSnapshotViews(): number {
    return this.openViews;
  }

  snapshot(range: KeyGroupRange = this.keyGroupRange): KeyGroupSnapshot[] {
    this.checkLive('snapshot');
    this.indexOf(range.start, 'snapshot');
    this.indexOf(range.end, 'snapshot');
    this.flush();
    this.store.check();
    const images = this.images();
    const db = this.store.db;
    const out: KeyGroupSnapshot[] = [];
    for (const kg of this.nonEmpty(range)) {
      const snap = readKeyGroup(db, kg, images, undefined);
      if (snap.states.length > 0) out.push(snap);
    }
    return out;
  }

  restoreKeyGroup(snapshot: KeyGroupSnapshot | KeyGroupChanges): void {
    this.checkLive('restore');
    const kg = snapshot.keyGroup;
    const index = this.indexOf(kg, 'restore');
    this.flush(); // restores apply in order: pending writes first
    this.lastRead = undefined; // the store changes under any read remembered
    const plan: Array<{ table: DiskTable; state: SnapshotState }> = [];
    for (const state of snapshot.states) plan.push({ table: this.tableForRestore(state), state });
    const db = this.store.db;
    const w = new KeyWriter();
    // Bulk path: nothing at or above this key group yet (the usual restore, key groups
    // ascending into an empty store): sorted puts with MDB_APPEND, no deletions needed.
    const last = this.lastKey();
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
        for (const key of deleted) ops.push(this.removeOp(table, kg, key));
      }
      for (const [key, value] of state.entries) {
        const live =
          kind === undefined
            ? rawValue(state.kind, value)
            : fromSnapshotValue(table.name, kind, value);
        if (!append) ops.push(this.removeOp(table, kg, key));
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
    this.write(() => {
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
      this.counts[index] = n;
    } else this.recount(index);
    this.adapt();
  }

  /**
   * Decodes the key group at once and writes it to the store (no pending state is kept: the
   * store is where state lives), a chain block after block.
   */
  restoreKeyGroupLazily(group: LazyKeyGroup): void {
    this.checkLive('restore');
    this.indexOf(group.keyGroup, 'restore');
    if (group.loadChain === undefined) {
      const snapshot = group.load();
      if (snapshot.keyGroup !== group.keyGroup) throw this.misdecoded(group, snapshot.keyGroup);
      this.restoreKeyGroup(snapshot);
      return;
    }
    for (const block of group.loadChain()) {
      if (block.keyGroup !== group.keyGroup) throw this.misdecoded(group, block.keyGroup);
      this.restoreKeyGroup(block);
    }
  }

  forEachEntry(
    name: string,
    fn: (value: unknown, key: NormalizedKey, keyGroup: number) => void,
  ): void {
    this.checkLive('read');
    const table = this.tables.get(name);
    if (table === undefined) return;
    this.flush();
    const image = imageOf(table);
    const images = new Map([[table.id, image]]);
    const db = this.store.db;
    for (const kg of this.nonEmpty()) {
      // Gathered per key group first: `fn` may write state (and flush) while we iterate.
      const entries: Array<[NormalizedKey, unknown]> = [];
      scanKeyGroup(
        db,
        kg,
        images,
        undefined,
        (_, key, value) => {
          entries.push([key, liveForm(table.kind, value)]);
        },
        table.id,
      );
      for (const [key, value] of entries) fn(value, key, kg);
    }
  }

  /** Number of distinct keys with state in any named state (0 after dispose, as the heap's). */
  numKeys(): number {
    if (this.disposed) return 0;
    this.flush();
    const images = this.images();
    const db = this.store.db;
    let n = 0;
    for (const kg of this.nonEmpty()) {
      const keys = new Set<NormalizedKey>();
      scanKeyGroup(db, kg, images, undefined, (_, key) => {
        keys.add(key);
      });
      n += keys.size;
    }
    return n;
  }

  numEntries(): number {
    let n = 0;
    for (const size of this.keyGroupSizes().values()) n += size;
    return n;
  }

  keyGroupsWithState(): number[] {
    if (this.disposed) return [];
    this.flush();
    return this.nonEmpty();
  }

  keyGroupSizes(): Map<number, number> {
    if (this.disposed) return new Map();
    this.flush();
    const sizes = new Map<number, number>();
    for (const kg of this.nonEmpty()) sizes.set(kg, this.counts[kg - this.start]!);
    return sizes;
  }

  /**
   * Drops all state: pending writes are discarded; the store is closed and its directory
   * deleted once every open view is released (a checkpoint being written when the subtask
   * closes completes). Every method throws afterwards.
   */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    if (this.frozen.some((f) => f.views.size > 0)) {
      try {
        this.storeFrozen(); // views waiting for them are still to be read
      } catch {
        // the views' reads try again and report the store's error
      }
    } else this.frozen.length = 0;
    for (const t of this.tables.values()) {
      t.overlay.fill(undefined);
      this.resetTracking(t);
    }
    this.pending = 0;
    this.lastRead = undefined;
    this.tables.clear();
    this.byId.clear();
    this.states.clear();
    this.sortedNames = undefined;
    this.ctx.key = undefined;
    this.keyGroup = undefined;
    this.size = 0;
    this.openDelta = undefined;
    if (this.openViews === 0) this.store.closeAndDelete();
  }

  // ---- internal: used by the state objects -------------------------------------------------

  /** @internal The current key; throws if none is set. */
  currentKeyOrThrow(name: string): NormalizedKey {
    const key = this.ctx.key;
    if (key === undefined) {
      throw new EddyError(
        'EDDY_STATE',
        `keyed state '${name}' was used with no current key: keyed state is only available while ` +
          'processing a record or timer of a keyed stream (not in open() or close())',
        { domain: 'user' },
      );
    }
    return key;
  }

  /** @internal Records that the current key's entry of `t` is about to change. */
  noteChange(t: DiskTable, key: NormalizedKey): void {
    const changed = t.changed;
    if (changed === undefined) return;
    const index = this.ctx.index;
    let keys = changed[index];
    if (keys === undefined) {
      keys = new Set();
      changed[index] = keys;
    }
    keys.add(key);
  }

  /** @internal The current key's live value of a plain-layout state, or undefined. */
  readPlain(t: DiskTable, key: NormalizedKey): unknown {
    const index = this.ctx.index;
    const pending = t.overlay[index]?.get(key);
    if (pending !== undefined) return pending === DELETED ? undefined : pending;
    let found: boolean;
    let value: unknown;
    const frozen = this.frozen.length === 0 ? undefined : this.frozenPlain(t, index, key);
    if (frozen !== undefined) {
      found = frozen !== DELETED;
      // A copy, as from the store: a frozen value must not change under its view.
      value = found ? copyValue(frozen) : undefined;
    } else {
      const bytes = this.store.db.getFast(this.w.header(this.ctx.keyGroup, t.id).key(key).view());
      found = bytes !== undefined;
      value = found ? unpackValue(bytes!) : undefined;
    }
    // Remembered for a write of the same key that follows (see `knownDelta`).
    this.lastRead = t;
    this.lastReadKey = key;
    this.lastReadIndex = index;
    this.lastReadFound = found;
    return value;
  }

  /** @internal Sets (undefined: deletes) the current key's value of a plain-layout state. */
  writePlain(t: DiskTable, key: NormalizedKey, value: unknown): void {
    const slot = this.slot(t);
    const index = this.ctx.index;
    const now = value === undefined ? DELETED : value;
    const prev = slot.get(key);
    if (prev === undefined) {
      this.pending++;
      if (this.lastRead === t && this.lastReadIndex === index && sameKey(this.lastReadKey, key)) {
        t.knownDelta[index]! += Number(now !== DELETED) - Number(this.lastReadFound);
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
    this.lastRead = undefined;
    slot.set(key, now);
    if (this.pending >= this.writeBatch) this.flush();
  }

  /** @internal Whether the current key has an entry in `t` (no value is decoded). */
  exists(t: DiskTable, key: NormalizedKey): boolean {
    if (layoutOf(t) === 'map') return !this.mapIsEmpty(t, key);
    const pending =
      t.overlay[this.ctx.index]?.get(key) ??
      (this.frozen.length === 0 ? undefined : this.frozenPlain(t, this.ctx.index, key));
    if (pending !== undefined) return pending !== DELETED;
    const w = this.w.header(this.ctx.keyGroup, t.id).key(key);
    return this.store.db.getFast(w.view()) !== undefined;
  }

  /** @internal Map state: the value of user key `uk`, with `found` telling absence apart. */
  mapGet(t: DiskTable, key: NormalizedKey, uk: unknown): { found: boolean; value: unknown } {
    const w = this.w.header(this.ctx.keyGroup, t.id).key(key).userKey(uk);
    const pend = this.mapLayers(t, this.ctx.index, key, this.currentPend(t, key));
    if (pend !== undefined) {
      const p = pend.puts.get(w.latin1());
      if (p !== undefined) return p.v === DELETED ? NOT_FOUND : { found: true, value: p.v };
      if (pend.cleared) return NOT_FOUND;
    }
    const bytes = this.store.db.getFast(w.view());
    return bytes === undefined ? NOT_FOUND : { found: true, value: unpackValue(bytes) };
  }

  /** @internal Map state: puts (or with {@link DELETED}, deletes) user key `uk`. */
  mapPut(t: DiskTable, key: NormalizedKey, uk: unknown, value: unknown): void {
    const w = this.w.header(this.ctx.keyGroup, t.id).key(key).userKey(uk);
    const pend = this.mapPending(t, key);
    const encoded = w.latin1();
    if (!pend.puts.has(encoded)) this.pending++;
    pend.puts.set(encoded, { k: uk, v: value });
    if (this.pending >= this.writeBatch) this.flush();
  }

  /** @internal Map state: removes the current key's whole map. */
  mapClear(t: DiskTable, key: NormalizedKey): void {
    const pend = this.mapPending(t, key);
    this.pending -= pend.puts.size;
    pend.puts.clear();
    if (!pend.cleared) this.pending++; // the clear itself is one pending write
    pend.cleared = true;
    if (this.pending >= this.writeBatch) this.flush();
  }

  /** @internal Map state: the current key's entries, merged, in key byte order. */
  mapEntries(t: DiskTable, key: NormalizedKey): Array<[unknown, unknown]> {
    const pend = this.mapLayers(t, this.ctx.index, key, this.currentPend(t, key));
    const prefix = this.w.header(this.ctx.keyGroup, t.id).key(key).copy();
    const merged = new Map<string, [unknown, unknown]>();
    if (pend?.cleared !== true) {
      for (const { key: k, value } of this.store.db.range(prefix, prefixEnd(prefix))) {
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
      .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
      .map((e) => e[1]);
  }

  /** @internal Map state: whether the current key's map is empty. */
  mapIsEmpty(t: DiskTable, key: NormalizedKey): boolean {
    const pend = this.mapLayers(t, this.ctx.index, key, this.currentPend(t, key));
    return this.mapEmptyWith(pend, this.w.header(this.ctx.keyGroup, t.id).key(key).copy());
  }

  /** Whether a map entry with `pend` over the store's entries under `prefix` is empty. */
  private mapEmptyWith(pend: MapPending | undefined, prefix: Buffer): boolean {
    if (pend !== undefined) {
      for (const { v } of pend.puts.values()) if (v !== DELETED) return false;
    }
    if (pend?.cleared === true) return true;
    for (const { key: kb } of this.store.db.range(prefix, prefixEnd(prefix))) {
      if (pend === undefined) return false;
      const p = pend.puts.get(kb.toString('latin1', 0, kb.length));
      if (p === undefined || p.v !== DELETED) return false;
    }
    return true;
  }

  /**
   * Writes the overlay to the store in one batch and empties it.
   * @throws EddyError `EDDY_STATE` (retriable) if the write fails or the store's files vanished.
   */
  flush(): void {
    if (this.frozen.length > 0) this.storeFrozen();
    if (this.pending === 0) return;
    this.store.check();
    // Entry-count changes per (table, slot), applied once the batch is written.
    const delta: Array<[DiskTable, number, number]> = [];
    const overlays = new Map<DiskTable, Overlay>();
    for (const t of this.tables.values()) overlays.set(t, t.overlay);
    this.writeOverlays(overlays, (t, index, d) => {
      if (d !== 0) delta.push([t, index, d]);
    });
    for (const t of this.tables.values()) {
      t.overlay.fill(undefined);
      this.resetTracking(t);
    }
    for (const [t, index, d] of delta) {
      t.counts[index]! += d;
      this.counts[index]! += d;
    }
    this.pending = 0;
    this.lastRead = undefined;
    this.adapt();
  }

  /** Sets the adaptive write batch from the store's entries (O(key groups)). */
  private adapt(): void {
    if (!this.adaptive) return;
    let n = 0;
    for (let i = 0; i < this.size; i++) n += this.counts[i]!;
    this.writeBatch = adaptiveBatch(n);
  }

  /**
   * Writes `overlays` in one batch. With `note`, reports each entry's change of the
   * entry counts (learnt before the batch lands); without, the counts already include them (a
   * frozen overlay: see {@link freeze}).
   */
  private writeOverlays(
    overlays: ReadonlyMap<DiskTable, Overlay>,
    note: ((t: DiskTable, index: number, d: number) => void) | undefined,
  ): void {
    const db = this.store.db;
    const w = this.w;
    const start = this.keyGroupRange.start;
    // Plain-layout entries go to the store as one sorted run (`ingest`): gathered first, with
    // the entry counts of keys not read before their write learnt now, before the batch lands.
    const keys: string[] = [];
    const values: unknown[] = [];
    // Whose entry each is (for a value's encoding error): parallel arrays, no tuple per entry.
    const ownerTables: DiskTable[] = [];
    const ownerKeys: NormalizedKey[] = [];
    this.write(() => {
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
            const before = note !== undefined && this.anyWithPrefix(prefix);
            if (pend.cleared) this.removePrefix(prefix);
            for (const [encoded, { v }] of pend.puts) {
              const k = Buffer.from(encoded, 'latin1');
              if (v === DELETED) db.del(k);
              else db.put(k, encodeValue(t.name, key, v));
            }
            if (note !== undefined) {
              note(t, index, Number(this.anyWithPrefix(prefix)) - Number(before));
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
  }

  /**
   * Freezes the overlay for a view, without writing it (a view's synchronous part: O(key groups
   * × states), no store write): its entry-count changes are applied now (kept as written for
   * keys read first, `knownDelta`; one read per other key, and per map-state key), it moves to {@link frozen} and a new empty overlay starts. Live reads see
   * it (current overlay, then frozen ones newest first, then the store); the next flush, or
   * the first read of a view waiting for it, writes it and takes those views' store snapshots.
   */
  private freeze(): void {
    if (this.pending === 0) return;
    const delta: Array<[DiskTable, number, number]> = [];
    const overlays = new Map<DiskTable, Overlay>();
    const w = new KeyWriter();
    for (const t of this.tables.values()) {
      if (layoutOf(t) === 'plain') {
        // Kept as written for keys read first (the usual read-modify-write); others read now.
        for (let index = 0; index < this.size; index++) {
          let d = t.knownDelta[index]!;
          const unknown = t.unknown[index];
          if (unknown !== undefined) {
            const slot = t.overlay[index]!;
            for (const key of unknown) {
              const had = this.storedBelow(t, index, key, w);
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
            .header(this.start + index, t.id)
            .key(key)
            .copy();
          const after = this.mapLayers(t, index, key, value as MapPending);
          const before = this.mapLayers(t, index, key, undefined);
          const d =
            Number(!this.mapEmptyWith(after, prefix)) - Number(!this.mapEmptyWith(before, prefix));
          if (d !== 0) delta.push([t, index, d]);
        }
      });
    }
    for (const t of this.tables.values()) {
      overlays.set(t, t.overlay);
      t.overlay = new Array<Map<NormalizedKey, unknown> | undefined>(this.size).fill(undefined);
      this.resetTracking(t);
    }
    for (const [t, index, d] of delta) {
      t.counts[index]! += d;
      this.counts[index]! += d;
    }
    this.frozen.push({ overlays, views: new Set() });
    this.pending = 0;
    this.lastRead = undefined;
  }

  /** Forgets what the overlay's keys were before their writes (the overlay was emptied). */
  private resetTracking(t: DiskTable): void {
    t.unknown.fill(undefined);
    t.knownDelta.fill(0);
  }

  /** Whether key `key` of plain-layout `t` has an entry in the frozen overlays or the store. */
  private storedBelow(t: DiskTable, index: number, key: NormalizedKey, w: KeyWriter): boolean {
    const frozen = this.frozen.length === 0 ? undefined : this.frozenPlain(t, index, key);
    if (frozen !== undefined) return frozen !== DELETED;
    return (
      this.store.db.getFast(
        w
          .header(this.start + index, t.id)
          .key(key)
          .view(),
      ) !== undefined
    );
  }

  /** The newest frozen overlay's pending value of a plain-layout key, or undefined. */
  private frozenPlain(t: DiskTable, index: number, key: NormalizedKey): unknown {
    for (let i = this.frozen.length - 1; i >= 0; i--) {
      const v = this.frozen[i]!.overlays.get(t)?.[index]?.get(key);
      if (v !== undefined) return v;
    }
    return undefined;
  }

  private currentPend(t: DiskTable, key: NormalizedKey): MapPending | undefined {
    return t.overlay[this.ctx.index]?.get(key) as MapPending | undefined;
  }

  /**
   * A map entry's pending writes over the store: `top` (the current overlay's) over the frozen
   * overlays', merged (values of frozen ones copied: they must not change under their view).
   * With no frozen overlay, `top` itself.
   */
  private mapLayers(
    t: DiskTable,
    index: number,
    key: NormalizedKey,
    top: MapPending | undefined,
  ): MapPending | undefined {
    if (this.frozen.length === 0 || top?.cleared === true) return top;
    const layers: MapPending[] = [];
    for (let i = this.frozen.length - 1; i >= 0; i--) {
      const p = this.frozen[i]!.overlays.get(t)?.[index]?.get(key) as MapPending | undefined;
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
  }

  /** Writes the frozen overlays, oldest first, and takes the store snapshots waiting for each. */
  private storeFrozen(): void {
    while (this.frozen.length > 0) {
      const f = this.frozen[0]!;
      this.store.check();
      this.writeOverlays(f.overlays, undefined);
      this.frozen.shift();
      this.lastRead = undefined;
      for (const v of f.views) v.attach(this.store.db.snapshot());
    }
  }

  /** A new view: its store snapshot now, or once the newest frozen overlay is stored. */
  private await(view: Waiting): void {
    const last = this.frozen.at(-1);
    if (last === undefined) view.attach(this.store.db.snapshot());
    else last.views.add(view);
  }

  private unwait(view: Waiting): void {
    for (const f of this.frozen) f.views.delete(view);
  }

  // ---- internal --------------------------------------------------------------------------

  /** Whether the store has a key starting with `prefix` (writes made so far included). */
  private anyWithPrefix(prefix: Buffer): boolean {
    return this.store.db.any(prefix, prefixEnd(prefix));
  }

  /** Recounts slot `index`'s entries by a scan (after a restore onto existing state). */
  private recount(index: number, images = this.images()): void {
    const byId = countByState(this.store.db, this.start + index, images, undefined);
    let n = 0;
    for (const t of this.tables.values()) {
      const c = byId.get(t.id) ?? 0;
      t.counts[index] = c;
      n += c;
    }
    this.counts[index] = n;
  }

  private mapPending(t: DiskTable, key: NormalizedKey): MapPending {
    const slot = this.slot(t);
    let pend = slot.get(key) as MapPending | undefined;
    if (pend === undefined) {
      pend = { cleared: false, puts: new Map() };
      slot.set(key, pend);
    }
    return pend;
  }

  private slot(t: DiskTable): Map<NormalizedKey, unknown> {
    const index = this.ctx.index;
    let slot = t.overlay[index];
    if (slot === undefined) {
      slot = new Map();
      t.overlay[index] = slot;
    }
    return slot;
  }

  /** Runs `fn` (writes), then lets the store write runs and merge; failures become retriable store errors. */
  private write(fn: () => void): void {
    try {
      fn();
      this.store.db.commit();
    } catch (error) {
      throw this.store.writeFailed(error);
    }
  }

  /** Removes every store key starting with `prefix`. */
  private removePrefix(prefix: Buffer): void {
    const db = this.store.db;
    const keys: Buffer[] = [];
    for (const { key } of db.range(prefix, prefixEnd(prefix))) keys.push(Buffer.from(key));
    for (const k of keys) db.del(k);
  }

  /** A restore's removal of `key`'s entry. */
  private removeOp(table: DiskTable, kg: number, key: NormalizedKey): () => void {
    const prefix = new KeyWriter().header(kg, table.id).key(key).copy();
    if (layoutOf(table) === 'map') return () => this.removePrefix(prefix);
    return () => {
      this.store.db.del(prefix);
    };
  }

  private lastKey(): Buffer | undefined {
    return this.store.db.lastKey();
  }

  /** The key groups of `range` holding entries, ascending: from the counts, no store access. */
  private nonEmpty(range: KeyGroupRange = this.keyGroupRange): number[] {
    const out: number[] = [];
    for (let kg = range.start; kg <= range.end; kg++) {
      if (this.counts[kg - this.start]! > 0) out.push(kg);
    }
    return out;
  }

  private images(): Map<number, TableImage> {
    const images = new Map<number, TableImage>();
    for (const t of this.tables.values()) images.set(t.id, imageOf(t));
    return images;
  }

  private viewReleased(): void {
    this.openViews--;
    if (this.disposed && this.openViews === 0) this.store.closeAndDelete();
  }

  private giveBack(
    tables: readonly DiskTable[],
    captured: ReadonlyMap<number, Array<Set<NormalizedKey> | undefined>>,
  ): void {
    for (const t of tables) {
      const changed = t.changed;
      const keys = captured.get(t.id);
      if (changed === undefined || keys === undefined) continue;
      keys.forEach((set, index) => {
        if (set === undefined || set.size === 0) return;
        const now = changed[index];
        if (now === undefined) changed[index] = set;
        else for (const k of set) now.add(k);
      });
    }
  }

  private noChanges(): Array<Set<NormalizedKey> | undefined> {
    return new Array<Set<NormalizedKey> | undefined>(this.size).fill(undefined);
  }

  private names(): string[] {
    this.sortedNames ??= [...this.tables.keys()].sort();
    return this.sortedNames;
  }

  private addTable(name: string, kind: StateKind | undefined, restoredKind?: StateKind): DiskTable {
    const id = this.tables.size + 1;
    if (id > MAX_STATE_ID) {
      throw stateError(
        `too many named states (${id}) in one keyed operator: at most ${MAX_STATE_ID}`,
        'user',
      );
    }
    const table: DiskTable = {
      name,
      id,
      kind,
      restoredKind,
      overlay: new Array<Map<NormalizedKey, unknown> | undefined>(this.size).fill(undefined),
      unknown: new Array<Set<NormalizedKey> | undefined>(this.size).fill(undefined),
      knownDelta: new Float64Array(this.size),
      counts: new Float64Array(this.size),
      changed: this.trackChanges ? this.noChanges() : undefined,
    };
    this.tables.set(name, table);
    this.byId.set(id, table);
    this.sortedNames = undefined;
    return table;
  }

  /**
   * Registers a restored, unregistered table as `kind`: its entries were stored in snapshot
   * form; list state drops empty lists (and checks they are arrays), map state is split into
   * one store entry per user key. One batch per key group (memory bounded by one).
   */
  private materialise(table: DiskTable, kind: StateKind): DiskTable {
    const restored = table.restoredKind;
    if (restored !== undefined && restored !== kind) {
      throw restoredKindError(table.name, restored, kind);
    }
    if (kind === 'list' || kind === 'map') {
      this.flush();
      this.lastRead = undefined;
      const db = this.store.db;
      const images = new Map([[table.id, imageOf(table)]]);
      // Every state as the store holds it once this one is converted, for the recount.
      const converted = this.images();
      converted.set(table.id, { ...imageOf(table), layout: layoutOf({ kind }) });
      const w = new KeyWriter();
      for (const kg of this.nonEmpty()) {
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
        this.write(() => {
          for (const [key, live] of entries) {
            const k = w.header(kg, table.id).key(key).copy();
            if (live === undefined || kind === 'map') db.del(k);
            if (live === undefined || kind === 'list') continue;
            for (const [uk, v] of live as Map<unknown, unknown>) {
              db.put(w.header(kg, table.id).key(key).userKey(uk).copy(), packValue(v) as Buffer);
            }
          }
        });
        this.recount(kg - this.start, converted);
      }
    }
    table.kind = kind;
    return table;
  }

  private tableForRestore(state: SnapshotState): DiskTable {
    const { name, kind } = state;
    const table = this.tables.get(name);
    if (table === undefined) return this.addTable(name, undefined, kind);
    const known = table.kind ?? table.restoredKind;
    if (kind !== undefined && known !== undefined && kind !== known) {
      throw restoreKindError(name, kind, known, table.kind !== undefined);
    }
    table.restoredKind ??= kind;
    return table;
  }

  private misdecoded(group: LazyKeyGroup, found: number): EddyError {
    return misdecodedError(group.keyGroup, found);
  }

  private indexOf(keyGroup: number, what: string): number {
    const index = keyGroup - this.start;
    if (index >>> 0 !== index || index >= this.size) throw this.outOfRange(keyGroup, what);
    return index;
  }

  private outOfRange(keyGroup: number, what: string): EddyError {
    if (this.disposed) return disposedError(what);
    return outOfRangeError(keyGroup, what, this.keyGroupRange, this.maxParallelism);
  }

  private checkLive(what: string): void {
    if (this.disposed) throw disposedError(what);
  }
}

const NOT_FOUND = Object.freeze({ found: false, value: undefined });

type Overlay = DiskTable['overlay'];

/** A view waiting for its store snapshot. */
interface Waiting {
  attach(txn: Transaction): void;
}

/** An overlay frozen by a view and not yet stored (see `freeze`). */
interface Frozen {
  readonly overlays: ReadonlyMap<DiskTable, Overlay>;
  /** Views whose store snapshot is taken once this (and every older one) is stored. */
  readonly views: Set<Waiting>;
}

/**
 * The indices of `keys` in ascending order, equal keys in index order. A restore's keys are
 * usually sorted already (the disk backend checkpoints in store order),
 * checked in one pass before sorting (a heap checkpoint is in insertion order).
 */
const sortedOrder = (keys: readonly string[]): Uint32Array => {
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

/** A value as a store read would return it: a copy by the store's codec. */
const copyValue = (value: unknown): unknown => unpackValue(packValue(value));

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

/** A stored value (snapshot form) in the live form `forEachEntry` hands out. */
const liveForm = (kind: StateKind | undefined, value: unknown): unknown =>
  kind === 'map' ? new Map(value as Array<[unknown, unknown]>) : value;
