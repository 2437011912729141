/**
 * Heap backend internals, beyond the contract every backend passes
 * (keyed-backend.contract.test.ts): copy-on-write snapshot views (what the synchronous part
 * touches, what a write copies and when), insertion order of entries, and what stays readable
 * after dispose.
 */
import { describe, expect, it } from 'vitest';
import { EddyError } from '../core/errors.js';
import {
  AggregatingStateDescriptor,
  ListStateDescriptor,
  MapStateDescriptor,
  ReducingStateDescriptor,
  ValueStateDescriptor,
} from './descriptors.js';
import { HeapKeyedStateBackend } from './heap-keyed-backend.js';

const backend = (start = 0, end = 127, maxParallelism = 128) =>
  new HeapKeyedStateBackend({ keyGroupRange: { start, end }, maxParallelism });

const catchError = (f: () => unknown): EddyError => {
  try {
    f();
  } catch (e) {
    if (e instanceof EddyError) return e;
    throw e;
  }
  throw new Error('expected an EddyError');
};

/** Fills one key with every kind of state. */
const fill = (b: HeapKeyedStateBackend, key: string, kg: number) => {
  b.setCurrentKey(key, kg);
  b.getState(new ValueStateDescriptor<string>('v')).update(`v-${key}`);
  b.getState(new ListStateDescriptor<number>('l')).addAll([1, 2]);
  b.getState(new MapStateDescriptor<string, number>('m')).put('x', 1);
  b.getState(new ReducingStateDescriptor<number>('r', (a, c) => a + c)).add(5);
  const count = {
    createAccumulator: () => 0,
    add: (_: unknown, n: number) => n + 1,
    getResult: (n: number) => n,
  };
  b.getState(new AggregatingStateDescriptor('a', count)).add('e');
};

describe('HeapKeyedStateBackend order and dispose', () => {
  it('keeps entries, and map-state keys, in insertion order', () => {
    const b = backend();
    const v = b.getState(new ValueStateDescriptor<number>('v'));
    const m = b.getState(new MapStateDescriptor<string, number>('m'));
    for (const key of ['z', 'a', 'm']) {
      b.setCurrentKey(key, 3);
      v.update(1);
      m.put('y', 1);
      m.put('x', 2);
    }
    expect(b.snapshotKeyGroup(3).states).toEqual([
      {
        name: 'm',
        kind: 'map',
        entries: ['z', 'a', 'm'].map((k) => [
          k,
          [
            ['y', 1],
            ['x', 2],
          ],
        ]),
      },
      { name: 'v', kind: 'value', entries: ['z', 'a', 'm'].map((k) => [k, 1]) },
    ]);
    expect([...m.keys()]).toEqual(['y', 'x']);
  });

  it('says whether a delta view is open', () => {
    const b = new HeapKeyedStateBackend({
      keyGroupRange: { start: 0, end: 7 },
      maxParallelism: 8,
      trackChanges: true,
    });
    b.setCurrentKey('a', 0);
    b.getState(new ValueStateDescriptor<number>('v')).update(1);
    const first = b.deltaView()!;
    expect(b.deltaViewOpen).toBe(true);
    expect(b.deltaView()).toBeUndefined();
    first.complete();
    first.release();
    expect(b.deltaViewOpen).toBe(false);
  });

  it('counts no keys after dispose', () => {
    const b = backend();
    fill(b, 'p', 40);
    b.dispose();
    expect(b.numKeys()).toBe(0);
  });
});

/** Counts calls of `methods` of `proto` while `f` runs (then puts the originals back). */
const countCalls = <T extends object>(
  proto: T,
  methods: ReadonlyArray<string | symbol>,
  f: () => void,
): number => {
  const target = proto as Record<string | symbol, unknown>;
  const originals = methods.map((m) => target[m] as (...args: unknown[]) => unknown);
  let calls = 0;
  methods.forEach((m, i) => {
    const original = originals[i]!;
    target[m] = function (this: unknown, ...args: unknown[]) {
      calls++;
      return original.apply(this, args);
    };
  });
  try {
    f();
  } finally {
    methods.forEach((m, i) => {
      target[m] = originals[i];
    });
  }
  return calls;
};

