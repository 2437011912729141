import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EddyError, InvalidArgumentError } from '../core/errors.js';
import { HeapOperatorStateStore } from './operator-state.js';
import type { RedistributionMode } from './types.js';

describe('HeapOperatorStateStore', () => {
  it('hands out named lists with list semantics, split by default', () => {
    const store = new HeapOperatorStateStore();
    const offsets = store.getListState<[number, number]>('offsets');
    expect(offsets.mode).toBe('split');
    expect(store.getListState('offsets')).toBe(offsets);
    offsets.add([0, 10]);
    offsets.addAll([[1, 20]]);
    const got = offsets.get();
    got.push([9, 9]);
    expect(offsets.get()).toEqual([
      [0, 10],
      [1, 20],
    ]);
    offsets.update([[2, 5]]);
    expect(offsets.get()).toEqual([[2, 5]]);
    offsets.clear();
    expect(offsets.get()).toEqual([]);
  });

  it('rejects a name reused with another mode, naming both', () => {
    const store = new HeapOperatorStateStore();
    store.getListState('s', 'union');
    const e = (() => {
      try {
        store.getListState('s', 'broadcast');
      } catch (err) {
        return err;
      }
    })();
    expect(e).toBeInstanceOf(EddyError);
    expect((e as EddyError).code).toBe('EDDY_STATE');
    expect((e as EddyError).message).toMatch(/'s'.*'union'.*'broadcast'/);
    expect(() => store.getListState('s')).toThrow(/'union'.*'split'/);
  });

  it('rejects an empty name or unknown mode', () => {
    const store = new HeapOperatorStateStore();
    expect(() => store.getListState('')).toThrow(InvalidArgumentError);
    expect(() => store.getListState('s', 'spread' as RedistributionMode)).toThrow(/'spread'/);
  });

  it('snapshots a sorted copy that later updates do not change', () => {
    const store = new HeapOperatorStateStore();
    store.getListState<number>('b', 'union').addAll([1, 2]);
    store.getListState<number>('a', 'broadcast');
    const snap = store.snapshot();
    store.getListState<number>('b', 'union').add(3);
    expect(snap).toEqual({
      states: [
        { name: 'a', mode: 'broadcast', elements: [] },
        { name: 'b', mode: 'union', elements: [1, 2] },
      ],
    });
  });

  it('restores elements before the operator asks, and reports isRestored', () => {
    const fresh = new HeapOperatorStateStore();
    expect(fresh.isRestored).toBe(false);
    const snap = { states: [{ name: 'o', mode: 'union' as const, elements: [1, 2] }] };
    const store = HeapOperatorStateStore.restore(snap);
    expect(store.isRestored).toBe(true);
    const list = store.getListState<number>('o', 'union');
    expect(list.get()).toEqual([1, 2]);
    list.add(3);
    expect(snap.states[0]?.elements).toEqual([1, 2]); // the snapshot is not mutated
    expect(HeapOperatorStateStore.restore({ states: [] }).isRestored).toBe(true);
  });

  it('merges repeated names on restore and rejects conflicting modes', () => {
    const store = new HeapOperatorStateStore();
    store.restore({
      states: [
        { name: 'o', mode: 'split', elements: [1] },
        { name: 'o', mode: 'split', elements: [2] },
      ],
    });
    expect(store.getListState('o').get()).toEqual([1, 2]);
    expect(() => store.restore({ states: [{ name: 'o', mode: 'union', elements: [] }] })).toThrow(
      /'split'.*'union'/,
    );
    const restored = HeapOperatorStateStore.restore({
      states: [{ name: 'p', mode: 'broadcast', elements: [] }],
    });
    expect(() => restored.getListState('p', 'split')).toThrow(EddyError);
  });

  it('snapshot → restore round-trips', () => {
    const mode = fc.constantFrom<RedistributionMode>('split', 'union', 'broadcast');
    const lists = fc.dictionary(
      fc.string({ minLength: 1, maxLength: 5 }),
      fc.tuple(mode, fc.array(fc.jsonValue(), { maxLength: 5 })),
    );
    fc.assert(
      fc.property(lists, (byName) => {
        const store = new HeapOperatorStateStore();
        for (const [name, [m, elements]] of Object.entries(byName)) {
          store.getListState(name, m).update(elements);
        }
        const snap = store.snapshot();
        const again = HeapOperatorStateStore.restore(snap).snapshot();
        expect(again).toEqual(snap);
        for (const [name, [m, elements]] of Object.entries(byName)) {
          expect(HeapOperatorStateStore.restore(snap).getListState(name, m).get()).toEqual(
            elements,
          );
        }
      }),
    );
  });
});
