/**
 * Key-level copy-on-write of full snapshot views, as the checkpoint writer reads them: a view's
 * key group encoded in place (`readMaps`, `writeKeyGroupMapsInSlices`) while random writes,
 * deletes and new keys reach the same key group between the writer's steps (and before it
 * starts), must give exactly the block of the state when the view was taken, byte for byte; so
 * must `read()`, a second view taken meanwhile, and the live state must be what the writes made
 * it (a twin backend with no view open gets the same writes). Likewise a key group a delta view
 * captured whole (the compaction of incremental checkpoints), written from its key lists in
 * steps: the same bytes as its entries read at once.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ListStateDescriptor,
  MapStateDescriptor,
  ValueStateDescriptor,
} from '../state/descriptors.js';
import { HeapKeyedStateBackend } from '../state/heap-keyed-backend.js';
import type { KeyedStateSnapshotView } from '../state/types.js';
import { MsgpackWriter } from './block-codec.js';
import {
  encodeKeyGroupBlock,
  type KeyGroupMaps,
  writeKeyGroupDelta,
  writeKeyGroupMapsInSlices,
  writeKeyListsInSlices,
} from './keyed-block.js';

const V = new ValueStateDescriptor<number>('v');
const L = new ListStateDescriptor<number>('l');
const M = new MapStateDescriptor<string, number>('m');

type Op =
  | { kind: 'set'; key: number; value: number }
  | { kind: 'clear'; key: number }
  | { kind: 'add'; key: number; value: number }
  | { kind: 'listClear'; key: number }
  | { kind: 'put'; key: number; field: string; value: number }
  | { kind: 'del'; key: number; field: string };

const FIELDS = ['x', 'y', 'z'];

const opArb = (keys: number): fc.Arbitrary<Op> => {
  // Keys up to 1.2x the filled ones: some writes create keys after the view.
  const key = fc.integer({ min: 0, max: Math.ceil(keys * 1.2) });
  const field = fc.constantFrom(...FIELDS);
  const value = fc.integer({ min: -5, max: 1000 });
  return fc.oneof(
    { weight: 5, arbitrary: fc.record({ kind: fc.constant('set' as const), key, value }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('clear' as const), key }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('add' as const), key, value }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('listClear' as const), key }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('put' as const), key, field, value }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('del' as const), key, field }) },
  );
};

const KG = 2;

const newBackend = (trackChanges = false) => {
  const b = new HeapKeyedStateBackend({
    keyGroupRange: { start: 0, end: 3 },
    maxParallelism: 4,
    trackChanges,
  });
  return { b, v: b.getState(V), l: b.getState(L), m: b.getState(M) };
};
type Backend = ReturnType<typeof newBackend>;

const apply = (s: Backend, op: Op): void => {
  s.b.setCurrentKey(`k${op.key}`, KG);
  switch (op.kind) {
    case 'set':
      s.v.update(op.value);
      return;
    case 'clear':
      s.v.clear();
      return;
    case 'add':
      s.l.add(op.value);
      return;
    case 'listClear':
      s.l.update([]);
      return;
    case 'put':
      s.m.put(op.field, op.value);
      return;
    case 'del':
      s.m.delete(op.field);
      return;
  }
};

const fill = (s: Backend, keys: number): void => {
  for (let k = 0; k < keys; k++) {
    s.b.setCurrentKey(`k${k}`, KG);
    s.v.update(k);
    if (k % 2 === 0) s.l.add(k);
    if (k % 3 === 0) s.m.put('x', k);
  }
};

const readMaps = (view: KeyedStateSnapshotView, keyGroup: number): KeyGroupMaps => {
  const source = view as unknown as { readMaps(kg: number): KeyGroupMaps | undefined };
  return source.readMaps(keyGroup)!;
};

describe('full snapshot views, key-level copy-on-write (property)', () => {
  it('a key group encoded in steps while the job writes to it is the state at the view', () => {
    const scenario = fc.integer({ min: 1, max: 3000 }).chain((keys) =>
      fc.record({
        keys: fc.constant(keys),
        before: fc.array(opArb(keys), { maxLength: 30 }),
        steps: fc.array(fc.array(opArb(keys), { maxLength: 40 }), { maxLength: 5 }),
        secondAt: fc.integer({ min: -1, max: 4 }),
        after: fc.array(opArb(keys), { maxLength: 30 }),
      }),
    );
    fc.assert(
      fc.property(scenario, ({ keys, before, steps: stepOps, secondAt, after }) => {
        const live = newBackend();
        const twin = newBackend();
        fill(live, keys);
        fill(twin, keys);
        const expected = structuredClone(live.b.snapshotKeyGroup(KG));
        const view = live.b.snapshotView();
        const write = (op: Op) => {
          apply(live, op);
          apply(twin, op);
        };
        for (const op of before) write(op);
        const w = new MsgpackWriter(1024);
        const steps = writeKeyGroupMapsInSlices(w, readMaps(view, KG));
        let second: { view: KeyedStateSnapshotView; expected: unknown } | undefined;
        let step = steps.next();
        let i = 0;
        while (step.done !== true) {
          if (i === secondAt) {
            second = {
              expected: structuredClone(live.b.snapshotKeyGroup(KG)),
              view: live.b.snapshotView(),
            };
          }
          for (const op of stepOps[i % Math.max(1, stepOps.length)] ?? []) write(op);
          i++;
          step = steps.next();
        }
        expect(step.value).toBe(true);
        // Buffer.equals: toEqual compares a large buffer element by element, slowly.
        expect(Buffer.from(w.bytes()).equals(Buffer.from(encodeKeyGroupBlock(expected)))).toBe(
          true,
        );
        expect(view.read(KG)).toEqual(expected);
        if (second !== undefined) {
          for (const op of after) write(op);
          expect(second.view.read(KG)).toEqual(second.expected);
          second.view.release();
        }
        view.release();
        expect(live.b.snapshot()).toEqual(twin.b.snapshot());
        expect(live.b.openSnapshotViews).toBe(0);
      }),
      { numRuns: 100 },
    );
  });

  it('a key group a delta view captured whole, written in steps while the job writes to it, is the state at the view', () => {
    const scenario = fc.integer({ min: 1, max: 3000 }).chain((keys) =>
      fc.record({
        keys: fc.constant(keys),
        before: fc.array(opArb(keys), { maxLength: 30 }),
        steps: fc.array(fc.array(opArb(keys), { maxLength: 40 }), { maxLength: 5 }),
      }),
    );
    fc.assert(
      fc.property(scenario, ({ keys, before, steps: stepOps }) => {
        const live = newBackend(true);
        fill(live, keys);
        const view = live.b.deltaView(() => true)!;
        for (const op of before) apply(live, op);
        // What the view reads now (readDelta: arrays, synchronously), as a base block.
        const delta = view.readDelta(KG);
        expect(delta.whole).toBe(true);
        const expected = new MsgpackWriter(1024);
        writeKeyGroupDelta(expected, {
          keyGroup: KG,
          states: delta.states
            .filter((st) => st.entries.length > 0)
            .map((st) => ({ ...st, deleted: [] })),
        });
        const w = new MsgpackWriter(1024);
        const steps = writeKeyListsInSlices(w, KG, view.readWhole(KG)!);
        let step = steps.next();
        let i = 0;
        while (step.done !== true) {
          for (const op of stepOps[i++ % Math.max(1, stepOps.length)] ?? []) apply(live, op);
          step = steps.next();
        }
        expect(step.value).toBe(true);
        expect(Buffer.from(w.bytes()).equals(Buffer.from(expected.bytes()))).toBe(true);
        view.complete();
        view.release();
      }),
      { numRuns: 100 },
    );
  });
});
