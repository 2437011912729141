/**
 * State moves between backends (issue 16: a savepoint taken with one backend restores into the
 * other, at any parallelism). fast-check draws operations of every state kind over keys of
 * every key type, spread over many key groups, and moves the state:
 *
 * - full snapshots: one backend of kind A over the whole range, snapshotted; restored into two
 *   backends of kind B splitting the range in halves; snapshotted again and restored into
 *   kind A at another split. Every hop keeps the entry set, key groups ascending and states by
 *   name; each key reads the same in every backend.
 * - incremental: a chain of delta views per key group (a block per completed view; a view
 *   capturing a key group whole starts its chain again; a failed view adds nothing), applied
 *   with restoreKeyGroup of KeyGroupChanges into kind B at a split, which then runs on with
 *   its own deltas on top of its restored base, and its chains are applied into kind A.
 *
 * Pairs: every ordered pair of distinct backends (heap -> disk, disk -> heap); with one backend
 * only, that backend to itself.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { assignToKeyGroup, type Key, normalizeKey } from '../keygroups/index.js';
import type { KeyedStateBackend } from './backend.js';
import {
  BACKENDS,
  canonicalSnapshots,
  compareKeys,
  disposeBackends,
  propertyRuns,
  type TestBackend,
} from './backend.testkit.js';
import {
  AggregatingStateDescriptor,
  ListStateDescriptor,
  MapStateDescriptor,
  ReducingStateDescriptor,
  ValueStateDescriptor,
} from './descriptors.js';
import type { KeyGroupChanges, KeyGroupSnapshot, NormalizedKey } from './types.js';

type Acc = { n: number; total: number };
type UserKey = string | number;

const D = {
  a: new AggregatingStateDescriptor<number, Acc, number>('agg', {
    createAccumulator: () => ({ n: 0, total: 0 }),
    add: (v, acc) => ({ n: acc.n + 1, total: acc.total + v }),
    getResult: (acc) => acc.total / acc.n,
  }),
  l: new ListStateDescriptor<unknown>('list'),
  m: new MapStateDescriptor<UserKey, unknown>('map'),
  r: new ReducingStateDescriptor<number>('reduce', (x, y) => x + y),
  v: new ValueStateDescriptor<unknown>('value'),
};

const states = (b: KeyedStateBackend) => ({
  a: b.getState(D.a),
  l: b.getState(D.l),
  m: b.getState(D.m),
  r: b.getState(D.r),
  v: b.getState(D.v),
});

/** Keys of every key type (tuples and Dates normalise to tagged strings). */
const keyArb: fc.Arbitrary<Key> = fc.oneof(
  fc.string({ maxLength: 6 }),
  fc.string({ unit: 'binary', maxLength: 3 }),
  fc.integer({ min: -1_000_000, max: 1_000_000 }),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.bigInt({ min: -(2n ** 70n), max: 2n ** 70n }),
  fc.boolean(),
  fc.tuple(fc.string({ maxLength: 3 }), fc.integer({ min: -5, max: 5 })),
  fc.date({ noInvalidDate: true }),
);

/** Values as msgpack keeps them (the checkpoint codec): no -0, no undefined, no class instances. */
const scalarArb = fc.oneof(
  fc.integer(),
  fc.double({ noNaN: true }).map((n) => (Object.is(n, -0) ? 0 : n)),
  fc.string({ maxLength: 8 }),
  fc.boolean(),
  fc.constant(null),
  fc.bigInt({ min: -(2n ** 80n), max: 2n ** 80n }),
);
const valueArb: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: scalarArb },
  { weight: 1, arbitrary: fc.array(scalarArb, { maxLength: 4 }) },
  { weight: 1, arbitrary: fc.record({ id: fc.integer(), tag: fc.string({ maxLength: 4 }) }) },
);
const userKeyArb: fc.Arbitrary<UserKey> = fc.oneof(
  fc.constantFrom('x', 'y', 'z', '', 'é', '1'),
  fc.integer({ min: -3, max: 3 }),
);
const num = fc.integer({ min: -100, max: 100 });

