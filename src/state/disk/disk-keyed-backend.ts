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
  outOfRangeError,
  stateError,
} from '../backend-errors.js';
import type { StateDescriptor, StateFor } from '../descriptors.js';
import type { KeyGroupRange } from '../state-table.js';
import type {
  KeyedStateSnapshotView,
  KeyGroupChanges,
  KeyGroupSnapshot,
  LazyKeyGroup,
  NormalizedKey,
  StateKind,
} from '../types.js';
import { createDiskState } from './disk-states.js';
import { KeyWriter, MAX_STATE_ID } from './key-codec.js';
import {
  awaitSnapshot,
  DEFAULT_WRITE_BATCH,
  type Frozen,
  flush,
  freeze,
  resetTracking,
  storeFrozen,
  unwait,
} from './overlay.js';
import { materialise, restoreKeyGroup, restoreKeyGroupLazily } from './restore.js';
import { readKeyGroup, scanKeyGroup } from './scan.js';
import { Store, type StoreTuning } from './store.js';
import {
  type DiskTable,
  giveBack,
  imageOf,
  newTable,
  noChanges,
  type TableImage,
} from './table.js';
import { DiskDeltaView, DiskSnapshotView } from './views.js';

export { adaptiveBatch, DEFAULT_WRITE_BATCH, MAX_WRITE_BATCH } from './overlay.js';

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

const isInt = (n: unknown): n is number => Number.isSafeInteger(n);

/** The current key, shared with the state objects (they read it on every call). */
export interface DiskKeyContext {
  key: NormalizedKey | undefined;
  index: number;
  keyGroup: number;
}

