import { describe, expect, it } from 'vitest';
import { EddyError } from '../core/errors.js';
import { BACKENDS, sortedEntries } from './backend.testkit.js';
import {
  AggregatingStateDescriptor,
  ListStateDescriptor,
  MapStateDescriptor,
  ReducingStateDescriptor,
  ValueStateDescriptor,
} from './descriptors.js';

/** Average of numbers: accumulator [sum, count], replaced (never mutated) on add. */
const average = {
  createAccumulator: (): readonly [number, number] => [0, 0],
  add: (v: number, [s, n]: readonly [number, number]) => [s + v, n + 1] as const,
  getResult: ([s, n]: readonly [number, number]) => s / n,
};

describe.each(BACKENDS)('$name backend', ({ create }) => {
  const backend = () => create({ keyGroupRange: { start: 0, end: 127 }, maxParallelism: 128 });

  describe('value state', () => {
    it('returns the default while absent, without storing it', () => {
      const b = backend();
      const v = b.getState(new ValueStateDescriptor('v', { defaultValue: 10 }));
      b.setCurrentKey('a', 1);
      expect(v.value()).toBe(10);
      expect(b.numEntries()).toBe(0);
      v.update(3);
      expect(v.value()).toBe(3);
      v.clear();
      expect(v.value()).toBe(10);
      expect(b.numEntries()).toBe(0);
    });

    it('returns undefined with no default; update(undefined) clears', () => {
      const b = backend();
      const v = b.getState(new ValueStateDescriptor<number | undefined>('v'));
      b.setCurrentKey(1, 0);
      expect(v.value()).toBeUndefined();
      v.update(1);
      v.update(undefined);
      expect(v.value()).toBeUndefined();
      expect(b.numEntries()).toBe(0);
    });
  });

  describe('list state', () => {
    it('adds, adds all, updates and clears', () => {
      const b = backend();
      const l = b.getState(new ListStateDescriptor<number>('l'));
      b.setCurrentKey('k', 5);
      expect(l.get()).toEqual([]);
      l.add(1);
      l.addAll([2, 3]);
      expect(l.get()).toEqual([1, 2, 3]);
      l.update([9]);
      expect(l.get()).toEqual([9]);
      l.update([]);
      expect(b.numEntries()).toBe(0);
      l.addAll([]);
      expect(b.numEntries()).toBe(0);
      l.add(4);
      l.clear();
      expect(l.get()).toEqual([]);
      expect(b.numEntries()).toBe(0);
    });

    it('get returns a copy, and stored arrays are copies of the caller’s', () => {
      const b = backend();
      const l = b.getState(new ListStateDescriptor<number>('l'));
      b.setCurrentKey('k', 5);
      const mine = [1, 2];
      l.addAll(mine);
      mine.push(99);
      const got = l.get();
      got.push(100);
      expect(l.get()).toEqual([1, 2]);
      const other = [7];
      l.update(other);
      other.push(8);
      expect(l.get()).toEqual([7]);
    });
  });

  describe('map state', () => {
    it('puts, gets, checks, deletes and iterates', () => {
      const b = backend();
      const m = b.getState(new MapStateDescriptor<string, number>('m'));
      b.setCurrentKey('k', 3);
      expect(m.isEmpty()).toBe(true);
      expect([...m.entries()]).toEqual([]);
      m.put('x', 1);
      m.putAll([
        ['y', 2],
        ['z', 3],
      ]);
      expect(m.get('y')).toBe(2);
      expect(m.has('z')).toBe(true);
      expect(m.has('w')).toBe(false);
      expect(m.get('w')).toBeUndefined();
      m.delete('y');
      m.delete('nope');
      // Iteration order is the backend's (heap: insertion order, tested there).
      expect(sortedEntries([...m.entries()])).toEqual([
        ['x', 1],
        ['z', 3],
      ]);
      expect([...m.keys()].sort()).toEqual(['x', 'z']);
      expect([...m.values()].sort()).toEqual([1, 3]);
      expect(m.isEmpty()).toBe(false);
    });

    it('removes the entry when the last key is deleted or on clear', () => {
      const b = backend();
      const m = b.getState(new MapStateDescriptor<string, number>('m'));
      b.setCurrentKey('k', 3);
      m.put('x', 1);
      m.delete('x');
      expect(m.isEmpty()).toBe(true);
      expect(b.numEntries()).toBe(0);
      m.putAll([]);
      expect(b.numEntries()).toBe(0);
      m.put('x', 1);
      m.clear();
      expect(m.isEmpty()).toBe(true);
      expect(b.numEntries()).toBe(0);
    });
  });

  describe('reducing state', () => {
    it('folds added values with reduce(current, added)', () => {
      const b = backend();
      const seen: Array<[string, string]> = [];
      const r = b.getState(
        new ReducingStateDescriptor<string>('r', (a, c) => {
          seen.push([a, c]);
          return a + c;
        }),
      );
      b.setCurrentKey('k', 0);
      expect(r.get()).toBeUndefined();
      r.add('a');
      r.add('b');
      r.add('c');
      expect(r.get()).toBe('abc');
      expect(seen).toEqual([
        ['a', 'b'],
        ['ab', 'c'],
      ]);
      r.clear();
      expect(r.get()).toBeUndefined();
    });

    it('keeps the previous value when reduce throws', () => {
      const b = backend();
      const r = b.getState(
        new ReducingStateDescriptor<number>('r', (a, c) => {
          if (c < 0) throw new Error('negative');
          return a + c;
        }),
      );
      b.setCurrentKey('k', 0);
      r.add(1);
      expect(() => r.add(-1)).toThrow('negative');
      expect(r.get()).toBe(1);
    });
  });

  describe('aggregating state', () => {
    it('uses createAccumulator, add and getResult', () => {
      const b = backend();
      let created = 0;
      const a = b.getState(
        new AggregatingStateDescriptor('avg', {
          ...average,
          createAccumulator: () => {
            created++;
            return average.createAccumulator();
          },
        }),
      );
      b.setCurrentKey('k', 0);
      expect(a.get()).toBeUndefined();
      a.add(2);
      a.add(4);
      expect(a.get()).toBe(3);
      expect(created).toBe(1);
      a.clear();
      expect(a.get()).toBeUndefined();
      a.add(5);
      expect(a.get()).toBe(5);
      expect(created).toBe(2);
    });
  });

  describe('isolation', () => {
    it('keeps keys apart, within and across key groups', () => {
      const b = backend();
      const v = b.getState(new ValueStateDescriptor<string>('v'));
      const l = b.getState(new ListStateDescriptor<string>('l'));
      const at = (key: string, kg: number) => b.setCurrentKey(key, kg);
      at('a', 1);
      v.update('a1');
      l.add('a1');
      at('b', 1);
      v.update('b1');
      at('a', 2); // same key in another key group: a separate entry (layout check)
      v.update('a2');
      at('a', 1);
      expect(v.value()).toBe('a1');
      expect(l.get()).toEqual(['a1']);
      at('b', 1);
      expect(v.value()).toBe('b1');
      expect(l.get()).toEqual([]);
      at('a', 2);
      expect(v.value()).toBe('a2');
      expect(b.keyGroupsWithState()).toEqual([1, 2]);
    });

    it('keeps states of one key apart', () => {
      const b = backend();
      const v1 = b.getState(new ValueStateDescriptor<number>('one'));
      const v2 = b.getState(new ValueStateDescriptor<number>('two'));
      b.setCurrentKey(7, 9);
      v1.update(1);
      expect(v2.value()).toBeUndefined();
      v2.update(2);
      v1.clear();
      expect(v2.value()).toBe(2);
    });

    it('distinguishes keys of different types', () => {
      const b = backend();
      const v = b.getState(new ValueStateDescriptor<string>('v'));
      const keys = [1, '1', 1n, true] as const;
      for (const k of keys) {
        b.setCurrentKey(k, 0);
        v.update(typeof k);
      }
      for (const k of keys) {
        b.setCurrentKey(k, 0);
        expect(v.value()).toBe(typeof k);
      }
      expect(b.numKeys()).toBe(4);
    });

    it('rejects state access with no current key', () => {
      const b = backend();
      const v = b.getState(new ValueStateDescriptor<number>('v'));
      const m = b.getState(new MapStateDescriptor<string, number>('m'));
      expect(() => v.value()).toThrow(EddyError);
      expect(() => v.update(1)).toThrow(/'v' was used with no current key/);
      expect(() => m.putAll([])).toThrow(/no current key/);
    });
  });
});
