/**
 * The keyed state backend contract (state/backend.ts), run against every backend (heap and
 * disk, `BACKENDS`): state registration, the current key, snapshots, restore, statistics,
 * dispose, and snapshot views. Heap internals (copy-on-write bookkeeping) are tested in
 * heap-keyed-backend.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { EddyError, InvalidArgumentError } from '../core/errors.js';
import type { KeyedStateBackend } from './backend.js';
import { BACKENDS, canonicalSnapshots } from './backend.testkit.js';
import {
  AggregatingStateDescriptor,
  ListStateDescriptor,
  MapStateDescriptor,
  ReducingStateDescriptor,
  ValueStateDescriptor,
} from './descriptors.js';
import type { KeyGroupSnapshot } from './types.js';

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
const fill = (b: KeyedStateBackend, key: string, kg: number) => {
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

/** One key group's snapshot (`states` empty if it has none), through the contract's `snapshot`. */
const snapshotKeyGroup = (b: KeyedStateBackend, keyGroup: number): KeyGroupSnapshot =>
  b.snapshot({ start: keyGroup, end: keyGroup })[0] ?? { keyGroup, states: [] };

describe.each(BACKENDS)('$name backend: keyed state backend contract', ({ create }) => {
  const backend = (start = 0, end = 127, maxParallelism = 128) =>
    create({ keyGroupRange: { start, end }, maxParallelism });

  describe('construction', () => {
    it('validates the range and max parallelism', () => {
      expect(() => backend(0, 0, 0)).toThrow(InvalidArgumentError);
      expect(() => backend(5, 4)).toThrow(/key-group range \[5, 4\]/);
      expect(() => backend(0, 128)).toThrow(InvalidArgumentError);
      expect(() => backend(-1, 3)).toThrow(InvalidArgumentError);
      expect(() => backend(0.5, 3)).toThrow(InvalidArgumentError);
      expect(backend(3, 3, 4).keyGroupRange).toEqual({ start: 3, end: 3 });
    });
  });

  describe('setCurrentKey', () => {
    it('exposes the current key and key group', () => {
      const b = backend(10, 19);
      expect(b.currentKey).toBeUndefined();
      expect(b.currentKeyGroup).toBeUndefined();
      b.setCurrentKey('k', 12);
      expect(b.currentKey).toBe('k');
      expect(b.currentKeyGroup).toBe(12);
    });

    it.each([9, 20, -1, 12.5, Number.NaN])(
      'rejects key group %s outside [10, 19] as an internal error',
      (kg) => {
        const b = backend(10, 19);
        const e = catchError(() => b.setCurrentKey('k', kg));
        expect(e.code).toBe('EDDY_STATE');
        expect(e.domain).toBe('internal');
        expect(e.message).toContain(`key group ${kg}`);
        expect(e.message).toContain('[10, 19]');
      },
    );
  });

  describe('getState', () => {
    it('returns the same object for the same name and kind', () => {
      const b = backend();
      const a = b.getState(new ValueStateDescriptor<number>('s'));
      expect(b.getState(new ValueStateDescriptor<number>('s'))).toBe(a);
    });

    it('rejects the same name with another kind, naming the state and both kinds', () => {
      const b = backend();
      b.getState(new ValueStateDescriptor<number>('count'));
      const e = catchError(() => b.getState(new ListStateDescriptor<number>('count')));
      expect(e.code).toBe('EDDY_STATE');
      expect(e.message).toMatch(/'count'.*value state.*list state/);
    });
  });

  describe('snapshots', () => {
    it('contain only non-empty key groups, ascending, states sorted by name', () => {
      const b = backend();
      fill(b, 'p', 40);
      fill(b, 'q', 3);
      b.setCurrentKey('z', 77);
      b.getState(new ListStateDescriptor<number>('l')).add(1);
      b.getState(new ListStateDescriptor<number>('l')).clear();
      const snaps = b.snapshot();
      expect(snaps.map((s) => s.keyGroup)).toEqual([3, 40]);
      expect(snaps[0]).toEqual({
        keyGroup: 3,
        states: [
          { name: 'a', kind: 'aggregating', entries: [['q', 1]] },
          { name: 'l', kind: 'list', entries: [['q', [1, 2]]] },
          { name: 'm', kind: 'map', entries: [['q', [['x', 1]]]] },
          { name: 'r', kind: 'reducing', entries: [['q', 5]] },
          { name: 'v', kind: 'value', entries: [['q', 'v-q']] },
        ],
      });
      expect(b.snapshot({ start: 4, end: 127 }).map((s) => s.keyGroup)).toEqual([40]);
      expect(snapshotKeyGroup(b, 77)).toEqual({ keyGroup: 77, states: [] });
    });

    it('are not changed by later updates', () => {
      const b = backend();
      fill(b, 'p', 40);
      const before = b.snapshot();
      const copy = structuredClone(before);
      b.setCurrentKey('p', 40);
      b.getState(new ValueStateDescriptor<string>('v')).update('changed');
      b.getState(new ListStateDescriptor<number>('l')).add(3);
      b.getState(new MapStateDescriptor<string, number>('m')).put('y', 2);
      b.getState(new MapStateDescriptor<string, number>('m')).put('x', 7);
      b.getState(new ReducingStateDescriptor<number>('r', (a, c) => a + c)).add(1);
      fill(b, 'new', 40);
      expect(before).toEqual(copy);
    });

    it('reject key groups outside the range, naming both', () => {
      const b = backend(0, 9, 20);
      expect(() => b.snapshot({ start: 10, end: 10 })).toThrow(/key group 10.*\[0, 9\]/);
      expect(() => b.snapshot({ start: 5, end: 12 })).toThrow(/key group 12/);
    });
  });

  describe('restore', () => {
    const source = () => {
      const b = backend();
      fill(b, 'p', 40);
      fill(b, 'q', 41);
      return b.snapshot();
    };

    it('works before registration, converting when the state is registered', () => {
      const snaps = source();
      const b = backend(40, 63);
      for (const s of snaps) b.restoreKeyGroup(s);
      expect(b.snapshot()).toEqual(snaps); // unregistered states are kept and snapshotted
      fill(b, 'q', 41); // registers every state; adds to q's restored state
      b.setCurrentKey('p', 40);
      expect(b.getState(new ValueStateDescriptor<string>('v')).value()).toBe('v-p');
      expect(b.getState(new ListStateDescriptor<number>('l')).get()).toEqual([1, 2]);
      const m = b.getState(new MapStateDescriptor<string, number>('m'));
      expect(m.get('x')).toBe(1);
      m.put('y', 2);
      expect([...m.keys()].sort()).toEqual(['x', 'y']); // map order: the backend's
      b.setCurrentKey('q', 41);
      expect(b.getState(new ListStateDescriptor<number>('l')).get()).toEqual([1, 2, 1, 2]);
      expect(b.getState(new ReducingStateDescriptor<number>('r', (a, c) => a + c)).get()).toBe(10);
    });

    it('works after registration', () => {
      const snaps = source();
      const b = backend(40, 63);
      const l = b.getState(new ListStateDescriptor<number>('l'));
      for (const s of snaps) b.restoreKeyGroup(s);
      b.setCurrentKey('p', 40);
      expect(l.get()).toEqual([1, 2]);
      expect(b.snapshot()).toEqual(snaps);
    });

    it('never lets the backend mutate the restored snapshot', () => {
      const snaps = source();
      const copy = structuredClone(snaps);
      const b = backend();
      for (const s of snaps) b.restoreKeyGroup(s);
      fill(b, 'p', 40);
      b.getState(new MapStateDescriptor<string, number>('m')).put('x', 100);
      const other = backend();
      other.getState(new ListStateDescriptor<number>('l'));
      for (const s of snaps) other.restoreKeyGroup(s);
      other.setCurrentKey('q', 41);
      other.getState(new ListStateDescriptor<number>('l')).add(9);
      expect(snaps).toEqual(copy);
    });

    it('rejects a key group outside the range, naming both', () => {
      const b = backend(0, 9, 128);
      const e = catchError(() => b.restoreKeyGroup({ keyGroup: 40, states: [] }));
      expect(e.code).toBe('EDDY_STATE');
      expect(e.message).toMatch(/key group 40.*\[0, 9\]/);
    });

    it('rejects registering a restored state as another kind', () => {
      const b = backend();
      for (const s of source()) b.restoreKeyGroup(s);
      const e = catchError(() => b.getState(new ValueStateDescriptor<number[]>('l')));
      expect(e.message).toMatch(/'l'.*restored as list state.*value state/);
      expect(e.domain).toBe('user');
    });

    it('rejects restoring a state under another kind than registered', () => {
      const b = backend();
      b.getState(new ValueStateDescriptor<number[]>('l'));
      const [first] = source();
      expect(() => b.restoreKeyGroup(first!)).toThrow(/'l' as list state/);
    });

    it('rejects a corrupt list or map value', () => {
      const b = backend();
      b.getState(new ListStateDescriptor<number>('l'));
      const bad: KeyGroupSnapshot = {
        keyGroup: 1,
        states: [{ name: 'l', entries: [['k', 42]] }],
      };
      expect(() => b.restoreKeyGroup(bad)).toThrow(/list state 'l'.*expected an array/);
    });

    it('skips empty entries of kind-less snapshots once the kind is known', () => {
      const b = backend();
      b.restoreKeyGroup({
        keyGroup: 1,
        states: [
          {
            name: 'l',
            entries: [
              ['a', []],
              ['b', [1]],
            ],
          },
        ],
      });
      b.getState(new ListStateDescriptor<number>('l'));
      expect(b.snapshot()).toEqual([
        { keyGroup: 1, states: [{ name: 'l', kind: 'list', entries: [['b', [1]]] }] },
      ]);
    });
  });

  describe('stats and dispose', () => {
    it('count keys, entries and key groups', () => {
      const b = backend();
      fill(b, 'p', 40);
      fill(b, 'q', 40);
      fill(b, 'r', 3);
      expect(b.numKeys()).toBe(3);
      expect(b.numEntries()).toBe(15);
      expect(b.keyGroupsWithState()).toEqual([3, 40]);
      expect([...b.keyGroupSizes()]).toEqual([
        [3, 5],
        [40, 10],
      ]);
    });

    it('dispose drops state and makes further use fail', () => {
      const b = backend();
      fill(b, 'p', 40);
      const v = b.getState(new ValueStateDescriptor<string>('v'));
      b.dispose();
      expect(() => v.value()).toThrow(EddyError);
      expect(() => b.setCurrentKey('p', 40)).toThrow(/disposed/);
      expect(() => b.getState(new ValueStateDescriptor<string>('v'))).toThrow(/disposed/);
      expect(() => b.snapshot()).toThrow(/disposed/);
    });
  });

  describe('snapshot views', () => {
    const V = new ValueStateDescriptor<number>('v');
    const L = new ListStateDescriptor<number>('l');
    const M = new MapStateDescriptor<string, number>('m');

    it('read the state as it was when taken, whatever is written after, and any number of times', () => {
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
      l.add(2);
      l.add(3);
      m.put('y', 2);
      m.put('z', 3);
      b.setCurrentKey('b', 3);
      l.addAll([4, 5]);
      m.delete('x'); // b's map holds only x: the entry goes
      b.setCurrentKey('c', 3);
      l.add(1);
      l.add(2);
      b.setCurrentKey('a', 9);
      v.update(1); // a key group without state when the view was taken

      expect(view.keyGroups).toEqual([3]);
      expect(view.read(3)).toEqual(before[0]);
      expect(view.read(3)).toEqual(before[0]);
      expect(view.read(9)).toEqual({ keyGroup: 9, states: [] });
      const now = canonicalSnapshots([snapshotKeyGroup(b, 3)])[0]!;
      expect(now.states.find((s) => s.name === 'l')?.entries).toEqual([
        ['a', [1, 2, 3]],
        ['b', [1, 4, 5]],
        ['c', [1, 2]],
      ]);
      expect(now.states.find((s) => s.name === 'm')?.entries).toEqual([
        [
          'a',
          [
            ['x', 1],
            ['y', 2],
            ['z', 3],
          ],
        ],
      ]);

      view.release();
      view.release(); // idempotent
      b.setCurrentKey('b', 3);
      l.add(6);
      v.clear();
      m.put('q', 1);
      // A new view reads the state of its own moment.
      const again = b.snapshotView();
      l.add(7);
      expect(again.read(3).states.find((s) => s.name === 'l')?.entries).toContainEqual([
        'b',
        [1, 4, 5, 6],
      ]);
      expect(again.read(3).states.find((s) => s.name === 'v')?.entries).toEqual([['a', 3]]);
      again.release();
    });

    it('keep restored, not yet registered state in snapshot form when it is registered later', () => {
      const a = backend();
      fill(a, 'p', 40);
      const snaps = a.snapshot();
      const b = backend();
      for (const s of snaps) b.restoreKeyGroup(s);
      const view = b.snapshotView();
      fill(b, 'p', 40); // registers every state (converting the restored values) and writes
      expect(view.read(40)).toEqual(snaps[0]);
      b.setCurrentKey('p', 40);
      expect(b.getState(new ListStateDescriptor<number>('l')).get()).toEqual([1, 2, 1, 2]);
      // Restoring while a view is open does not reach the view either.
      b.restoreKeyGroup({
        keyGroup: 40,
        states: [{ name: 'v', kind: 'value', entries: [['p', 9]] }],
      });
      expect(view.read(40)).toEqual(snaps[0]);
      view.release();
    });

    it('reject reads after release and outside the range', () => {
      const b = backend(10, 19, 20);
      fill(b, 'p', 12);
      const view = b.snapshotView();
      const out = catchError(() => view.read(20));
      expect(out.domain).toBe('internal');
      expect(out.message).toMatch(/key group 20 .*\[10, 19\]/);
      expect(() => view.read(9)).toThrow(/key group 9/);
      expect(view.read(12)).toEqual(snapshotKeyGroup(b, 12));
      view.release();
      expect(() => view.read(12)).toThrow(/released snapshot view/);
    });
  });
});