/** On-disk keyed-state backend of one subtask of one keyed operator. */
export class DiskKeyedStateBackend implements KeyedStateBackend {
  readonly keyGroupRange: KeyGroupRange;
  readonly maxParallelism: number;
  /** @internal the store; state objects and views read it. */
  readonly store: Store;
  /** @internal */
  readonly ctx: DiskKeyContext = { key: undefined, index: 0, keyGroup: 0 };
  // Fields marked @internal are shared with the backend's modules (access.ts, overlay.ts,
  // restore.ts): the overlay, the entry counts and the tables; nothing outside src/state/disk.
  /** @internal The first key group of the range. */
  readonly start: number;
  /**
   * @internal Number of key groups in the range; 0 after dispose, which fails every range
   * check.
   */
  size: number;
  /**
   * @internal Per key-group slot, the (state, key) entries in the store: kept exact at every
   * write to the store (flush, restore, registration), so views and size queries never scan
   * for them.
   */
  readonly counts: Float64Array;
  private keyGroup: number | undefined;
  /** @internal The named states by name. */
  readonly tables = new Map<string, DiskTable>();
  private readonly byId = new Map<number, DiskTable>();
  private readonly states = new Map<string, unknown>();
  private sortedNames: string[] | undefined;
  private disposed = false;
  private readonly trackChanges: boolean;
  private openDelta: DiskDeltaView | undefined;
  private openViews = 0;
  /** @internal Pending overlay entries (entries, and user keys of map state). */
  pending = 0;
  /**
   * @internal Overlays frozen by views and not yet in the store, oldest first (see overlay.ts,
   * `freeze`): live reads see them under the current overlay; the next flush writes them first,
   * each in its own batch, and takes the store snapshots of the views waiting for it.
   */
  readonly frozen: Frozen[] = [];
  /** @internal The pending writes that make a flush (see {@link adaptive}). */
  writeBatch: number;
  /** @internal Whether {@link writeBatch} follows the store's size (no `writeBatch` option). */
  readonly adaptive: boolean;
  /**
   * @internal The last store read of `readPlain` (table, key, slot) and whether the store had
   * the key. Valid until the store changes: every flush, restore and registration forgets it.
   */
  lastRead: DiskTable | undefined;
  /** @internal See {@link lastRead}. */
  lastReadKey: NormalizedKey | undefined;
  /** @internal See {@link lastRead}. */
  lastReadIndex = 0;
  /** @internal See {@link lastRead}. */
  lastReadFound = false;
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
    const ready = table === undefined ? this.addTable(name, kind) : materialise(this, table, kind);
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
    freeze(this); // no write: the view's store snapshot is taken once the frozen overlay is stored
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
      () => storeFrozen(this),
      () => {
        unwait(this, view);
        this.viewReleased();
      },
    );
    awaitSnapshot(this, view);
    return view;
  }

  deltaView(whole?: WholeKeyGroupRule): KeyedStateDeltaView | undefined {
    this.checkLive('snapshot');
    if (!this.trackChanges) {
      throw stateError('cannot take a delta view: this backend does not track changes', 'internal');
    }
    if (this.openDelta !== undefined) return undefined;
    this.store.check();
    freeze(this);
    const tables = this.names().map((n) => this.tables.get(n)!);
    const captured = new Map<number, Array<Set<NormalizedKey> | undefined>>();
    for (const t of tables) {
      captured.set(t.id, t.changed!);
      t.changed = noChanges(this.size);
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
      () => storeFrozen(this),
      (completed) => {
        unwait(this, view);
        if (this.openDelta === view) this.openDelta = undefined;
        if (!completed && !this.disposed) giveBack(tables, captured);
        this.viewReleased();
      },
    );
    awaitSnapshot(this, view);
    this.openDelta = view;
    return view;
  }

  forgetChanges(): void {
    this.checkLive('snapshot');
    if (!this.trackChanges) return;
    for (const t of this.tables.values()) t.changed = noChanges(this.size);
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
    restoreKeyGroup(this, snapshot);
  }

  /**
   * Decodes the key group at once and writes it to the store (no pending state is kept: the
   * store is where state lives), a chain block after block.
   */
  restoreKeyGroupLazily(group: LazyKeyGroup): void {
    restoreKeyGroupLazily(this, group);
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
        storeFrozen(this); // views waiting for them are still to be read
      } catch {
        // the views' reads try again and report the store's error
      }
    } else this.frozen.length = 0;
    for (const t of this.tables.values()) {
      t.overlay.fill(undefined);
      resetTracking(t);
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

  // ---- internal: used by the state objects (their reads and writes: access.ts) --------------

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

  /**
   * Writes the overlay to the store in one batch and empties it.
   * @throws EddyError `EDDY_STATE` (retriable) if the write fails or the store's files vanished.
   */
  flush(): void {
    flush(this);
  }

  // ---- internal --------------------------------------------------------------------------

  /**
   * @internal The key groups of `range` holding entries, ascending: from the counts, no store
   * access.
   */
  nonEmpty(range: KeyGroupRange = this.keyGroupRange): number[] {
    const out: number[] = [];
    for (let kg = range.start; kg <= range.end; kg++) {
      if (this.counts[kg - this.start]! > 0) out.push(kg);
    }
    return out;
  }

  /** @internal The image of every table, by id (what views and scans read). */
  images(): Map<number, TableImage> {
    const images = new Map<number, TableImage>();
    for (const t of this.tables.values()) images.set(t.id, imageOf(t));
    return images;
  }

  private viewReleased(): void {
    this.openViews--;
    if (this.disposed && this.openViews === 0) this.store.closeAndDelete();
  }

  private names(): string[] {
    this.sortedNames ??= [...this.tables.keys()].sort();
    return this.sortedNames;
  }

  /** @internal Adds a named state (registered as `kind`, or restored as `restoredKind`). */
  addTable(name: string, kind: StateKind | undefined, restoredKind?: StateKind): DiskTable {
    const id = this.tables.size + 1;
    if (id > MAX_STATE_ID) {
      throw stateError(
        `too many named states (${id}) in one keyed operator: at most ${MAX_STATE_ID}`,
        'user',
      );
    }
    const table = newTable(name, id, kind, restoredKind, this.size, this.trackChanges);
    this.tables.set(name, table);
    this.byId.set(id, table);
    this.sortedNames = undefined;
    return table;
  }

  /** @internal The slot of `keyGroup`; throws if it is outside the range (or after dispose). */
  indexOf(keyGroup: number, what: string): number {
    const index = keyGroup - this.start;
    if (index >>> 0 !== index || index >= this.size) throw this.outOfRange(keyGroup, what);
    return index;
  }

  private outOfRange(keyGroup: number, what: string): EddyError {
    if (this.disposed) return disposedError(what);
    return outOfRangeError(keyGroup, what, this.keyGroupRange, this.maxParallelism);
  }

  /** @internal Throws if the backend was disposed. */
  checkLive(what: string): void {
    if (this.disposed) throw disposedError(what);
  }
}

/** A stored value (snapshot form) in the live form `forEachEntry` hands out. */
const liveForm = (kind: StateKind | undefined, value: unknown): unknown =>
  kind === 'map' ? new Map(value as Array<[unknown, unknown]>) : value;
