/**
 * Incremental keyed state on real files (incremental-file.ts): a base, then deltas on the
 * returned chains, read back like a full checkpoint; checkpoints without changes; emptied key
 * groups; compaction (by deletions and by chain length) and the bounds it keeps; corruption of
 * a delta block; restores of a sub-range read only that range's chains.
 */
import { mkdir, open, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EddyError } from '../core/errors.js';
import {
  ListStateDescriptor,
  MapStateDescriptor,
  ValueStateDescriptor,
} from '../state/descriptors.js';
import { HeapKeyedStateBackend } from '../state/heap-keyed-backend.js';
import type { KeyGroupSnapshot, NormalizedKey } from '../state/types.js';
import { type ChainView, chainBytes } from './chains.js';
import { makeTempDir, removeTempDir } from './checkpoint.testkit.js';
import {
  estimatedLiveBytes,
  MAX_CHAIN_BLOCKS,
  MAX_READ_FACTOR,
  shouldCompact,
} from './compaction.js';
import { sharedDirOf, writeSharedBase, writeSharedDelta } from './incremental-file.js';
import { readKeyGroups, readKeyGroupsLazily } from './keyed-file.js';
import { SHARED_DIR, sharedFileName, sharedKeyedFileName } from './paths.js';
import type { IncrementalKeyedStateHandle, KeyGroupChain } from './types.js';

let root: string;
beforeAll(async () => {
  root = await makeTempDir('eddy-inc-file-');
});
afterAll(() => removeTempDir(root));

const MAX_PAR = 16;
const RANGE = { start: 0, end: MAX_PAR - 1 };

type Entries = Array<[NormalizedKey, unknown]>;
/** Key group -> state name -> entries sorted by key: order-free comparison of key groups. */
type Canonical = Record<number, Record<string, Entries>>;

const cmpKey = (a: [NormalizedKey, unknown], b: [NormalizedKey, unknown]) => {
  const x = `${typeof a[0]}:${String(a[0])}`;
  const y = `${typeof b[0]}:${String(b[0])}`;
  return x < y ? -1 : x > y ? 1 : 0;
};

const canonical = (snapshots: readonly KeyGroupSnapshot[]): Canonical => {
  const out: Canonical = {};
  for (const s of snapshots) {
    if (s.states.length === 0) continue;
    const states: Record<string, Entries> = {};
    for (const st of s.states) states[st.name] = ([...st.entries] as Entries).sort(cmpKey);
    out[s.keyGroup] = states;
  }
  return out;
};

/** A subtask: a tracking backend with value, map and list state, and its checkpoints. */
class Subtask {
  readonly backend: HeapKeyedStateBackend;
  private readonly v;
  private readonly m;
  private readonly l;
  previous: IncrementalKeyedStateHandle | undefined;
  private id = 0;

  constructor(
    private readonly dir: string,
    readonly range = RANGE,
  ) {
    this.backend = new HeapKeyedStateBackend({
      keyGroupRange: range,
      maxParallelism: MAX_PAR,
      trackChanges: true,
    });
    this.v = this.backend.getState(new ValueStateDescriptor<string>('v'));
    this.m = this.backend.getState(new MapStateDescriptor<string, number>('m'));
    this.l = this.backend.getState(new ListStateDescriptor<number>('l'));
  }

  /** Key `key` lives in key group `kg` (tests pick key groups directly). */
  set(kg: number, key: string, value: string): void {
    this.backend.setCurrentKey(key, kg);
    this.v.update(value);
  }
  clear(kg: number, key: string): void {
    this.backend.setCurrentKey(key, kg);
    this.v.clear();
    this.m.clear();
    this.l.clear();
  }
  put(kg: number, key: string, mk: string, n: number): void {
    this.backend.setCurrentKey(key, kg);
    this.m.put(mk, n);
  }
  add(kg: number, key: string, n: number): void {
    this.backend.setCurrentKey(key, kg);
    this.l.add(n);
  }

