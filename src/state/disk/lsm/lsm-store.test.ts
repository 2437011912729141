/**
 * LsmStore against a model (a Map from latin1 key to value): random puts, deletes, commits,
 * snapshots and releases, with thresholds so small that every path runs (memtables frozen and
 * written, size-tiered merges, deletions kept and dropped, Bloom false positives), and after
 * each step the reads (getFast, range, any, lastKey) live and through every held snapshot
 * must answer what the model did at that moment — also after the store is closed, while a
 * snapshot still holds its runs. No run file may outlive its last holder, and merges keep the
 * number of runs within (fanIn − 1) per size class.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type LsmOptions, type LsmSnapshot, type LsmStats, LsmStore } from './index.js';

type Model = Map<string, Buffer>;

interface Held {
  readonly snap: LsmSnapshot;
  readonly model: Model;
}

type Where = number | null; // a held snapshot (index, modulo their number) or the live store

type Op =
  | { readonly t: 'put'; readonly k: Buffer; readonly v: Buffer; readonly view: boolean }
  | { readonly t: 'del'; readonly k: Buffer }
  | { readonly t: 'commit' }
  | { readonly t: 'snapshot' }
  | { readonly t: 'release'; readonly i: number }
  | { readonly t: 'get'; readonly k: Buffer; readonly at: Where }
  | { readonly t: 'range'; readonly s: Buffer; readonly e: Buffer | undefined; readonly at: Where }
  | { readonly t: 'any'; readonly s: Buffer; readonly e: Buffer | undefined; readonly at: Where }
  | { readonly t: 'lastKey' }
  | { readonly t: 'check' }
  | {
      readonly t: 'ingest';
      readonly entries: ReadonlyArray<{ readonly k: Buffer; readonly v: Buffer | null }>;
      readonly append: boolean;
    };

const withDir = <T>(f: (dir: string) => T): T => {
  const dir = mkdtempSync(join(tmpdir(), 'eddy-lsm-test-'));
  try {
    return f(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
};

const b = (s: string): Buffer => Buffer.from(s, 'latin1');
const str = (x: Uint8Array): string => Buffer.from(x).toString('latin1');
const hex = (x: Uint8Array | undefined): string | undefined =>
  x === undefined ? undefined : Buffer.from(x).toString('hex');

/** A plain Uint8Array view at an offset into a larger buffer (not a Buffer). */
const asView = (x: Buffer): Uint8Array => {
  const big = new Uint8Array(x.length + 5);
  big.set(x, 3);
  return big.subarray(3, 3 + x.length);
};

/** The model's entries in [s, e) ascending, as [latin1 key, hex value]. */
const modelRange = (m: Model, s: Buffer, e: Buffer | undefined): [string, string][] => {
  const lo = str(s);
  const hi = e === undefined ? undefined : str(e);
  return [...m.keys()]
    .filter((k) => k >= lo && (hi === undefined || k < hi))
    .sort((x, y) => (x < y ? -1 : x > y ? 1 : 0))
    .map((k) => [k, hex(m.get(k))!]);
};

/** The store's entries, decoded at once (keys and values are views valid until the next read). */
const storeRange = (
  store: LsmStore,
  s: Uint8Array,
  e: Uint8Array | undefined,
  snap?: LsmSnapshot,
): [string, string][] => {
  const out: [string, string][] = [];
  for (const { key, value } of store.range(s, e, snap)) out.push([str(key), hex(value)!]);
  return out;
};

/** getFast, copied at once. */
const get = (store: LsmStore, k: Uint8Array, snap?: LsmSnapshot): string | undefined =>
  hex(store.getFast(k, snap));

/**
 * Size classes the runs can fall in: a run of e entries has class ⌊log_fanIn(e / tierBase)⌋
 * (0 below `tierBase`, here one memtable's worth), and no run holds more than all runs together. Merges leave
 * fewer than fanIn runs per class.
 */
const maxRuns = (stats: LsmStats, tierBase: number, fanIn: number): number => {
  let classes = 1;
  for (let size = tierBase * fanIn; size <= stats.runEntries; size *= fanIn) classes++;
  return (fanIn - 1) * classes;
};

const keyArb = fc
  .array(fc.constantFrom(0x00, 0x61, 0x62, 0x80, 0xff), { maxLength: 3 })
  .map((x) => Buffer.from(x));
