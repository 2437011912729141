/**
 * Property tests of every keyed backend (`BACKENDS`): random operations agree with a reference
 * model, snapshots survive being split across any set of contiguous key-group ranges, snapshot
 * views read exactly the state at the time they were taken, and a lazy restore behaves as an
 * eager one. Heap internals (copy-on-write copies, lazy decoding) are checked for the heap only.
 * Entries within a key group and map-state keys are compared sorted: their order is the
 * backend's (the heap keeps insertion order, the disk backend byte order).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { KeyedStateBackend } from './backend.js';
import {
  BACKENDS,
  canonicalSnapshots,
  compareKeys,
  disposeBackends,
  propertyRuns,
} from './backend.testkit.js';
import {
  AggregatingStateDescriptor,
  ListStateDescriptor,
  MapStateDescriptor,
  ReducingStateDescriptor,
  ValueStateDescriptor,
} from './descriptors.js';
import { HeapKeyedStateBackend } from './heap-keyed-backend.js';
import type { KeyedStateSnapshotView, KeyGroupSnapshot, NormalizedKey } from './types.js';

type Acc = readonly [min: number, count: number];

const D = {
  v: new ValueStateDescriptor<number>('v', { defaultValue: -1 }),
  l: new ListStateDescriptor<number>('l'),
  m: new MapStateDescriptor<string, number>('m'),
  r: new ReducingStateDescriptor<number>('r', (a, b) => a + b),
  a: new AggregatingStateDescriptor<number, Acc, string>('a', {
    createAccumulator: () => [Number.POSITIVE_INFINITY, 0],
    add: (v, [min, n]) => [Math.min(min, v), n + 1],
    getResult: ([min, n]) => `${min}/${n}`,
  }),
};
type StateName = keyof typeof D;
const NAMES = Object.keys(D) as StateName[];

/** A stable stand-in for the key-group assignment (the real one lives in keygroups). */
const keyGroupOf = (key: NormalizedKey, maxParallelism: number): number => {
  let h = 7;
  for (const c of `${typeof key}:${String(key)}`) h = (h * 31 + c.charCodeAt(0)) >>> 0;
  return h % maxParallelism;
};

const modelKey = (state: StateName, key: NormalizedKey) => `${state}|${typeof key}|${key}`;

const keyArb: fc.Arbitrary<NormalizedKey> = fc.oneof(
  fc.integer({ min: -1000, max: 1000 }),
  fc.string({ maxLength: 4 }),
  fc.bigInt({ min: -5n, max: 5n }),
  fc.boolean(),
);
const num = fc.integer({ min: -50, max: 50 });
const mapKey = fc.constantFrom('x', 'y');

type Op =
  | { t: 'vUpdate'; v: number }
  | { t: 'lAdd'; v: number }
  | { t: 'lAddAll' | 'lUpdate'; vs: number[] }
  | { t: 'mPut'; k: string; v: number }
  | { t: 'mDelete'; k: string }
  | { t: 'rAdd' | 'aAdd'; v: number }
  | { t: 'clear'; state: StateName };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ t: fc.constant('vUpdate' as const), v: num }),
  fc.record({ t: fc.constant('lAdd' as const), v: num }),
  fc.record({
    t: fc.constantFrom('lAddAll' as const, 'lUpdate' as const),
    vs: fc.array(num, { maxLength: 3 }),
  }),
  fc.record({ t: fc.constant('mPut' as const), k: mapKey, v: num }),
  fc.record({ t: fc.constant('mDelete' as const), k: mapKey }),
  fc.record({ t: fc.constantFrom('rAdd' as const, 'aAdd' as const), v: num }),
  fc.record({ t: fc.constant('clear' as const), state: fc.constantFrom(...NAMES) }),
);
/**
 * Steps over a per-run pool of at most `maxKeys` keys: with few keys, operations on one key
 * interleave and often undo each other (put then delete the last map key), which is where
 * empty-entry bugs hide; with many, many key groups get state.
 */
