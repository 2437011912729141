/**
 * Snapshot and delta views of the disk backend: each holds an lmdb read transaction, a
 * consistent image of the store at the moment it was taken, until it is released, and reads
 * key groups from it while the job keeps writing (lmdb keeps the pages the transaction sees;
 * the file grows by what is rewritten meanwhile).
 */
import type { Transaction } from 'lmdb';
import { EddyError } from '../../core/errors.js';
import type { KeyedStateDeltaView, KeyGroupDeltaRead } from '../backend.js';
import type { KeyGroupRange } from '../state-table.js';
import type { KeyedStateSnapshotView, KeyGroupSnapshot, NormalizedKey } from '../types.js';
import { KeyWriter } from './key-codec.js';
import { readKeyGroup, readOne } from './scan.js';
import type { Db } from './store.js';
import type { TableImage } from './table.js';

const viewError = (message: string) => new EddyError('EDDY_STATE', message, { domain: 'internal' });

const checkRange = (range: KeyGroupRange, keyGroup: number, what: string): void => {
  if (!Number.isInteger(keyGroup) || keyGroup < range.start || keyGroup > range.end) {
    throw viewError(
      `cannot read key group ${keyGroup} of a ${what} of key groups [${range.start}, ${range.end}]`,
    );
  }
};

/** {@link KeyedStateSnapshotView} of the disk backend. */
export class DiskSnapshotView implements KeyedStateSnapshotView {
  private txn: Transaction | undefined;

  constructor(
    private readonly db: Db,
    private readonly range: KeyGroupRange,
    readonly keyGroups: readonly number[],
    private readonly images: ReadonlyMap<number, TableImage>,
    txn: Transaction,
    private readonly onRelease: () => void,
  ) {
    this.txn = txn;
  }

  read(keyGroup: number): KeyGroupSnapshot {
    const txn = this.txn;
    if (txn === undefined) {
      throw viewError(`cannot read key group ${keyGroup} of a released snapshot view`);
    }
    checkRange(this.range, keyGroup, 'snapshot view');
    return readKeyGroup(this.db, keyGroup, this.images, txn);
  }

  release(): void {
    const txn = this.txn;
    if (txn === undefined) return;
    this.txn = undefined;
    txn.done();
    this.onRelease();
  }
}

type StateDelta = KeyGroupDeltaRead['states'][number];

/** {@link KeyedStateDeltaView} of the disk backend: captured change sets read in its transaction. */
export class DiskDeltaView implements KeyedStateDeltaView {
  private txn: Transaction | undefined;
  private completed = false;
  private readonly byId: ReadonlyMap<number, TableImage>;
  private readonly w = new KeyWriter();

  /**
   * `tables` sorted by name; `captured` per table id, per key-group slot, the changed keys;
   * `live` the changed key groups' entries and `whole` those captured whole, at the view.
   */
  constructor(
    private readonly db: Db,
    private readonly range: KeyGroupRange,
    readonly keyGroups: readonly number[],
    private readonly tables: readonly TableImage[],
    private readonly captured: ReadonlyMap<number, ReadonlyArray<Set<NormalizedKey> | undefined>>,
    txn: Transaction,
    private readonly live: ReadonlyMap<number, number>,
    private readonly whole: ReadonlySet<number>,
    private readonly onRelease: (completed: boolean) => void,
  ) {
    this.txn = txn;
    this.byId = new Map(tables.map((t) => [t.id, t]));
  }

  liveEntries(keyGroup: number): number {
    this.check(keyGroup);
    return this.live.get(keyGroup) ?? 0;
  }

  readDelta(keyGroup: number): KeyGroupDeltaRead {
    const txn = this.check(keyGroup);
    const index = keyGroup - this.range.start;
    if (this.whole.has(keyGroup)) {
      const snap = readKeyGroup(this.db, keyGroup, this.byId, txn);
      return {
        keyGroup,
        states: snap.states.map((s) => ({ ...s, deleted: [] })),
        whole: true,
      };
    }
    const states: StateDelta[] = [];
    for (const t of this.tables) {
      const keys = this.captured.get(t.id)?.[index];
      if (keys === undefined || keys.size === 0) continue;
      const entries: Array<readonly [NormalizedKey, unknown]> = [];
      const deleted: NormalizedKey[] = [];
      for (const key of keys) {
        const value = readOne(this.db, keyGroup, t, key, txn, this.w);
        if (value === undefined) deleted.push(key);
        else entries.push([key, value]);
      }
      states.push(
        t.kind === undefined
          ? { name: t.name, entries, deleted }
          : { name: t.name, kind: t.kind, entries, deleted },
      );
    }
    return { keyGroup, states, whole: false };
  }

  complete(): void {
    this.completed = true;
  }

  release(): void {
    const txn = this.txn;
    if (txn === undefined) return;
    this.txn = undefined;
    txn.done();
    this.onRelease(this.completed);
  }

  private check(keyGroup: number): Transaction {
    const txn = this.txn;
    if (txn === undefined || !Number.isInteger(keyGroup)) {
      throw viewError(`cannot read key group ${keyGroup} of this delta view`);
    }
    checkRange(this.range, keyGroup, 'delta view');
    return txn;
  }
}