const valueArb = fc.oneof(
  { arbitrary: fc.constant(Buffer.alloc(0)), weight: 1 },
  {
    arbitrary: fc.uint8Array({ minLength: 1, maxLength: 12 }).map((x) => Buffer.from(x)),
    weight: 6,
  },
  // Larger than any block.
  {
    arbitrary: fc.uint8Array({ minLength: 100, maxLength: 300 }).map((x) => Buffer.from(x)),
    weight: 1,
  },
);
const whereArb: fc.Arbitrary<Where> = fc.option(fc.nat(), { freq: 2 });
const endArb = fc.option(keyArb, { nil: undefined, freq: 4 });

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    arbitrary: fc.record({
      t: fc.constant('put' as const),
      k: keyArb,
      v: valueArb,
      view: fc.boolean(),
    }),
    weight: 30,
  },
  { arbitrary: fc.record({ t: fc.constant('del' as const), k: keyArb }), weight: 12 },
  { arbitrary: fc.constant({ t: 'commit' as const }), weight: 14 },
  { arbitrary: fc.constant({ t: 'snapshot' as const }), weight: 4 },
  { arbitrary: fc.record({ t: fc.constant('release' as const), i: fc.nat() }), weight: 2 },
  { arbitrary: fc.record({ t: fc.constant('get' as const), k: keyArb, at: whereArb }), weight: 12 },
  {
    arbitrary: fc.record({ t: fc.constant('range' as const), s: keyArb, e: endArb, at: whereArb }),
    weight: 6,
  },
  {
    arbitrary: fc.record({ t: fc.constant('any' as const), s: keyArb, e: endArb, at: whereArb }),
    weight: 3,
  },
  { arbitrary: fc.constant({ t: 'lastKey' as const }), weight: 2 },
  { arbitrary: fc.constant({ t: 'check' as const }), weight: 2 },
  {
    // A sorted batch past the memtable; with `append`, continuing the open run when its keys
    // come after it (a restore), else a run of its own.
    arbitrary: fc.record({
      t: fc.constant('ingest' as const),
      entries: fc.array(fc.record({ k: keyArb, v: fc.option(valueArb, { nil: null }) }), {
        maxLength: 6,
      }),
      append: fc.boolean(),
    }),
    weight: 8,
  },
);

const optionsArb = fc.record({
  memtableEntries: fc.integer({ min: 1, max: 8 }),
  maxMemtables: fc.integer({ min: 1, max: 3 }),
  fanIn: fc.integer({ min: 2, max: 3 }),
  blockBytes: fc.integer({ min: 16, max: 128 }),
  bitsPerKey: fc.integer({ min: 1, max: 10 }),
  tierBase: fc.integer({ min: 1, max: 8 }),
  // Small: most merges run paced, a slice per commit, with reads and snapshots between.
  syncMergeEntries: fc.integer({ min: 1, max: 24 }),
});

type Opts = Required<Omit<LsmOptions, 'dir'>>;

/** Everything a view answers: the full range and a point read of every key ever used. */
const checkView = (
  store: LsmStore,
  model: Model,
  universe: ReadonlySet<string>,
  snap?: LsmSnapshot,
): void => {
  expect(storeRange(store, Buffer.alloc(0), undefined, snap)).toEqual(
    modelRange(model, Buffer.alloc(0), undefined),
  );
  for (const k of universe) expect(get(store, b(k), snap)).toBe(hex(model.get(k)));
};

/** Files present are those of the store's runs and the held snapshots' runs, no others. */
const checkFiles = (dir: string, store: LsmStore, held: readonly Held[]): void => {
  const snapPaths = new Set<string>();
  for (const h of held) for (const r of h.snap.runs) snapPaths.add(r.path);
  for (const p of snapPaths) expect(existsSync(p)).toBe(true);
  // A paced merge's output file, or an open appended run's, exists before its run does.
  const writing = store.filesInProgress;
  expect(readdirSync(dir).length).toBeLessThanOrEqual(
    store.stats().runs + snapPaths.size + writing,
  );
};