describe('HeapKeyedStateBackend snapshot views (copy-on-write)', () => {
  const V = new ValueStateDescriptor<number>('v');
  const L = new ListStateDescriptor<number>('l');
  const M = new MapStateDescriptor<string, number>('m');

  /** `keys` keys spread over all 128 key groups, each with value, list and map state. */
  const filled = (keys: number) => {
    const b = backend();
    const [v, l, m] = [b.getState(V), b.getState(L), b.getState(M)];
    for (let k = 0; k < keys; k++) {
      b.setCurrentKey(k, k % 128);
      v.update(k);
      l.add(k);
      m.put('x', k);
    }
    return b;
  };

  it('take no entry in the synchronous part: the same work for 128 keys as for 100,000', () => {
    const ITERATION: Array<string | symbol> = [
      Symbol.iterator,
      'entries',
      'keys',
      'values',
      'forEach',
    ];
    const work = (keys: number) => {
      const b = filled(keys);
      b.snapshotView().release(); // warm the sorted-names cache
      const counts = { mapIteration: 0, mapOther: 0, arrayFrom: 0, slice: 0 };
      let view: ReturnType<HeapKeyedStateBackend['snapshotView']> | undefined;
      const take = () => {
        view = b.snapshotView();
      };
      counts.mapIteration = countCalls(Map.prototype, ITERATION, () => {
        counts.mapOther = countCalls(Map.prototype, ['get', 'has', 'set', 'delete'], () => {
          counts.arrayFrom = countCalls(Array, ['from'], () => {
            counts.slice = countCalls(Array.prototype, ['slice'], take);
          });
        });
      });
      expect(view!.keyGroups.length).toBe(128);
      expect(b.cowCopies).toBe(0);
      return counts;
    };
    const small = work(128);
    expect(small.mapIteration).toBe(0); // no entry is visited
    expect(small.arrayFrom).toBe(0);
    expect(small.slice).toBe(3); // one copy of each table's key-group slots, no list copied
    expect(work(100_000)).toEqual(small);
  });

  it('copy a shared key group once, a shared list or map once per key, nothing after release', () => {
    const b = backend();
    const [v, l, m] = [b.getState(V), b.getState(L), b.getState(M)];
    for (const key of ['a', 'b']) {
      b.setCurrentKey(key, 3);
      v.update(1);
      l.add(1);
      m.put('x', 1);
    }
    const before = structuredClone(b.snapshot());
    const view = b.snapshotView();
    b.setCurrentKey('a', 3);
    v.update(2);
    v.update(3);
    expect(b.cowCopies).toBe(1); // v's key group 3
    l.add(2);
    l.add(3);
    expect(b.cowCopies).toBe(3); // l's key group 3 and a's list
    m.put('y', 2);
    m.put('z', 3);
    expect(b.cowCopies).toBe(5); // m's key group 3 and a's map
    b.setCurrentKey('b', 3);
    l.addAll([4, 5]);
    m.delete('x'); // b's map holds only x: the entry goes, its map is not copied
    expect(b.cowCopies).toBe(6); // b's list
    b.setCurrentKey('c', 3);
    l.add(1); // a new key's list is not shared
    l.add(2);
    b.setCurrentKey('a', 9);
    v.update(1); // a key group without state when the view was taken
    expect(b.cowCopies).toBe(6);

    expect(view.keyGroups).toEqual([3]);
    expect(view.read(3)).toEqual(before[0]);
    expect(view.read(9)).toEqual({ keyGroup: 9, states: [] });
    expect(b.snapshotKeyGroup(3).states.find((s) => s.name === 'l')?.entries).toEqual([
      ['a', [1, 2, 3]],
      ['b', [1, 4, 5]],
      ['c', [1, 2]],
    ]);

    view.release();
    view.release(); // idempotent
    expect(b.openSnapshotViews).toBe(0);
    b.setCurrentKey('b', 3);
    l.add(6);
    v.clear();
    m.put('q', 1);
    expect(b.cowCopies).toBe(6);
    // A new view shares again.
    const again = b.snapshotView();
    l.add(7);
    expect(b.cowCopies).toBe(8);
    expect(again.read(3).states.find((s) => s.name === 'l')?.entries).toContainEqual([
      'b',
      [1, 4, 5, 6],
    ]);
    again.release();
  });

  it('reject reads after release and outside the range; stay readable after dispose', () => {
    const b = backend(10, 19, 20);
    fill(b, 'p', 12);
    const view = b.snapshotView();
    const out = catchError(() => view.read(20));
    expect(out.domain).toBe('internal');
    expect(out.message).toMatch(/key group 20 .*\[10, 19\]/);
    expect(() => view.read(9)).toThrow(/key group 9/);
    const expected = b.snapshotKeyGroup(12);
    b.dispose();
    expect(view.read(12)).toEqual(expected);
    view.release();
    expect(() => view.read(12)).toThrow(/released snapshot view/);
    expect(() => b.snapshotView()).toThrow(/disposed/);
  });
});