  checkpointDir(id: number): string {
    return join(this.dir, `chk-${id}`);
  }

  /** The first checkpoint: a base of everything (as KeyedCheckpointer does). */
  async base(): Promise<IncrementalKeyedStateHandle> {
    const id = ++this.id;
    await mkdir(this.checkpointDir(id), { recursive: true });
    this.backend.forgetChanges();
    const view = this.backend.snapshotView();
    try {
      const name = sharedKeyedFileName('op', 0, id);
      this.previous = await writeSharedBase(this.checkpointDir(id), name, this.range, view);
    } finally {
      view.release();
    }
    return this.previous;
  }

  /**
   * A delta on the previous chains (as KeyedCheckpointer does: the compaction rule decides,
   * when the view is taken, which key groups it captures whole, to be written as new bases).
   */
  async delta(): Promise<IncrementalKeyedStateHandle> {
    const id = ++this.id;
    await mkdir(this.checkpointDir(id), { recursive: true });
    const view = this.backend.deltaView(compactionRule(this.previous!))!;
    try {
      const name = sharedKeyedFileName('op', 0, id);
      const handle = await writeSharedDelta(
        this.checkpointDir(id),
        name,
        this.range,
        this.previous!,
        view,
      );
      view.complete();
      this.previous = handle;
    } finally {
      view.release();
    }
    return this.previous;
  }

  get latestDir(): string {
    return this.checkpointDir(this.id);
  }

  /** Reads the latest checkpoint back and compares it with the backend's full snapshot. */
  async verify(range = this.range): Promise<number> {
    const { snapshots, bytesRead } = await readKeyGroups(this.latestDir, this.previous!, range);
    expect(canonical(snapshots)).toEqual(canonical(this.backend.snapshot(range)));
    checkBounds(this.previous!);
    return bytesRead;
  }
}

/** KeyedCheckpointer's rule: a changed key group whose chain shouldCompact is captured whole. */
const compactionRule = (previous: ChainView) => {
  const chains = new Map(previous.chains.map((c) => [c.keyGroup, c]));
  return (keyGroup: number, changed: number, liveEntries: number): boolean => {
    const chain = chains.get(keyGroup);
    return (
      chain !== undefined && shouldCompact({ keyGroup, chain: chain.blocks, changed, liveEntries })
    );
  };
};

/**
 * The bounds the compaction rule keeps, for every chain: at most MAX_CHAIN_BLOCKS blocks, and
 * every delta was appended only where the rule allowed it: shouldCompact was false for the
 * chain before it, with the delta's records as the changed entries and the key group's live
 * entries then (a chain's `entries`, carried over while the chain is unchanged). So the blocks
 * before the last stay within MAX_READ_FACTOR times the estimated live state.
 */
const checkBounds = (h: IncrementalKeyedStateHandle) => {
  for (const c of h.chains) {
    expect(c.blocks.length).toBeGreaterThan(0);
    expect(c.blocks.length).toBeLessThanOrEqual(MAX_CHAIN_BLOCKS);
    if (c.blocks.length === 1) continue;
    const before = c.blocks.slice(0, -1);
    const changed = c.blocks[c.blocks.length - 1]!.records;
    const input = { keyGroup: c.keyGroup, chain: before, changed, liveEntries: c.entries };
    expect(shouldCompact(input)).toBe(false);
    const live = estimatedLiveBytes(input);
    expect(before.reduce((n, b) => n + b.length, 0)).toBeLessThanOrEqual(MAX_READ_FACTOR * live);
  }
};

/** The chains with files resolved to names: comparable across handles whose `files` differ. */
const resolved = (h: ChainView) =>
  h.chains.map((c) => ({
    ...c,
    blocks: c.blocks.map(({ file, ...b }) => ({ ...b, file: h.files[file] })),
  }));

const chainOf = (h: IncrementalKeyedStateHandle, kg: number): KeyGroupChain | undefined =>
  h.chains.find((c) => c.keyGroup === kg);

