/**
 * SlotTable: examples of the allocation policy, then properties over random sequences of
 * registrations, losses, allocations and releases, checked against a small model of who holds
 * which slot (the grants the table handed out, minus what was released).
 *
 * Attempts are fresh for every allocation, as in the master (pool.ts makes a unique token per
 * attempt): allocating twice for one attempt is outside the contract.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type SlotGrant, SlotTable } from './slots.js';

const table = (...processes: Array<[string, number]>): SlotTable => {
  const t = new SlotTable();
  for (const [id, slots] of processes) t.add(id, slots);
  return t;
};

/** Free slots of every process (and the totals), to compare before and after an operation. */
const snapshot = (t: SlotTable, ids: readonly string[]) => ({
  free: ids.map((id) => [id, t.has(id), t.freeOf(id), t.slotsOf(id)] as const),
  totalFree: t.totalFree(),
  totalSlots: t.totalSlots(),
  held: t.heldBy(() => true),
});

const perProcess = (grants: readonly SlotGrant[]): Map<string, number> => {
  const m = new Map<string, number>();
  for (const g of grants) m.set(g.process, (m.get(g.process) ?? 0) + 1);
  return m;
};

describe('SlotTable (examples)', () => {
  it('is empty before any registration', () => {
    const t = new SlotTable();
    expect(t.totalSlots()).toBe(0);
    expect(t.totalFree()).toBe(0);
    expect(t.has('w1')).toBe(false);
    expect(t.slotsOf('w1')).toBe(0);
    expect(t.freeOf('w1')).toBe(0);
    expect(t.allocate('a', 1)).toBeUndefined();
    expect(t.remove('w1')).toEqual([]);
  });

  it('p=2 on two processes of 2 slots uses one slot of each', () => {
    const t = table(['w1', 2], ['w2', 2]);
    expect(t.allocate('a', 2)).toEqual([
      { process: 'w1', worker: 0 },
      { process: 'w2', worker: 1 },
    ]);
    expect([t.freeOf('w1'), t.freeOf('w2')]).toEqual([1, 1]);
  });

  it('goes to the process with the most free slots; ties go to the one registered first', () => {
    const t = table(['w1', 1], ['w2', 3], ['w3', 3]);
    expect(t.allocate('a', 4)!.map((g) => g.process)).toEqual(['w2', 'w3', 'w2', 'w3']);
    expect([t.freeOf('w1'), t.freeOf('w2'), t.freeOf('w3')]).toEqual([1, 1, 1]);
    // The next attempt counts what the first holds: all tie, so registration order.
    expect(t.allocate('b', 2)!.map((g) => g.process)).toEqual(['w1', 'w2']);
    expect(t.totalFree()).toBe(1);
  });

  it('refuses an allocation larger than the free slots and changes nothing', () => {
    const t = table(['w1', 2], ['w2', 1]);
    t.allocate('a', 2);
    const before = snapshot(t, ['w1', 'w2']);
    expect(t.allocate('b', 2)).toBeUndefined();
    expect(snapshot(t, ['w1', 'w2'])).toEqual(before);
    expect(t.allocate('b', 1)).toEqual([{ process: 'w2', worker: 0 }]);
    expect(t.totalFree()).toBe(0);
  });

  it('allocates nothing for n=0', () => {
    const t = table(['w1', 1]);
    expect(t.allocate('a', 0)).toEqual([]);
    expect(t.totalFree()).toBe(1);
  });

  it('release frees one slot; releaseAttempt frees every slot of the attempt, only that one', () => {
    const t = table(['w1', 2], ['w2', 2]);
    t.allocate('a', 3);
    t.allocate('b', 1);
    expect(t.totalFree()).toBe(0);
    t.release('a', 'w1', 0);
    expect(t.freeOf('w1')).toBe(1);
    // Releasing again, or a slot never held, changes nothing.
    t.release('a', 'w1', 0);
    t.release('x', 'w1', 0);
    t.release('a', 'nowhere', 1);
    expect(t.totalFree()).toBe(1);
    t.releaseAttempt('a');
    expect(t.heldBy((a) => a === 'a')).toBe(0);
    expect(t.heldBy((a) => a === 'b')).toBe(1);
    expect(t.totalFree()).toBe(3);
  });

  it('remove returns the attempts that held slots there, and its slots leave the totals', () => {
    const t = table(['w1', 2], ['w2', 2], ['w3', 1]);
    expect(t.allocate('a', 2)!.map((g) => g.process)).toEqual(['w1', 'w2']);
    expect(t.allocate('b', 2)!.map((g) => g.process)).toEqual(['w1', 'w2']);
    expect(t.allocate('c', 1)!.map((g) => g.process)).toEqual(['w3']);
    const onW2 = t.remove('w2').sort();
    expect(onW2).toEqual(['a', 'b']);
    expect(t.has('w2')).toBe(false);
    expect(t.totalSlots()).toBe(3);
    expect(t.remove('w2')).toEqual([]);
    // An attempt whose slots there were all released is not reported.
    t.release('c', 'w3', 0);
    expect(t.remove('w3')).toEqual([]);
  });

  it('heldBy counts the slots of the attempts the predicate picks', () => {
    const t = table(['w1', 4], ['w2', 4]);
    t.allocate('job1/1/x', 3);
    t.allocate('job2/1/y', 2);
    expect(t.heldBy((a) => a.startsWith('job1/'))).toBe(3);
    expect(t.heldBy((a) => a.startsWith('job2/'))).toBe(2);
    expect(t.heldBy(() => false)).toBe(0);
  });
});

