/**
 * Snapshot and delta views of the disk backend: each holds a store snapshot, a consistent
 * image of the store as of the view (taken once the overlay the view froze is stored: at the
 * view's first read or the backend's next flush), until it is released, and reads key groups
 * from it while the job keeps writing (the snapshot holds the run files it saw: merges meanwhile
 * write new ones and the held ones are deleted at release).
 */

import { EddyError } from '../../core/errors.js';
import type { KeyedStateDeltaView, KeyGroupDeltaRead } from '../backend.js';
import type { KeyGroupRange } from '../state-table.js';
import type { KeyedStateSnapshotView, KeyGroupSnapshot, NormalizedKey } from '../types.js';
import { cursor, HEADER_BYTES, KeyWriter, prefixEnd, readKey, readUserKey } from './key-codec.js';
import type { LsmSnapshot as Transaction } from './lsm/index.js';
import { readKeyGroup, readOne, sameKey } from './scan.js';
import type { Db } from './store.js';
import type { TableImage } from './table.js';
import { unpackValueAt } from './value-codec.js';

const viewError = (message: string) => new EddyError('EDDY_STATE', message, { domain: 'internal' });

const checkRange = (range: KeyGroupRange, keyGroup: number, what: string): void => {
  if (!Number.isInteger(keyGroup) || keyGroup < range.start || keyGroup > range.end) {
    throw viewError(
      `cannot read key group ${keyGroup} of a ${what} of key groups [${range.start}, ${range.end}]`,
    );
  }
};

/**
 * One key group's states for a checkpoint writer to encode straight from the store
 * (`KeyGroupMaps` of checkpoint/keyed-block.ts; declared here, as the heap backend does, since
 * the state layer does not import the checkpoint layer).
 */
interface StoredKeyGroup {
  readonly keyGroup: number;
  readonly states: ReadonlyArray<{
    readonly name: string;
    readonly kind: KeyGroupSnapshot['states'][number]['kind'];
    readonly mapValues: boolean;
    readonly entries: ReadonlyMap<NormalizedKey, unknown>;
    readonly count: number;
  }>;
}

/** {@link KeyedStateSnapshotView} of the disk backend. */
export class DiskSnapshotView implements KeyedStateSnapshotView {
  private txn: Transaction | undefined;
  private released = false;
  /** Iterators over the store still open (a writer paused inside a state): closed on release. */
  private readonly open = new Set<StoredIterator>();
  private readonly sorted: readonly TableImage[];

  /** `counts`: per state id, per key-group slot, its entries at the view. */
  constructor(
    private readonly db: Db,
    private readonly range: KeyGroupRange,
    readonly keyGroups: readonly number[],
    private readonly images: ReadonlyMap<number, TableImage>,
    private readonly counts: ReadonlyMap<number, Float64Array>,
    private readonly storeFrozen: () => void,
    private readonly onRelease: () => void,
  ) {
    this.sorted = [...images.values()].sort((a, b) =>
      a.name < b.name ? -1 : a.name > b.name ? 1 : 0,
    );
  }

  read(keyGroup: number): KeyGroupSnapshot {
    return readKeyGroup(this.db, keyGroup, this.images, this.check(keyGroup));
  }

  /**
   * The key group's states as the store holds them at the view, each a map-like object whose
   * entries stream from the store in the view's snapshot (a checkpoint writer encodes them
   * in slices, pausing inside a large state, without an array of the key group's entries):
   * values in live form (map state's a `Map`). The same entries in the same order as
   * {@link read}. Readable until the view is released (which closes iterators left open).
   */
  readMaps(keyGroup: number): StoredKeyGroup {
    const txn = this.check(keyGroup);
    const index = keyGroup - this.range.start;
    const states: Array<StoredKeyGroup['states'][number]> = [];
    for (const image of this.sorted) {
      const count = this.counts.get(image.id)?.[index] ?? 0;
      if (count === 0) continue;
      const entries = new StoredEntries(count, () => this.iterate(keyGroup, image, txn));
      states.push({
        name: image.name,
        kind: image.kind,
        mapValues: image.layout === 'map',
        entries: entries as unknown as ReadonlyMap<NormalizedKey, unknown>,
        count,
      });
    }
    return { keyGroup, states };
  }

  /** @internal The backend takes the view's store snapshot once the state it shows is stored. */
  attach(txn: Transaction): void {
    this.txn = txn;
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    const txn = this.txn;
    this.txn = undefined;
    // Open cursors read the snapshot's runs: close them first.
    for (const it of [...this.open]) it.close();
    txn?.release();
    this.onRelease();
  }

  private check(keyGroup: number): Transaction {
    if (this.released) {
      throw viewError(`cannot read key group ${keyGroup} of a released snapshot view`);
    }
    checkRange(this.range, keyGroup, 'snapshot view');
    if (this.txn === undefined) this.storeFrozen(); // attaches the snapshot
    return this.txn!;
  }

