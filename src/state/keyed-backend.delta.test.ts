/**
 * Change tracking and delta views of every keyed backend (incremental checkpoints; `BACKENDS`):
 * what a delta view reads whatever the job writes after it was taken, which keys it holds,
 * giving keys back, and that restores do not count as changes. Entries are compared sorted by
 * key, map values by user key: the contract leaves their order to the backend.
 */
import { describe, expect, it } from 'vitest';
import { EddyError } from '../core/errors.js';
import type { KeyedStateBackend, KeyedStateDeltaView } from './backend.js';
import { BACKENDS, sortedEntries } from './backend.testkit.js';
import {
  AggregatingStateDescriptor,
  ListStateDescriptor,
  MapStateDescriptor,
  ReducingStateDescriptor,
  type StateDescriptor,
  ValueStateDescriptor,
} from './descriptors.js';
import type {
  AggregatingState,
  KeyGroupSnapshot,
  ListState,
  MapState,
  NormalizedKey,
  ReducingState,
  ValueState,
} from './types.js';

interface ReadState {
  entries: Array<[NormalizedKey, unknown]>;
  deleted: NormalizedKey[];
}

/**
 * Everything a delta view reads: key group -> state name -> entries (sorted by key, map values
 * by user key) and deleted keys (sorted).
 */
const readAll = (view: KeyedStateDeltaView): Record<number, Record<string, ReadState>> => {
  const out: Record<number, Record<string, ReadState>> = {};
  for (const kg of view.keyGroups) {
    const d = view.readDelta(kg);
    expect(d.keyGroup).toBe(kg);
    const states: Record<string, ReadState> = {};
    for (const s of d.states) {
      states[s.name] = {
        entries: sortedEntries(s.entries, s.kind === 'map') as Array<[NormalizedKey, unknown]>,
        deleted: [...s.deleted].sort(),
      };
    }
    out[kg] = states;
  }
  return out;
};

/** Takes a delta view, reads it, completes and releases it. */
const takeDelta = (b: KeyedStateBackend) => {
  const view = b.deltaView()!;
  expect(view).toBeDefined();
  const read = readAll(view);
  view.complete();
  view.release();
  return read;
};

/**
 * Per state kind: a first write (snapshot value v1), a second write to the same key that
 * mutates in place where the kind has an in-place form (v2), and the snapshot values.
 */
interface KindCase {
  readonly kind: string;
  readonly descriptor: StateDescriptor;
  write1(s: unknown): void;
  write2(s: unknown): void;
  readonly v1: unknown;
  readonly v2: unknown;
}

const sum = (a: number, b: number) => a + b;
const avg = {
  createAccumulator: () => ({ n: 0, total: 0 }),
  add: (v: number, acc: { n: number; total: number }) => ({ n: acc.n + 1, total: acc.total + v }),
  getResult: (acc: { n: number; total: number }) => acc.total / acc.n,
};

