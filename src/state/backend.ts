/**
 * The contract of a keyed state backend: what the runtime (operators, timers, the keyed
 * checkpointer, restore) needs of one keyed operator subtask's state, whatever holds it. Two
 * backends implement it with the same semantics and the same backend-independent checkpoint
 * format: the heap backend (`heap-keyed-backend.ts`, the default) and the on-disk backend
 * (`disk/`), chosen per job (docs/ARCHITECTURE.md, "State backends").
 */
import type { StateDescriptor, StateFor } from './descriptors.js';
import type { KeyGroupRange } from './state-table.js';
import type {
  KeyedStateSnapshotView,
  KeyGroupChanges,
  KeyGroupSnapshot,
  KeyListState,
  LazyKeyGroup,
  NormalizedKey,
} from './types.js';

/**
 * Which changed key groups a delta view captures whole (all their entries, not only the
 * changed ones): called with the key group, its changed (state, key) entries and its live
 * entries. A key group captured whole is written as its new base (the compaction of
 * incremental checkpoints), with no read of its older blocks.
 */
export type WholeKeyGroupRule = (keyGroup: number, changed: number, live: number) => boolean;

/** One key group's changes as a delta view reads them (`KeyGroupDelta` of the checkpoint layer). */
export interface KeyGroupDeltaRead {
  readonly keyGroup: number;
  readonly states: ReadonlyArray<
    KeyGroupChanges['states'][number] & { readonly deleted: readonly NormalizedKey[] }
  >;
  readonly whole: boolean;
}

/**
 * The changes of a keyed backend since its previous delta view, read later, key group by key
 * group, while the job keeps writing; structurally the checkpoint layer's `DeltaSource`.
 */
export interface KeyedStateDeltaView {
  /** The key groups with changes, ascending. */
  readonly keyGroups: readonly number[];
  /**
   * The changes of `keyGroup` as they were when the view was taken (states sorted by name);
   * for a key group captured whole, all its entries, no deletions, and `whole: true`.
   */
  readDelta(keyGroup: number): KeyGroupDeltaRead;
  /** Live (state, key) entries of a changed key group when the view was taken. */
  liveEntries(keyGroup: number): number;
  /** Optional fast path for a key group captured whole (see `DeltaSource.readWhole`). */
  readWhole?(keyGroup: number): readonly KeyListState[] | undefined;
  /** The view was written: its changes are in a checkpoint file now. Release it after. */
  complete(): void;
  /** Ends the view; idempotent. Not completed: its changes count as not written. */
  release(): void;
}

/** What a backend factory is given for one keyed operator subtask. */
export interface KeyedStateBackendOptions {
  /** The key groups this subtask owns (inclusive). */
  readonly keyGroupRange: KeyGroupRange;
  /** Number of key groups of the job; fixed for the job's lifetime. */
  readonly maxParallelism: number;
  /** Track changes for incremental checkpoints ({@link KeyedStateBackend.deltaView}). */
  readonly trackChanges?: boolean;
  /** The operator's uid and the subtask's index: name the backend's files and its errors. */
  readonly operatorUid?: string;
  readonly subtaskIndex?: number;
}

/** Creates the keyed state backend of one keyed operator subtask. */
export type KeyedStateBackendFactory = (options: KeyedStateBackendOptions) => KeyedStateBackend;

/**
 * Keyed state of one subtask of one keyed operator. State objects handed out by
 * {@link getState} read the current key ({@link setCurrentKey}) on every call.
 */
export interface KeyedStateBackend {
  /** The key groups this backend owns (inclusive). */
  readonly keyGroupRange: KeyGroupRange;
  readonly maxParallelism: number;
  /**
   * Sets the key every state object reads until the next call; per record, so cheap.
   * @throws EddyError `EDDY_STATE` (internal) if `keyGroup` is outside the range.
   */
  setCurrentKey(key: NormalizedKey, keyGroup: number): void;
  readonly currentKey: NormalizedKey | undefined;
  readonly currentKeyGroup: number | undefined;
  /**
   * The state object for `descriptor`, registered on first use; the same object for the same
   * name and kind afterwards.
   * @throws EddyError `EDDY_STATE` if the name is registered, or was restored, as another kind.
   */
  getState<D extends StateDescriptor>(descriptor: D): StateFor<D>;
  /**
   * A consistent snapshot of the whole range taken now, in O(key groups × states) (or O(1)),
   * read later while the job keeps writing. Release it once written.
   */
  snapshotView(): KeyedStateSnapshotView;
  /**
   * The changes since the previous delta view (or since change tracking began or was last
   * forgotten); undefined while another delta view is open.
   * @throws EddyError `EDDY_STATE` (internal) if the backend does not track changes.
   */
  deltaView(whole?: WholeKeyGroupRule): KeyedStateDeltaView | undefined;
  /** Forgets the changes tracked so far (a full snapshot becomes the next delta's base). */
  forgetChanges(): void;
  /**
   * Snapshots of the non-empty key groups of `range` (default: the whole range), ascending;
   * states sorted by name. A consistent copy later writes do not change.
   */
  snapshot(range?: KeyGroupRange): KeyGroupSnapshot[];
  /** Puts a key group's entries back (a chain's block: its deletions first). */
  restoreKeyGroup(snapshot: KeyGroupSnapshot | KeyGroupChanges): void;
  /** Restores a key group read and verified but not decoded; the backend decodes it when it likes. */
  restoreKeyGroupLazily(group: LazyKeyGroup): void;
  /**
   * Calls `fn` with every entry of state `name`, key groups ascending (live values: do not
   * mutate them). Used to index restored timers.
   */
  forEachEntry(
    name: string,
    fn: (value: unknown, key: NormalizedKey, keyGroup: number) => void,
  ): void;
  /** Number of distinct keys with state in any named state. */
  numKeys(): number;
  /** Number of (state, key) entries. */
  numEntries(): number;
  /** The key groups holding any state, ascending. */
  keyGroupsWithState(): number[];
  /** Per non-empty key group (ascending), its number of (state, key) entries. */
  keyGroupSizes(): Map<number, number>;
  /**
   * Drops all state and releases what the backend holds (an on-disk backend closes and deletes
   * its store). Every method throws afterwards; open views stay readable until released only
   * where the backend says so.
   */
  dispose(): void;
}
