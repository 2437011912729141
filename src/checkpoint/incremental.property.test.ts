/**
 * Incremental checkpoints against full checkpoints and a model (issue 15, item 7).
 *
 * fast-check draws schedules of keyed-state operations (value, map and list state; keys from a
 * small pool, so keys repeat, are deleted and come back) interleaved with checkpoints (some of
 * whose subtask writes fail) and rescales (restore from the latest completed checkpoint at a
 * new parallelism). Two pipelines run side by side over the same operations:
 *
 * - FULL: every checkpoint writes writeKeyedStateFile per subtask;
 * - INCREMENTAL: per subtask a tracking backend and the runtime's KeyedCheckpointer (a base,
 *   then deltas on the previous chains; a failed delta gives its keys back, a failed base drops
 *   the chains); after a rescale the new subtasks continue the restored chains (as
 *   worker-agent.ts `restoredChains` builds them).
 *
 * After every completed checkpoint, restoring each pipeline's latest checkpoint at a random
 * parallelism must give the same state as the other pipeline and as a model (plain Maps) of
 * the operations up to that checkpoint; at the end, the live state too.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  assignToKeyGroup,
  computeKeyGroupRange,
  intersectKeyGroupRanges,
  type KeyGroupRange,
  normalizeKey,
  operatorIndexForKeyGroup,
} from '../keygroups/index.js';
import { KeyedCheckpointer, type KeyedSnapshot } from '../runtime/keyed-checkpointer.js';
import type { KeyedStateBackend, KeyedStateBackendFactory } from '../state/backend.js';
import {
  BACKENDS,
  disposeBackends,
  propertyRuns,
  sortedMapValue,
} from '../state/backend.testkit.js';
import {
  ListStateDescriptor,
  MapStateDescriptor,
  ValueStateDescriptor,
} from '../state/descriptors.js';
import type { KeyedStateSnapshotView, KeyGroupSnapshot, NormalizedKey } from '../state/types.js';
import { chainBytes, chainsInRange, isIncremental } from './chains.js';
import { makeTempDir, removeTempDir } from './checkpoint.testkit.js';
import {
  estimatedLiveBytes,
  MAX_CHAIN_BLOCKS,
  MAX_READ_FACTOR,
  shouldCompact,
} from './compaction.js';
import { readKeyGroups, readKeyGroupsLazily, writeKeyedStateFile } from './keyed-file.js';
import { keyedStateFileName } from './paths.js';
import type { AnyKeyedStateHandle, KeyGroupChain } from './types.js';

const MAX_PAR = 16;
const MAX_P = 6;
const KEYS = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 7, 11, 42, 1000] as const;
const MAP_KEYS = ['x', 'y', 'z'] as const;

const V = new ValueStateDescriptor<number>('v');
const M = new MapStateDescriptor<string, number>('m');
const L = new ListStateDescriptor<number>('l');

type Key = (typeof KEYS)[number];
type Op =
  | { readonly t: 'update'; readonly key: Key; readonly n: number }
  | { readonly t: 'clearV'; readonly key: Key }
  | { readonly t: 'listAdd'; readonly key: Key; readonly n: number }
  | { readonly t: 'listClear'; readonly key: Key }
  | { readonly t: 'mapPut'; readonly key: Key; readonly mk: string; readonly n: number }
  | { readonly t: 'mapDel'; readonly key: Key; readonly mk: string }
  | { readonly t: 'mapClear'; readonly key: Key }
  /** `fails[i]`: subtask i's incremental write fails (the checkpoint is then aborted). */
  | {
      readonly t: 'checkpoint';
      readonly fails: readonly boolean[];
      readonly verifyP: number;
      /** State operations applied between the barrier and the writes. */
      readonly lag: number;
    }
  /** `abort`: checkpoints in flight are abandoned (a crash), else written first. */
  | { readonly t: 'rescale'; readonly p: number; readonly abort: boolean };

