/**
 * Keyed state on the JS heap, laid out by key group so that snapshot and restore work per
 * key-group range (docs/DESIGN.md §2): a rescaled subtask restores exactly the key groups it owns.
 *
 * Layout: per named state a {@link StateTable}, i.e. `Array<Map<key, value> | undefined>`
 * indexed by `keyGroup - range.start`, maps created lazily.
 *
 * Values are held by reference and treated as immutable, as Flink's heap backend does: a
 * snapshot copies the entry arrays and the lists/maps the backend mutates in place, but not
 * user values. A user who mutates a value (or an accumulator) after handing it to state changes
 * already-taken snapshots unless those are serialised before the next call into user code.
 *
 * Checkpoints use {@link HeapKeyedStateBackend.snapshotView}: copy-on-write, so the synchronous
 * part is O(key groups × states) — it keeps references to the key-group maps, not copies — and
 * the entries are read (and written out) afterwards, while processing goes on. Mechanism
 * (state-table.ts): views and map objects carry epochs. Key level: the first write to a key of
 * a key-group map an open view holds saves that key's value for the view (once per view and
 * key; `writableEntry`), and the view reads the live map in place, taking saved values over live
 * ones and skipping keys created since; no key group is copied whole (copying them cost ~26 % of
 * a worker thread at 10M keys). Deleting a key the view holds is the exception: the map is then
 * replaced by a copy (`new Map(old)`, once per view and key group) and the view keeps the old
 * object, never mutated again, so the view's keys never move or vanish while it reads them.
 * Lists and inner maps of list and map state are copied before their first in-place mutation
 * (once per view and key), so a saved or held container never changes. Any number of views may
 * be open at once; each reads exactly the state at the moment it was taken.
 */

import { type EddyError, InvalidArgumentError } from '../core/errors.js';
import type {
  KeyedStateBackend,
  KeyedStateBackendOptions,
  KeyedStateDeltaView,
  WholeKeyGroupRule,
} from './backend.js';
import {
  disposedError,
  kindConflictError,
  misdecodedError,
  outOfRangeError,
  restoredKindError,
  restoreKindError,
  stateError,
} from './backend-errors.js';
import type { StateDescriptor, StateFor } from './descriptors.js';
import { createKeyedState } from './keyed-states.js';
import {
  adopt,
  type ChangedKeys,
  fromSnapshotValue,
  type KeyContext,
  type KeyGroupMap,
  type KeyGroupRange,
  type SnapshotCapture,
  type StateTable,
  toSnapshotValue,
  writableGroup,
} from './state-table.js';
import type {
  KeyedStateSnapshotView,
  KeyGroupChanges,
  KeyGroupSnapshot,
  KeyListState,
  LazyKeyGroup,
  NormalizedKey,
  StateKind,
} from './types.js';

/**
 * Options of {@link HeapKeyedStateBackend}. `trackChanges`: track the keys written since the
 * last delta view, for incremental checkpoints (one set lookup per write).
 */
export type HeapKeyedStateBackendOptions = KeyedStateBackendOptions;

type SnapshotState = KeyGroupSnapshot['states'][number];

/**
 * What a snapshot reads of one table: the live table, or a view's capture of its slots (the maps
 * as the view holds them and, per slot, the values saved for it of keys written since).
 */
interface TableImage {
  readonly name: string;
  readonly kind: StateKind | undefined;
  readonly restoredKind: StateKind | undefined;
  readonly groups: ReadonlyArray<KeyGroupMap | undefined>;
  readonly saved?: Array<Map<NormalizedKey, unknown> | undefined>;
}

/** Slots of key groups restored lazily and not decoded yet, as a view saw them. */
type PendingSlots = ReadonlyArray<LazyKeyGroup | undefined>;

const isInt = (n: unknown): n is number => Number.isSafeInteger(n);