// ---------------------------------------------------------------------------------------------
// Properties

type Op =
  | { kind: 'add'; slots: number }
  | { kind: 'remove'; pick: number }
  | { kind: 'allocate'; n: number }
  | { kind: 'release'; pick: number }
  | { kind: 'releaseAttempt'; pick: number };

const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('add' as const), slots: fc.integer({ min: 0, max: 5 }) }),
  fc.record({ kind: fc.constant('remove' as const), pick: fc.nat() }),
  fc.record({ kind: fc.constant('allocate' as const), n: fc.integer({ min: 0, max: 8 }) }),
  fc.record({ kind: fc.constant('release' as const), pick: fc.nat() }),
  fc.record({ kind: fc.constant('releaseAttempt' as const), pick: fc.nat() }),
);

interface Held {
  attempt: string;
  process: string;
  worker: number;
}

/** Applies `ops` and checks every operation's effect against the model of held slots. */
const check = (ops: readonly Op[]): void => {
  const t = new SlotTable();
  const ids: string[] = [];
  const live = new Set<string>();
  const slots = new Map<string, number>();
  let held: Held[] = [];
  let attempts = 0;
  const heldAt = (p: string) => held.filter((h) => h.process === p).length;

  const invariants = () => {
    let totalSlots = 0;
    for (const id of ids) {
      const has = live.has(id);
      expect(t.has(id)).toBe(has);
      expect(t.slotsOf(id)).toBe(has ? slots.get(id) : 0);
      expect(t.freeOf(id)).toBe(has ? slots.get(id)! - heldAt(id) : 0);
      expect(t.freeOf(id)).toBeGreaterThanOrEqual(0);
      if (has) totalSlots += slots.get(id)!;
    }
    expect(t.totalSlots()).toBe(totalSlots);
    expect(t.totalFree()).toBe(totalSlots - held.length);
    expect(t.heldBy(() => true)).toBe(held.length);
  };

  for (const o of ops) {
    const liveIds = [...live];
    switch (o.kind) {
      case 'add': {
        const id = `w${ids.length + 1}`;
        ids.push(id);
        live.add(id);
        slots.set(id, o.slots);
        t.add(id, o.slots);
        break;
      }
      case 'remove': {
        if (liveIds.length === 0) break;
        const id = liveIds[o.pick % liveIds.length]!;
        const expected = [...new Set(held.filter((h) => h.process === id).map((h) => h.attempt))];
        expect(t.remove(id).sort()).toEqual(expected.sort());
        live.delete(id);
        // The master ends those attempts; their slots elsewhere stay held until it does.
        held = held.filter((h) => h.process !== id);
        break;
      }
      case 'allocate': {
        const attempt = `a${++attempts}`;
        const before = snapshot(t, ids);
        const freeBefore = new Map(liveIds.map((id) => [id, t.freeOf(id)]));
        const grants = t.allocate(attempt, o.n);
        if (before.totalFree < o.n) {
          expect(grants).toBeUndefined();
          expect(snapshot(t, ids)).toEqual(before);
          break;
        }
        expect(grants).toBeDefined();
        expect(grants!.map((g) => g.worker)).toEqual(Array.from({ length: o.n }, (_, i) => i));
        for (const [p, used] of perProcess(grants!)) {
          expect(live.has(p)).toBe(true);
          // Never more than the free slots of a process.
          expect(used).toBeLessThanOrEqual(freeBefore.get(p)!);
          expect(t.freeOf(p)).toBe(freeBefore.get(p)! - used);
        }
        expect(t.heldBy((a) => a === attempt)).toBe(o.n);
        for (const g of grants!) held.push({ attempt, process: g.process, worker: g.worker });
        break;
      }
      case 'release': {
        if (held.length === 0) {
          t.release('nobody', liveIds[0] ?? 'w0', 0);
          break;
        }
        const h = held[o.pick % held.length]!;
        const free = t.freeOf(h.process);
        t.release(h.attempt, h.process, h.worker);
        expect(t.freeOf(h.process)).toBe(free + 1);
        held = held.filter((x) => x !== h);
        // A second release of the same slot changes nothing.
        t.release(h.attempt, h.process, h.worker);
        expect(t.freeOf(h.process)).toBe(free + 1);
        break;
      }
      case 'releaseAttempt': {
        if (held.length === 0) break;
        const attempt = held[o.pick % held.length]!.attempt;
        const total = t.totalFree();
        const n = held.filter((h) => h.attempt === attempt).length;
        t.releaseAttempt(attempt);
        expect(t.totalFree()).toBe(total + n);
        expect(t.heldBy((a) => a === attempt)).toBe(0);
        held = held.filter((h) => h.attempt !== attempt);
        break;
      }
    }
    invariants();
  }
};