const runModel = (opts: Opts, ops: readonly Op[]): void =>
  withDir((dir) => {
    const store = new LsmStore({ dir, ...opts });
    const model: Model = new Map();
    const held: Held[] = [];
    const universe = new Set<string>();
    let written = false;
    const view = (at: Where): Held | undefined =>
      at === null || held.length === 0 ? undefined : held[at % held.length];
    try {
      for (const op of ops) {
        switch (op.t) {
          case 'put':
            store.put(op.view ? asView(op.k) : op.k, op.view ? asView(op.v) : op.v);
            model.set(str(op.k), Buffer.from(op.v));
            universe.add(str(op.k));
            written = true;
            break;
          case 'del':
            store.del(op.k);
            model.delete(str(op.k));
            universe.add(str(op.k));
            break;
          case 'commit':
            store.commit();
            checkFiles(dir, store, held);
            break;
          case 'ingest': {
            // Sorted, each key once (the last given wins, as the backend's restore does).
            const byKey = new Map<string, Buffer | null>();
            for (const e of op.entries) byKey.set(str(e.k), e.v);
            const sorted = [...byKey].sort((a, c) => (a[0] < c[0] ? -1 : a[0] > c[0] ? 1 : 0));
            const first = sorted[0]?.[0];
            store.ingest(
              sorted.length,
              (sink) => {
                for (const [k, v] of sorted) sink.add(k, v);
              },
              op.append && first !== undefined ? { first } : undefined,
            );
            for (const [k, v] of sorted) {
              if (v === null) model.delete(k);
              else model.set(k, Buffer.from(v));
              universe.add(k);
              written = true;
            }
            break;
          }
          case 'snapshot':
            held.push({ snap: store.snapshot(), model: new Map(model) });
            break;
          case 'release':
            if (held.length > 0) held.splice(op.i % held.length, 1)[0]!.snap.release();
            break;
          case 'get': {
            const h = view(op.at);
            const k = op.k;
            expect(get(store, k, h?.snap)).toBe(hex((h?.model ?? model).get(str(k))));
            break;
          }
          case 'range': {
            const h = view(op.at);
            expect(storeRange(store, op.s, op.e, h?.snap)).toEqual(
              modelRange(h?.model ?? model, op.s, op.e),
            );
            break;
          }
          case 'any': {
            const h = view(op.at);
            expect(store.any(op.s, op.e, h?.snap)).toBe(
              modelRange(h?.model ?? model, op.s, op.e).length > 0,
            );
            break;
          }
          case 'lastKey': {
            const last = store.lastKey();
            const keys = [...model.keys()].sort();
            if (!written) expect(last).toBeUndefined();
            if (keys.length > 0) {
              expect(last).toBeDefined();
              expect(str(last!) >= keys[keys.length - 1]!).toBe(true);
            }
            break;
          }
          case 'check':
            checkView(store, model, universe);
            for (const h of held) checkView(store, h.model, universe, h.snap);
            break;
        }
        const stats = store.stats();
        // The bound holds between merges (a paced merge's inputs stay until it ends).
        if (!store.merging) {
          expect(stats.runs).toBeLessThanOrEqual(maxRuns(stats, opts.tierBase, opts.fanIn));
        }
      }
      checkView(store, model, universe);
      for (const h of held) checkView(store, h.model, universe, h.snap);
      checkFiles(dir, store, held);
      store.close();
      // Snapshots outlive the store: they read their own state from the runs they hold.
      for (const h of held) checkView(store, h.model, universe, h.snap);
      for (const h of held.splice(0)) h.snap.release();
      expect(readdirSync(dir)).toEqual([]);
    } finally {
      store.close();
      for (const h of held) h.snap.release();
    }
  });

describe('LsmStore against a model', () => {
  it('answers every read like a Map, live and through held snapshots (property)', () => {
    fc.assert(fc.property(optionsArb, fc.array(opArb, { maxLength: 300, size: 'max' }), runModel), {
      numRuns: 50,
    });
  });

  it('a long history: snapshots held across many commits and merges', () => {
    fc.assert(
      fc.property(
        optionsArb,
        fc.array(opArb, { minLength: 800, maxLength: 1200, size: 'max' }),
        (opts, ops) => runModel(opts, [{ t: 'snapshot' }, ...ops]),
      ),
      { numRuns: 4 },
    );
  });
});