/** A few hot keys (many writes to the same key between checkpoints) and the whole pool. */
const key = fc.oneof(
  { weight: 1, arbitrary: fc.constantFrom<Key>('a', 'b', 7) },
  { weight: 1, arbitrary: fc.constantFrom(...KEYS) },
);
/** Map ops mostly on two keys, so maps hold several entries and lose some in place. */
const mapKey = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom<Key>('a', 7) },
  { weight: 1, arbitrary: key },
);
const n = fc.integer({ min: -50, max: 50 });
const mk = fc.constantFrom(...MAP_KEYS);
/** Operations with checkpoints at `checkpointWeight` (state operations weigh 22 in all). */
const opOf = (checkpointWeight: number): fc.Arbitrary<Op> =>
  fc.oneof(
    { weight: 6, arbitrary: fc.record({ t: fc.constant('update' as const), key, n }) },
    { weight: 2, arbitrary: fc.record({ t: fc.constant('clearV' as const), key }) },
    { weight: 4, arbitrary: fc.record({ t: fc.constant('listAdd' as const), key, n }) },
    { weight: 1, arbitrary: fc.record({ t: fc.constant('listClear' as const), key }) },
    { weight: 5, arbitrary: fc.record({ t: fc.constant('mapPut' as const), key: mapKey, mk, n }) },
    { weight: 3, arbitrary: fc.record({ t: fc.constant('mapDel' as const), key: mapKey, mk }) },
    { weight: 1, arbitrary: fc.record({ t: fc.constant('mapClear' as const), key: mapKey }) },
    {
      weight: checkpointWeight,
      arbitrary: fc.record({
        t: fc.constant('checkpoint' as const),
        // ~1 in 12 subtask writes fails
        fails: fc.array(
          fc.integer({ min: 0, max: 11 }).map((x) => x === 0),
          { minLength: MAX_P, maxLength: MAX_P },
        ),
        verifyP: fc.integer({ min: 1, max: MAX_P }),
        lag: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 6 })),
      }),
    },
    {
      weight: 1,
      arbitrary: fc.record({
        t: fc.constant('rescale' as const),
        p: fc.integer({ min: 1, max: MAX_P }),
        abort: fc.boolean(),
      }),
    },
  );
const scheduleOf = (checkpointWeight: number) =>
  fc.record({
    p: fc.integer({ min: 1, max: MAX_P }),
    ops: fc.array(opOf(checkpointWeight), { minLength: 10, maxLength: 60, size: 'max' }),
    finalP: fc.integer({ min: 1, max: MAX_P }),
  });

// ---------------------------------------------------------------------------------------------
// The model: state name -> key -> value (live form), and its canonical per-key-group form.

interface Model {
  v: Map<NormalizedKey, number>;
  m: Map<NormalizedKey, Map<string, number>>;
  l: Map<NormalizedKey, number[]>;
}

const emptyModel = (): Model => ({ v: new Map(), m: new Map(), l: new Map() });
const cloneModel = (x: Model): Model => ({
  v: new Map(x.v),
  m: new Map([...x.m].map(([k, mm]) => [k, new Map(mm)])),
  l: new Map([...x.l].map(([k, ll]) => [k, [...ll]])),
});

const applyToModel = (model: Model, o: Op): void => {
  if (o.t === 'checkpoint' || o.t === 'rescale') return;
  const k = normalizeKey(o.key);
  switch (o.t) {
    case 'update':
      model.v.set(k, o.n);
      return;
    case 'clearV':
      model.v.delete(k);
      return;
    case 'listAdd': {
      const list = model.l.get(k);
      if (list === undefined) model.l.set(k, [o.n]);
      else list.push(o.n);
      return;
    }
    case 'listClear':
      model.l.delete(k);
      return;
    case 'mapPut': {
      let map = model.m.get(k);
      if (map === undefined) {
        map = new Map();
        model.m.set(k, map);
      }
      map.set(o.mk, o.n);
      return;
    }
    case 'mapDel': {
      const map = model.m.get(k);
      map?.delete(o.mk);
      if (map?.size === 0) model.m.delete(k);
      return;
    }
    case 'mapClear':
      model.m.delete(k);
      return;
  }
};

type Entries = Array<[NormalizedKey, unknown]>;
/**
 * Key group -> state name -> entries sorted by key (values in snapshot form; list order kept,
 * map values' pairs sorted by user key: map order is the backend's).
 */
type Canonical = Record<number, Record<string, Entries>>;