/** Heap keyed-state backend of one subtask of one keyed operator. */
export class HeapKeyedStateBackend implements KeyedStateBackend {
  /** The key groups this backend owns (inclusive). */
  readonly keyGroupRange: KeyGroupRange;
  readonly maxParallelism: number;
  private readonly start: number;
  /** Number of key groups in the range; 0 after dispose, which fails every range check. */
  private size: number;
  private readonly ctx: KeyContext = {
    key: undefined,
    index: 0,
    epoch: 0,
    newestOpen: 0,
    copies: 0,
  };
  /** Epochs of the open snapshot views, in the order they were taken (ascending). */
  private readonly openViews: number[] = [];
  private keyGroup: number | undefined;
  private readonly tables = new Map<string, StateTable>();
  /**
   * Key groups restored lazily and not decoded yet, by slot; allocated on the first lazy
   * restore. Invariant: a pending slot has no live entries in any table.
   */
  private pending: Array<LazyKeyGroup | undefined> | undefined;
  /** Number of pending slots: the per-record check is this one compare while it is 0. */
  private pendingCount = 0;
  /** State objects handed out, by name; a name is here iff its table's kind is set. */
  private readonly states = new Map<string, unknown>();
  /** Table names sorted, so snapshots do not depend on registration or restore order. */
  private sortedNames: string[] | undefined;
  private disposed = false;
  private readonly trackChanges: boolean;
  /** The open delta view, if any (at most one). */
  private openDelta: HeapDeltaView | undefined;

  constructor(options: HeapKeyedStateBackendOptions) {
    const { keyGroupRange: range, maxParallelism } = options;
    if (!isInt(maxParallelism) || maxParallelism < 1) {
      throw new InvalidArgumentError(
        `maxParallelism must be a positive integer, got ${maxParallelism}`,
      );
    }
    const { start, end } = range;
    if (!isInt(start) || !isInt(end) || start < 0 || end < start || end >= maxParallelism) {
      throw new InvalidArgumentError(
        `key-group range [${start}, ${end}] must be non-empty integers within [0, ${maxParallelism - 1}]`,
      );
    }
    this.keyGroupRange = Object.freeze({ start, end });
    this.maxParallelism = maxParallelism;
    this.start = start;
    this.size = end - start + 1;
    this.trackChanges = options.trackChanges === true;
  }

  /**
   * Sets the key every state object reads until the next call. Called by the runtime before
   * every call into user code, so it is only field writes and one range check.
   * @throws EddyError `EDDY_STATE` (internal) if `keyGroup` is outside this backend's range:
   * the runtime routed a key to the wrong subtask.
   */
  setCurrentKey(key: NormalizedKey, keyGroup: number): void {
    const index = keyGroup - this.start;
    // `>>> 0` turns negatives into huge numbers and differs from non-integers (and NaN).
    if (index >>> 0 !== index || index >= this.size) throw this.outOfRange(keyGroup, 'set key in');
    if (this.pendingCount !== 0) this.decodePending(index);
    this.ctx.key = key;
    this.ctx.index = index;
    this.keyGroup = keyGroup;
  }

  /** The key set by the last {@link setCurrentKey}, if any. */
  get currentKey(): NormalizedKey | undefined {
    return this.ctx.key;
  }

  /** The key group set by the last {@link setCurrentKey}, if any. */
  get currentKeyGroup(): number | undefined {
    return this.keyGroup;
  }