  /**
   * One state's entries of one key group, in store order, live form; tracked while open.
   * Hazard: the iterator has no `return()`, like a `Map`'s: a writer's `for...of` that stops
   * after a slice must not close it (a generator's would be closed, and the next slice would
   * find it exhausted). It closes itself at its end, or the view closes it on release.
   */
  private iterate(keyGroup: number, image: TableImage, txn: Transaction): StoredIterator {
    const it = new StoredIterator(storedEntries(this.db, keyGroup, image, txn), (done) =>
      this.open.delete(done),
    );
    this.open.add(it);
    return it;
  }
}

/** An iterator over a generator that a `for...of` leaving early does not close. */
class StoredIterator implements IterableIterator<[NormalizedKey, unknown]> {
  private finished = false;

  constructor(
    private readonly inner: Generator<[NormalizedKey, unknown]>,
    private readonly onEnd: (it: StoredIterator) => void,
  ) {}

  next(): IteratorResult<[NormalizedKey, unknown]> {
    if (this.finished) return { done: true, value: undefined };
    const r = this.inner.next();
    if (r.done === true) this.end();
    return r;
  }

  [Symbol.iterator](): this {
    return this;
  }

  /** Closes the store cursor (idempotent). */
  close(): void {
    if (this.finished) return;
    this.inner.return(undefined);
    this.end();
  }

  private end(): void {
    this.finished = true;
    this.onEnd(this);
  }
}

/** Entries of one state of one key group in the store, in store order, values in live form. */
function* storedEntries(
  db: Db,
  keyGroup: number,
  image: TableImage,
  txn: Transaction,
): Generator<[NormalizedKey, unknown]> {
  const start = new KeyWriter().header(keyGroup, image.id).copy();
  const sc = db.scan(start, prefixEnd(start), txn);
  if (image.layout === 'plain') {
    while (sc.next()) {
      const { buf, vOff } = sc;
      yield [readKey(buf, sc.kOff + HEADER_BYTES), unpackValueAt(buf, vOff, vOff + sc.vLen)];
    }
    return;
  }
  let current: NormalizedKey | undefined;
  let map: Map<unknown, unknown> | undefined;
  while (sc.next()) {
    const { buf, vOff } = sc;
    const k = readKey(buf, sc.kOff + HEADER_BYTES);
    const uk = readUserKey(buf, cursor.pos);
    if (map === undefined || !sameKey(current, k)) {
      if (map !== undefined) yield [current!, map];
      current = k;
      map = new Map();
    }
    map.set(uk, unpackValueAt(buf, vOff, vOff + sc.vLen));
  }
  if (map !== undefined) yield [current!, map];
}

/**
 * The part of `ReadonlyMap` a checkpoint writer uses (`size`, `forEach`, `entries`), over a
 * state's entries streamed from the store.
 */
class StoredEntries {
  constructor(
    readonly size: number,
    private readonly open: () => StoredIterator,
  ) {}

  entries(): StoredIterator {
    return this.open();
  }

  [Symbol.iterator](): StoredIterator {
    return this.open();
  }

  forEach(fn: (value: unknown, key: NormalizedKey) => void): void {
    const it = this.open();
    try {
      for (let r = it.next(); r.done !== true; r = it.next()) fn(r.value[1], r.value[0]);
    } finally {
      it.close();
    }
  }
}

type StateDelta = KeyGroupDeltaRead['states'][number];

/** {@link KeyedStateDeltaView} of the disk backend: captured change sets read in its snapshot. */
export class DiskDeltaView implements KeyedStateDeltaView {
  private txn: Transaction | undefined;
  private released = false;
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
    private readonly live: ReadonlyMap<number, number>,
    private readonly whole: ReadonlySet<number>,
    private readonly storeFrozen: () => void,
    private readonly onRelease: (completed: boolean) => void,
  ) {
    this.byId = new Map(tables.map((t) => [t.id, t]));
  }

  liveEntries(keyGroup: number): number {
    this.checkLive(keyGroup);
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

  /** @internal The backend takes the view's store snapshot once the state it shows is stored. */
  attach(txn: Transaction): void {
    this.txn = txn;
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    const txn = this.txn;
    this.txn = undefined;
    txn?.release();
    this.onRelease(this.completed);
  }

  private checkLive(keyGroup: number): void {
    if (this.released || !Number.isInteger(keyGroup)) {
      throw viewError(`cannot read key group ${keyGroup} of this delta view`);
    }
    checkRange(this.range, keyGroup, 'delta view');
  }

  private check(keyGroup: number): Transaction {
    this.checkLive(keyGroup);
    if (this.txn === undefined) this.storeFrozen(); // attaches the snapshot
    return this.txn!;
  }
}