const keyOrder = (a: [NormalizedKey, unknown], b: [NormalizedKey, unknown]) => {
  const x = `${typeof a[0]}:${String(a[0])}`;
  const y = `${typeof b[0]}:${String(b[0])}`;
  return x < y ? -1 : x > y ? 1 : 0;
};

const canonicalOf = (snapshots: readonly KeyGroupSnapshot[]): Canonical => {
  const out: Canonical = {};
  for (const s of snapshots) {
    for (const st of s.states) {
      if (st.entries.length === 0) continue;
      out[s.keyGroup] ??= {};
      const states = out[s.keyGroup]!;
      expect(states[st.name]).toBeUndefined(); // a key group is restored once
      const entries =
        st.name === M.name ? st.entries.map(([k, v]) => [k, sortedMapValue(v)]) : st.entries;
      states[st.name] = ([...entries] as Entries).sort(keyOrder);
    }
  }
  return out;
};

const modelCanonical = (model: Model): Canonical => {
  const out: Canonical = {};
  const add = (name: string, k: NormalizedKey, value: unknown) => {
    const kg = assignToKeyGroup(k, MAX_PAR);
    const states = out[kg] ?? {};
    out[kg] = states;
    const entries = states[name] ?? [];
    states[name] = entries;
    entries.push([k, value]);
  };
  for (const [k, v] of model.v) add('v', k, v);
  for (const [k, mm] of model.m) add('m', k, sortedMapValue([...mm]));
  for (const [k, ll] of model.l) add('l', k, [...ll]);
  for (const states of Object.values(out)) for (const e of Object.values(states)) e.sort(keyOrder);
  return out;
};

// ---------------------------------------------------------------------------------------------
// The pipelines.

interface Checkpoint {
  readonly dir: string;
  readonly handles: readonly AnyKeyedStateHandle[];
}

interface Subtask {
  readonly range: KeyGroupRange;
  readonly backend: KeyedStateBackend;
  /** Incremental pipeline only. */
  readonly checkpointer?: KeyedCheckpointer;
}

const rangesOf = (p: number) =>
  Array.from({ length: p }, (_, i) => computeKeyGroupRange(MAX_PAR, p, i));

/** Reads the key groups of `range` from every handle of `latest` into a new backend, lazily. */
const restoreBackend = async (
  create: KeyedStateBackendFactory,
  latest: Checkpoint | undefined,
  range: KeyGroupRange,
  trackChanges: boolean,
): Promise<{ backend: KeyedStateBackend; owned: AnyKeyedStateHandle[] }> => {
  const backend = create({
    keyGroupRange: range,
    maxParallelism: MAX_PAR,
    trackChanges,
  });
  const owned: AnyKeyedStateHandle[] = [];
  for (const h of latest?.handles ?? []) {
    const [start, end] = h.keyGroupRange;
    const overlap = intersectKeyGroupRanges(range, { start, end });
    if (overlap === undefined) continue;
    const { groups, bytesRead } = await readKeyGroupsLazily(latest!.dir, h, overlap);
    let expected = 0;
    for (const c of chainsIn(h, overlap)) expected += chainBytes(c);
    expect(bytesRead).toBe(expected); // nothing outside the overlap is read
    for (const g of groups) backend.restoreKeyGroupLazily(g);
    owned.push(h);
  }
  // registered after the restore, as the runtime does (restore runs before open())
  backend.getState(V);
  backend.getState(M);
  backend.getState(L);
  return { backend, owned };
};

const chainsIn = (h: AnyKeyedStateHandle, r: KeyGroupRange): readonly KeyGroupChain[] => {
  if (isIncremental(h)) return h.chains.filter((c) => c.keyGroup >= r.start && c.keyGroup <= r.end);
  return h.blocks
    .filter((b) => b.keyGroup >= r.start && b.keyGroup <= r.end)
    .map((b) => ({ keyGroup: b.keyGroup, entries: 0, blocks: [{ ...b, file: 0, records: 0 }] }));
};

/** The state of a checkpoint as a fresh set of subtasks at parallelism `p` restores it. */
const restoredState = async (
  create: KeyedStateBackendFactory,
  latest: Checkpoint | undefined,
  p: number,
): Promise<Canonical> => {
  const all: KeyGroupSnapshot[] = [];
  for (const range of rangesOf(p)) {
    const { backend } = await restoreBackend(create, latest, range, false);
    all.push(...backend.snapshot());
  }
  return canonicalOf(all);
};

