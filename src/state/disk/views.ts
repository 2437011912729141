/**
 * Snapshot and delta views of the disk backend: each holds an lmdb read transaction, a
 * consistent image of the store at the moment it was taken, until it is released, and reads
 * key groups from it while the job keeps writing (lmdb keeps the pages the transaction sees;
 * the file grows by what is rewritten meanwhile).
 */
import type { Transaction } from 'lmdb';
import { EddyError } from '../../core/errors.js';
import type { KeyedStateDeltaView, KeyGroupDeltaRead, WholeKeyGroupRule } from '../backend.js';
import type { KeyGroupRange } from '../state-table.js';
import type { KeyedStateSnapshotView, KeyGroupSnapshot, NormalizedKey } from '../types.js';
import { KeyWriter } from './key-codec.js';
import { countKeyGroup, readKeyGroup, readOne } from './scan.js';
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
  private readonly live = new Map<number, number>();
  private readonly wholeDecided = new Map<number, boolean>();
  private readonly byId: ReadonlyMap<number, TableImage>;
  private readonly w = new KeyWriter();

  /** `tables` sorted by name; `captured` per table id, per key-group slot, the changed keys. */
  constructor(
    private readonly db: Db,
    private readonly range: KeyGroupRange,
    readonly keyGroups: readonly number[],
    private readonly tables: readonly TableImage[],
    private readonly captured: ReadonlyMap<number, ReadonlyArray<Set<NormalizedKey> | undefined>>,
    txn: Transaction,
    private readonly whole: WholeKeyGroupRule | undefined,
    private readonly onRelease: (completed: boolean) => void,
  ) {
    this.txn = txn;
    this.byId = new Map(tables.map((t) => [t.id, t]));
  }

  liveEntries(keyGroup: number): number {
    const txn = this.check(keyGroup);
    let n = this.live.get(keyGroup);
    if (n === undefined) {
      n = this.keyGroups.includes(keyGroup) ? countKeyGroup(this.db, keyGroup, this.byId, txn) : 0;
      this.live.set(keyGroup, n);
    }
    return n;
  }

  readDelta(keyGroup: number): KeyGroupDeltaRead {
    const txn = this.check(keyGroup);
    const index = keyGroup - this.range.start;
    if (this.isWhole(keyGroup, index)) {
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

  /** The whole rule, decided once per key group on first need (the view is consistent). */
  private isWhole(keyGroup: number, index: number): boolean {
    if (this.whole === undefined) return false;
    let decided = this.wholeDecided.get(keyGroup);
    if (decided === undefined) {
      let changed = 0;
      for (const t of this.tables) changed += this.captured.get(t.id)?.[index]?.size ?? 0;
      decided = changed > 0 && this.whole(keyGroup, changed, this.liveEntries(keyGroup)) === true;
      this.wholeDecided.set(keyGroup, decided);
    }
    return decided;
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