  /**
   * Returns the state object for `descriptor`, registering it on first use. The object reads
   * the current key at each call. Restored entries of a not-yet-registered state are converted
   * now. A second call with the same name and kind returns the same object (the first
   * descriptor's default value or functions stay in force).
   * @throws EddyError `EDDY_STATE` if the name is registered, or was restored, as another kind.
   */
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
    const state = createKeyedState(descriptor, ready, this.ctx);
    this.states.set(name, state);
    return state as StateFor<D>;
  }

  /** Snapshot of one key group of this backend's range (`states` empty if it has no state). */
  snapshotKeyGroup(keyGroup: number): KeyGroupSnapshot {
    this.checkLive('snapshot');
    const index = this.indexOf(keyGroup, 'snapshot');
    this.decodePending(index);
    return readKeyGroup(
      keyGroup,
      index,
      this.names().map((name) => this.tables.get(name)!),
    );
  }

  /**
   * A consistent snapshot of the whole range, taken copy-on-write: this call is
   * O(key groups × states) and touches no entry; the entries are copied when
   * {@link KeyedStateSnapshotView.read} is called, and each read returns exactly what
   * {@link snapshotKeyGroup} would have returned at the time of this call, whatever the job
   * writes meanwhile (user values by reference, see the module note). Until the view is
   * released, the first write to each key-group map (and list or map entry) it shares costs a
   * copy; release it as soon as it is written out. Views may overlap.
   * @throws EddyError `EDDY_STATE` (internal) if the backend is disposed.
   */
  snapshotView(): KeyedStateSnapshotView {
    this.checkLive('snapshot');
    const ctx = this.ctx;
    const epoch = ++ctx.epoch;
    this.openViews.push(epoch);
    ctx.newestOpen = epoch;
    const tables = this.names().map((name) => this.tables.get(name)!);
    const images: TableImage[] = tables.map((t) => {
      const capture: SnapshotCapture = { groups: t.groups.slice(), saved: new Array(this.size) };
      t.captures.push(capture);
      const { kind, restoredKind } = t;
      return { name: t.name, kind, restoredKind, groups: capture.groups, saved: capture.saved };
    });
    // Pending key groups stay pending: the view decodes (or passes on) their bytes itself.
    const pending = this.pendingCount === 0 ? undefined : this.pending!.slice();
    // O(key groups × states): map sizes only, no entry is touched.
    const keyGroups: number[] = [];
    for (let index = 0; index < this.size; index++) {
      if (pending?.[index] !== undefined) {
        keyGroups.push(this.start + index);
        continue;
      }
      for (const t of images) {
        if ((t.groups[index]?.size ?? 0) > 0) {
          keyGroups.push(this.start + index);
          break;
        }
      }
    }
    return new HeapSnapshotView(this.keyGroupRange, keyGroups, images, pending, () => {
      tables.forEach((t, i) => {
        const at = t.captures.findIndex((c) => c.saved === images[i]!.saved);
        if (at >= 0) t.captures.splice(at, 1);
      });
      this.release(epoch);
    });
  }

  /**
   * The changes since the previous delta view (or since change tracking began), as a view
   * read later, while the job keeps writing: per changed key group, the entries written and
   * the keys deleted, with the values they had at this call. O(key groups × states) now; the
   * first write to a captured key afterwards saves its value for the view (once per key).
   * Undefined while another delta view is open: the caller then takes a full view instead.
   * {@link HeapDeltaView.release} without {@link HeapDeltaView.complete} (its write failed or
   * was abandoned) gives the captured keys back, so the next delta includes them again.
   * @throws EddyError `EDDY_STATE` (internal) if changes are not tracked or after dispose.
   */
  deltaView(whole?: WholeKeyGroupRule): HeapDeltaView | undefined {
    this.checkLive('snapshot');
    if (!this.trackChanges) {
      throw stateError('cannot take a delta view: this backend does not track changes', 'internal');
    }
    if (this.openDelta !== undefined) return undefined;
    const tables = this.names().map((name) => this.tables.get(name)!);
    const keyGroups: number[] = [];
    const live = new Map<number, number>();
    // One array for every table: a slot captured whole is captured in all of them.
    const wholeSlots = new Uint8Array(this.size);
    for (const t of tables) {
      t.viewKeys = t.changed;
      t.viewSaved = new Array(this.size);
      t.viewWhole = wholeSlots;
      t.changed = this.noChanges();
    }
    for (let index = 0; index < this.size; index++) {
      let changed = 0;
      for (const t of tables) changed += t.viewKeys![index]?.size ?? 0;
      if (changed === 0) continue;
      const keyGroup = this.start + index;
      keyGroups.push(keyGroup);
      let n = 0;
      for (const t of tables) n += t.groups[index]?.size ?? 0;
      live.set(keyGroup, n);
      if (whole?.(keyGroup, changed, n) === true) wholeSlots[index] = 1;
    }
    const view = new HeapDeltaView(this.keyGroupRange, keyGroups, tables, live, (completed) => {
      if (this.openDelta === view) this.openDelta = undefined;
      for (const t of tables) {
        if (!completed && !this.disposed) giveBack(t);
        t.viewKeys = undefined;
        t.viewSaved = undefined;
        t.viewWhole = undefined;
      }
    });
    this.openDelta = view;
    return view;
  }

  /**
   * Forgets the changes tracked so far: the next delta view starts from now. For a full
   * checkpoint that becomes the base of the next delta.
   */
  forgetChanges(): void {
    this.checkLive('snapshot');
    if (!this.trackChanges) return;
    for (const t of this.tables.values()) t.changed = this.noChanges();
  }

  /** Whether a delta view is open (diagnostics, tests). */
  get deltaViewOpen(): boolean {
    return this.openDelta !== undefined;
  }

  private noChanges(): Array<ChangedKeys | undefined> {
    return new Array<ChangedKeys | undefined>(this.size).fill(undefined);
  }

  /** Maps and lists copied so far because an open snapshot view shared them (diagnostics). */
  get cowCopies(): number {
    return this.ctx.copies;
  }

  /** Number of snapshot views not yet released. */
  get openSnapshotViews(): number {
    return this.openViews.length;
  }

  /**
   * Snapshots of the non-empty key groups of `range` (default: this backend's whole range), in
   * ascending key-group order; states sorted by name, entries in insertion order. The result is
   * a consistent copy that later updates do not change (see the module note on user values).
   */
  snapshot(range: KeyGroupRange = this.keyGroupRange): KeyGroupSnapshot[] {
    this.checkLive('snapshot');
    this.indexOf(range.start, 'snapshot');
    this.indexOf(range.end, 'snapshot');
    this.decodeAllPending();
    const tables = this.names().map((name) => this.tables.get(name)!);
    const out: KeyGroupSnapshot[] = [];
    for (let kg = range.start; kg <= range.end; kg++) {
      const snap = readKeyGroup(kg, kg - this.start, tables);
      if (snap.states.length > 0) out.push(snap);
    }
    return out;
  }

  /**
   * Puts a key group's entries back, overwriting entries of the same keys. States not yet
   * registered are kept in snapshot form until {@link getState} registers them (restore runs
   * before user `open()`), and are included in snapshots meanwhile so nothing is dropped.
   * @throws EddyError `EDDY_STATE` if the key group is outside this backend's range or a
   * state's recorded kind conflicts with its registration.
   */
  restoreKeyGroup(snapshot: KeyGroupSnapshot | KeyGroupChanges): void {
    this.checkLive('restore');
    const index = this.indexOf(snapshot.keyGroup, 'restore');
    this.decodePending(index); // restores apply in order: the older one first
    for (const state of snapshot.states) {
      const table = this.tableForRestore(state);
      const group = writableGroup(table, this.ctx, index);
      const kind = table.kind;
      // A block of a chain: the keys it deleted go before the entries it wrote.
      const deleted = (state as KeyGroupChanges['states'][number]).deleted;
      if (deleted !== undefined) for (const key of deleted) group.delete(key);
      for (const [key, value] of state.entries) {
        const live =
          kind === undefined
            ? rawValue(state.kind, value)
            : fromSnapshotValue(table.name, kind, value);
        if (live === undefined) group.delete(key);
        else
          group.set(
            key,
            kind === 'list' || kind === 'map' ? adopt(this.ctx, live as object) : live,
          );
      }
    }
  }

  /**
   * Restores a key group without decoding it: `group.load()` runs on the first access to the
   * key group (a record with a key in it, a snapshot of it, a size query), so a restore costs
   * reading and verifying the bytes, and key groups the job never touches are never decoded.
   * If the key group already holds state (or is pending), it is decoded now and applied after.
   * Hazard: a block that passed its CRC check but does not decode fails at that first access,
   * not at restore.
   * @throws EddyError `EDDY_STATE` if the key group is outside this backend's range.
   */
  restoreKeyGroupLazily(group: LazyKeyGroup): void {
    this.checkLive('restore');
    const index = this.indexOf(group.keyGroup, 'restore');
    if (this.pending?.[index] !== undefined || this.hasEntries(index)) {
      this.restoreKeyGroup(this.load(group));
      return;
    }
    this.pending ??= new Array<LazyKeyGroup | undefined>(this.size).fill(undefined);
    this.pending[index] = group;
    this.pendingCount++;
  }

  /**
   * Calls `fn` with every entry of state `name` (registered: live values, which must not be
   * mutated), key groups ascending, keys in insertion order. Decodes every pending key group
   * first. Used to index restored timers.
   */
  forEachEntry(
    name: string,
    fn: (value: unknown, key: NormalizedKey, keyGroup: number) => void,
  ): void {
    this.checkLive('read');
    this.decodeAllPending();
    const table = this.tables.get(name);
    if (table === undefined) return;
    for (let index = 0; index < this.size; index++) {
      const group = table.groups[index];
      if (group === undefined) continue;
      for (const [key, value] of group) fn(value, key, this.start + index);
    }
  }

  /** Number of key groups restored lazily and not decoded yet (diagnostics). */
  get pendingKeyGroups(): number {
    return this.pendingCount;
  }

  /** Number of distinct keys with state in any named state. */
  numKeys(): number {
    this.decodeAllPending();
    let n = 0;
    for (let index = 0; index < this.size; index++) {
      const keys = new Set<NormalizedKey>();
      for (const table of this.tables.values()) {
        const group = table.groups[index];
        if (group !== undefined) for (const key of group.keys()) keys.add(key);
      }
      n += keys.size;
    }
    return n;
  }

  /** Number of (state, key) entries. */
  numEntries(): number {
    let n = 0;
    for (const size of this.keyGroupSizes().values()) n += size;
    return n;
  }

  /** The key groups holding any state, ascending. */
  keyGroupsWithState(): number[] {
    return [...this.keyGroupSizes().keys()];
  }

  /** Per non-empty key group (ascending), its number of (state, key) entries: not bytes. */
  keyGroupSizes(): Map<number, number> {
    this.decodeAllPending();
    const sizes = new Map<number, number>();
    for (let index = 0; index < this.size; index++) {
      let n = 0;
      for (const table of this.tables.values()) n += table.groups[index]?.size ?? 0;
      if (n > 0) sizes.set(this.start + index, n);
    }
    return sizes;
  }

  /**
   * Drops all state. Afterwards state objects throw (no current key) and every backend method
   * throws.
   */
  dispose(): void {
    // Open views (snapshot and delta) keep their own references to the tables and maps: they
    // stay readable until released, so a checkpoint still being written when the subtask
    // closes is written whole. The maps are not cleared for that reason.
    this.tables.clear();
    this.states.clear();
    this.pending = undefined;
    this.pendingCount = 0;
    this.sortedNames = undefined;
    this.ctx.key = undefined;
    this.ctx.newestOpen = 0;
    this.openViews.length = 0;
    this.keyGroup = undefined;
    this.size = 0;
    this.disposed = true;
  }

  /** Decodes the pending key group of slot `index`, if any, into the tables. */
  private decodePending(index: number): void {
    const group = this.pending?.[index];
    if (group === undefined) return;
    this.pending![index] = undefined;
    this.pendingCount--;
    if (group.loadChain === undefined) {
      this.restoreKeyGroup(this.load(group));
      return;
    }
    for (const block of group.loadChain()) {
      if (block.keyGroup !== group.keyGroup) throw this.misdecoded(group, block.keyGroup);
      this.restoreKeyGroup(block);
    }
  }

  private decodeAllPending(): void {
    for (let index = 0; this.pendingCount !== 0 && index < this.size; index++) {
      this.decodePending(index);
    }
  }

  private load(group: LazyKeyGroup): KeyGroupSnapshot {
    const snapshot = group.load();
    if (snapshot.keyGroup !== group.keyGroup) throw this.misdecoded(group, snapshot.keyGroup);
    return snapshot;
  }

  private misdecoded(group: LazyKeyGroup, found: number): EddyError {
    return misdecodedError(group.keyGroup, found);
  }

  private hasEntries(index: number): boolean {
    for (const table of this.tables.values()) {
      if ((table.groups[index]?.size ?? 0) > 0) return true;
    }
    return false;
  }

  private names(): string[] {
    this.sortedNames ??= [...this.tables.keys()].sort();
    return this.sortedNames;
  }

  /** Ends the view of `epoch`: once no open view holds a map, writes stop copying it. */
  private release(epoch: number): void {
    const at = this.openViews.indexOf(epoch);
    if (at < 0) return; // released already, or the backend was disposed
    this.openViews.splice(at, 1);
    const ctx = this.ctx;
    ctx.newestOpen = this.openViews[this.openViews.length - 1] ?? 0;
  }

  private addTable(name: string, kind: StateKind | undefined, restoredKind?: StateKind) {
    const groups = new Array<Map<NormalizedKey, unknown> | undefined>(this.size).fill(undefined);
    const stamps = new Float64Array(this.size);
    const changed = this.trackChanges ? this.noChanges() : undefined;
    const table: StateTable = {
      name,
      kind,
      restoredKind,
      groups,
      stamps,
      changed,
      viewKeys: undefined,
      viewSaved: undefined,
      viewWhole: undefined,
      captures: [],
    };
    this.tables.set(name, table);
    this.sortedNames = undefined;
    return table;
  }

  /** Converts a restored, unregistered table's values to live form for `kind`. */
  private materialise(table: StateTable, kind: StateKind): StateTable {
    const restored = table.restoredKind;
    if (restored !== undefined && restored !== kind) {
      throw restoredKindError(table.name, restored, kind);
    }
    const container = kind === 'list' || kind === 'map';
    for (let index = 0; index < table.groups.length; index++) {
      const old = table.groups[index];
      if (old === undefined || old.size === 0) continue;
      // An open view may hold the group (in snapshot form): convert into a copy, then.
      const group = writableGroup(table, this.ctx, index);
      for (const [key, value] of old) {
        const live = fromSnapshotValue(table.name, kind, value);
        if (live === undefined) group.delete(key);
        else group.set(key, container ? adopt(this.ctx, live as object) : live);
      }
    }
    table.kind = kind;
    return table;
  }

  private tableForRestore(state: SnapshotState): StateTable {
    const { name, kind } = state;
    const table = this.tables.get(name);
    if (table === undefined) return this.addTable(name, undefined, kind);
    const known = table.kind ?? table.restoredKind;
    if (kind !== undefined && known !== undefined && kind !== known) {
      // Registered as another kind: the job changed the state's kind. Only restored: the
      // snapshots themselves disagree, which is eddy's fault.
      throw restoreKindError(name, kind, known, table.kind !== undefined);
    }
    table.restoredKind ??= kind;
    return table;
  }

  /** `keyGroup - start`, or throws naming the key group and the range. */
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