/**
 * The compaction rule's bounds, for every chain of an incremental handle: at most
 * MAX_CHAIN_BLOCKS blocks, and each delta appended only where shouldCompact allowed it (the
 * chain before it, the delta's records as the changed entries, the chain's live entries), so
 * the blocks before the last stay within MAX_READ_FACTOR times the estimated live state.
 */
const checkChainBounds = (h: AnyKeyedStateHandle): void => {
  if (!isIncremental(h)) throw new Error('expected an incremental handle');
  for (const c of h.chains) {
    expect(c.blocks.length).toBeGreaterThan(0);
    expect(c.blocks.length).toBeLessThanOrEqual(MAX_CHAIN_BLOCKS);
    for (const b of c.blocks) expect(h.files[b.file]).toBeDefined();
    if (c.blocks.length === 1) continue;
    const before = c.blocks.slice(0, -1);
    const changed = c.blocks[c.blocks.length - 1]!.records;
    const input = { keyGroup: c.keyGroup, chain: before, changed, liveEntries: c.entries };
    expect(shouldCompact(input)).toBe(false);
    const live = estimatedLiveBytes(input);
    expect(before.reduce((n, b) => n + b.length, 0)).toBeLessThanOrEqual(MAX_READ_FACTOR * live);
  }
  const kgs = h.chains.map((c) => c.keyGroup);
  expect(kgs).toEqual([...kgs].sort((a, b) => a - b));
  expect(new Set(kgs).size).toBe(kgs.length);
};

/** A checkpoint whose snapshots were taken at its barrier and are not written yet. */
interface Pending {
  readonly id: number;
  readonly snaps: readonly KeyedSnapshot[];
  readonly fullViews: readonly KeyedStateSnapshotView[];
  readonly ranges: readonly KeyGroupRange[];
  /** The model at the barrier. */
  readonly model: Model;
  readonly fails: readonly boolean[];
  readonly verifyP: number;
  /** State operations still to apply before the snapshots are written. */
  lag: number;
}

/**
 * The chains of `h` are exactly the key groups of its range with state (an emptied key group
 * has no chain), each counting its live entries; a chain of one block passed through unchanged
 * from a restore (records 0: not decoded) may count 0.
 */
const checkChainEntries = (h: AnyKeyedStateHandle, live: Canonical): void => {
  if (!isIncremental(h)) throw new Error('expected an incremental handle');
  const [start, end] = h.keyGroupRange;
  const expected = new Map<number, number>();
  for (const [kg, states] of Object.entries(live)) {
    const n = Object.values(states).reduce((sum, e) => sum + e.length, 0);
    if (Number(kg) >= start && Number(kg) <= end) expected.set(Number(kg), n);
  }
  expect(h.chains.map((c) => c.keyGroup)).toEqual([...expected.keys()].sort((a, b) => a - b));
  for (const c of h.chains) {
    const passedThrough = c.blocks.length === 1 && c.blocks[0]!.records === 0;
    if (!(passedThrough && c.entries === 0)) expect(c.entries).toBe(expected.get(c.keyGroup));
  }
};

class Run {
  private full: Subtask[] = [];
  private inc: Subtask[] = [];
  private latestFull: Checkpoint | undefined;
  private latestInc: Checkpoint | undefined;
  private model = emptyModel();
  private modelAtLatest = emptyModel();
  private nextId = 0;
  private pending: Pending[] = [];
  readonly stats = { checkpoints: 0, aborted: 0, deltas: 0, bases: 0, overlapping: 0 };

  constructor(
    /** The backend both pipelines run on. */
    private readonly create: KeyedStateBackendFactory,
    private readonly root: string,
    private p: number,
    /** Checkpoints in flight at most (a barrier writes the oldest first beyond that). */
    private readonly maxInFlight: number,
  ) {}

  async start(): Promise<void> {
    await this.restore(this.p, true);
  }