describe('SlotTable (properties)', () => {
  it('random registrations, losses, allocations and releases keep the free counts exact', () => {
    fc.assert(
      fc.property(fc.array(op, { minLength: 1, maxLength: 40 }), (ops) => check(ops)),
      { numRuns: 500 },
    );
  });

  it('spreads one attempt evenly over processes of equal slots: max - min per process <= 1', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 1, max: 5 }),
        fc.integer({ min: 0, max: 30 }),
        (processes, slots, want) => {
          const t = new SlotTable();
          for (let i = 0; i < processes; i++) t.add(`w${i}`, slots);
          const n = Math.min(want, processes * slots);
          const grants = t.allocate('a', n)!;
          expect(grants).toHaveLength(n);
          const use = Array.from(
            { length: processes },
            (_, i) => grants.filter((g) => g.process === `w${i}`).length,
          );
          expect(Math.max(...use) - Math.min(...use)).toBeLessThanOrEqual(1);
          // Ties go to the process registered first: the busier ones come first.
          expect([...use].sort((a, b) => b - a)).toEqual(use);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('spreads evenly over the free slots after other attempts took some (equal free counts)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 2, max: 5 }),
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 0, max: 3 }),
        fc.nat(),
        (processes, free, taken, want) => {
          // Every process has `free` free slots, after an attempt took `taken` of each.
          const t = new SlotTable();
          for (let i = 0; i < processes; i++) t.add(`w${i}`, free + taken);
          t.allocate('other', processes * taken);
          const n = want % (processes * free + 1);
          const grants = t.allocate('a', n)!;
          const use = Array.from(
            { length: processes },
            (_, i) => grants.filter((g) => g.process === `w${i}`).length,
          );
          expect(Math.max(...use) - Math.min(...use)).toBeLessThanOrEqual(1);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('allocate refuses when too few slots are free and changes nothing', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 4 }), { minLength: 0, maxLength: 5 }),
        fc.array(fc.integer({ min: 1, max: 4 }), { maxLength: 4 }),
        fc.integer({ min: 1, max: 5 }),
        (caps, earlier, extra) => {
          const t = new SlotTable();
          caps.forEach((s, i) => t.add(`w${i}`, s));
          earlier.forEach((n, i) => t.allocate(`e${i}`, n));
          const ids = caps.map((_, i) => `w${i}`);
          const before = snapshot(t, ids);
          expect(t.allocate('a', t.totalFree() + extra)).toBeUndefined();
          expect(snapshot(t, ids)).toEqual(before);
          expect(t.heldBy((a) => a === 'a')).toBe(0);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('releasing every slot of every attempt, one by one or by attempt, restores all free slots', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 4 }), { minLength: 1, maxLength: 5 }),
        fc.array(fc.integer({ min: 1, max: 4 }), { maxLength: 5 }),
        fc.boolean(),
        (caps, sizes, oneByOne) => {
          const t = new SlotTable();
          caps.forEach((s, i) => t.add(`w${i}`, s));
          const total = t.totalSlots();
          const all: Array<[string, SlotGrant[]]> = [];
          sizes.forEach((n, i) => {
            const g = t.allocate(`a${i}`, n);
            if (g) all.push([`a${i}`, g]);
          });
          for (const [a, grants] of all) {
            if (oneByOne) for (const g of grants) t.release(a, g.process, g.worker);
            else t.releaseAttempt(a);
          }
          expect(t.totalFree()).toBe(total);
          caps.forEach((s, i) => expect(t.freeOf(`w${i}`)).toBe(s));
          // Nothing is held, so a lost process takes no attempt with it.
          caps.forEach((_, i) => expect(t.remove(`w${i}`)).toEqual([]));
          expect(t.totalSlots()).toBe(0);
        },
      ),
      { numRuns: 300 },
    );
  });
});