/**
 * One key group's snapshot from table images (sorted by name): entries in insertion order,
 * lists and maps copied into snapshot form; for a view's image, the keys it held, at their
 * values when it was taken.
 */
const readKeyGroup = (
  keyGroup: number,
  index: number,
  tables: readonly TableImage[],
): KeyGroupSnapshot => {
  const states: SnapshotState[] = [];
  for (const table of tables) {
    const group = table.groups[index];
    if (group === undefined || group.size === 0) continue;
    const { name, kind: liveKind } = table;
    const saved = table.saved?.[index];
    const entries: Array<readonly [NormalizedKey, unknown]> = [];
    if (saved === undefined || saved.size === 0) {
      group.forEach((value, key) => {
        entries.push([key, toSnapshotValue(liveKind, value)]);
      });
    } else {
      // Keys written since the view: their saved values (undefined: created since, skipped).
      group.forEach((live, key) => {
        const value = saved.has(key) ? saved.get(key) : live;
        if (value !== undefined) entries.push([key, toSnapshotValue(liveKind, value)]);
      });
    }
    if (entries.length === 0) continue;
    const kind = liveKind ?? table.restoredKind;
    states.push(kind === undefined ? { name, entries } : { name, kind, entries });
  }
  return { keyGroup, states };
};

/**
 * One key group's state read in place by {@link HeapSnapshotView.readMaps}; structurally the
 * checkpoint writer's `KeyGroupMaps` (declared here too: the state layer does not import the
 * checkpoint layer). `mapValues`: the values are map state's live `Map`s, whose snapshot form
 * is an array of [key, value] pairs; other values are in snapshot form already.
 */