type Op =
  | { t: 'vUpdate'; v: unknown }
  | { t: 'lAdd'; v: unknown }
  | { t: 'lAddAll' | 'lUpdate'; vs: unknown[] }
  | { t: 'mPut'; k: UserKey; v: unknown }
  | { t: 'mPutAll'; es: Array<[UserKey, unknown]> }
  | { t: 'mDelete'; k: UserKey }
  | { t: 'rAdd' | 'aAdd'; n: number }
  | { t: 'clear'; s: keyof typeof D };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ t: fc.constant('vUpdate' as const), v: valueArb }),
  fc.record({ t: fc.constant('lAdd' as const), v: valueArb }),
  fc.record({
    t: fc.constantFrom('lAddAll' as const, 'lUpdate' as const),
    vs: fc.array(valueArb, { maxLength: 3 }),
  }),
  fc.record({ t: fc.constant('mPut' as const), k: userKeyArb, v: valueArb }),
  fc.record({
    t: fc.constant('mPutAll' as const),
    es: fc.array(fc.tuple(userKeyArb, valueArb), { maxLength: 3 }),
  }),
  fc.record({ t: fc.constant('mDelete' as const), k: userKeyArb }),
  fc.record({ t: fc.constantFrom('rAdd' as const, 'aAdd' as const), n: num }),
  fc.record({ t: fc.constant('clear' as const), s: fc.constantFrom('a', 'l', 'm', 'r', 'v') }),
);

const apply = (s: ReturnType<typeof states>, op: Op): void => {
  switch (op.t) {
    case 'vUpdate':
      s.v.update(op.v);
      break;
    case 'lAdd':
      s.l.add(op.v);
      break;
    case 'lAddAll':
      s.l.addAll(op.vs);
      break;
    case 'lUpdate':
      s.l.update(op.vs);
      break;
    case 'mPut':
      s.m.put(op.k, op.v);
      break;
    case 'mPutAll':
      s.m.putAll(op.es);
      break;
    case 'mDelete':
      s.m.delete(op.k);
      break;
    case 'rAdd':
      s.r.add(op.n);
      break;
    case 'aAdd':
      s.a.add(op.n);
      break;
    case 'clear':
      s[op.s].clear();
      break;
  }
};

const byUserKey = (x: [UserKey, unknown], y: [UserKey, unknown]) => compareKeys(x[0], y[0]);

/** What every state reads for the current key (map entries sorted: their order is the backend's). */
const read = (s: ReturnType<typeof states>) => ({
  a: s.a.get(),
  l: s.l.get(),
  m: [...s.m.entries()].sort(byUserKey),
  r: s.r.get(),
  v: s.v.value(),
});

type Range = { start: number; end: number };

/** Backends of `kind` over `ranges` (contiguous, covering the key groups). */
class Subtasks {
  readonly backends: KeyedStateBackend[];
  constructor(kind: TestBackend, ranges: readonly Range[], maxParallelism: number, track = false) {
    this.backends = ranges.map((keyGroupRange) =>
      kind.create({ keyGroupRange, maxParallelism, trackChanges: track }),
    );
  }

  owner(keyGroup: number): KeyedStateBackend {
    return this.backends.find(
      (b) => b.keyGroupRange.start <= keyGroup && keyGroup <= b.keyGroupRange.end,
    )!;
  }

  restore(block: KeyGroupSnapshot | KeyGroupChanges): void {
    this.owner(block.keyGroup).restoreKeyGroup(block);
  }

  snapshot(): KeyGroupSnapshot[] {
    return this.backends.flatMap((b) => b.snapshot());
  }

  /** Applies `steps`, each to the backend owning its key, at the key's key group. */
  run(steps: ReadonlyArray<readonly [Key, Op]>, maxParallelism: number): void {
    for (const [key, op] of steps) {
      const kg = assignToKeyGroup(key, maxParallelism);
      const b = this.owner(kg);
      b.setCurrentKey(normalizeKey(key), kg);
      apply(states(b), op);
    }
  }

  /** What each key reads (registers the states). */
  reads(keys: readonly Key[], maxParallelism: number): unknown[] {
    return keys.map((key) => {
      const kg = assignToKeyGroup(key, maxParallelism);
      const b = this.owner(kg);
      b.setCurrentKey(normalizeKey(key), kg);
      return read(states(b));
    });
  }
}