let dirs = 0;
const freshDir = async () => {
  const d = join(root, `job-${++dirs}`);
  await mkdir(d, { recursive: true });
  return d;
};
const sharedFiles = (dir: string) => readdir(join(dir, SHARED_DIR)).catch(() => []);

describe('writeSharedBase, then writeSharedDelta on the returned chains', () => {
  it('reads back, after every checkpoint, exactly the backend state', async () => {
    const s = new Subtask(await freshDir());
    for (let i = 0; i < 40; i++) {
      s.set(i % MAX_PAR, `k${i}`, `v${i}`);
      s.put((i * 3) % MAX_PAR, `k${i}`, `x${i % 4}`, i);
      if (i % 2 === 0) s.add(i % MAX_PAR, `k${i}`, i);
    }
    const base = await s.base();
    expect(base.type).toBe('incremental');
    expect(base.keyGroupRange).toEqual([0, MAX_PAR - 1]);
    expect(base.files).toHaveLength(1);
    expect(base.chains.every((c) => c.blocks.length === 1)).toBe(true);
    await s.verify();
    for (let round = 1; round <= 6; round++) {
      for (let i = 0; i < 12; i++) {
        const k = (round * 7 + i * 5) % 40;
        const kg = k % MAX_PAR;
        if ((round + i) % 5 === 0) s.clear(kg, `k${k}`);
        else if ((round + i) % 3 === 0) s.put((k * 3) % MAX_PAR, `k${k}`, `y${round}`, i);
        else if ((round + i) % 3 === 1) s.add(kg, `k${k}`, round * 100 + i);
        else s.set(kg, `k${k}`, `r${round}-${i}`);
      }
      const h = await s.delta();
      expect(h.bytes).toBeGreaterThan(0);
      await s.verify();
    }
    // really incremental: some chain holds delta blocks of several files
    expect(s.previous!.chains.some((c) => c.blocks.length > 2)).toBe(true);
    expect(s.previous!.files.length).toBeGreaterThan(1);
    // the lazy reader agrees
    const { groups } = await readKeyGroupsLazily(s.latestDir, s.previous!, RANGE);
    expect(canonical(groups.map((g) => g.load()))).toEqual(canonical(s.backend.snapshot()));
  });

  it('a checkpoint without changes writes no file and keeps the chains', async () => {
    const dir = await freshDir();
    const s = new Subtask(dir);
    s.set(1, 'a', 'x');
    s.set(9, 'b', 'y');
    await s.base();
    s.set(1, 'a', 'x2');
    const before = await s.delta();
    const filesBefore = await sharedFiles(dir);
    expect(filesBefore).toHaveLength(2);
    const after = await s.delta();
    expect(after.bytes).toBe(0);
    expect(await sharedFiles(dir)).toEqual(filesBefore);
    expect(resolved(after)).toEqual(resolved(before));
    expect([...after.files].sort()).toEqual([...before.files].sort());
    await s.verify();
  });

  it('a base of an empty backend writes no file', async () => {
    const dir = await freshDir();
    const s = new Subtask(dir);
    const h = await s.base();
    expect(h.chains).toEqual([]);
    expect(h.files).toEqual([]);
    expect(await sharedFiles(dir)).toEqual([]);
    s.set(3, 'a', 'x');
    const d = await s.delta();
    expect(d.chains.map((c) => c.keyGroup)).toEqual([3]);
    expect(d.chains[0]!.blocks).toHaveLength(1); // a new key group's delta is its base
    await s.verify();
  });

  it('a key group emptied loses its chain, and its files when nothing else uses them', async () => {
    const dir = await freshDir();
    const s = new Subtask(dir);
    s.set(2, 'a', 'x');
    s.put(2, 'b', 'm', 1);
    // several keys in 5: a one-key change is appended, not compacted
    for (let i = 0; i < 8; i++) s.set(5, `c${i}`, `z${i}`);
    const base = await s.base();
    s.clear(2, 'a');
    s.set(5, 'c0', 'z2');
    const d1 = await s.delta();
    expect(d1.chains.map((c) => c.keyGroup)).toEqual([2, 5]);
    expect(chainOf(d1, 5)!.blocks).toHaveLength(2);
    s.clear(2, 'b');
    const d2 = await s.delta();
    expect(d2.chains.map((c) => c.keyGroup)).toEqual([5]);
    await s.verify();
    expect((await readKeyGroups(s.latestDir, d2, RANGE)).snapshots.map((g) => g.keyGroup)).toEqual([
      5,
    ]);
    // every file of the handle is used by some block
    const used = new Set(d2.chains.flatMap((c) => c.blocks.map((b) => b.file)));
    expect(used.size).toBe(d2.files.length);
    expect(base.files.every((f) => d2.files.includes(f))).toBe(true); // 5's base is still used
    // emptied and re-filled: a new base of one block
    s.set(2, 'a', 'back');
    const d3 = await s.delta();
    expect(chainOf(d3, 2)!.blocks).toHaveLength(1);
    await s.verify();
  });
});