const kinds: KindCase[] = [
  {
    kind: 'value',
    descriptor: new ValueStateDescriptor<number>('s'),
    write1: (s) => (s as ValueState<number>).update(1),
    write2: (s) => (s as ValueState<number>).update(2),
    v1: 1,
    v2: 2,
  },
  {
    kind: 'list',
    descriptor: new ListStateDescriptor<number>('s'),
    write1: (s) => (s as ListState<number>).add(1),
    write2: (s) => (s as ListState<number>).add(2), // in place
    v1: [1],
    v2: [1, 2],
  },
  {
    kind: 'map (put)',
    descriptor: new MapStateDescriptor<string, number>('s'),
    write1: (s) => {
      (s as MapState<string, number>).put('x', 1);
      (s as MapState<string, number>).put('y', 2);
    },
    write2: (s) => (s as MapState<string, number>).put('z', 3), // in place
    v1: [
      ['x', 1],
      ['y', 2],
    ],
    v2: [
      ['x', 1],
      ['y', 2],
      ['z', 3],
    ],
  },
  {
    kind: 'map (delete in place)',
    descriptor: new MapStateDescriptor<string, number>('s'),
    write1: (s) => {
      (s as MapState<string, number>).put('x', 1);
      (s as MapState<string, number>).put('y', 2);
    },
    write2: (s) => (s as MapState<string, number>).delete('x'), // in place, map stays non-empty
    v1: [
      ['x', 1],
      ['y', 2],
    ],
    v2: [['y', 2]],
  },
  {
    kind: 'reducing',
    descriptor: new ReducingStateDescriptor<number>('s', sum),
    write1: (s) => (s as ReducingState<number>).add(1),
    write2: (s) => (s as ReducingState<number>).add(5),
    v1: 1,
    v2: 6,
  },
  {
    kind: 'aggregating',
    descriptor: new AggregatingStateDescriptor('s', avg),
    write1: (s) => (s as AggregatingState<number, number>).add(4),
    write2: (s) => (s as AggregatingState<number, number>).add(8),
    v1: { n: 1, total: 4 },
    v2: { n: 2, total: 12 },
  },
];

const clearState = (s: unknown) => (s as { clear(): void }).clear();