  /**
   * A failover or rescale: new subtasks of both pipelines at parallelism `p`, restored from the
   * latest completed checkpoints; the operations since are lost (the model goes back too).
   * Checkpoints in flight are written first, or abandoned (`abort`).
   */
  async restore(p: number, abort: boolean): Promise<void> {
    if (abort) {
      for (const c of this.pending) this.abandon(c);
      this.pending = [];
    } else {
      await this.finishAll();
    }
    this.p = p;
    this.model = cloneModel(this.modelAtLatest);
    this.full = [];
    this.inc = [];
    for (const [i, range] of rangesOf(p).entries()) {
      const full = await restoreBackend(this.create, this.latestFull, range, false);
      this.full.push({ range, backend: full.backend });
      const inc = await restoreBackend(this.create, this.latestInc, range, true);
      const checkpointer = new KeyedCheckpointer(inc.backend, {
        uid: 'op',
        subtaskIndex: i,
        keyGroupRange: range,
        incremental: true,
        restoredChains: this.latestInc === undefined ? undefined : chainsInRange(inc.owned, range),
      });
      this.inc.push({ range, backend: inc.backend, checkpointer });
    }
  }

  /** A state operation on both pipelines and the model; then due checkpoints are written. */
  async apply(o: Op): Promise<void> {
    applyToModel(this.model, o);
    if (o.t === 'checkpoint' || o.t === 'rescale') return;
    const k = normalizeKey(o.key);
    const kg = assignToKeyGroup(k, MAX_PAR);
    const i = operatorIndexForKeyGroup(MAX_PAR, this.p, kg);
    for (const { backend } of [this.full[i]!, this.inc[i]!]) {
      backend.setCurrentKey(k, kg);
      const v = backend.getState(V);
      const m = backend.getState(M);
      const l = backend.getState(L);
      switch (o.t) {
        case 'update':
          v.update(o.n);
          break;
        case 'clearV':
          v.clear();
          break;
        case 'listAdd':
          l.add(o.n);
          break;
        case 'listClear':
          l.clear();
          break;
        case 'mapPut':
          m.put(o.mk, o.n);
          break;
        case 'mapDel':
          m.delete(o.mk);
          break;
        case 'mapClear':
          m.clear();
          break;
      }
    }
    for (const c of this.pending) c.lag--;
    while (this.pending.length > 0 && this.pending[0]!.lag <= 0) {
      await this.finish(this.pending.shift()!);
    }
  }

  /**
   * A checkpoint barrier: every subtask of both pipelines takes its snapshot now; they are
   * written `lag` state operations later (the job keeps writing meanwhile), in barrier order.
   * At most `maxInFlight` are in flight: one more barrier writes the oldest first.
   */
  async barrier(o: Extract<Op, { t: 'checkpoint' }>): Promise<void> {
    while (this.pending.length >= this.maxInFlight) await this.finish(this.pending.shift()!);
    if (this.pending.length > 0) this.stats.overlapping++;
    const snaps = this.inc.map((s) => s.checkpointer!.take(false));
    for (const snap of snaps) {
      if (snap.kind === 'delta') this.stats.deltas++;
      else this.stats.bases++;
    }
    this.pending.push({
      id: ++this.nextId,
      snaps,
      fullViews: this.full.map((s) => s.backend.snapshotView()),
      ranges: this.full.map((s) => s.range),
      model: cloneModel(this.model),
      fails: o.fails,
      verifyP: o.verifyP,
      lag: o.lag,
    });
    if (o.lag === 0) await this.finishAll(); // in barrier order
  }

  async finishAll(): Promise<void> {
    while (this.pending.length > 0) await this.finish(this.pending.shift()!);
  }

  private abandon(c: Pending): void {
    for (const s of c.snaps) s.release();
    for (const v of c.fullViews) v.release();
  }