/** [0, maxP) split at `cuts` into contiguous inclusive ranges. */
const split = (maxParallelism: number, cuts: readonly number[]): Range[] => {
  const inside = cuts.filter((c) => c > 0 && c < maxParallelism);
  const bounds = [0, ...[...new Set(inside)].sort((x, y) => x - y), maxParallelism];
  return bounds.slice(1).map((end, i) => ({ start: bounds[i]!, end: end - 1 }));
};

/** Halves of [0, maxP) at `cut` (one range if maxP is 1). */
const halves = (maxParallelism: number, cut: number): Range[] =>
  split(maxParallelism, [1 + (cut % Math.max(1, maxParallelism - 1))]);

/** The (key group, state, key) triples of snapshots, and their entry count, for stats checks. */
const stats = (backends: readonly KeyedStateBackend[]) => ({
  numKeys: backends.reduce((n, b) => n + b.numKeys(), 0),
  numEntries: backends.reduce((n, b) => n + b.numEntries(), 0),
  keyGroups: backends.flatMap((b) => b.keyGroupsWithState()),
  sizes: backends.flatMap((b) => [...b.keyGroupSizes()]),
});

const expectedStats = (snaps: readonly KeyGroupSnapshot[]) => {
  const keys = new Set<string>();
  for (const g of snaps) {
    for (const s of g.states)
      for (const [k] of s.entries) keys.add(`${g.keyGroup}|${typeof k}|${k}`);
  }
  const sizes = snaps.map((g): [number, number] => [
    g.keyGroup,
    g.states.reduce((n, s) => n + s.entries.length, 0),
  ]);
  return {
    numKeys: keys.size,
    numEntries: sizes.reduce((n, [, c]) => n + c, 0),
    keyGroups: snaps.map((g) => g.keyGroup),
    sizes,
  };
};

const PAIRS: ReadonlyArray<readonly [TestBackend, TestBackend]> =
  BACKENDS.length === 1
    ? [[BACKENDS[0]!, BACKENDS[0]!]]
    : BACKENDS.flatMap((a) => BACKENDS.filter((b) => b !== a).map((b) => [a, b] as const));

const stepsArb = (keys: readonly Key[]) =>
  fc.array(fc.tuple(fc.constantFrom(...keys), opArb), { maxLength: 80 });