interface InPlaceKeyGroup {
  readonly keyGroup: number;
  readonly states: ReadonlyArray<{
    readonly name: string;
    readonly kind: StateKind | undefined;
    readonly mapValues: boolean;
    readonly entries: ReadonlyMap<NormalizedKey, unknown>;
    readonly saved?: ReadonlyMap<NormalizedKey, unknown>;
    readonly count?: number;
  }>;
}

/**
 * Entries a view holds in `group`: all but the keys created since it was taken (saved as
 * undefined and still present). Invariant while the view is open: a key it holds is never
 * deleted from a map it reads (the group is copied first), so this does not change.
 */
const heldCount = (group: KeyGroupMap, saved: ReadonlyMap<NormalizedKey, unknown>): number => {
  let n = group.size;
  saved.forEach((value, key) => {
    if (value === undefined && group.has(key)) n--;
  });
  return n;
};

/**
 * {@link KeyedStateSnapshotView} of the heap backend: its captures of the tables' slots (the maps
 * as they were, or the live ones with the values saved for it of keys written since).
 */
class HeapSnapshotView implements KeyedStateSnapshotView {
  private images: readonly TableImage[] | undefined;

  constructor(
    private readonly range: KeyGroupRange,
    readonly keyGroups: readonly number[],
    images: readonly TableImage[],
    private readonly pending: PendingSlots | undefined,
    private readonly onRelease: () => void,
  ) {
    this.images = images;
  }

