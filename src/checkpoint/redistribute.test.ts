import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { OperatorStateSnapshot } from '../state/types.js';
import { redistributeOperatorState } from './redistribute.js';

const snapshots = (
  lists: number[][],
  mode: 'split' | 'union' | 'broadcast',
): OperatorStateSnapshot[] =>
  lists.map((elements) => ({ states: [{ name: 's', mode, elements }] }));

const elementsOf = (s: OperatorStateSnapshot) =>
  s.states.find((x) => x.name === 's')?.elements ?? [];

const lists = fc.array(fc.array(fc.integer(), { maxLength: 12 }), { minLength: 1, maxLength: 6 });

describe('redistributeOperatorState', () => {
  it('split: every element lands on exactly one new subtask, in contiguous runs of near-equal size', () => {
    fc.assert(
      fc.property(lists, fc.integer({ min: 1, max: 8 }), (old, p) => {
        const tagged = old.map((l, i) => l.map((_, k) => i * 1000 + k));
        const out = redistributeOperatorState(snapshots(tagged, 'split'), p).map(elementsOf);
        expect(out.flat()).toEqual(tagged.flat());
        if (old.length !== p) {
          const sizes = out.map((l) => l.length);
          expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
        }
      }),
    );
  });

  it('split at unchanged parallelism gives every subtask exactly its own elements', () => {
    fc.assert(
      fc.property(lists, (old) => {
        const out = redistributeOperatorState(snapshots(old, 'split'), old.length).map(elementsOf);
        expect(out).toEqual(old);
      }),
    );
  });

  it('union gives every new subtask all elements; broadcast one copy', () => {
    fc.assert(
      fc.property(lists, fc.integer({ min: 1, max: 8 }), (old, p) => {
        for (const l of redistributeOperatorState(snapshots(old, 'union'), p).map(elementsOf)) {
          expect(l).toEqual(old.flat());
        }
        const same = old.map(() => old[0]!);
        for (const l of redistributeOperatorState(snapshots(same, 'broadcast'), p).map(
          elementsOf,
        )) {
          expect(l).toEqual(old[0]);
        }
      }),
    );
  });

  it('refuses one state name with two modes', () => {
    const bad: OperatorStateSnapshot[] = [
      { states: [{ name: 's', mode: 'split', elements: [] }] },
      { states: [{ name: 's', mode: 'union', elements: [] }] },
    ];
    expect(() => redistributeOperatorState(bad, 2)).toThrow(/'split' in one subtask and 'union'/);
  });
});