  /**
   * Writes a checkpoint's snapshots (a failing subtask releases its snapshot unwritten). It is
   * completed only if every subtask wrote; then the full pipeline writes the same point too,
   * both become the latest, and restoring them at `verifyP` must give the model at the barrier.
   */
  private async finish(c: Pending): Promise<void> {
    const incDir = join(this.root, 'inc', `chk-${c.id}`);
    const fullDir = join(this.root, 'full', `chk-${c.id}`);
    await mkdir(incDir, { recursive: true });
    const handles: AnyKeyedStateHandle[] = [];
    let ok = true;
    for (const [i, snap] of c.snaps.entries()) {
      try {
        if (c.fails[i] === true) ok = false;
        else handles.push(await snap.write(incDir, c.id));
      } finally {
        snap.release();
      }
    }
    if (!ok) {
      for (const v of c.fullViews) v.release();
      this.stats.aborted++;
      return;
    }
    await mkdir(fullDir, { recursive: true });
    const fullHandles: AnyKeyedStateHandle[] = [];
    for (const [i, view] of c.fullViews.entries()) {
      try {
        const name = keyedStateFileName('op', i);
        fullHandles.push(await writeKeyedStateFile(fullDir, name, c.ranges[i]!, view));
      } finally {
        view.release();
      }
    }
    const live = modelCanonical(c.model);
    for (const h of handles) {
      checkChainBounds(h);
      checkChainEntries(h, live);
    }
    this.latestInc = { dir: incDir, handles };
    this.latestFull = { dir: fullDir, handles: fullHandles };
    this.modelAtLatest = c.model;
    this.stats.checkpoints++;
    await this.verifyLatest(c.verifyP);
  }

  /** Restoring either pipeline's latest checkpoint at parallelism `p` gives the model's state. */
  async verifyLatest(p: number): Promise<void> {
    const expected = modelCanonical(this.modelAtLatest);
    const inc = await restoredState(this.create, this.latestInc, p);
    const full = await restoredState(this.create, this.latestFull, p);
    expect(inc).toEqual(full);
    expect(inc).toEqual(expected);
  }

  /** The live state of both pipelines' subtasks is the model's. */
  verifyLive(): void {
    const expected = modelCanonical(this.model);
    for (const subtasks of [this.full, this.inc]) {
      expect(canonicalOf(subtasks.flatMap((s) => s.backend.snapshot()))).toEqual(expected);
    }
  }
}

const SEED = 0x15_07;

let root: string;
beforeAll(async () => {
  root = await makeTempDir('eddy-inc-prop-');
});
afterAll(() => removeTempDir(root));

type Totals = Run['stats'];

/**
 * Runs `numRuns` random schedules with at most `maxInFlight` checkpoints in flight, checkpoints
 * at `checkpointWeight` among the operations.
 */
const runSchedules = async (
  create: KeyedStateBackendFactory,
  maxInFlight: number,
  numRuns: number,
  checkpointWeight: number,
): Promise<Totals> => {
  let runs = 0;
  const totals: Totals = { checkpoints: 0, aborted: 0, deltas: 0, bases: 0, overlapping: 0 };
  await fc.assert(
    fc.asyncProperty(scheduleOf(checkpointWeight), async ({ p, ops, finalP }) => {
      const run = new Run(create, join(root, `run-${maxInFlight}-${++runs}`), p, maxInFlight);
      await run.start();
      for (const o of ops) {
        if (o.t === 'checkpoint') await run.barrier(o);
        else if (o.t === 'rescale') await run.restore(o.p, o.abort);
        else await run.apply(o);
      }
      // the end: checkpoints in flight written, the live state, one more checkpoint restored
      await run.finishAll();
      run.verifyLive();
      await run.barrier({ t: 'checkpoint', fails: [], verifyP: finalP, lag: 0 });
      run.verifyLive();
      for (const k of Object.keys(totals) as Array<keyof Totals>) totals[k] += run.stats[k];
    }),
    // Every backend runs the same schedules (the seed): the totals below hold for each.
    { seed: SEED, numRuns, plugins: [fc.afterEach(disposeBackends)] },
  );
  return totals;
};