  read(keyGroup: number): KeyGroupSnapshot {
    const [images, index] = this.slot(keyGroup);
    const lazy = this.pending?.[index];
    return lazy !== undefined ? lazy.load() : readKeyGroup(keyGroup, index, images);
  }

  encoded(keyGroup: number): Uint8Array | undefined {
    const [, index] = this.slot(keyGroup);
    return this.pending?.[index]?.encoded;
  }

  /**
   * The key group's maps as the view holds them, for a checkpoint writer to encode in place
   * (`KeyGroupMaps` of checkpoint/keyed-block.ts): what {@link read} returns, without copying
   * every entry into arrays first. A map may be the live one: the job may update its entries in
   * place and append keys while it is read, but never delete a key the view holds (see the module
   * note); `saved` holds the values the view must see of keys written since (undefined: created
   * since, skip), `count` the number of entries the view holds. Readable until the view is
   * released; do not mutate.
   * Undefined for a lazily restored key group not decoded yet (use {@link read}).
   */
  readMaps(keyGroup: number): InPlaceKeyGroup | undefined {
    const [images, index] = this.slot(keyGroup);
    if (this.pending?.[index] !== undefined) return undefined;
    const states: InPlaceKeyGroup['states'][number][] = [];
    for (const table of images) {
      const group = table.groups[index];
      if (group === undefined || group.size === 0) continue;
      const kind = table.kind ?? table.restoredKind;
      const mapValues = table.kind === 'map';
      // Created now if absent, so that values saved while the writer reads reach it.
      const saved = table.saved![index] ?? new Map<NormalizedKey, unknown>();
      table.saved![index] = saved;
      const count = heldCount(group, saved);
      if (count === 0) continue;
      states.push({ name: table.name, kind, mapValues, entries: group, saved, count });
    }
    return { keyGroup, states };
  }

