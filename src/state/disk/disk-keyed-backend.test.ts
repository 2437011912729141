import { existsSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { EddyError } from '../../core/errors.js';
import type { KeyedStateBackend, KeyedStateDeltaView } from '../backend.js';
import { DISK_STORE_TUNING } from '../backend.testkit.js';
import {
  AggregatingStateDescriptor,
  ListStateDescriptor,
  MapStateDescriptor,
  ReducingStateDescriptor,
  ValueStateDescriptor,
} from '../descriptors.js';
import { HeapKeyedStateBackend } from '../heap-keyed-backend.js';
import type { KeyGroupSnapshot, LazyKeyGroup, NormalizedKey } from '../types.js';
import { adaptiveBatch } from './disk-keyed-backend.js';
import {
  DEFAULT_WRITE_BATCH,
  DiskKeyedStateBackend,
  diskBackendFactory,
  MAX_WRITE_BATCH,
} from './index.js';
import { MAX_KEY_BYTES } from './key-codec.js';
import type { StoreTuning } from './store.js';

const roots: string[] = [];
afterEach(() => {
  for (const r of roots.splice(0)) rmSync(r, { recursive: true, force: true });
});

const tempRoot = (): string => {
  const r = mkdtempSync(join(tmpdir(), 'eddy-disk-test-'));
  roots.push(r);
  return r;
};

const disk = (
  o: {
    start?: number;
    end?: number;
    maxP?: number;
    batch?: number;
    track?: boolean;
    dir?: string;
    tuning?: StoreTuning;
  } = {},
) =>
  new DiskKeyedStateBackend({
    keyGroupRange: { start: o.start ?? 0, end: o.end ?? 15 },
    maxParallelism: o.maxP ?? 16,
    trackChanges: o.track ?? false,
    writeBatch: o.batch ?? 4,
    dir: o.dir ?? join(tempRoot(), 'store'),
    storeTuning: o.tuning ?? DISK_STORE_TUNING,
    operatorUid: 'sum',
    subtaskIndex: 1,
  });

const catchError = (f: () => unknown): EddyError => {
  try {
    f();
  } catch (e) {
    if (e instanceof EddyError) return e;
    throw e;
  }
  throw new Error('expected an EddyError');
};

const sumAgg = {
  createAccumulator: () => ({ n: 0, sum: 0 }),
  add: (v: number, a: { n: number; sum: number }) => ({ n: a.n + 1, sum: a.sum + v }),
  getResult: (a: { n: number; sum: number }) => a.sum / a.n,
};

const allStates = (b: KeyedStateBackend) => ({
  v: b.getState(new ValueStateDescriptor<unknown>('v', { defaultValue: 'dflt' })),
  l: b.getState(new ListStateDescriptor<number>('l')),
  m: b.getState(new MapStateDescriptor<unknown, unknown>('m')),
  r: b.getState(new ReducingStateDescriptor<number>('r', (x, y) => x + y)),
  a: b.getState(new AggregatingStateDescriptor('a', sumAgg)),
});

/** Snapshots as sorted (state, key, value) triples: entry order may differ between backends. */
const canonical = (snaps: readonly KeyGroupSnapshot[]) =>
  snaps
    .flatMap((g) =>
      g.states.flatMap((s) =>
        s.entries.map(([k, v]) => {
          const value =
            s.kind === 'map'
              ? [...(v as Array<[unknown, unknown]>)].sort((x, y) =>
                  String(x[0]) < String(y[0]) ? -1 : 1,
                )
              : v;
          return JSON.stringify([g.keyGroup, s.name, s.kind ?? null, String(k), typeof k, value]);
        }),
      ),
    )
    .sort();

/** A random-ish workload on every state kind, the same on any backend. */
const workload = (b: KeyedStateBackend, n: number, seed = 1) => {
  const s = allStates(b);
  let x = seed;
  const rnd = (m: number) => {
    x = (x * 1103515245 + 12345) % 2147483648;
    return x % m;
  };
  for (let i = 0; i < n; i++) {
    const k = rnd(40);
    const key: NormalizedKey = k % 3 === 0 ? `k${k}` : k % 3 === 1 ? k : BigInt(k);
    b.setCurrentKey(key, k % (b.keyGroupRange.end + 1));
    switch (rnd(9)) {
      case 0:
        s.v.update({ i, nested: [i, `x${i}`] });
        break;
      case 1:
        s.v.clear();
        break;
      case 2:
        s.l.add(i);
        break;
      case 3:
        s.l.update(rnd(2) === 0 ? [] : [i, i + 1]);
        break;
      case 4:
        s.m.put(rnd(5), i);
        break;
      case 5:
        s.m.delete(rnd(5));
        break;
      case 6:
        s.r.add(i);
        break;
      case 7:
        s.a.add(i);
        break;
      default:
        if (rnd(4) === 0) s.m.clear();
        else s.r.clear();
    }
  }
};

describe('DiskKeyedStateBackend state kinds', () => {
  it.each([1, 3, 10_000])('reads back what it wrote, across flushes (writeBatch %i)', (batch) => {
    const b = disk({ batch });
    const s = allStates(b);
    b.setCurrentKey('a', 3);
    expect(s.v.value()).toBe('dflt');
    expect(s.l.get()).toEqual([]);
    expect(s.m.isEmpty()).toBe(true);
    expect(s.r.get()).toBeUndefined();
    expect(s.a.get()).toBeUndefined();
    s.v.update(new Map([[1, { deep: [1n, 'x'] }]]));
    s.l.add(1);
    s.l.addAll([2, 3]);
    s.m.put('x', 1);
    s.m.put(2, undefined);
    s.m.put({ obj: 1 }, 'o');
    s.r.add(5);
    s.r.add(6);
    s.a.add(2);
    s.a.add(4);
    b.setCurrentKey('b', 3);
    s.l.add(9);
    b.setCurrentKey('a', 3);
    expect(s.v.value()).toEqual(new Map([[1, { deep: [1n, 'x'] }]]));
    expect(s.l.get()).toEqual([1, 2, 3]);
    expect(s.m.get('x')).toBe(1);
    expect(s.m.has(2)).toBe(true);
    expect(s.m.get(2)).toBeUndefined();
    expect(s.m.get({ obj: 1 })).toBe('o'); // by value on disk
    expect(s.m.has('nope')).toBe(false);
    expect([...s.m.keys()]).toEqual([2, 'x', { obj: 1 }]); // byte order: numbers, strings, msgpack
    expect([...s.m.values()]).toEqual([undefined, 1, 'o']);
    expect(s.r.get()).toBe(11);
    expect(s.a.get()).toBe(3);
    s.m.delete('x');
    s.m.delete('absent');
    expect([...s.m.entries()]).toEqual([
      [2, undefined],
      [{ obj: 1 }, 'o'],
    ]);
    s.m.clear();
    expect(s.m.isEmpty()).toBe(true);
    s.m.put('again', 1);
    expect([...s.m.entries()]).toEqual([['again', 1]]);
    s.l.update([]);
    expect(s.l.get()).toEqual([]);
    s.v.update(undefined);
    expect(s.v.value()).toBe('dflt');
    expect(b.numEntries()).toBe(4); // a: m, r, a; b: l
    expect(b.numKeys()).toBe(2);
    expect([...b.keyGroupSizes()]).toEqual([[3, 4]]);
    expect(b.keyGroupsWithState()).toEqual([3]);
    b.dispose();
  });

  it('a list returned by get() is a copy; the caller array of addAll/update is copied', () => {
    const b = disk({ batch: 100 });
    const { l } = allStates(b);
    b.setCurrentKey('k', 0);
    const mine = [1, 2];
    l.update(mine);
    mine.push(3);
    l.get().push(99);
    expect(l.get()).toEqual([1, 2]);
    b.dispose();
  });

  it('keeps the heap errors: no current key, kind conflicts, out-of-range key groups', () => {
    const b = disk();
    const { v } = allStates(b);
    expect(catchError(() => v.value()).message).toMatch(/no current key/);
    const conflict = catchError(() => b.getState(new ListStateDescriptor('v')));
    expect([conflict.code, conflict.domain]).toEqual(['EDDY_STATE', 'user']);
    expect(conflict.message).toMatch(/already registered as value state/);
    const out = catchError(() => b.setCurrentKey('k', 16));
    expect([out.code, out.domain]).toEqual(['EDDY_STATE', 'internal']);
    expect(out.message).toMatch(/key group 16.*\[0, 15\].*wrong subtask/);
    b.dispose();
  });

  it('rejects keys longer than the store allows at the call, not at a later flush', () => {
    const b = disk({ batch: 1000 });
    const { v, m } = allStates(b);
    // header 4, tag 1, length 2 (3 bytes from 16,384 on): the key one byte too long
    b.setCurrentKey('x'.repeat(MAX_KEY_BYTES - 6), 0);
    const e = catchError(() => v.value());
    expect([e.code, e.domain]).toEqual(['EDDY_STATE', 'user']);
    expect(e.message).toMatch(
      new RegExp(`${MAX_KEY_BYTES + 1} bytes is too long.*${MAX_KEY_BYTES}`),
    );
    b.setCurrentKey('k', 0);
    expect(() => m.put('y'.repeat(MAX_KEY_BYTES), 1)).toThrow(/too long/);
    b.setCurrentKey('x'.repeat(MAX_KEY_BYTES - 7), 0); // MAX_KEY_BYTES: the largest key
    v.update(1);
    expect(b.snapshot()[0]!.states[0]!.entries[0]![1]).toBe(1);
    b.dispose();
  });

  it('a value msgpack cannot encode fails the flush with a user error naming state and key', () => {
    const b = disk({ batch: 2 });
    const { v } = allStates(b);
    b.setCurrentKey('k', 0);
    v.update(Symbol('s'));
    b.setCurrentKey('j', 0);
    const e = catchError(() => v.update(1));
    expect([e.code, e.domain, e.retriable]).toEqual(['EDDY_STATE', 'user', false]);
    expect(e.message).toMatch(/cannot store the value of state 'v' for key k/);
    b.dispose();
  });

  it('rejects a map key it cannot store with a user error', () => {
    const b = disk();
    const { m } = allStates(b);
    b.setCurrentKey('k', 0);
    const e = catchError(() => m.put(Symbol('s'), 1));
    expect([e.code, e.domain]).toEqual(['EDDY_STATE', 'user']);
    b.dispose();
  });
});

describe('the write-back overlay', () => {
  it('flushes every writeBatch pending writes, and before a snapshot', () => {
    const b = disk({ batch: 3 });
    const { v, m } = allStates(b);
    const stored = () => [...b.store.db.range(Buffer.alloc(0), undefined)].length;
    b.setCurrentKey('a', 0);
    v.update(1);
    v.update(2); // same key: still one pending write
    m.put('x', 1);
    expect(stored()).toBe(0);
    m.put('y', 1); // the third pending write
    expect(stored()).toBe(3);
    v.update(3);
    expect(stored()).toBe(3);
    expect(v.value()).toBe(3); // read from the overlay
    b.snapshot();
    expect(stored()).toBe(3);
    expect(b.snapshot()[0]!.states.find((s) => s.name === 'v')!.entries).toEqual([['a', 3]]);
    b.dispose();
  });
});

describe('the adaptive write batch', () => {
  it('grows with the store from DEFAULT_WRITE_BATCH to MAX_WRITE_BATCH; a fixed one stays', () => {
    expect(adaptiveBatch(0)).toBe(DEFAULT_WRITE_BATCH);
    expect(adaptiveBatch(16 * DEFAULT_WRITE_BATCH)).toBe(DEFAULT_WRITE_BATCH);
    expect(adaptiveBatch(16 * 50_000 + 15)).toBe(50_000);
    expect(adaptiveBatch(16 * MAX_WRITE_BATCH)).toBe(MAX_WRITE_BATCH);
    expect(adaptiveBatch(1e9)).toBe(MAX_WRITE_BATCH);
    const adaptive = new DiskKeyedStateBackend({
      keyGroupRange: { start: 0, end: 0 },
      maxParallelism: 1,
      dir: join(tempRoot(), 'adaptive'),
    });
    expect(adaptive.currentWriteBatch).toBe(DEFAULT_WRITE_BATCH);
    const entries = Array.from(
      { length: 16 * DEFAULT_WRITE_BATCH + 32 },
      (_, i) => [i, 1] as const,
    );
    adaptive.restoreKeyGroup({ keyGroup: 0, states: [{ name: 'v', kind: 'value', entries }] });
    expect(adaptive.currentWriteBatch).toBe(DEFAULT_WRITE_BATCH + 2);
    adaptive.dispose();
    const fixed = disk({ batch: 4 });
    expect(fixed.currentWriteBatch).toBe(4);
    fixed.dispose();
  });
});

/** Per key group, the entries a snapshot holds (a scan): what the kept counts must say. */
const sizesOf = (snaps: readonly KeyGroupSnapshot[]) =>
  new Map(snaps.map((g) => [g.keyGroup, g.states.reduce((n, s) => n + s.entries.length, 0)]));

describe('entry counts kept per key group (no scan for sizes and views)', () => {
  it.each([1, 2, 50])(
    'agree with a scan after writes, restores and registration (batch %i)',
    (batch) => {
      const b = disk({ batch });
      workload(b, 400, 3);
      expect(b.keyGroupSizes()).toEqual(sizesOf(b.snapshot()));
      // Restored onto existing state (recounted), then into an empty store (the bulk path).
      const heap = new HeapKeyedStateBackend({
        keyGroupRange: { start: 0, end: 15 },
        maxParallelism: 16,
      });
      workload(heap, 300, 9);
      for (const g of heap.snapshot()) b.restoreKeyGroup(g);
      expect(b.keyGroupSizes()).toEqual(sizesOf(b.snapshot()));
      const fresh = disk({ batch });
      for (const g of heap.snapshot()) fresh.restoreKeyGroup(g);
      expect(fresh.keyGroupSizes()).toEqual(sizesOf(heap.snapshot()));
      expect(fresh.numEntries()).toBe(heap.numEntries());
      expect(fresh.numKeys()).toBe(heap.numKeys());
      allStates(fresh); // registration converts the restored lists and maps
      expect(fresh.keyGroupSizes()).toEqual(sizesOf(heap.snapshot()));
      workload(fresh, 300, 11);
      expect(fresh.keyGroupSizes()).toEqual(sizesOf(fresh.snapshot()));
      expect(fresh.snapshotView().keyGroups).toEqual([...sizesOf(fresh.snapshot()).keys()]);
      b.dispose();
      fresh.dispose();
    },
  );
});

describe('snapshot views', () => {
  it('read the state of the moment they were taken while the job keeps writing', () => {
    const b = disk({ batch: 2 });
    workload(b, 300);
    const before = b.snapshot();
    const view = b.snapshotView();
    expect(view.keyGroups).toEqual(before.map((g) => g.keyGroup));
    workload(b, 300, 7);
    const again = b.snapshotView();
    expect(view.keyGroups.map((kg) => view.read(kg))).toEqual(before);
    expect(view.read(view.keyGroups[0]! === 0 ? 15 : 0).states.length).toBeGreaterThanOrEqual(0);
    view.release();
    view.release();
    expect(() => view.read(0)).toThrow(/released/);
    expect(again.keyGroups.map((kg) => again.read(kg))).toEqual(b.snapshot());
    expect(() => again.read(16)).toThrow(/key group 16/);
    again.release();
    b.dispose();
  });

  it('list every key group of the range holding state at the view, by seeks', () => {
    const b = disk({ start: 4, end: 11 });
    const { v } = allStates(b);
    b.setCurrentKey('x', 9);
    v.update(1);
    b.setCurrentKey('y', 5);
    v.update(1);
    const view = b.snapshotView();
    expect(view.keyGroups).toEqual([5, 9]);
    expect(view.read(6)).toEqual({ keyGroup: 6, states: [] });
    view.release();
    b.dispose();
  });
});

/** A delta view's reads, order-free (entry order may differ between backends). */
const canonicalDelta = (view: KeyedStateDeltaView) =>
  view.keyGroups.map((kg) => {
    const d = view.readDelta(kg);
    return JSON.stringify({
      kg,
      whole: d.whole,
      states: d.states.map((s) => ({
        name: s.name,
        entries: canonical([
          { keyGroup: kg, states: [{ name: s.name, kind: s.kind, entries: s.entries }] },
        ]),
        deleted: s.deleted.map(String).sort(),
      })),
    });
  });

describe('views taken with writes pending: the overlay is frozen, not written', () => {
  it.each([3, 1000])(
    'read exactly the state at the view; live reads and counts see it (batch %i)',
    (batch) => {
      const b = disk({ batch, track: true });
      const heap = new HeapKeyedStateBackend({
        keyGroupRange: { start: 0, end: 15 },
        maxParallelism: 16,
        trackChanges: true,
      });
      const stored = () => [...b.store.db.range(Buffer.alloc(0), undefined)].length;
      workload(b, 300, 1);
      workload(heap, 300, 1);
      const expected = canonical(heap.snapshot());
      const inStore = stored();
      const delta = b.deltaView()!;
      const heapDelta = heap.deltaView()!;
      const view = b.snapshotView();
      const twice = b.snapshotView(); // no write between: the same frozen overlay
      if (batch === 1000) expect(stored()).toBe(inStore); // the views wrote nothing
      expect(view.keyGroups).toEqual(heap.keyGroupsWithState());
      for (const kg of view.keyGroups) {
        expect(delta.liveEntries(kg)).toBe(heapDelta.liveEntries(kg));
      }
      // Live reads and writes go through the frozen overlay (read-modify-write of lists,
      // reductions, maps) until a flush or a view's first read stores it.
      workload(b, 300, 7);
      workload(heap, 300, 7);
      const third = b.snapshotView();
      workload(b, 200, 5);
      workload(heap, 200, 5);
      expect(canonical(view.keyGroups.map((kg) => view.read(kg)))).toEqual(expected);
      expect(canonical(twice.keyGroups.map((kg) => twice.read(kg)))).toEqual(expected);
      expect(canonicalDelta(delta)).toEqual(canonicalDelta(heapDelta));
      third.release(); // never read
      workload(b, 200, 9);
      workload(heap, 200, 9);
      expect(b.keyGroupSizes()).toEqual(heap.keyGroupSizes());
      expect(canonical(b.snapshot())).toEqual(canonical(heap.snapshot()));
      for (const v of [view, twice, delta]) v.release();
      expect(b.openSnapshotViews).toBe(0);
      b.dispose();
    },
  );

  it('a view still waiting for its frozen overlay when the backend is disposed is readable', () => {
    const b = disk({ batch: 1000 });
    const { v } = allStates(b);
    b.setCurrentKey('a', 3);
    v.update(1);
    const view = b.snapshotView();
    b.setCurrentKey('a', 3);
    v.update(2);
    b.dispose();
    expect(view.read(3).states).toEqual([{ name: 'v', kind: 'value', entries: [['a', 1]] }]);
    view.release();
    expect(existsSync(b.dir)).toBe(false);
  });
});

describe('snapshot views read in place (readMaps)', () => {
  type Maps = {
    states: Array<{
      name: string;
      count: number;
      mapValues: boolean;
      entries: ReadonlyMap<NormalizedKey, unknown>;
    }>;
  };
  const readMaps = (view: unknown, kg: number) =>
    (view as { readMaps(kg: number): Maps }).readMaps(kg);

  it('stream the entries of the view in slices (a for...of leaving early does not close them)', () => {
    const b = disk({ batch: 7 });
    workload(b, 600, 5);
    const view = b.snapshotView();
    workload(b, 200, 6); // later writes: not seen
    for (const kg of view.keyGroups) {
      const expected = view.read(kg);
      const maps = readMaps(view, kg);
      expect(maps.states.map((s) => s.name)).toEqual(expected.states.map((s) => s.name));
      maps.states.forEach((s, i) => {
        const it = s.entries.entries();
        const got: Array<[NormalizedKey, unknown]> = [];
        for (;;) {
          let n = 0;
          for (const [k, v] of it) {
            got.push([k, s.mapValues ? [...(v as Map<unknown, unknown>)] : v]);
            if (++n === 2) break; // a slice
          }
          if (n < 2) break;
        }
        expect(got).toEqual(expected.states[i]!.entries);
        expect(s.count).toBe(got.length);
        expect(s.entries.size).toBe(got.length);
      });
    }
    // An iterator left open is closed by release (its cursor would pin the transaction).
    const left = readMaps(view, view.keyGroups[0]!).states[0]!.entries.entries();
    left.next();
    view.release();
    expect(left.next().done).toBe(true);
    b.dispose();
    expect(existsSync(b.dir)).toBe(false);
  });
});

describe('delta views', () => {
  const withDelta = () => {
    const b = disk({ track: true, batch: 2 });
    return { b, s: allStates(b) };
  };

  it('hold the changes since the previous delta, with their values at the view', () => {
    const { b, s } = withDelta();
    b.setCurrentKey('a', 1);
    s.v.update(1);
    s.m.put('x', 1);
    b.setCurrentKey('b', 2);
    s.v.update(2);
    const d1 = b.deltaView()!;
    expect(b.deltaView()).toBeUndefined();
    expect(d1.keyGroups).toEqual([1, 2]);
    b.setCurrentKey('a', 1);
    s.v.clear();
    s.m.put('y', 2);
    expect(d1.readDelta(1)).toEqual({
      keyGroup: 1,
      states: [
        { name: 'm', kind: 'map', entries: [['a', [['x', 1]]]], deleted: [] },
        { name: 'v', kind: 'value', entries: [['a', 1]], deleted: [] },
      ],
      whole: false,
    });
    expect(d1.liveEntries(1)).toBe(2);
    d1.complete();
    d1.release();
    const d2 = b.deltaView()!;
    expect(d2.keyGroups).toEqual([1]);
    expect(d2.readDelta(1).states).toEqual([
      {
        name: 'm',
        kind: 'map',
        entries: [
          [
            'a',
            [
              ['x', 1],
              ['y', 2],
            ],
          ],
        ],
        deleted: [],
      },
      { name: 'v', kind: 'value', entries: [], deleted: ['a'] },
    ]);
    d2.release(); // not completed: the keys come back
    b.setCurrentKey('c', 3);
    s.r.add(1);
    const d3 = b.deltaView()!;
    expect(d3.keyGroups).toEqual([1, 3]);
    d3.complete();
    d3.release();
    b.forgetChanges();
    b.setCurrentKey('c', 3);
    s.r.get();
    expect(b.deltaView()!.keyGroups).toEqual([]);
    b.dispose();
  });

  it('capture a key group whole when the rule says so, deciding once with live counts', () => {
    const { b, s } = withDelta();
    for (const k of ['a', 'b', 'c']) {
      b.setCurrentKey(k, 4);
      s.v.update(k);
    }
    const first = b.deltaView()!;
    first.complete();
    first.release();
    b.setCurrentKey('a', 4);
    s.l.add(1);
    const asked: number[][] = [];
    const d = b.deltaView((kg, changed, live) => {
      asked.push([kg, changed, live]);
      return true;
    })!;
    b.setCurrentKey('b', 4);
    s.v.clear();
    expect(d.liveEntries(4)).toBe(4);
    const read = d.readDelta(4);
    expect(read.whole).toBe(true);
    expect(canonical([read])).toEqual(
      canonical([
        {
          keyGroup: 4,
          states: [
            { name: 'l', kind: 'list', entries: [['a', [1]]] },
            {
              name: 'v',
              kind: 'value',
              entries: [
                ['a', 'a'],
                ['b', 'b'],
                ['c', 'c'],
              ],
            },
          ],
        },
      ]),
    );
    d.readDelta(4);
    expect(asked).toEqual([[4, 1, 4]]);
    d.release();
    b.dispose();
  });

  it('throws without trackChanges', () => {
    const b = disk();
    expect(catchError(() => b.deltaView()).message).toMatch(/does not track changes/);
    b.dispose();
  });
});

describe('restore', () => {
  it('restores a heap snapshot into disk and back: equal snapshots, any split', () => {
    const heap = new HeapKeyedStateBackend({
      keyGroupRange: { start: 0, end: 15 },
      maxParallelism: 16,
    });
    workload(heap, 500);
    const snaps = heap.snapshot();
    // Into two disk backends at parallelism 2, key groups ascending (the bulk path).
    const left = disk({ end: 7 });
    const right = disk({ start: 8, end: 15 });
    for (const g of snaps) (g.keyGroup <= 7 ? left : right).restoreKeyGroup(g);
    const back = [...left.snapshot(), ...right.snapshot()];
    expect(canonical(back)).toEqual(canonical(snaps));
    // Registering after restore converts the snapshot form (map split per user key).
    const s = allStates(left);
    left.setCurrentKey(3, 3);
    heap.setCurrentKey(3, 3);
    const h = allStates(heap);
    expect([s.v.value(), s.l.get(), s.r.get(), s.a.get()]).toEqual([
      h.v.value(),
      h.l.get(),
      h.r.get(),
      h.a.get(),
    ]);
    expect(new Map(s.m.entries())).toEqual(new Map(h.m.entries()));
    // And back into a heap backend.
    const heap2 = new HeapKeyedStateBackend({
      keyGroupRange: { start: 0, end: 15 },
      maxParallelism: 16,
    });
    for (const g of [...left.snapshot(), ...right.snapshot()]) heap2.restoreKeyGroup(g);
    expect(canonical(heap2.snapshot())).toEqual(canonical(snaps));
    left.dispose();
    right.dispose();
  });

  it('restores over existing state (not the bulk path) and applies chain deletions first', () => {
    const b = disk({ batch: 1000 });
    const s = allStates(b);
    for (const k of ['a', 'b']) {
      b.setCurrentKey(k, 9);
      s.v.update(k);
      s.m.put('old', 1);
    }
    b.setCurrentKey('z', 12); // above key group 9: the store is not empty past it
    s.v.update('z');
    b.restoreKeyGroup({
      keyGroup: 9,
      states: [
        { name: 'm', kind: 'map', entries: [['a', [['new', 2]]]], deleted: ['b'] },
        { name: 'v', kind: 'value', entries: [['b', 'B']], deleted: ['a'] },
      ],
    });
    b.setCurrentKey('a', 9);
    expect([s.v.value(), [...s.m.entries()]]).toEqual(['dflt', [['new', 2]]]);
    b.setCurrentKey('b', 9);
    expect([s.v.value(), s.m.isEmpty()]).toEqual(['B', true]);
    b.dispose();
  });

  it('keeps restored unregistered states (and unknown kinds) in snapshots; checks kinds', () => {
    const b = disk();
    const g: KeyGroupSnapshot = {
      keyGroup: 2,
      states: [
        { name: 'gone', entries: [['k', [1, 2]]] },
        {
          name: 'm',
          kind: 'map',
          entries: [
            ['k', [['u', 1]]],
            ['e', []],
          ],
        },
        { name: 'l', kind: 'list', entries: [['k', []]] },
      ],
    };
    b.restoreKeyGroup(g);
    expect(b.snapshot()).toEqual([
      {
        keyGroup: 2,
        states: [
          { name: 'gone', entries: [['k', [1, 2]]] },
          { name: 'm', kind: 'map', entries: [['k', [['u', 1]]]] },
        ],
      },
    ]);
    const e = catchError(() => b.getState(new ValueStateDescriptor('m')));
    expect([e.code, e.domain]).toEqual(['EDDY_STATE', 'user']);
    expect(e.message).toMatch(/restored as map state but is now registered as value/);
    const m = b.getState(new MapStateDescriptor<string, number>('m'));
    b.setCurrentKey('k', 2);
    expect(m.get('u')).toBe(1);
    expect(() =>
      b.restoreKeyGroup({ keyGroup: 2, states: [{ name: 'm', kind: 'list', entries: [] }] }),
    ).toThrow(/cannot restore state 'm' as list state: it is registered as map/);
    b.dispose();
  });

  it('restores lazily restored key groups (and chains) at once', () => {
    const b = disk();
    const single: LazyKeyGroup = {
      keyGroup: 1,
      load: () => ({ keyGroup: 1, states: [{ name: 'v', kind: 'value', entries: [['a', 1]] }] }),
    };
    const chain: LazyKeyGroup = {
      keyGroup: 2,
      load: () => {
        throw new Error('not used');
      },
      loadChain: () => [
        {
          keyGroup: 2,
          states: [
            {
              name: 'v',
              kind: 'value',
              entries: [
                ['b', 1],
                ['c', 1],
              ],
            },
          ],
        },
        {
          keyGroup: 2,
          states: [{ name: 'v', kind: 'value', entries: [['d', 2]], deleted: ['b'] }],
        },
      ],
    };
    b.restoreKeyGroupLazily(single);
    b.restoreKeyGroupLazily(chain);
    expect(canonical(b.snapshot())).toEqual(
      canonical([
        { keyGroup: 1, states: [{ name: 'v', kind: 'value', entries: [['a', 1]] }] },
        {
          keyGroup: 2,
          states: [
            {
              name: 'v',
              kind: 'value',
              entries: [
                ['c', 1],
                ['d', 2],
              ],
            },
          ],
        },
      ]),
    );
    expect(() =>
      b.restoreKeyGroupLazily({ keyGroup: 3, load: () => ({ keyGroup: 4, states: [] }) }),
    ).toThrow(/decoded as key group 4/);
    b.dispose();
  });

  it('forEachEntry hands out live values (maps as Map) key groups ascending', () => {
    const b = disk({ batch: 2 });
    const timers = b.getState(new MapStateDescriptor<number, string>('__eddy.timers.event'));
    const seen: unknown[] = [];
    for (const [k, kg] of [
      ['x', 7],
      ['y', 2],
    ] as const) {
      b.setCurrentKey(k, kg);
      timers.put(10, k);
      timers.put(5, k);
    }
    b.forEachEntry('__eddy.timers.event', (value, key, kg) => seen.push([kg, key, value]));
    expect(seen).toEqual([
      [
        2,
        'y',
        new Map([
          [5, 'y'],
          [10, 'y'],
        ]),
      ],
      [
        7,
        'x',
        new Map([
          [5, 'x'],
          [10, 'x'],
        ]),
      ],
    ]);
    b.forEachEntry('nothing', () => seen.push('no'));
    expect(seen.length).toBe(2);
    b.dispose();
  });
});

describe('dispose and the store directory', () => {
  it('deletes the directory once every open view is released; methods throw after', () => {
    const b = disk({ track: true });
    const { v } = allStates(b);
    b.setCurrentKey('k', 0);
    v.update(1);
    const view = b.snapshotView();
    const delta = b.deltaView()!;
    b.dispose();
    expect(existsSync(b.dir)).toBe(true);
    expect(view.read(0).states.length).toBe(1);
    expect(delta.readDelta(0).states.length).toBe(1);
    view.release();
    expect(existsSync(b.dir)).toBe(true);
    delta.release();
    expect(existsSync(b.dir)).toBe(false);
    expect(() => b.snapshot()).toThrow(/disposed/);
    expect(() => b.setCurrentKey('k', 0)).toThrow(/disposed/);
    expect(() => v.value()).toThrow(EddyError);
    expect(b.numKeys()).toBe(0);
  });

  it('a directory with a stale store (a process that died) starts empty', () => {
    const dir = join(tempRoot(), 'store');
    const tiny = { memtableEntries: 1, maxMemtables: 1 }; // every flush writes a run file
    const old = disk({ dir, tuning: tiny });
    const { v } = allStates(old);
    old.setCurrentKey('k', 0);
    v.update(1);
    old.snapshot(); // flushed to the store's files; then the process dies: nothing disposed
    const runs = () => readdirSync(dir).filter((f) => f.startsWith('run-'));
    expect(runs().length).toBeGreaterThan(0);
    const again = disk({ dir });
    expect(runs()).toEqual([]);
    const s = allStates(again);
    again.setCurrentKey('k', 0);
    expect(s.v.value()).toBe('dflt');
    expect([...again.store.db.range(Buffer.alloc(0), undefined)]).toEqual([]);
    again.dispose();
  });

  it('the factory gives each subtask its own directory under the state dir', () => {
    const root = join(tempRoot(), 'state', 'deep');
    const f = diskBackendFactory(root);
    const opts = {
      keyGroupRange: { start: 0, end: 3 },
      maxParallelism: 8,
      operatorUid: 'my op/1',
      subtaskIndex: 2,
    };
    const a = f(opts);
    const b = f(opts);
    const dirs = readdirSync(root);
    expect(dirs.length).toBe(2);
    for (const d of dirs) expect(d).toMatch(/^my_op_1-2-\d+-\d+-\d+$/);
    a.dispose();
    b.dispose();
    expect(readdirSync(root)).toEqual([]);
  });
});

describe('store errors name the path and the subtask', () => {
  it('a directory that cannot be created (its parent is a file)', () => {
    const file = join(tempRoot(), 'file');
    writeFileSync(file, 'x');
    const e = catchError(() => disk({ dir: join(file, 'store') }));
    expect([e.code, e.domain, e.retriable]).toEqual(['EDDY_STATE', 'external', false]);
    expect(e.message).toContain(join(file, 'store'));
    expect(e.message).toContain("operator 'sum' subtask 1");
  });

  it('a directory that cannot be created, even as root (under /sys)', () => {
    const dir = '/sys/eddy-disk-backend-test/store';
    const e = catchError(() => disk({ dir }));
    expect([e.code, e.domain, e.retriable]).toEqual(['EDDY_STATE', 'external', false]);
    expect(e.message).toContain(dir);
    expect(e.message).toContain('cannot create the directory');
  });

  it('files deleted under a running job: the next flush or view fails, retriable', () => {
    const b = disk({ batch: 2 });
    const { v } = allStates(b);
    b.setCurrentKey('k', 0);
    v.update(1);
    rmSync(b.dir, { recursive: true, force: true });
    const e = catchError(() => b.snapshotView());
    expect([e.code, e.domain, e.retriable]).toEqual(['EDDY_STATE', 'external', true]);
    expect(e.message).toMatch(/deleted or replaced/);
    expect(e.message).toContain(b.dir);
    b.setCurrentKey('j', 0);
    expect(() => v.update(2)).toThrow(/deleted or replaced/); // the overlay is full: flush
    b.dispose();
  });

  it('a full disk (ENOSPC from the kernel): the flush fails, retriable, naming the path', () => {
    const b = disk({ batch: 2 });
    const { v } = allStates(b);
    // The store's next run files are /dev/full, where every write fails with ENOSPC.
    for (let i = 1; i <= 4; i++) {
      symlinkSync('/dev/full', join(b.dir, `run-${String(i).padStart(8, '0')}.dat`));
    }
    b.setCurrentKey('k', 0);
    v.update(1);
    b.setCurrentKey('j', 0);
    const e = catchError(() => v.update(2)); // the overlay is full: flush
    expect([e.code, e.domain, e.retriable]).toEqual(['EDDY_STATE', 'external', true]);
    expect(e.message).toMatch(/a write failed.*ENOSPC/);
    expect(e.message).toContain(b.dir);
    expect(e.message).toContain("operator 'sum' subtask");
    b.dispose();
  });
});
