import { open, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  ListStateDescriptor,
  MapStateDescriptor,
  ValueStateDescriptor,
} from '../state/descriptors.js';
import { HeapKeyedStateBackend } from '../state/heap-keyed-backend.js';
import type { KeyGroupSnapshot } from '../state/types.js';
import { SLICE_MS, WRITE_BUFFER_BYTES } from './block-io.js';
import {
  flipByte,
  keyedSubtaskState,
  keyGroupSnapshot,
  makeTempDir,
  removeTempDir,
} from './checkpoint.testkit.js';
import {
  decodeKeyGroupBlock,
  ENTRIES_PER_STEP,
  encodeKeyGroupBlock,
  SLICED_STATE_ENTRIES,
} from './keyed-block.js';
import {
  type KeyGroupSource,
  planKeyedReads,
  readKeyGroups,
  readKeyGroupsLazily,
  writeKeyedStateFile,
} from './keyed-file.js';

let dir: string;
beforeAll(async () => {
  dir = await makeTempDir();
});
afterAll(() => removeTempDir(dir));

const inRange = (s: { keyGroup: number }, r: { start: number; end: number }) =>
  s.keyGroup >= r.start && s.keyGroup <= r.end;

/** Error thrown by `p`, for matching code and message together. */
const rejection = async (p: Promise<unknown>) => {
  try {
    await p;
  } catch (e) {
    return e as { code: string; message: string };
  }
  throw new Error('expected a rejection');
};

describe('key-group blocks', () => {
  it('round-trip one key group', () => {
    fc.assert(
      fc.property(fc.nat(32767).chain(keyGroupSnapshot), (snapshot) => {
        expect(decodeKeyGroupBlock(encodeKeyGroupBlock(snapshot))).toEqual(snapshot);
      }),
    );
  });

  it('keep Map values as Maps and bigint keys as bigints', () => {
    const snapshot: KeyGroupSnapshot = {
      keyGroup: 3,
      states: [{ name: 'm', kind: 'value', entries: [[2n ** 70n, new Map([[1, { a: [1n] }]])]] }],
    };
    const back = decodeKeyGroupBlock(encodeKeyGroupBlock(snapshot));
    expect(back.states[0]!.entries[0]![0]).toBe(2n ** 70n);
    expect(back.states[0]!.entries[0]![1]).toBeInstanceOf(Map);
  });

  it('reject bytes that are not a key-group block', () => {
    const err = (() => {
      try {
        decodeKeyGroupBlock(new Uint8Array([0x93, 1, 2, 3]), 'block X');
      } catch (e) {
        return e as { code: string; message: string };
      }
    })();
    expect(err?.code).toBe('EDDY_CHECKPOINT_CORRUPT');
    expect(err?.message).toMatch(/^block X is malformed/);
  });
});