  private slot(keyGroup: number): [readonly TableImage[], number] {
    const images = this.images;
    if (images === undefined) {
      throw stateError(`cannot read key group ${keyGroup} of a released snapshot view`, 'internal');
    }
    const { start, end } = this.range;
    const index = keyGroup - start;
    if (index >>> 0 !== index || keyGroup > end) {
      throw stateError(
        `cannot read key group ${keyGroup} of a snapshot view of key groups [${start}, ${end}]`,
        'internal',
      );
    }
    return [images, index];
  }

  release(): void {
    if (this.images === undefined) return;
    this.images = undefined; // the old maps can be collected once the job replaced them
    this.onRelease();
  }
}

/**
 * All entries of one table's slot as a delta view captured it whole: live entries not written
 * since, the saved values of those written (skipping keys created since: saved as undefined),
 * and the saved values of keys deleted since.
 */
const wholeState = (t: StateTable, index: number): StateDelta[] => {
  const group = t.groups[index];
  const saved = t.viewSaved?.[index];
  const entries: Array<readonly [NormalizedKey, unknown]> = [];
  group?.forEach((live, key) => {
    if (saved?.has(key) !== true) entries.push([key, toSnapshotValue(t.kind, live)]);
    else {
      const before = saved.get(key);
      if (before !== undefined) entries.push([key, before]);
    }
  });
  saved?.forEach((before, key) => {
    if (before !== undefined && group?.has(key) !== true) entries.push([key, before]);
  });
  if (entries.length === 0) return [];
  const kind = t.kind ?? t.restoredKind;
  return [
    kind === undefined
      ? { name: t.name, entries, deleted: [] }
      : { name: t.name, kind, entries, deleted: [] },
  ];
};

/** A delta view that was not written: its captured keys become changes again. */
const giveBack = (t: StateTable): void => {
  const captured = t.viewKeys;
  const changed = t.changed;
  if (captured === undefined || changed === undefined) return;
  captured.forEach((keys, index) => {
    if (keys === undefined || keys.size === 0) return;
    const now = changed[index];
    if (now === undefined) changed[index] = keys;
    else for (const k of keys) now.add(k);
  });
};

/** One state's changes in a key group, in snapshot form. */
interface StateDelta {
  readonly name: string;
  readonly kind?: StateKind;
  readonly entries: Array<readonly [NormalizedKey, unknown]>;
  readonly deleted: NormalizedKey[];
}

/**
 * The heap backend's delta view (see {@link HeapKeyedStateBackend.deltaView}); structurally
 * the checkpoint layer's `DeltaSource`. Reads the captured keys' values: the saved value if
 * the key was written since the view was taken, else the live one (unchanged since).
 */
export class HeapDeltaView implements KeyedStateDeltaView {
  private tables: readonly StateTable[] | undefined;
  private completed = false;

  constructor(
    private readonly range: KeyGroupRange,
    readonly keyGroups: readonly number[],
    tables: readonly StateTable[],
    private readonly live: ReadonlyMap<number, number>,
    private readonly onRelease: (completed: boolean) => void,
  ) {
    this.tables = tables;
  }

  /** Live (state, key) entries of a changed key group when the view was taken. */
  liveEntries(keyGroup: number): number {
    return this.live.get(keyGroup) ?? 0;
  }