describe('compaction', () => {
  it('rewrites the base when deletions leave the chain more than twice the live state', async () => {
    const s = new Subtask(await freshDir());
    for (let i = 0; i < 60; i++) s.set(7, `k${i}`, `value-${i}-${'x'.repeat(20)}`);
    s.set(8, 'other', 'o');
    await s.base();
    // a few small deltas first: appended
    s.set(7, 'k0', 'changed');
    let h = await s.delta();
    expect(chainOf(h, 7)!.blocks).toHaveLength(2);
    // delete 55 of 60: live ~5/60 of the base, the chain would be ~12x that
    for (let i = 1; i < 56; i++) s.clear(7, `k${i}`);
    h = await s.delta();
    const chain = chainOf(h, 7)!;
    expect(chain.blocks).toHaveLength(1);
    expect(chain.entries).toBe(5);
    expect(chain.blocks[0]!.records).toBe(5);
    // the new base is in this checkpoint's file
    const latest = h.files[chain.blocks[0]!.file]!;
    expect(sharedFileName(latest)).toMatch(/^op-0-3-[0-9a-f]{8}\.keyed$/);
    // its content: exactly the live keys, in one base block
    const { snapshots, bytesRead } = await readKeyGroups(s.latestDir, h, { start: 7, end: 7 });
    expect(bytesRead).toBe(chain.blocks[0]!.length);
    expect(canonical(snapshots)).toEqual({
      7: {
        v: [
          ['k0', 'changed'],
          ['k56', `value-56-${'x'.repeat(20)}`],
          ['k57', `value-57-${'x'.repeat(20)}`],
          ['k58', `value-58-${'x'.repeat(20)}`],
          ['k59', `value-59-${'x'.repeat(20)}`],
        ],
      },
    });
    // the untouched key group kept its chain
    expect(chainOf(h, 8)!.blocks).toHaveLength(1);
    await s.verify();
  });

  it(`never lets a chain grow past ${MAX_CHAIN_BLOCKS} blocks`, async () => {
    const s = new Subtask(await freshDir());
    for (let i = 0; i < 200; i++) s.set(4, `k${i}`, `value-${i}-${'y'.repeat(30)}`);
    await s.base();
    const lengths: number[] = [];
    for (let round = 0; round < MAX_CHAIN_BLOCKS + 4; round++) {
      s.set(4, `k${round % 200}`, `r${round}`);
      const h = await s.delta();
      lengths.push(chainOf(h, 4)!.blocks.length);
      checkBounds(h);
    }
    // 2, 3, …, 32, then compacted to 1 and growing again
    const expected = Array.from({ length: MAX_CHAIN_BLOCKS - 1 }, (_, i) => i + 2);
    expect(lengths.slice(0, MAX_CHAIN_BLOCKS - 1)).toEqual(expected);
    expect(lengths[MAX_CHAIN_BLOCKS - 1]).toBe(1);
    expect(lengths.slice(MAX_CHAIN_BLOCKS)).toEqual([2, 3, 4, 5]);
    await s.verify();
  });

  it('keeps every chain within the bounds over a long mixed run', async () => {
    const s = new Subtask(await freshDir());
    for (let i = 0; i < 80; i++) s.set(i % MAX_PAR, `k${i}`, `v${i}`);
    await s.base();
    let compactions = 0;
    for (let round = 0; round < 30; round++) {
      const before = s.previous!;
      for (let i = 0; i < 10; i++) {
        const k = (round * 13 + i * 7) % 80;
        if ((round * 3 + i) % 4 === 0) s.clear(k % MAX_PAR, `k${k}`);
        else s.set(k % MAX_PAR, `k${k}`, `r${round}-${i}-${'z'.repeat(round % 7)}`);
      }
      const h = await s.delta();
      for (const c of h.chains) {
        // a key group that had a chain and now has one block of this checkpoint: rewritten
        const fresh = !before.files.includes(h.files[c.blocks[0]!.file]!);
        if (chainOf(before, c.keyGroup) !== undefined && c.blocks.length === 1 && fresh) {
          compactions++;
        }
      }
      await s.verify();
    }
    expect(compactions).toBeGreaterThan(0);
  });
});