const stepsArb = (maxKeys: number) =>
  fc
    .uniqueArray(keyArb, { minLength: 1, maxLength: maxKeys })
    .chain((keys) => fc.array(fc.tuple(fc.constantFrom(...keys), opArb), { maxLength: 120 }));

type Model = Map<string, unknown>;

const states = (b: KeyedStateBackend) => ({
  v: b.getState(D.v),
  l: b.getState(D.l),
  m: b.getState(D.m),
  r: b.getState(D.r),
  a: b.getState(D.a),
});

/** Applies `op` for `key` to the model: the obvious semantics, written independently. */
const applyToModel = (model: Model, key: NormalizedKey, op: Op): void => {
  const at = (s: StateName) => modelKey(s, key);
  const setOrDelete = (k: string, present: boolean, value: unknown) =>
    present ? model.set(k, value) : model.delete(k);
  switch (op.t) {
    case 'vUpdate':
      model.set(at('v'), op.v);
      break;
    case 'lAdd':
      model.set(at('l'), [...((model.get(at('l')) as number[]) ?? []), op.v]);
      break;
    case 'lAddAll': {
      const next = [...((model.get(at('l')) as number[]) ?? []), ...op.vs];
      setOrDelete(at('l'), next.length > 0, next);
      break;
    }
    case 'lUpdate':
      setOrDelete(at('l'), op.vs.length > 0, [...op.vs]);
      break;
    case 'mPut': {
      const next = new Map(model.get(at('m')) as Map<string, number> | undefined);
      model.set(at('m'), next.set(op.k, op.v));
      break;
    }
    case 'mDelete': {
      const next = new Map(model.get(at('m')) as Map<string, number> | undefined);
      next.delete(op.k);
      setOrDelete(at('m'), next.size > 0, next);
      break;
    }
    case 'rAdd':
      model.set(at('r'), ((model.get(at('r')) as number) ?? 0) + op.v);
      break;
    case 'aAdd': {
      const [min, n] = (model.get(at('a')) as Acc | undefined) ?? [Number.POSITIVE_INFINITY, 0];
      model.set(at('a'), [Math.min(min, op.v), n + 1]);
      break;
    }
    case 'clear':
      model.delete(at(op.state));
      break;
  }
};

const applyToBackend = (s: ReturnType<typeof states>, op: Op): void => {
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
    case 'mDelete':
      s.m.delete(op.k);
      break;
    case 'rAdd':
      s.r.add(op.v);
      break;
    case 'aAdd':
      s.a.add(op.v);
      break;
    case 'clear':
      s[op.state].clear();
      break;
  }
};

/** What every state reads for the backend's current key, in the model's terms. */
const byMapKey = (a: [string, number], b: [string, number]) => compareKeys(a[0], b[0]);

/** What every state reads for the current key; map entries sorted (their order is the backend's). */
const readBackend = (s: ReturnType<typeof states>) => ({
  v: s.v.value(),
  l: s.l.get(),
  m: [...s.m.entries()].sort(byMapKey),
  r: s.r.get(),
  a: s.a.get(),
});

const readModel = (model: Model, key: NormalizedKey) => {
  const acc = model.get(modelKey('a', key)) as Acc | undefined;
  return {
    v: (model.get(modelKey('v', key)) as number | undefined) ?? -1,
    l: (model.get(modelKey('l', key)) as number[] | undefined) ?? [],
    m: [...((model.get(modelKey('m', key)) as Map<string, number> | undefined) ?? [])].sort(
      byMapKey,
    ),
    r: model.get(modelKey('r', key)),
    a: acc === undefined ? undefined : `${acc[0]}/${acc[1]}`,
  };
};