describe.each(BACKENDS)('$name backend: delta views', ({ create }) => {
  const tracking = (start = 0, end = 7, maxParallelism = 8) =>
    create({ keyGroupRange: { start, end }, maxParallelism, trackChanges: true });

  describe.each(kinds)('delta view of $kind state', (c) => {
    // keys a, b, c in key groups 1, 2, 3 (the key group is the caller's choice here)
    const at = (b: KeyedStateBackend, key: string, kg: number) => {
      b.setCurrentKey(key, kg);
      return b.getState(c.descriptor);
    };

    it('reads the values of the moment it was taken, whatever is written after', () => {
      const b = tracking();
      c.write1(at(b, 'a', 1));
      c.write1(at(b, 'b', 2));
      c.write1(at(b, 'gone', 2));
      takeDelta(b); // a, b and gone are the base now
      clearState(at(b, 'gone', 2)); // deleted before the view
      c.write1(at(b, 'c', 3)); // new before the view
      c.write2(at(b, 'a', 1)); // changed before the view
      const view = b.deltaView()!;
      expect(view.keyGroups).toEqual([1, 2, 3]);
      // after the view: mutate a in place, clear c, create d, re-create gone
      c.write2(at(b, 'a', 1));
      clearState(at(b, 'c', 3));
      c.write1(at(b, 'd', 3));
      c.write1(at(b, 'gone', 2));
      expect(readAll(view)).toEqual({
        1: { s: { entries: [['a', c.v2]], deleted: [] } },
        2: { s: { entries: [], deleted: ['gone'] } },
        3: { s: { entries: [['c', c.v1]], deleted: [] } },
      });
      // the view reads the same however often it is read
      expect(readAll(view)).toEqual(readAll(view));
      view.complete();
      view.release();
      // the writes after the view are the next delta, with their values now
      const next = takeDelta(b);
      expect(next[2]).toEqual({ s: { entries: [['gone', c.v1]], deleted: [] } });
      expect(next[3]).toEqual({ s: { entries: [['d', c.v1]], deleted: ['c'] } });
      expect(b.snapshot()).toHaveLength(3);
    });

    it('a key cleared after the view still reads as it was; a clear before reads as deleted', () => {
      const b = tracking();
      c.write1(at(b, 'a', 1));
      c.write1(at(b, 'b', 1));
      takeDelta(b);
      c.write2(at(b, 'a', 1));
      clearState(at(b, 'b', 1));
      const view = b.deltaView()!;
      clearState(at(b, 'a', 1));
      c.write1(at(b, 'b', 1));
      expect(readAll(view)).toEqual({ 1: { s: { entries: [['a', c.v2]], deleted: ['b'] } } });
      view.complete();
      view.release();
      expect(takeDelta(b)).toEqual({ 1: { s: { entries: [['b', c.v1]], deleted: ['a'] } } });
    });

    it('holds a key written twice between views once, with its latest value', () => {
      const b = tracking();
      c.write1(at(b, 'a', 4));
      c.write2(at(b, 'a', 4));
      const view = b.deltaView()!;
      const d = view.readDelta(4);
      expect(d.states).toHaveLength(1);
      expect(d.states[0]!.entries).toEqual([['a', c.v2]]);
      expect(d.states[0]!.deleted).toEqual([]);
      view.release();
    });

    it('holds a key written then deleted between views as deleted', () => {
      const b = tracking();
      c.write1(at(b, 'a', 4));
      c.write1(at(b, 'keep', 4));
      takeDelta(b);
      c.write2(at(b, 'a', 4));
      clearState(at(b, 'a', 4));
      expect(takeDelta(b)).toEqual({ 4: { s: { entries: [], deleted: ['a'] } } });
      // created and deleted between views: never an entry
      c.write1(at(b, 'brief', 5));
      clearState(at(b, 'brief', 5));
      const d = takeDelta(b);
      for (const states of Object.values(d)) expect(states.s?.entries ?? []).toEqual([]);
    });
  });

  describe('delta view of map state: removing the last map key removes the entry', () => {
    it('reads the map as it was, then the next delta deletes the key', () => {
      const b = tracking();
      const m = b.getState(new MapStateDescriptor<string, number>('m'));
      b.setCurrentKey('k', 0);
      m.put('only', 1);
      const view = b.deltaView()!;
      m.delete('only');
      expect(readAll(view)).toEqual({ 0: { m: { entries: [['k', [['only', 1]]]], deleted: [] } } });
      view.complete();
      view.release();
      expect(takeDelta(b)).toEqual({ 0: { m: { entries: [], deleted: ['k'] } } });
    });

    it('a list update() copies the caller array; update([]) deletes the entry', () => {
      const b = tracking();
      const l = b.getState(new ListStateDescriptor<number>('l'));
      b.setCurrentKey('k', 0);
      const mine = [1, 2];
      l.update(mine);
      const view = b.deltaView()!;
      mine.push(3); // the caller's array is not the state's
      l.addAll([4]);
      expect(readAll(view)).toEqual({ 0: { l: { entries: [['k', [1, 2]]], deleted: [] } } });
      view.complete();
      view.release();
      l.update([]);
      expect(takeDelta(b)).toEqual({ 0: { l: { entries: [], deleted: ['k'] } } });
    });
  });

  describe('delta view bookkeeping', () => {
    const setup = () => {
      const b = tracking();
      const v = b.getState(new ValueStateDescriptor<number>('v'));
      const l = b.getState(new ListStateDescriptor<number>('l'));
      const put = (key: string, kg: number, n: number) => {
        b.setCurrentKey(key, kg);
        v.update(n);
      };
      return { b, v, l, put };
    };

    it('lists only changed key groups, ascending, with their live entries at view time', () => {
      const { b, l, put } = setup();
      put('a', 5, 1);
      put('b', 5, 2);
      put('c', 1, 3);
      b.setCurrentKey('a', 5);
      l.add(1);
      put('z', 7, 0);
      takeDelta(b);
      put('a', 5, 10);
      put('c', 1, 30);
      const view = b.deltaView()!;
      expect(view.keyGroups).toEqual([1, 5]);
      // key group 5: v:a, v:b, l:a (the unchanged b and l:a count too)
      expect(view.liveEntries(5)).toBe(3);
      expect(view.liveEntries(1)).toBe(1);
      put('new', 5, 1);
      b.setCurrentKey('b', 5);
      b.getState(new ValueStateDescriptor<number>('v')).clear();
      expect(view.liveEntries(5)).toBe(3); // as of the view
      view.release();
    });

    it('gives no second delta view while one is open', () => {
      const { b, put } = setup();
      put('a', 0, 1);
      const first = b.deltaView()!;
      expect(b.deltaView()).toBeUndefined();
      first.complete();
      first.release();
      const second = b.deltaView();
      expect(second).toBeDefined();
      expect(second!.keyGroups).toEqual([]);
      second!.release();
    });

    it('release without complete gives the keys back: the next delta has them, values of now', () => {
      const { b, l, put } = setup();
      put('a', 2, 1);
      put('b', 3, 1);
      b.setCurrentKey('a', 2);
      l.add(7);
      const failed = b.deltaView()!;
      put('a', 2, 2); // after the view: the next delta must read 2
      put('c', 4, 1);
      failed.release(); // the write failed
      failed.release(); // idempotent: the keys come back once
      const d = takeDelta(b);
      expect(d).toEqual({
        2: {
          l: { entries: [['a', [7]]], deleted: [] },
          v: { entries: [['a', 2]], deleted: [] },
        },
        3: { v: { entries: [['b', 1]], deleted: [] } },
        4: { v: { entries: [['c', 1]], deleted: [] } },
      });
      // and given back means once: completed now, nothing is left
      expect(takeDelta(b)).toEqual({});
    });

    it('a given-back key deleted meanwhile reads as deleted in the next delta', () => {
      const { b, v, put } = setup();
      put('a', 2, 1);
      takeDelta(b);
      put('a', 2, 5);
      const failed = b.deltaView()!;
      b.setCurrentKey('a', 2);
      v.clear();
      failed.release();
      expect(takeDelta(b)).toEqual({ 2: { v: { entries: [], deleted: ['a'] } } });
    });

    it('complete then release does not give keys back', () => {
      const { b, put } = setup();
      put('a', 2, 1);
      const view = b.deltaView()!;
      view.complete();
      view.release();
      expect(b.deltaView()!.keyGroups).toEqual([]);
    });

    it('forgetChanges: the next delta starts from now', () => {
      const { b, put } = setup();
      put('a', 2, 1);
      put('b', 6, 1);
      b.forgetChanges();
      put('c', 3, 1);
      expect(takeDelta(b)).toEqual({ 3: { v: { entries: [['c', 1]], deleted: [] } } });
      put('a', 2, 2);
      b.forgetChanges();
      expect(takeDelta(b)).toEqual({});
    });

    it('forgetChanges while a view is open: the view still reads its values, not later ones', () => {
      // A base taken while a delta is still being written forgets the changes; the key written
      // again after that must not overwrite the value the open delta view saved for it.
      const { b, put } = setup();
      put('a', 2, 1);
      const view = b.deltaView()!;
      put('a', 2, 2); // first write since the view: saves 1
      b.forgetChanges();
      put('a', 2, 3); // looks like a first write again
      expect(readAll(view)).toEqual({ 2: { v: { entries: [['a', 1]], deleted: [] } } });
      view.complete();
      view.release();
    });

    it('a state registered while a view is open is not in it, and its writes are in the next', () => {
      const { b, put } = setup();
      put('a', 1, 1);
      const view = b.deltaView()!;
      b.setCurrentKey('a', 1);
      b.getState(new ValueStateDescriptor<string>('late')).update('x');
      expect(readAll(view)).toEqual({ 1: { v: { entries: [['a', 1]], deleted: [] } } });
      view.complete();
      view.release();
      expect(takeDelta(b)).toEqual({ 1: { late: { entries: [['a', 'x']], deleted: [] } } });
    });

    it('a released view cannot be read', () => {
      const { b, put } = setup();
      put('a', 1, 1);
      const view = b.deltaView()!;
      view.release();
      expect(() => view.readDelta(1)).toThrow(EddyError);
    });
  });

  describe('a delta view capturing key groups whole (compaction decided when it is taken)', () => {
    const setup = () => {
      const b = tracking();
      const v = b.getState(new ValueStateDescriptor<number>('v'));
      const m = b.getState(new MapStateDescriptor<string, number>('m'));
      const l = b.getState(new ListStateDescriptor<number>('l'));
      for (const [key, kg] of [
        ['a', 2],
        ['b', 2],
        ['c', 2],
        ['z', 5],
      ] as const) {
        b.setCurrentKey(key, kg);
        v.update(1);
        l.add(1);
      }
      b.setCurrentKey('a', 2);
      m.put('x', 1);
      m.put('y', 2);
      takeDelta(b);
      return { b, v, m, l };
    };

    it('asks the rule per changed key group with its changed and live entries', () => {
      const { b, v, l } = setup();
      b.setCurrentKey('a', 2);
      v.update(2);
      l.add(2);
      b.setCurrentKey('b', 2);
      v.clear();
      b.setCurrentKey('z', 5);
      v.update(3);
      const asked: Array<[number, number, number]> = [];
      const view = b.deltaView((kg, changed, live) => {
        asked.push([kg, changed, live]);
        return false;
      })!;
      // key group 2: v:a, l:a, v:b changed; live v:a, v:c, l:a, l:b, l:c, m:a
      expect(asked).toEqual([
        [2, 3, 6],
        [5, 1, 2],
      ]);
      expect(view.readDelta(2).whole).toBe(false);
      view.release();
    });

    it('asks the rule once per changed key group, with the counts at view time whatever is written after', () => {
      const { b, v, l } = setup();
      b.setCurrentKey('a', 2);
      v.update(2);
      l.add(2);
      b.setCurrentKey('b', 2);
      v.clear();
      b.setCurrentKey('z', 5);
      v.update(3);
      const asked: Array<[number, number, number]> = [];
      const view = b.deltaView((kg, changed, live) => {
        asked.push([kg, changed, live]);
        return kg === 5;
      })!;
      // after the view: a new key, a deletion and a write in both key groups
      b.setCurrentKey('new', 2);
      v.update(1);
      b.setCurrentKey('c', 2);
      l.clear();
      b.setCurrentKey('y', 5);
      v.update(1);
      expect(view.keyGroups).toEqual([2, 5]);
      expect(view.liveEntries(2)).toBe(6);
      expect(view.liveEntries(5)).toBe(2);
      expect(view.readDelta(2).whole).toBe(false);
      expect(view.readDelta(5).whole).toBe(true);
      expect(view.readDelta(5).whole).toBe(true);
      expect([...asked].sort((x, y) => x[0] - y[0])).toEqual([
        [2, 3, 6],
        [5, 1, 2],
      ]);
      view.release();
    });

    it('reads every entry at view time, no deletions, whatever is written after', () => {
      const { b, v, m, l } = setup();
      b.setCurrentKey('b', 2);
      v.clear(); // before the view: gone from the whole capture, not a deletion
      b.setCurrentKey('z', 5);
      v.update(5);
      const view = b.deltaView((kg) => kg === 2)!;
      expect(view.keyGroups).toEqual([2, 5]);
      // after the view: in-place list and map writes, a deletion, a new key, a re-created key
      b.setCurrentKey('a', 2);
      l.add(9);
      m.delete('x');
      m.put('w', 3);
      b.setCurrentKey('c', 2);
      v.clear();
      l.clear();
      b.setCurrentKey('new', 2);
      v.update(7);
      b.setCurrentKey('b', 2);
      v.update(8);
      const whole = view.readDelta(2);
      expect(whole.whole).toBe(true);
      const states = Object.fromEntries(
        whole.states.map((s) => [
          s.name,
          { entries: sortedEntries(s.entries, s.kind === 'map'), deleted: s.deleted },
        ]),
      );
      expect(states).toEqual({
        l: {
          entries: [
            ['a', [1]],
            ['b', [1]],
            ['c', [1]],
          ],
          deleted: [],
        },
        m: {
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
        v: {
          entries: [
            ['a', 1],
            ['c', 1],
          ],
          deleted: [],
        },
      });
      // the key group not captured whole reads as a delta
      expect(view.readDelta(5)).toEqual({
        keyGroup: 5,
        whole: false,
        states: [{ name: 'v', kind: 'value', entries: [['z', 5]], deleted: [] }],
      });
      view.complete();
      view.release();
      // the writes after the view are the next delta
      const next = takeDelta(b);
      expect(next[2]!.v).toEqual({
        entries: [
          ['b', 8],
          ['new', 7],
        ],
        deleted: ['c'],
      });
      expect(next[2]!.l).toEqual({ entries: [['a', [1, 9]]], deleted: ['c'] });
      expect(next[2]!.m).toEqual({
        entries: [
          [
            'a',
            [
              ['w', 3],
              ['y', 2],
            ],
          ],
        ],
        deleted: [],
      });
    });

    it('a whole capture released without complete gives back only the changed keys', () => {
      const { b, v } = setup();
      b.setCurrentKey('a', 2);
      v.update(2);
      const view = b.deltaView(() => true)!;
      expect(view.readDelta(2).whole).toBe(true);
      view.release();
      expect(takeDelta(b)).toEqual({ 2: { v: { entries: [['a', 2]], deleted: [] } } });
    });
  });

  describe('restores are not changes', () => {
    const snapshots: KeyGroupSnapshot[] = [
      {
        keyGroup: 2,
        states: [
          { name: 'l', kind: 'list', entries: [['a', [1, 2]]] },
          { name: 'm', kind: 'map', entries: [['a', [['x', 1]]]] },
          { name: 'v', kind: 'value', entries: [['a', 5]] },
        ],
      },
      { keyGroup: 5, states: [{ name: 'v', kind: 'value', entries: [['b', 6]] }] },
    ];

    it('restoreKeyGroup, then registering the states, marks nothing', () => {
      const b = tracking();
      for (const s of snapshots) b.restoreKeyGroup(s);
      b.getState(new ListStateDescriptor<number>('l'));
      b.getState(new MapStateDescriptor<string, number>('m'));
      b.getState(new ValueStateDescriptor<number>('v'));
      expect(takeDelta(b)).toEqual({});
      // and the first write after is exactly one change
      b.setCurrentKey('a', 2);
      b.getState(new ListStateDescriptor<number>('l')).add(3);
      expect(takeDelta(b)).toEqual({ 2: { l: { entries: [['a', [1, 2, 3]]], deleted: [] } } });
    });

    it('a lazy restore of a chain (loadChain: blocks with deletions) marks nothing', () => {
      const b = tracking();
      b.restoreKeyGroupLazily({
        keyGroup: 3,
        load: () => {
          throw new Error('a chain is applied block by block, not merged');
        },
        loadChain: () => [
          {
            keyGroup: 3,
            states: [
              {
                name: 'v',
                kind: 'value',
                entries: [
                  ['a', 1],
                  ['b', 2],
                ],
              },
            ],
          },
          {
            keyGroup: 3,
            states: [{ name: 'v', kind: 'value', entries: [['c', 3]], deleted: ['a'] }],
          },
        ],
      });
      const v = b.getState(new ValueStateDescriptor<number>('v'));
      b.setCurrentKey('a', 3);
      expect(v.value()).toBeUndefined();
      expect(sortedEntries(b.snapshot({ start: 3, end: 3 })[0]!.states[0]!.entries)).toEqual([
        ['b', 2],
        ['c', 3],
      ]);
      expect(takeDelta(b)).toEqual({});
    });

    it('a lazy restore, decoded by a key, a snapshot or a size query, marks nothing', () => {
      const b = tracking();
      for (const s of snapshots) b.restoreKeyGroupLazily({ keyGroup: s.keyGroup, load: () => s });
      const v = b.getState(new ValueStateDescriptor<number>('v'));
      b.setCurrentKey('b', 5); // decodes key group 5
      expect(v.value()).toBe(6);
      expect(b.snapshot({ start: 2, end: 2 })[0]!.states).toHaveLength(3); // decodes key group 2
      expect(b.numEntries()).toBe(4);
      const view = b.deltaView()!;
      expect(view.keyGroups).toEqual([]);
      view.release();
      // registered after decoding: materialising marks nothing either
      b.getState(new MapStateDescriptor<string, number>('m'));
      b.getState(new ListStateDescriptor<number>('l'));
      expect(takeDelta(b)).toEqual({});
      b.setCurrentKey('b', 5);
      v.update(7);
      const d = b.deltaView()!;
      expect(d.keyGroups).toEqual([5]);
      expect(d.liveEntries(5)).toBe(1);
      d.release();
    });
  });

  describe('a full snapshot view and a delta view open together', () => {
    const setup = () => {
      const b = tracking();
      const l = b.getState(new ListStateDescriptor<number>('l'));
      const m = b.getState(new MapStateDescriptor<string, number>('m'));
      const v = b.getState(new ValueStateDescriptor<number>('v'));
      b.setCurrentKey('a', 3);
      l.add(1);
      m.put('x', 1);
      v.update(1);
      b.setCurrentKey('b', 3);
      v.update(1);
      return { b, l, m, v };
    };

    it('delta view first, then a snapshot view: each reads its own moment', () => {
      const { b, l, m, v } = setup();
      const delta = b.deltaView()!;
      b.setCurrentKey('a', 3);
      l.add(2);
      m.put('y', 2);
      const full = b.snapshotView();
      l.add(3);
      m.delete('x');
      v.update(9);
      b.setCurrentKey('b', 3);
      v.clear();
      expect(readAll(delta)).toEqual({
        3: {
          l: { entries: [['a', [1]]], deleted: [] },
          m: { entries: [['a', [['x', 1]]]], deleted: [] },
          v: {
            entries: [
              ['a', 1],
              ['b', 1],
            ],
            deleted: [],
          },
        },
      });
      expect(full.read(3)).toEqual({
        keyGroup: 3,
        states: [
          { name: 'l', kind: 'list', entries: [['a', [1, 2]]] },
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
          },
          {
            name: 'v',
            kind: 'value',
            entries: [
              ['a', 1],
              ['b', 1],
            ],
          },
        ],
      });
      full.release();
      delta.complete();
      delta.release();
      expect(takeDelta(b)).toEqual({
        3: {
          l: { entries: [['a', [1, 2, 3]]], deleted: [] },
          m: { entries: [['a', [['y', 2]]]], deleted: [] },
          v: { entries: [['a', 9]], deleted: ['b'] },
        },
      });
    });

    it('snapshot view first, then a delta view: each reads its own moment', () => {
      const { b, l, m } = setup();
      takeDelta(b); // the setup's writes are the base
      const full = b.snapshotView();
      b.setCurrentKey('a', 3);
      l.add(2); // copies the list (the full view holds it)
      const delta = b.deltaView()!;
      l.add(3); // in place: the copy is not the full view's
      m.put('y', 2);
      expect(readAll(delta)[3]!.l).toEqual({ entries: [['a', [1, 2]]], deleted: [] });
      expect(readAll(delta)[3]!.m).toBeUndefined();
      expect(full.read(3).states[0]).toEqual({ name: 'l', kind: 'list', entries: [['a', [1]]] });
      delta.release(); // not completed: l:a comes back
      full.release();
      expect(takeDelta(b)).toEqual({
        3: {
          l: { entries: [['a', [1, 2, 3]]], deleted: [] },
          m: {
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
        },
      });
    });
  });

  describe('without trackChanges', () => {
    it('deltaView throws an internal EDDY_STATE error', () => {
      const b = create({ keyGroupRange: { start: 0, end: 3 }, maxParallelism: 4 });
      let err: unknown;
      try {
        b.deltaView();
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(EddyError);
      expect((err as EddyError).code).toBe('EDDY_STATE');
      expect((err as EddyError).domain).toBe('internal');
      expect((err as EddyError).message).toContain('track changes');
      // forgetChanges is harmless
      expect(() => b.forgetChanges()).not.toThrow();
    });
  });
});