describe('reading incremental handles', () => {
  it('a CRC mismatch in a delta block is EDDY_CHECKPOINT_CORRUPT naming the file and key group', async () => {
    const s = new Subtask(await freshDir());
    s.set(3, 'a', 'x');
    for (let i = 0; i < 8; i++) s.set(6, `b${i}`, `y${i}`);
    await s.base();
    s.set(6, 'b0', 'y2');
    const h = await s.delta();
    const chain = chainOf(h, 6)!;
    expect(chain.blocks).toHaveLength(2);
    const delta = chain.blocks[1]!;
    const name = sharedFileName(h.files[delta.file]!);
    const path = join(sharedDirOf(s.latestDir), name);
    const fh = await open(path, 'r+');
    try {
      const byte = Buffer.alloc(1);
      await fh.read(byte, 0, 1, delta.offset + delta.length - 1);
      byte[0] = byte[0]! ^ 0xff;
      await fh.write(byte, 0, 1, delta.offset + delta.length - 1);
    } finally {
      await fh.close();
    }
    let err: unknown;
    try {
      await readKeyGroups(s.latestDir, h, RANGE);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(EddyError);
    expect((err as EddyError).code).toBe('EDDY_CHECKPOINT_CORRUPT');
    expect((err as EddyError).message).toContain(name);
    expect((err as EddyError).message).toContain('key group 6');
    // the key group whose chain does not use the block still reads
    const ok = await readKeyGroups(s.latestDir, h, { start: 0, end: 5 });
    expect(ok.snapshots.map((g) => g.keyGroup)).toEqual([3]);
  });

  it('a restore of a sub-range reads only the chains of that range', async () => {
    const s = new Subtask(await freshDir());
    for (let i = 0; i < 64; i++) s.set(i % MAX_PAR, `k${i}`, `v${i}`);
    await s.base();
    for (let round = 0; round < 4; round++) {
      for (let i = 0; i < 8; i++) s.set((round * 5 + i * 3) % MAX_PAR, `n${round}-${i}`, 'w');
      await s.delta();
    }
    const h = s.previous!;
    for (const [start, end] of [
      [0, 3],
      [4, 7],
      [5, 5],
      [8, 15],
      [0, 15],
    ] as const) {
      const range = { start, end };
      const expected = h.chains
        .filter((c) => c.keyGroup >= start && c.keyGroup <= end)
        .reduce((n, c) => n + chainBytes(c), 0);
      const bytesRead = await s.verify(range);
      expect(bytesRead).toBe(expected);
      const lazy = await readKeyGroupsLazily(s.latestDir, h, range);
      expect(lazy.bytesRead).toBe(expected);
      expect(lazy.groups.every((g) => g.keyGroup >= start && g.keyGroup <= end)).toBe(true);
    }
  });
});