/** Flattens snapshots into the model's shape, checking each key sits in its own key group. */
const flatten = (snaps: readonly KeyGroupSnapshot[], maxParallelism: number): Model => {
  const out: Model = new Map();
  for (const { keyGroup, states: ss } of snaps) {
    for (const { name, entries } of ss) {
      for (const [key, value] of entries) {
        expect(keyGroupOf(key, maxParallelism)).toBe(keyGroup);
        const k = modelKey(name as StateName, key);
        expect(out.has(k)).toBe(false);
        out.set(k, name === 'm' ? new Map(value as Array<[string, number]>) : value);
      }
    }
  }
  return out;
};

/** Splits [0, maxP) at the given cut points into contiguous inclusive ranges. */
const split = (maxParallelism: number, cuts: number[]) => {
  const bounds = [0, ...[...new Set(cuts)].sort((x, y) => x - y), maxParallelism];
  return bounds.slice(1).map((end, i) => ({ start: bounds[i]!, end: end - 1 }));
};

describe.each(BACKENDS)('$name backend', (backend) => {
  const { create } = backend;

  /** Runs `steps` on a full-range backend and its model, comparing reads after each step. */
  const run = (maxParallelism: number, steps: ReadonlyArray<[NormalizedKey, Op]>) => {
    const b = create({
      keyGroupRange: { start: 0, end: maxParallelism - 1 },
      maxParallelism,
    });
    const s = states(b);
    const model: Model = new Map();
    for (const [key, op] of steps) {
      b.setCurrentKey(key, keyGroupOf(key, maxParallelism));
      applyToBackend(s, op);
      applyToModel(model, key, op);
      expect(readBackend(s)).toEqual(readModel(model, key));
    }
    return { b, model };
  };

  describe('properties', () => {
    it('agrees with a reference model under random operations', () => {
      fc.assert(
        fc.property(fc.integer({ min: 1, max: 16 }), stepsArb(5), (maxParallelism, steps) => {
          const { b, model } = run(maxParallelism, steps);
          expect(flatten(b.snapshot(), maxParallelism)).toEqual(model);
          const keys = new Set([...model.keys()].map((k) => k.slice(2)));
          expect(b.numKeys()).toBe(keys.size);
          expect(b.numEntries()).toBe(model.size);
        }),
        { numRuns: propertyRuns(backend, 100), plugins: [fc.afterEach(disposeBackends)] },
      );
    });

    it('restores any contiguous split of the key groups without loss or duplication', () => {
      const arb = fc.integer({ min: 1, max: 48 }).chain((maxParallelism) =>
        fc.record({
          maxParallelism: fc.constant(maxParallelism),
          steps: fc.oneof(stepsArb(5), stepsArb(40)),
          cuts: fc.array(fc.integer({ min: 1, max: Math.max(1, maxParallelism - 1) }), {
            maxLength: Math.min(6, maxParallelism - 1),
          }),
          register: fc.constantFrom('before' as const, 'after' as const, 'never' as const),
        }),
      );
      fc.assert(
        fc.property(arb, ({ maxParallelism, steps, cuts, register }) => {
          const { b: a, model } = run(maxParallelism, steps);
          const all = a.snapshot();
          const restored = split(maxParallelism, cuts).map((range) => {
            const b = create({ keyGroupRange: range, maxParallelism });
            if (register === 'before') states(b);
            for (const snap of all) {
              if (snap.keyGroup >= range.start && snap.keyGroup <= range.end)
                b.restoreKeyGroup(snap);
            }
            if (register === 'after') states(b);
            return b;
          });
          const again = restored.flatMap((b) => b.snapshot());
          // Same snapshots (key groups and states in the same order, entries in the backend's);
          // flatten() also checks each key appears once.
          expect(canonicalSnapshots(again)).toEqual(canonicalSnapshots(all));
          expect(flatten(again, maxParallelism)).toEqual(model);
          expect(restored.reduce((n, b) => n + b.numEntries(), 0)).toBe(model.size);
          if (register === 'never') return;
          for (const key of new Set(steps.map(([k]) => k))) {
            const kg = keyGroupOf(key, maxParallelism);
            const owner = restored.find(
              (b) => kg >= b.keyGroupRange.start && kg <= b.keyGroupRange.end,
            )!;
            owner.setCurrentKey(key, kg);
            expect(readBackend(states(owner))).toEqual(readModel(model, key));
          }
        }),
        { numRuns: propertyRuns(backend, 100), plugins: [fc.afterEach(disposeBackends)] },
      );
    });
  });

  /** Every key group of a view, read: what a writer would write. */
  const readAll = (view: KeyedStateSnapshotView): KeyGroupSnapshot[] =>
    view.keyGroups.map((kg) => view.read(kg));

  type Step = [NormalizedKey, Op];

  describe('snapshot views', () => {
    /**
     * Three phases over one key pool (so later operations hit keys the views hold: list add and
     * map put mutate containers a view shares): ops, view A, ops, maybe view B, ops, releases in a
     * random order with ops between, then ops that must not copy anything.
     */
    const arb = fc.integer({ min: 1, max: 16 }).chain((maxParallelism) =>
      fc.uniqueArray(keyArb, { minLength: 1, maxLength: 12 }).chain((keys) => {
        const steps = fc.array(fc.tuple(fc.constantFrom(...keys), opArb), { maxLength: 60 });
        return fc.record({
          maxParallelism: fc.constant(maxParallelism),
          before: steps,
          betweenViews: steps,
          second: fc.boolean(),
          afterViews: steps,
          releaseAFirst: fc.boolean(),
          betweenReleases: steps,
          afterRelease: steps,
        });
      }),
    );

    it('read exactly the state at snapshot time while the job keeps writing, and stop copying once released', () => {
      fc.assert(
        fc.property(arb, (c) => {
          const b = create({
            keyGroupRange: { start: 0, end: c.maxParallelism - 1 },
            maxParallelism: c.maxParallelism,
          });
          const s = states(b);
          const model: Model = new Map();
          const apply = (steps: readonly Step[]) => {
            for (const [key, op] of steps) {
              b.setCurrentKey(key, keyGroupOf(key, c.maxParallelism));
              applyToBackend(s, op);
              applyToModel(model, key, op);
              expect(readBackend(s)).toEqual(readModel(model, key));
            }
          };
          /** A view with a deep copy of the state when it was taken. */
          const take = () => {
            const expected = structuredClone(b.snapshot());
            const view = b.snapshotView();
            expect(view.keyGroups).toEqual(expected.map((g) => g.keyGroup));
            return { view, expected, model: new Map(model) };
          };
          const check = (v: ReturnType<typeof take>) => {
            const got = readAll(v.view);
            expect(got).toEqual(v.expected);
            expect(flatten(got, c.maxParallelism)).toEqual(v.model);
          };

          apply(c.before);
          const a = take();
          apply(c.betweenViews);
          check(a);
          const bView = c.second ? take() : undefined;
          apply(c.afterViews);
          check(a);
          if (bView) check(bView);
          const [first, second] = c.releaseAFirst ? [a, bView] : [bView, a];
          first?.view.release();
          apply(c.betweenReleases);
          if (second) check(second);
          second?.view.release();
          if (b instanceof HeapKeyedStateBackend) expect(b.openSnapshotViews).toBe(0);
          expect(() => a.view.read(0)).toThrow(/released snapshot view/);

          // Heap: once released, no write copies anything.
          const copies = b instanceof HeapKeyedStateBackend ? b.cowCopies : 0;
          apply(c.afterRelease);
          if (b instanceof HeapKeyedStateBackend) expect(b.cowCopies).toBe(copies);
          // The live state is the model's, whatever the views copied.
          expect(flatten(b.snapshot(), c.maxParallelism)).toEqual(model);
        }),
        { numRuns: propertyRuns(backend, 300), plugins: [fc.afterEach(disposeBackends)] },
      );
    });
  });

  describe('lazy restore', () => {
    const arb = fc.integer({ min: 1, max: 16 }).chain((maxParallelism) =>
      fc.uniqueArray(keyArb, { minLength: 1, maxLength: 12 }).chain((keys) => {
        const steps = fc.array(fc.tuple(fc.constantFrom(...keys), opArb), { maxLength: 60 });
        return fc.record({
          maxParallelism: fc.constant(maxParallelism),
          before: steps,
          afterRestore: steps,
          afterView: steps,
          register: fc.constantFrom('before' as const, 'after' as const),
        });
      }),
    );

    it('behaves exactly as an eager restore, decoding only the key groups it touches', () => {
      fc.assert(
        fc.property(arb, (c) => {
          const maxP = c.maxParallelism;
          const range = { start: 0, end: maxP - 1 };
          const { b: source } = run(maxP, c.before);
          const snaps = source.snapshot();
          const eager = create({ keyGroupRange: range, maxParallelism: maxP });
          const lazy = create({ keyGroupRange: range, maxParallelism: maxP });
          const loaded = new Set<number>();
          const marker = new Map(snaps.map((s) => [s.keyGroup, new Uint8Array([s.keyGroup])]));
          let se = c.register === 'before' ? states(eager) : undefined;
          let sl = c.register === 'before' ? states(lazy) : undefined;
          for (const snap of snaps) {
            eager.restoreKeyGroup(structuredClone(snap));
            lazy.restoreKeyGroupLazily({
              keyGroup: snap.keyGroup,
              load: () => {
                loaded.add(snap.keyGroup);
                return structuredClone(snap);
              },
              encoded: marker.get(snap.keyGroup),
            });
          }
          // Heap: nothing is decoded at restore, only the key groups touched later.
          const heap = lazy instanceof HeapKeyedStateBackend ? lazy : undefined;
          if (heap !== undefined) expect(loaded.size).toBe(0);
          if (heap !== undefined) expect(heap.pendingKeyGroups).toBe(snaps.length);
          se ??= states(eager);
          sl ??= states(lazy);
          const touched = new Set<number>();
          const apply = (steps: readonly Step[]) => {
            for (const [key, op] of steps) {
              const kg = keyGroupOf(key, maxP);
              touched.add(kg);
              eager.setCurrentKey(key, kg);
              lazy.setCurrentKey(key, kg);
              expect(readBackend(sl!)).toEqual(readBackend(se!));
              applyToBackend(se!, op);
              applyToBackend(sl!, op);
              expect(readBackend(sl!)).toEqual(readBackend(se!));
            }
          };
          apply(c.afterRestore);
          const restoredKgs = new Set(snaps.map((s) => s.keyGroup));
          if (heap !== undefined) {
            expect([...loaded].sort()).toEqual(
              [...touched].filter((k) => restoredKgs.has(k)).sort(),
            );
          }
          // A view taken now: untouched key groups are handed out as their restored bytes.
          const expected = structuredClone(eager.snapshot());
          const view = lazy.snapshotView();
          expect(view.keyGroups).toEqual(expected.map((g) => g.keyGroup));
          // Heap: untouched key groups are handed out as their restored bytes.
          for (const kg of heap === undefined ? [] : view.keyGroups) {
            const pending = restoredKgs.has(kg) && !touched.has(kg);
            expect(view.encoded!(kg)).toBe(pending ? marker.get(kg) : undefined);
          }
          apply(c.afterView);
          expect(readAll(view)).toEqual(expected);
          view.release();
          expect(lazy.snapshot()).toEqual(eager.snapshot());
          if (heap !== undefined) expect(heap.pendingKeyGroups).toBe(0);
        }),
        { numRuns: propertyRuns(backend, 300), plugins: [fc.afterEach(disposeBackends)] },
      );
    });
  });
});