describe.each(PAIRS.map(([from, to]) => ({ from, to, name: `${from.name} -> ${to.name}` })))(
  'state moved $name',
  ({ from, to }) => {
    it('full snapshots: into halves of the other backend and back at another split, entry set kept', () => {
      const arb = fc.integer({ min: 1, max: 40 }).chain((maxParallelism) =>
        fc
          .uniqueArray(keyArb, { minLength: 1, maxLength: 30, selector: normalizeKey })
          .chain((keys) =>
            fc.record({
              maxParallelism: fc.constant(maxParallelism),
              keys: fc.constant(keys),
              steps: stepsArb(keys),
              cut: fc.nat(),
              backCuts: fc.array(fc.nat({ max: maxParallelism }), { maxLength: 3 }),
              register: fc.constantFrom('before' as const, 'after' as const, 'never' as const),
            }),
          ),
      );
      fc.assert(
        fc.property(arb, (c) => {
          const maxP = c.maxParallelism;
          const source = new Subtasks(from, [{ start: 0, end: maxP - 1 }], maxP);
          source.run(c.steps, maxP);
          const snaps = source.snapshot();
          const original = structuredClone(snaps);

          const moved = new Subtasks(to, halves(maxP, c.cut), maxP);
          if (c.register === 'before') for (const b of moved.backends) states(b);
          for (const s of snaps) moved.restore(s);
          if (c.register === 'after') for (const b of moved.backends) states(b);
          const there = moved.snapshot();
          expect(canonicalSnapshots(there)).toEqual(canonicalSnapshots(original));
          expect(snaps).toEqual(original); // restoring did not change the snapshot
          expect(stats(moved.backends)).toEqual(expectedStats(original));
          // Views read what snapshots read.
          for (const b of moved.backends) {
            const view = b.snapshotView();
            expect(canonicalSnapshots(view.keyGroups.map((kg) => view.read(kg)))).toEqual(
              canonicalSnapshots(b.snapshot()),
            );
            view.release();
          }
          // forEachEntry visits every entry of a state, key groups ascending.
          for (const name of ['value', 'reduce']) {
            const seen: Array<[number, NormalizedKey]> = [];
            for (const b of moved.backends) b.forEachEntry(name, (_v, k, kg) => seen.push([kg, k]));
            const want = original.flatMap((g) =>
              g.states
                .filter((s) => s.name === name)
                .flatMap((s) => s.entries.map(([k]): [number, NormalizedKey] => [g.keyGroup, k])),
            );
            const order = (x: [number, NormalizedKey], y: [number, NormalizedKey]) =>
              x[0] - y[0] || compareKeys(x[1], y[1]);
            expect(seen.map(([kg]) => kg)).toEqual(
              [...seen.map(([kg]) => kg)].sort((x, y) => x - y),
            );
            expect(seen.sort(order)).toEqual(want.sort(order));
          }

          const back = new Subtasks(from, split(maxP, c.backCuts), maxP);
          for (const s of there) back.restore(s);
          expect(canonicalSnapshots(back.snapshot())).toEqual(canonicalSnapshots(original));
          if (c.register !== 'never') {
            const want = source.reads(c.keys, maxP);
            expect(moved.reads(c.keys, maxP)).toEqual(want);
            expect(back.reads(c.keys, maxP)).toEqual(want);
          }
        }),
        {
          numRuns: propertyRuns(to.name === 'heap' ? from : to, 100),
          plugins: [fc.afterEach(disposeBackends)],
        },
      );
    });

    it('incremental: chains of delta views applied with restoreKeyGroup, there and back', () => {
      const roundArb = (keys: readonly Key[]) =>
        fc.record({
          steps: stepsArb(keys),
          /** Written after the view was taken, before it is read. */
          during: fc.array(fc.tuple(fc.constantFrom(...keys), opArb), { maxLength: 15 }),
          whole: fc.constantFrom('none' as const, 'all' as const, 'even' as const),
          fails: fc.boolean(),
        });
      const arb = fc.integer({ min: 1, max: 24 }).chain((maxParallelism) =>
        fc
          .uniqueArray(keyArb, { minLength: 1, maxLength: 20, selector: normalizeKey })
          .chain((keys) =>
            fc.record({
              maxParallelism: fc.constant(maxParallelism),
              keys: fc.constant(keys),
              there: fc.array(roundArb(keys), { minLength: 1, maxLength: 4 }),
              back: fc.array(roundArb(keys), { minLength: 1, maxLength: 4 }),
              cut: fc.nat(),
              backCuts: fc.array(fc.nat({ max: maxParallelism }), { maxLength: 3 }),
            }),
          ),
      );
      fc.assert(
        fc.property(arb, (c) => {
          const maxP = c.maxParallelism;
          const source = new Subtasks(from, [{ start: 0, end: maxP - 1 }], maxP, true);
          const first = deltaRounds(source, new Map(), [], c.there, maxP);

          const moved = new Subtasks(to, halves(maxP, c.cut), maxP, true);
          for (const b of moved.backends) states(b);
          applyChains(moved, first.chains);
          const restored = moved.snapshot();
          expect(canonicalSnapshots(restored)).toEqual(canonicalSnapshots(first.latest));
          // Restores are not changes: the first delta after it is empty.
          for (const b of moved.backends) {
            const view = b.deltaView()!;
            expect(view.keyGroups).toEqual([]);
            view.complete();
            view.release();
          }

          // The moved job runs on: its chains start from the blocks it restored.
          const base = new Map(structuredClone(restored).map((g) => [g.keyGroup, [g]]));
          const second = deltaRounds(moved, base, restored, c.back, maxP);
          const back = new Subtasks(from, split(maxP, c.backCuts), maxP);
          applyChains(back, second.chains);
          expect(canonicalSnapshots(back.snapshot())).toEqual(canonicalSnapshots(second.latest));
        }),
        {
          numRuns: propertyRuns(to.name === 'heap' ? from : to, 100),
          plugins: [fc.afterEach(disposeBackends)],
        },
      );
    });
  },
);