describe('keyed state files', () => {
  it('read back exactly the key groups of any sub-range, reading only their bytes in one run', async () => {
    let n = 0;
    await fc.assert(
      fc.asyncProperty(
        keyedSubtaskState.chain((s) =>
          fc
            .tuple(fc.nat(s.maxParallelism - 1), fc.nat(s.maxParallelism - 1))
            .map(([a, b]) => ({ ...s, query: { start: Math.min(a, b), end: Math.max(a, b) } })),
        ),
        async ({ range, snapshots, query }) => {
          const file = `op-${n++}.keyed`;
          const handle = await writeKeyedStateFile(dir, file, range, snapshots);
          expect(handle.file).toBe(file);
          expect(handle.keyGroupRange).toEqual([range.start, range.end]);
          const { snapshots: got, bytesRead } = await readKeyGroups(dir, handle, query);
          const expected = snapshots.filter((s) => inRange(s, query));
          expect(got).toEqual(expected);
          const selected = handle.blocks.filter((b) => inRange(b, query));
          expect(bytesRead).toBe(selected.reduce((sum, b) => sum + b.length, 0));
          const reads = planKeyedReads(handle, query);
          expect(reads.length).toBe(selected.length === 0 ? 0 : 1);
          expect(reads.flatMap((r) => r.blocks)).toEqual(selected);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('read lazily: the same bytes, decoded only on load, and written back byte for byte untouched', async () => {
    let n = 0;
    await fc.assert(
      fc.asyncProperty(keyedSubtaskState, async ({ range, snapshots, maxParallelism }) => {
        const i = n++;
        const handle = await writeKeyedStateFile(dir, `lazy-${i}.keyed`, range, snapshots);
        const eager = await readKeyGroups(dir, handle, range);
        const lazy = await readKeyGroupsLazily(dir, handle, range);
        expect(lazy.bytesRead).toBe(eager.bytesRead);
        expect(lazy.groups.map((g) => g.load())).toEqual(eager.snapshots);
        // Restored lazily into a backend and checkpointed untouched: the blocks pass through.
        const backend = new HeapKeyedStateBackend({ keyGroupRange: range, maxParallelism });
        for (const g of lazy.groups) backend.restoreKeyGroupLazily(g);
        const view = backend.snapshotView();
        const again = await writeKeyedStateFile(dir, `lazy-again-${i}.keyed`, range, view);
        view.release();
        expect(backend.pendingKeyGroups).toBe(lazy.groups.length);
        expect(await readFile(join(dir, `lazy-again-${i}.keyed`))).toEqual(
          await readFile(join(dir, `lazy-${i}.keyed`)),
        );
        expect({ ...again, file: '' }).toEqual({ ...handle, file: '' });
      }),
      { numRuns: 40 },
    );
  });

  it('write blocks back to back in ascending key-group order whatever the input order', async () => {
    const snaps = [5, 1, 3].map(
      (kg) => fc.sample(keyGroupSnapshot(kg), { numRuns: 1, seed: kg })[0]!,
    );
    const handle = await writeKeyedStateFile(dir, 'order.keyed', { start: 0, end: 9 }, snaps);
    expect(handle.blocks.map((b) => b.keyGroup)).toEqual([1, 3, 5]);
    let offset = 0;
    for (const b of handle.blocks) {
      expect(b.offset).toBe(offset);
      offset += b.length;
    }
    expect(handle.bytes).toBe(offset);
    expect((await readFile(join(dir, 'order.keyed'))).length).toBe(offset);
  });

  it('skip key groups without states and refuse key groups outside the range or repeated', async () => {
    const handle = await writeKeyedStateFile(dir, 'empty.keyed', { start: 0, end: 3 }, [
      { keyGroup: 1, states: [] },
    ]);
    expect(handle.blocks).toEqual([]);
    expect(handle.bytes).toBe(0);
    const one = { keyGroup: 9, states: [{ name: 'a', entries: [['k', 1]] as const }] };
    await expect(writeKeyedStateFile(dir, 'x.keyed', { start: 0, end: 3 }, [one])).rejects.toThrow(
      /key group 9 is outside/,
    );
    const two = { ...one, keyGroup: 2 };
    await expect(
      writeKeyedStateFile(dir, 'x.keyed', { start: 0, end: 3 }, [two, two]),
    ).rejects.toThrow(/appears twice/);
    await expect(writeKeyedStateFile(dir, '../x.keyed', { start: 0, end: 3 }, [])).rejects.toThrow(
      /not a relative path inside/,
    );
  });

  it('refuse a value msgpack cannot encode, naming the key group and state', async () => {
    const bad = { keyGroup: 2, states: [{ name: 'fn', entries: [['k', Symbol('s')]] as const }] };
    const err = await rejection(writeKeyedStateFile(dir, 'bad.keyed', { start: 0, end: 3 }, [bad]));
    expect(err.code).toBe('EDDY_STATE');
    expect(err.message).toMatch(/key group 2 \(states 'fn'\)/);
  });

  it('cap coalesced reads at maxReadBytes, never splitting a block', async () => {
    const snaps = Array.from({ length: 10 }, (_, kg) => ({
      keyGroup: kg,
      states: [{ name: 's', entries: [['k', 'x'.repeat(100)]] as const }],
    }));
    const handle = await writeKeyedStateFile(dir, 'cap.keyed', { start: 0, end: 9 }, snaps);
    const blockLength = handle.blocks[0]!.length;
    const reads = planKeyedReads(handle, { start: 0, end: 9 }, blockLength * 3);
    expect(reads.map((r) => r.blocks.length)).toEqual([3, 3, 3, 1]);
    const got = await readKeyGroups(
      dir,
      handle,
      { start: 0, end: 9 },
      { maxReadBytes: blockLength * 3 },
    );
    expect(got.snapshots).toEqual(snaps);
    expect(got.bytesRead).toBe(handle.bytes);
  });

  it('write in ~1 MiB batches: one fs write per full buffer, never one per block', async () => {
    const probe = await open(join(dir, 'probe'), 'w');
    const proto = Object.getPrototypeOf(probe) as { write: (...args: unknown[]) => unknown };
    await probe.close();
    const spy = vi.spyOn(proto, 'write');
    try {
      const snaps = Array.from({ length: 3000 }, (_, kg) => ({
        keyGroup: kg,
        states: [{ name: 's', entries: [[kg, 'v'.repeat(1000)]] as const }],
      }));
      const handle = await writeKeyedStateFile(
        dir,
        'batched.keyed',
        { start: 0, end: 2999 },
        snaps,
      );
      expect(handle.blocks.length).toBe(3000);
      expect(spy.mock.calls.length).toBeGreaterThan(1);
      expect(spy.mock.calls.length).toBeLessThanOrEqual(
        Math.ceil(handle.bytes / WRITE_BUFFER_BYTES) + 1,
      );
    } finally {
      spy.mockRestore();
    }
  });

  it('handle state larger than the write buffer (blocks above and across 1 MiB)', async () => {
    const big = 'y'.repeat(1_500_000);
    const snaps = Array.from({ length: 40 }, (_, kg) => ({
      keyGroup: kg,
      states: [{ name: 's', entries: [[kg, kg === 7 ? big : 'z'.repeat(60_000)]] as const }],
    }));
    const handle = await writeKeyedStateFile(dir, 'big.keyed', { start: 0, end: 39 }, snaps);
    expect(handle.bytes).toBeGreaterThan(3_000_000);
    const all = await readKeyGroups(dir, handle, { start: 0, end: 39 });
    expect(all.snapshots).toEqual(snaps);
    const some = await readKeyGroups(dir, handle, { start: 20, end: 21 });
    expect(some.snapshots).toEqual(snaps.slice(20, 22));
    expect(some.bytesRead).toBeLessThan(handle.bytes / 10);
  });
});

describe('keyed state file corruption', () => {
  const snaps = [0, 1, 2, 3].map((kg) => ({
    keyGroup: kg,
    states: [{ name: 'count', kind: 'value' as const, entries: [[`key${kg}`, kg * 10]] as const }],
  }));
  const write = (file: string) => writeKeyedStateFile(dir, file, { start: 0, end: 3 }, snaps);

  it('a flipped byte in one block fails that key group only, naming file and key group', async () => {
    const handle = await write('flip.keyed');
    const path = join(dir, 'flip.keyed');
    const b2 = handle.blocks[2]!;
    await writeFile(path, flipByte(await readFile(path), b2.offset + Math.floor(b2.length / 2)));
    const err = await rejection(readKeyGroups(dir, handle, { start: 2, end: 2 }));
    expect(err.code).toBe('EDDY_CHECKPOINT_CORRUPT');
    expect(err.message).toContain(path);
    expect(err.message).toMatch(/key group 2 .*CRC-32/);
    await expect(readKeyGroups(dir, handle, { start: 0, end: 3 })).rejects.toThrow(/key group 2/);
    // A lazy read checks the CRC up front too: corruption fails the restore, not a later record.
    const lazyErr = await rejection(readKeyGroupsLazily(dir, handle, { start: 2, end: 2 }));
    expect(lazyErr.code).toBe('EDDY_CHECKPOINT_CORRUPT');
    expect(lazyErr.message).toMatch(/key group 2 .*CRC-32/);
    const fine = await readKeyGroups(dir, handle, { start: 0, end: 1 });
    expect(fine.snapshots).toEqual(snaps.slice(0, 2));
    expect((await readKeyGroups(dir, handle, { start: 3, end: 3 })).snapshots).toEqual([snaps[3]]);
  });

  it('a truncated file fails the key groups past the cut with a clear error', async () => {
    const handle = await write('trunc.keyed');
    const path = join(dir, 'trunc.keyed');
    const b3 = handle.blocks[3]!;
    await truncate(path, b3.offset + 1);
    const err = await rejection(readKeyGroups(dir, handle, { start: 3, end: 3 }));
    expect(err.code).toBe('EDDY_CHECKPOINT_CORRUPT');
    expect(err.message).toContain(path);
    expect(err.message).toMatch(/truncated: key group 3 needs bytes/);
    expect((await readKeyGroups(dir, handle, { start: 0, end: 2 })).snapshots).toEqual(
      snaps.slice(0, 3),
    );
  });

  it('a missing file is named', async () => {
    const handle = await write('gone.keyed');
    await rm(join(dir, 'gone.keyed'));
    const err = await rejection(readKeyGroups(dir, handle, { start: 0, end: 0 }));
    expect(err.code).toBe('EDDY_CHECKPOINT_CORRUPT');
    expect(err.message).toContain(join(dir, 'gone.keyed'));
    expect(err.message).toMatch(/is missing/);
  });

  it('a block that decodes to another key group is reported as corrupt', async () => {
    const handle = await write('swap.keyed');
    const swapped = {
      ...handle,
      blocks: handle.blocks.map((b, i) => (i === 1 ? { ...b, keyGroup: 2 } : b)),
    };
    const err = await rejection(
      readKeyGroups(dir, { ...swapped, blocks: [swapped.blocks[1]!] }, { start: 2, end: 2 }),
    );
    expect(err.code).toBe('EDDY_CHECKPOINT_CORRUPT');
    expect(err.message).toMatch(/holds key group 1/);
  });
});

/** The file handle prototype's `write`, to spy on fs writes. */
const fileHandleProto = async () => {
  const probe = await open(join(dir, 'probe'), 'w');
  const proto = Object.getPrototypeOf(probe) as { write: (...args: unknown[]) => unknown };
  await probe.close();
  return proto;
};

/** A source over snapshots: key groups ascending, each read on demand. */
const sourceOf = (snapshots: readonly KeyGroupSnapshot[]): KeyGroupSource => {
  const byGroup = new Map(snapshots.map((s) => [s.keyGroup, s]));
  return {
    keyGroups: [...byGroup.keys()].sort((a, b) => a - b),
    read: (kg) => byGroup.get(kg)!,
  };
};

describe('keyed state files from a snapshot source', () => {
  it('are byte for byte the file written from the same snapshots as an array', async () => {
    let n = 0;
    await fc.assert(
      fc.asyncProperty(keyedSubtaskState, async ({ range, snapshots }) => {
        const i = n++;
        const fromArray = await writeKeyedStateFile(dir, `arr-${i}.keyed`, range, snapshots);
        const fromSource = await writeKeyedStateFile(
          dir,
          `src-${i}.keyed`,
          range,
          sourceOf(snapshots),
        );
        expect({ ...fromSource, file: '' }).toEqual({ ...fromArray, file: '' });
        expect(await readFile(join(dir, `src-${i}.keyed`))).toEqual(
          await readFile(join(dir, `arr-${i}.keyed`)),
        );
        expect((await readKeyGroups(dir, fromSource, range)).snapshots).toEqual(
          [...snapshots].sort((a, b) => a.keyGroup - b.keyGroup),
        );
      }),
      { numRuns: 40 },
    );
  });

  it("round-trip a backend's snapshot view while the job keeps writing, reading key groups as the file grows", async () => {
    const maxParallelism = 64;
    const range = { start: 0, end: maxParallelism - 1 };
    const b = new HeapKeyedStateBackend({ keyGroupRange: range, maxParallelism });
    const v = b.getState(new ValueStateDescriptor<string>('v'));
    const l = b.getState(new ListStateDescriptor<number>('l'));
    const m = b.getState(new MapStateDescriptor<string, number>('m'));
    const pad = 'p'.repeat(200);
    for (let k = 0; k < 20_000; k++) {
      b.setCurrentKey(k, k % maxParallelism);
      v.update(`${k}${pad}`);
      l.add(k);
      m.put('x', k);
    }
    const expected = structuredClone(b.snapshot());
    const view = b.snapshotView();
    const spy = vi.spyOn(await fileHandleProto(), 'write');
    const writesAtRead: number[] = [];
    const probe: KeyGroupSource = {
      keyGroups: view.keyGroups,
      read: (kg) => {
        writesAtRead.push(spy.mock.calls.length);
        return view.read(kg);
      },
    };
    // The job: keeps changing every kind of state (keys in the view and new ones) while the
    // file is written, one record per turn of the event loop.
    let turns = 0;
    let done = false;
    const job = new Promise<void>((resolve) => {
      const step = () => {
        if (done) return resolve();
        const k = turns++ * 7;
        b.setCurrentKey(k, k % maxParallelism);
        v.update('changed');
        l.add(-1);
        m.delete('x');
        m.put('y', -1);
        setImmediate(step);
      };
      setImmediate(step);
    });
    try {
      const handle = await writeKeyedStateFile(dir, 'view.keyed', range, probe);
      done = true;
      await job;
      expect(handle.bytes).toBeGreaterThan(4 * WRITE_BUFFER_BYTES);
      expect(turns).toBeGreaterThan(1); // processing went on during the write
      // Key groups were read as the file was written, not all up front.
      expect(writesAtRead[0]).toBe(0);
      expect(writesAtRead.at(-1)).toBeGreaterThan(1);
      expect((await readKeyGroups(dir, handle, range)).snapshots).toEqual(expected);
      expect(b.snapshot()).not.toEqual(expected);
    } finally {
      done = true;
      spy.mockRestore();
      view.release();
    }
  });

  it('refuse key groups out of order, repeated, outside the range or not the one asked for', async () => {
    const one = (kg: number): KeyGroupSnapshot => ({
      keyGroup: kg,
      states: [{ name: 'a', entries: [['k', kg]] }],
    });
    const write = (source: KeyGroupSource) =>
      writeKeyedStateFile(dir, 'bad-source.keyed', { start: 0, end: 3 }, source);
    const read = (kg: number) => one(kg);
    await expect(write({ keyGroups: [2, 1], read })).rejects.toThrow(/ascending.*2 then 1/);
    await expect(write({ keyGroups: [1, 1], read })).rejects.toThrow(/ascending/);
    await expect(write({ keyGroups: [1, 4], read })).rejects.toThrow(/key group 4 is outside/);
    const err = await rejection(write({ keyGroups: [1, 2], read: () => one(1) }));
    expect(err.message).toMatch(/asked for key group 2, the snapshot source gave 1/);
    const empty = await write({ keyGroups: [1, 2], read: (kg) => ({ keyGroup: kg, states: [] }) });
    expect(empty.blocks).toEqual([]);
  });
});

describe("keyed state files from a backend's view, encoded in place", () => {
  /** The file of `b`'s view (in place) and of `b.snapshot()` (arrays): handles and bytes. */
  const writeBoth = async (b: HeapKeyedStateBackend, name: string) => {
    const range = b.keyGroupRange;
    const view = b.snapshotView();
    try {
      expect(typeof (view as KeyGroupSource).readMaps).toBe('function');
      const inPlace = await writeKeyedStateFile(dir, `${name}-view.keyed`, range, view);
      const arrays = await writeKeyedStateFile(dir, `${name}-arr.keyed`, range, b.snapshot());
      return {
        inPlace,
        arrays,
        inPlaceBytes: await readFile(join(dir, `${name}-view.keyed`)),
        arrayBytes: await readFile(join(dir, `${name}-arr.keyed`)),
      };
    } finally {
      view.release();
    }
  };

  it('are byte for byte the file of its snapshot, for restored (unregistered) state of any values', async () => {
    let n = 0;
    await fc.assert(
      fc.asyncProperty(keyedSubtaskState, async ({ maxParallelism, range, snapshots }) => {
        const b = new HeapKeyedStateBackend({ keyGroupRange: range, maxParallelism });
        // One kind per state name, as a backend requires.
        for (const s of snapshots) {
          const states = s.states.map((st) => ({ ...st, name: `${st.name}/${st.kind ?? '-'}` }));
          b.restoreKeyGroup({ ...s, states });
        }
        const out = await writeBoth(b, `prop-${n++}`);
        expect({ ...out.inPlace, file: '' }).toEqual({ ...out.arrays, file: '' });
        expect(out.inPlaceBytes).toEqual(out.arrayBytes);
      }),
      { numRuns: 40 },
    );
  });

  it('are byte for byte the file of its snapshot for value, list and map state, fast values or not, lazily restored or not', async () => {
    const maxParallelism = 16;
    const range = { start: 0, end: maxParallelism - 1 };
    const b = new HeapKeyedStateBackend({ keyGroupRange: range, maxParallelism });
    const v = b.getState(new ValueStateDescriptor<unknown>('v'));
    const l = b.getState(new ListStateDescriptor<unknown>('l'));
    const m = b.getState(new MapStateDescriptor<string, unknown>('m'));
    const values: unknown[] = [7, -1.5, 'é', null, true, [1, ['x']], 2 ** 40, 64];
    for (let k = 0; k < 400; k++) {
      const key = k % 50 === 0 ? BigInt(k) : k % 3 === 0 ? `k${k}` : k;
      b.setCurrentKey(key, k % maxParallelism);
      // Key group 5 also holds values the fast writer does not cover: msgpackr writes it.
      const value = k % maxParallelism === 5 && k % 7 === 0 ? { at: k } : values[k % values.length];
      v.update(value);
      l.add(value);
      l.add(k);
      m.put(`e${k % 4}`, value);
    }
    const first = await writeBoth(b, 'kinds');
    expect(first.inPlace.blocks.length).toBe(maxParallelism);
    expect(first.inPlaceBytes).toEqual(first.arrayBytes);
    expect(first.inPlace).toEqual({ ...first.arrays, file: first.inPlace.file });

    // Restored lazily: untouched key groups pass through, touched ones are encoded again.
    const lazy = new HeapKeyedStateBackend({ keyGroupRange: range, maxParallelism });
    for (const g of (await readKeyGroupsLazily(dir, first.inPlace, range)).groups) {
      lazy.restoreKeyGroupLazily(g);
    }
    const lv = lazy.getState(new ValueStateDescriptor<unknown>('v'));
    for (const k of [1, 2, 5]) {
      lazy.setCurrentKey(k, k % maxParallelism);
      lv.update(k * 1000);
    }
    const second = await writeBoth(lazy, 'lazy');
    expect(second.inPlaceBytes).toEqual(second.arrayBytes);
    expect((await readKeyGroups(dir, second.inPlace, range)).snapshots).toEqual(lazy.snapshot());
  });

  it('round-trip while the job keeps writing, and let it run between buffers', async () => {
    const maxParallelism = 64;
    const range = { start: 0, end: maxParallelism - 1 };
    const b = new HeapKeyedStateBackend({ keyGroupRange: range, maxParallelism });
    const v = b.getState(new ValueStateDescriptor<string>('v'));
    const l = b.getState(new ListStateDescriptor<number>('l'));
    const m = b.getState(new MapStateDescriptor<string, number>('m'));
    const pad = 'p'.repeat(200);
    for (let k = 0; k < 20_000; k++) {
      b.setCurrentKey(k, k % maxParallelism);
      v.update(`${k}${pad}`);
      l.add(k);
      m.put('x', k);
    }
    const expected = structuredClone(b.snapshot());
    const view = b.snapshotView();
    let turns = 0;
    let done = false;
    const job = new Promise<void>((resolve) => {
      const step = () => {
        if (done) return resolve();
        const k = turns++ * 7;
        b.setCurrentKey(k, k % maxParallelism);
        v.update('changed');
        l.add(-1);
        m.delete('x');
        m.put('y', -1);
        setImmediate(step);
      };
      setImmediate(step);
    });
    let now = 0; // 1 ms per look at the clock: pauses whatever the machine's speed
    const clock = vi.spyOn(performance, 'now').mockImplementation(() => now++);
    try {
      const handle = await writeKeyedStateFile(dir, 'view-in-place.keyed', range, view);
      clock.mockRestore();
      done = true;
      await job;
      expect(handle.bytes).toBeGreaterThan(4 * WRITE_BUFFER_BYTES);
      // One look per key group: processing went on every SLICE_MS key groups.
      expect(turns).toBeGreaterThanOrEqual(Math.floor(maxParallelism / SLICE_MS) - 1);
      expect((await readKeyGroups(dir, handle, range)).snapshots).toEqual(expected);
      expect(b.snapshot()).not.toEqual(expected);
    } finally {
      clock.mockRestore();
      done = true;
      view.release();
    }
  });

  it('encode key groups larger than a slice in slices, letting the job run inside one key group', async () => {
    const range = { start: 0, end: 2 };
    const b = new HeapKeyedStateBackend({ keyGroupRange: range, maxParallelism: 3 });
    const v = b.getState(new ValueStateDescriptor<unknown>('v'));
    const m = b.getState(new MapStateDescriptor<string, number>('m'));
    const big = 3 * SLICED_STATE_ENTRIES;
    for (let k = 0; k < big; k++) {
      // Key group 0: one large value state (~4 MiB) and a large map state, all fast values.
      b.setCurrentKey(`key-${k}`, 0);
      v.update(`${k}`.padEnd(100, '.'));
      m.put('a', k);
      m.put('b', -k);
      // Key group 1: large, and its last entry is an object: msgpackr writes the key group.
      b.setCurrentKey(k, 1);
      v.update(k === big - 1 ? { last: true } : k);
    }
    b.setCurrentKey('small', 2);
    v.update(1);
    const turnsDuring: number[] = [];
    let turns = 0;
    let done = false;
    const job = new Promise<void>((resolve) => {
      const step = () => {
        if (done) return resolve();
        turns++;
        setImmediate(step);
      };
      setImmediate(step);
    });
    const view = b.snapshotView();
    // A clock that advances 1 ms per look: the writer pauses every SLICE_MS looks, whatever
    // the machine's speed (no timing in the test).
    let now = 0;
    const clock = vi.spyOn(performance, 'now').mockImplementation(() => now++);
    const source: KeyGroupSource = {
      keyGroups: view.keyGroups,
      read: (kg) => view.read(kg),
      readMaps: (kg) => {
        turnsDuring.push(turns);
        return (view as KeyGroupSource).readMaps!(kg);
      },
    };
    try {
      const handle = await writeKeyedStateFile(dir, 'sliced.keyed', range, source);
      clock.mockRestore();
      done = true;
      await job;
      // Key group 0 is ~100 steps of the sliced encoding (2 states of 3 x 16k entries): the
      // job ran several times while it was encoded.
      expect(handle.blocks[0]!.length).toBeGreaterThan(4 * WRITE_BUFFER_BYTES);
      expect(turnsDuring[1]! - turnsDuring[0]!).toBeGreaterThanOrEqual(
        Math.floor((6 * SLICED_STATE_ENTRIES) / ENTRIES_PER_STEP / SLICE_MS) - 1,
      );
      const arrays = await writeKeyedStateFile(dir, 'sliced-arr.keyed', range, b.snapshot());
      const [a, c] = [join(dir, 'sliced.keyed'), join(dir, 'sliced-arr.keyed')];
      // Buffer.equals: toEqual compares megabytes element by element (minutes).
      expect((await readFile(a)).equals(await readFile(c))).toBe(true);
      expect(handle).toEqual({ ...arrays, file: handle.file });
    } finally {
      clock.mockRestore();
      done = true;
      view.release();
    }
  });

  it('a value that cannot be encoded fails the file with EDDY_STATE and leaves no file', async () => {
    const b = new HeapKeyedStateBackend({ keyGroupRange: { start: 0, end: 3 }, maxParallelism: 4 });
    const v = b.getState(new ValueStateDescriptor<unknown>('v'));
    for (let k = 0; k < 4; k++) {
      b.setCurrentKey(k, k);
      v.update(k === 2 ? Symbol('no') : k);
    }
    const view = b.snapshotView();
    try {
      const err = await rejection(writeKeyedStateFile(dir, 'symbol.keyed', b.keyGroupRange, view));
      expect(err.code).toBe('EDDY_STATE');
      expect(err.message).toMatch(/key group 2 \(states 'v'\)/);
      await expect(readFile(join(dir, 'symbol.keyed'))).rejects.toThrow(/ENOENT/);
    } finally {
      view.release();
    }
  });
});