describe('LsmStore: cases', () => {
  const opts = { memtableEntries: 1, maxMemtables: 1, fanIn: 4, blockBytes: 64, bitsPerKey: 10 };

  // Regression: getFast read `this.mem.get(key) ?? older`, and `??` treats a deletion (null)
  // in the live memtable like no entry, so the older value showed through.
  it('a key deleted in the live memtable is gone though an older run or memtable has it', () =>
    withDir((dir) => {
      const store = new LsmStore({ dir, ...opts });
      try {
        store.put(b('k'), b('v1'));
        store.commit(); // k=v1 in a run
        expect(store.stats().runs).toBe(1);
        store.del(b('k')); // a deletion in the live memtable
        expect(store.getFast(b('k'))).toBeUndefined();
        expect(store.any(b('k'), undefined)).toBe(false);
        // The same with the older value in a frozen memtable (a snapshot froze it).
        store.put(b('j'), b('w1'));
        const snap = store.snapshot();
        store.del(b('j'));
        expect(store.getFast(b('j'))).toBeUndefined();
        expect(hex(store.getFast(b('j'), snap))).toBe(hex(b('w1')));
        snap.release();
      } finally {
        store.close();
      }
    }));

  it('reads through a released snapshot throw; release is idempotent', () =>
    withDir((dir) => {
      const store = new LsmStore({ dir, ...opts });
      try {
        store.put(b('a'), b('1'));
        store.commit();
        const snap = store.snapshot();
        snap.release();
        snap.release();
        expect(() => store.getFast(b('a'), snap)).toThrow(/released snapshot/);
        expect(() => [...store.range(b(''), undefined, snap)]).toThrow(/released snapshot/);
        expect(() => store.any(b(''), undefined, snap)).toThrow(/released snapshot/);
        expect(hex(store.getFast(b('a')))).toBe(hex(b('1')));
      } finally {
        store.close();
      }
      expect(readdirSync(dir)).toEqual([]);
    }));

  it('a snapshot reads its state after merges replaced its runs and after close()', () =>
    withDir((dir) => {
      const store = new LsmStore({ dir, memtableEntries: 2, maxMemtables: 1, fanIn: 2 });
      const key = (i: number) => b(`k${String(i).padStart(4, '0')}`);
      for (let i = 0; i < 50; i++) {
        store.put(key(i), b(`v${i}`));
        store.commit();
      }
      const snap = store.snapshot();
      const want = storeRange(store, b(''), undefined, snap);
      expect(want.length).toBe(50);
      const heldFiles = snap.runs.map((r) => r.path);
      for (let i = 0; i < 200; i++) {
        if (i % 3 === 0) store.del(key(i % 50));
        else store.put(key(i % 60), b(`w${i}`));
        store.commit();
      }
      // Merges have replaced the snapshot's runs in the store; their files stay.
      for (const p of heldFiles) expect(existsSync(p)).toBe(true);
      expect(storeRange(store, b(''), undefined, snap)).toEqual(want);
      store.close();
      expect(storeRange(store, b(''), undefined, snap)).toEqual(want);
      expect(hex(store.getFast(key(7), snap))).toBe(hex(b('v7')));
      expect(readdirSync(dir).length).toBe(heldFiles.length);
      snap.release();
      expect(readdirSync(dir)).toEqual([]);
    }));

  it('lastKey: undefined before any write, then an upper bound of the live keys', () =>
    withDir((dir) => {
      const store = new LsmStore({ dir, ...opts, fanIn: 2 });
      try {
        expect(store.lastKey()).toBeUndefined();
        store.del(b('z')); // a deletion of nothing writes nothing
        store.commit();
        expect(store.lastKey()).toBeUndefined();
        store.put(b('m'), b('1'));
        expect(str(store.lastKey()!)).toBe('m');
        store.commit();
        store.put(b('c'), b('1'));
        store.commit();
        expect(str(store.lastKey()!)).toBe('m');
        store.put(b('\xff\x00'), b(''));
        expect(str(store.lastKey()!)).toBe('\xff\x00');
      } finally {
        store.close();
      }
    }));

  it('a range end before or at its start is empty; end undefined runs to the last key', () =>
    withDir((dir) => {
      const store = new LsmStore({ dir, ...opts });
      try {
        for (const k of ['a', 'ab', 'b', '\xff']) {
          store.put(b(k), b(k));
          store.commit();
        }
        expect(storeRange(store, b('b'), b('a'))).toEqual([]);
        expect(storeRange(store, b('ab'), b('ab'))).toEqual([]);
        expect(store.any(b('b'), b('b'))).toBe(false);
        expect(storeRange(store, b('a'), b('b')).map(([k]) => k)).toEqual(['a', 'ab']);
        expect(storeRange(store, b('a\x00'), undefined).map(([k]) => k)).toEqual([
          'ab',
          'b',
          '\xff',
        ]);
      } finally {
        store.close();
      }
    }));
});