type Round = {
  steps: ReadonlyArray<readonly [Key, Op]>;
  during: ReadonlyArray<readonly [Key, Op]>;
  whole: 'none' | 'all' | 'even';
  fails: boolean;
};

/**
 * Runs `rounds` on `subtasks` (tracking changes): per round, the steps, then one delta view per
 * backend (key groups captured whole per the round's rule), more steps while it is open, then
 * its blocks read and appended to the chains (a whole key group's block replaces its chain);
 * a failed round releases its views unwritten. Returns the chains and the state at the latest
 * completed round (or `initial`).
 */
const deltaRounds = (
  subtasks: Subtasks,
  chains: Map<number, KeyGroupChanges[]>,
  initial: readonly KeyGroupSnapshot[],
  rounds: readonly Round[],
  maxParallelism: number,
): { chains: Map<number, KeyGroupChanges[]>; latest: KeyGroupSnapshot[] } => {
  let latest = structuredClone([...initial]);
  for (const round of rounds) {
    subtasks.run(round.steps, maxParallelism);
    const atView = structuredClone(subtasks.snapshot());
    const rule = (kg: number) =>
      round.whole === 'all' ? true : round.whole === 'even' ? kg % 2 === 0 : false;
    const views = subtasks.backends.map((b) => b.deltaView(rule)!);
    subtasks.run(round.during, maxParallelism);
    for (const view of views) {
      expect(view.keyGroups).toEqual([...view.keyGroups].sort((x, y) => x - y));
      for (const kg of view.keyGroups) {
        const d = view.readDelta(kg);
        expect(d.keyGroup).toBe(kg);
        expect(d.whole).toBe(rule(kg));
        expect(d.states.map((s) => s.name)).toEqual(d.states.map((s) => s.name).sort());
        if (d.whole) expect(d.states.every((s) => s.deleted.length === 0)).toBe(true);
        if (d.whole && view.readWhole !== undefined) {
          // The fast path reads the same entries as readDelta.
          const fast = view.readWhole(kg)!;
          expect(
            fast.map((s) => ({
              name: s.name,
              count: s.count,
              entries: sortedPairs(s.mapValues, [
                ...s.keys.flatMap((k) => {
                  const v = s.valueAt(k);
                  return v === undefined ? [] : [[k, v] as const];
                }),
                ...s.tail,
              ]),
            })),
          ).toEqual(
            d.states
              .filter((s) => s.entries.length > 0)
              .map((s) => ({
                name: s.name,
                count: s.entries.length,
                entries: sortedPairs(s.kind === 'map', s.entries),
              })),
          );
        }
        if (round.fails) continue;
        const block = structuredClone({ keyGroup: kg, states: d.states });
        if (d.whole) chains.set(kg, [block]);
        else chains.set(kg, [...(chains.get(kg) ?? []), block]);
      }
      if (!round.fails) view.complete();
      view.release();
    }
    if (!round.fails) latest = atView;
  }
  return { chains, latest };
};

/**
 * Entries sorted by key; for map state (`map`), each value's pairs sorted by user key, whether
 * in snapshot form (an array of pairs) or live (a `Map`, as a key list read whole may hand out).
 */
const sortedPairs = (map: boolean, entries: ReadonlyArray<readonly [NormalizedKey, unknown]>) =>
  [...entries]
    .map(([k, v]) => {
      if (!map) return [k, v] as const;
      const pairs = v instanceof Map ? [...v] : (v as Array<[UserKey, unknown]>);
      return [k, [...pairs].sort(byUserKey)] as const;
    })
    .sort((x, y) => compareKeys(x[0], y[0]));

/** Restores each key group's chain, oldest block first, into the backend owning it. */
const applyChains = (subtasks: Subtasks, chains: ReadonlyMap<number, KeyGroupChanges[]>): void => {
  for (const kg of [...chains.keys()].sort((x, y) => x - y)) {
    for (const block of chains.get(kg)!) subtasks.restore(block);
  }
};