  /**
   * The changes of `keyGroup` (states by name; entries in the order keys were first written);
   * for a key group captured whole, all its entries (no deletions) and `whole: true`.
   */
  readDelta(keyGroup: number): { keyGroup: number; states: StateDelta[]; whole: boolean } {
    const tables = this.tables;
    const index = keyGroup - this.range.start;
    if (tables === undefined || index >>> 0 !== index || keyGroup > this.range.end) {
      throw stateError(`cannot read key group ${keyGroup} of this delta view`, 'internal');
    }
    if (tables[0]?.viewWhole?.[index] === 1) {
      return { keyGroup, states: tables.flatMap((t) => wholeState(t, index)), whole: true };
    }
    const states: StateDelta[] = [];
    for (const t of tables) {
      const keys = t.viewKeys?.[index];
      if (keys === undefined || keys.size === 0) continue;
      const saved = t.viewSaved?.[index];
      const group = t.groups[index];
      const entries: Array<readonly [NormalizedKey, unknown]> = [];
      const deleted: NormalizedKey[] = [];
      for (const key of keys) {
        let value: unknown;
        if (saved?.has(key) === true) value = saved.get(key);
        else {
          const live = group?.get(key);
          value = live === undefined ? undefined : toSnapshotValue(t.kind, live);
        }
        if (value === undefined) deleted.push(key);
        else entries.push([key, value]);
      }
      const kind = t.kind ?? t.restoredKind;
      states.push(
        kind === undefined
          ? { name: t.name, entries, deleted }
          : { name: t.name, kind, entries, deleted },
      );
    }
    return { keyGroup, states, whole: false };
  }

  /**
   * For a key group captured whole, its entries as key lists (`KeyListState` of
   * checkpoint/keyed-block.ts), to be written in slices while the job goes on: per non-empty
   * state, the keys in the live map now, each looked up when written (its saved value if it
   * was written since the view, else its live value, unchanged since), then the saved entries
   * of keys deleted since. Costs a copy of the keys, not of the entries. Undefined for a key
   * group not captured whole. The same entries, in the same order, as {@link readDelta}.
   */
  readWhole(keyGroup: number): KeyListState[] | undefined {
    const tables = this.tables;
    const index = keyGroup - this.range.start;
    if (tables === undefined || index >>> 0 !== index || keyGroup > this.range.end) {
      throw stateError(`cannot read key group ${keyGroup} of this delta view`, 'internal');
    }
    if (tables[0]?.viewWhole?.[index] !== 1) return undefined;
    const out: KeyListState[] = [];
    for (const t of tables) {
      const group = t.groups[index];
      const saved = t.viewSaved?.[index];
      const keys = group === undefined ? [] : Array.from(group.keys());
      let count = keys.length;
      const tail: Array<readonly [NormalizedKey, unknown]> = [];
      saved?.forEach((before, key) => {
        if (group?.has(key) === true) {
          if (before === undefined) count--; // created since: skipped when written
        } else if (before !== undefined) tail.push([key, before]);
      });
      count += tail.length;
      if (count === 0) continue;
      const kind = t.kind ?? t.restoredKind;
      const live = group!;
      // The first save of a key wins (noteChange), so a value read here is the view's. A key
      // not saved yet was not written since the view: its live value is the view's, and if it
      // is deleted or written later, noteChange saves it first. (A whole-group copy by a full
      // view meanwhile leaves `live` frozen: still right for keys not saved.)
      const valueAt = (key: NormalizedKey): unknown => {
        const s = t.viewSaved?.[index];
        if (s?.has(key) === true) return s.get(key);
        return live.get(key);
      };
      out.push({ name: t.name, kind, mapValues: t.kind === 'map', count, keys, valueAt, tail });
    }
    return out;
  }

  /** The view was written: its changes are in a checkpoint file now. Release it after. */
  complete(): void {
    this.completed = true;
  }

  /** Ends the view; idempotent. Not completed: its changes count as not written. */
  release(): void {
    if (this.tables === undefined) return;
    this.tables = undefined;
    this.onRelease(this.completed);
  }
}

/**
 * A restored value kept in snapshot form (state not registered yet). Undefined, and empty
 * lists/maps when the snapshot says the kind, mean "no entry".
 */
const rawValue = (kind: StateKind | undefined, value: unknown): unknown => {
  if ((kind === 'list' || kind === 'map') && Array.isArray(value) && value.length === 0) {
    return undefined;
  }
  return value;
};