describe('LsmStore: merges', () => {
  // Size-tiered merging keeps fewer than fanIn runs per size class, so the number of runs
  // grows with the log of the entries, not with the number of commits.
  it.each([
    { fanIn: 2, memtableEntries: 4, maxMemtables: 1 },
    { fanIn: 3, memtableEntries: 3, maxMemtables: 2 },
  ])('stats() stays within the bound over many commits (%o)', (o) =>
    withDir((dir) => {
      // Size classes from one memtable's worth (the store's default base is larger).
      const store = new LsmStore({ dir, blockBytes: 64, tierBase: o.memtableEntries, ...o });
      let commits = 0;
      let maxSeen = 0;
      let merged = false;
      let distinct = 0;
      try {
        for (let i = 0; i < 3000; i++) {
          store.put(b(`key-${(i * 7919) % 100_003}`), b(String(i)));
          distinct++;
          if (i % 3 === 2) {
            const before = store.stats().runs;
            store.commit();
            commits++;
            const s = store.stats();
            if (s.runs < before) merged = true;
            expect(s.runs).toBeLessThanOrEqual(maxRuns(s, o.memtableEntries, o.fanIn)); // tierBase = memtable
            // Distinct keys, no deletions: merges keep every entry exactly once.
            expect(s.runEntries + s.memtableEntries).toBe(distinct);
            maxSeen = Math.max(maxSeen, s.runs);
          }
        }
        expect(merged).toBe(true);
        expect(maxSeen).toBeLessThan(commits / 10);
        const s = store.stats();
        expect(s.runBytes).toBeGreaterThan(0);
        expect(s.indexBytes).toBeGreaterThan(0);
        expect(readdirSync(dir).length).toBe(s.runs);
      } finally {
        store.close();
      }
      expect(readdirSync(dir)).toEqual([]);
    }),
  );

  it('overwrites and deletions shrink the runs when merged', () =>
    withDir((dir) => {
      const store = new LsmStore({ dir, memtableEntries: 4, maxMemtables: 1, fanIn: 2 });
      try {
        for (let round = 0; round < 40; round++) {
          for (let i = 0; i < 16; i++) {
            if (round === 39) store.del(b(`k${i}`));
            else store.put(b(`k${i}`), b(`${round}`));
            if (i % 4 === 3) store.commit();
          }
          const s = store.stats();
          expect(s.runs).toBeLessThanOrEqual(maxRuns(s, 4, 2));
          // 16 live keys: overwritten versions are merged away, not kept.
          expect(s.runEntries).toBeLessThanOrEqual(16 * s.runs);
        }
        expect(store.any(b(''), undefined)).toBe(false);
      } finally {
        store.close();
      }
    }));
});

describe('LsmStore: edges', () => {
  it('a key longer than the file format holds fails at the call; the store goes on', () =>
    withDir((dir) => {
      const store = new LsmStore({ dir, memtableEntries: 1 });
      try {
        expect(() => store.put(Buffer.alloc(0x10000, 1), b('v'))).toThrow(/65536 bytes.*65535/);
        expect(() => store.del(Buffer.alloc(0x10000, 1))).toThrow(RangeError);
        store.put(Buffer.alloc(0xffff, 1), b('v')); // the largest key
        store.commit();
        store.commit();
        expect(hex(store.getFast(Buffer.alloc(0xffff, 1)))).toBe(hex(b('v')));
      } finally {
        store.close();
      }
    }));

  it('runs that merge into nothing leave no run and no file', () =>
    withDir((dir) => {
      const store = new LsmStore({
        dir,
        memtableEntries: 2,
        maxMemtables: 1,
        fanIn: 2,
        tierBase: 2,
      });
      try {
        for (let i = 0; i < 40; i++) {
          store.put(b(`k${i}`), b('v'));
          store.commit();
        }
        for (let i = 0; i < 40; i++) {
          store.del(b(`k${i}`));
          store.commit();
        }
        for (let i = 0; i < 8; i++) store.commit(); // let paced and pending merges finish
        expect([...store.range(b(''), undefined)]).toEqual([]);
        const { runs } = store.stats();
        expect(readdirSync(dir).length).toBe(runs);
        for (const f of readdirSync(dir)) expect(statSync(join(dir, f)).size).toBeGreaterThan(0);
      } finally {
        store.close();
      }
    }));
});