describe.each(BACKENDS)('$name backend', (backend) => {
  const { create } = backend;
  /**
   * Schedules per test: every backend runs the first of the same (seeded) schedules; the disk
   * backend 12 (each opens a few hundred stores).
   */
  const runs = propertyRuns(backend, 50, 12);
  /** A bound set for 50 schedules, for `runs` of them. */
  const scaled = (bound: number) => (bound * runs) / 50;
  describe('incremental checkpoints = full checkpoints = model (property)', () => {
    it('one checkpoint in flight at a time: writes during the write, failures, rescales', async () => {
      const totals = await runSchedules(create, 1, runs, 3);
      // the schedules really exercised deltas, aborted checkpoints and many checkpoints
      expect(totals.deltas).toBeGreaterThan(scaled(150));
      expect(totals.aborted).toBeGreaterThan(scaled(10));
      expect(totals.checkpoints).toBeGreaterThan(scaled(100));
      expect(totals.overlapping).toBe(0);
    });

    it('two checkpoints in flight (an aborted one still writing when the next barrier comes)', async () => {
      const totals = await runSchedules(create, 2, runs, 8);
      expect(totals.overlapping).toBeGreaterThan(scaled(5));
      expect(totals.bases).toBeGreaterThan(totals.overlapping / 2);
    });
  });

  /**
   * The smallest schedule the property above found failing (issue 15 item 1 as of 4103f87): a
   * delta taken while a base is in flight is added to the chains from before the base, though
   * its changes start at the base's barrier (the base forgot the changes before it).
   */
  describe('KeyedCheckpointer with overlapping snapshots', () => {
    it('a delta taken while a base is in flight does not lose the changes the base forgot', async () => {
      const dir = join(root, 'overlap');
      const chk = (id: number) => join(dir, `chk-${id}`);
      const range = { start: 0, end: MAX_PAR - 1 };
      const backend = create({
        keyGroupRange: range,
        maxParallelism: MAX_PAR,
        trackChanges: true,
      });
      const v = backend.getState(V);
      const checkpointer = new KeyedCheckpointer(backend, {
        uid: 'op',
        subtaskIndex: 0,
        keyGroupRange: range,
        incremental: true,
      });
      const s1 = checkpointer.take(false); // base of nothing
      await s1.write(chk(1), 1);
      s1.release();
      const kg = assignToKeyGroup('a', MAX_PAR);
      backend.setCurrentKey('a', kg);
      v.update(1);
      const s2 = checkpointer.take(false); // a delta holding a = 1
      expect(s2.kind).toBe('delta');
      const s3 = checkpointer.take(false); // the delta is still open: a base (changes forgotten)
      expect(s3.kind).toBe('base');
      await s2.write(chk(2), 2); // checkpoint 2 was aborted, its write still finishes
      s2.release();
      const s4 = checkpointer.take(false); // checkpoint 3 aborted too, its base still writing
      const h4 = await s4.write(chk(4), 4);
      s4.release();
      s3.release(); // (written or not: the same)
      const { snapshots } = await readKeyGroups(chk(4), h4, range);
      expect(canonicalOf(snapshots)).toEqual({ [kg]: { v: [['a', 1]] } });
    });

    it('a base that fails after a later snapshot was taken does not leave deltas on old chains', async () => {
      const dir = join(root, 'overlap-failed-base');
      const chk = (id: number) => join(dir, `chk-${id}`);
      const range = { start: 0, end: MAX_PAR - 1 };
      const backend = create({
        keyGroupRange: range,
        maxParallelism: MAX_PAR,
        trackChanges: true,
      });
      const v = backend.getState(V);
      const checkpointer = new KeyedCheckpointer(backend, {
        uid: 'op',
        subtaskIndex: 0,
        keyGroupRange: range,
        incremental: true,
      });
      const s1 = checkpointer.take(false);
      await s1.write(chk(1), 1);
      s1.release();
      const s2 = checkpointer.take(false); // a delta of nothing, still being written
      const kg = assignToKeyGroup('a', MAX_PAR);
      backend.setCurrentKey('a', kg);
      v.update(1);
      const s3 = checkpointer.take(false); // a base: a = 1 is in it only (changes forgotten)
      expect(s3.kind).toBe('base');
      s2.release(); // checkpoint 2 failed
      const s4 = checkpointer.take(false); // checkpoint 3 aborted, its base still writing
      s3.release(); // ... and then failing: never written
      const h4 = await s4.write(chk(4), 4);
      s4.release();
      // everything settled: the next checkpoint must hold a = 1
      const s5 = checkpointer.take(false);
      const h5 = await s5.write(chk(5), 5);
      s5.release();
      for (const [id, h] of [
        [4, h4],
        [5, h5],
      ] as const) {
        const { snapshots } = await readKeyGroups(chk(id), h, range);
        expect(canonicalOf(snapshots), `checkpoint ${id}`).toEqual({ [kg]: { v: [['a', 1]] } });
      }
    });
  });
});
