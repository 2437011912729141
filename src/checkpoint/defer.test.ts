/**
 * Restores with reads deferred to first use (keyed-file.ts deferKeyGroups): nothing is read
 * up front; each key group's load() reads its chain (CRC-checked) and gives the same state as
 * an eager read; a missing or damaged shared file fails that key group's load, naming the file
 * and the key group.
 */
import { open, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EddyError } from '../core/errors.js';
import { ValueStateDescriptor } from '../state/descriptors.js';
import { HeapKeyedStateBackend } from '../state/heap-keyed-backend.js';
import type { ValueState } from '../state/types.js';
import { chainBytes } from './chains.js';
import { makeTempDir, removeTempDir } from './checkpoint.testkit.js';
import { sharedDirOf, writeSharedBase, writeSharedDelta } from './incremental-file.js';
import { deferKeyGroups, readKeyGroups } from './keyed-file.js';
import { sharedFileName, sharedKeyedFileName } from './paths.js';
import type { IncrementalKeyedStateHandle } from './types.js';

const MAX_PAR = 8;
const RANGE = { start: 0, end: MAX_PAR - 1 };
const kgOf = (i: number) => i % MAX_PAR;

let root: string;
let dir: string;
let handle: IncrementalKeyedStateHandle;

/** A base, then a delta that updates, adds and deletes: chains of two blocks. */
beforeAll(async () => {
  root = await makeTempDir('eddy-defer-');
  dir = join(root, 'chk-2');
  const backend = new HeapKeyedStateBackend({
    keyGroupRange: RANGE,
    maxParallelism: MAX_PAR,
    trackChanges: true,
  });
  const v = backend.getState(new ValueStateDescriptor<number>('v')) as ValueState<number>;
  const set = (i: number, value: number | undefined) => {
    backend.setCurrentKey(`k${i}`, kgOf(i));
    if (value === undefined) v.clear();
    else v.update(value);
  };
  for (let i = 0; i < 200; i++) set(i, i);
  const view = backend.snapshotView();
  const base = await writeSharedBase(
    join(root, 'chk-1'),
    sharedKeyedFileName('op', 0, 1),
    RANGE,
    view,
  );
  view.release();
  backend.forgetChanges();
  for (let i = 0; i < 200; i += 3) set(i, i * 10);
  for (let i = 1; i < 200; i += 7) set(i, undefined);
  for (let i = 200; i < 220; i++) set(i, i);
  const delta = backend.deltaView()!;
  handle = await writeSharedDelta(dir, sharedKeyedFileName('op', 0, 2), RANGE, base, delta);
  delta.complete();
  delta.release();
  expect(handle.chains.every((c) => c.blocks.length === 2)).toBe(true);
});
afterAll(() => removeTempDir(root));

describe('deferKeyGroups', () => {
  it('reads nothing up front, and each load gives what an eager read gives', async () => {
    const { groups, bytesDeferred } = deferKeyGroups(dir, handle, RANGE);
    expect(bytesDeferred).toBe(handle.chains.reduce((n, c) => n + chainBytes(c), 0));
    const eager = await readKeyGroups(dir, handle, RANGE);
    expect(groups.map((g) => g.load())).toEqual(eager.snapshots);
    // A backend applying the chains block by block ends with the same state.
    const restored = new HeapKeyedStateBackend({ keyGroupRange: RANGE, maxParallelism: MAX_PAR });
    for (const g of groups) restored.restoreKeyGroupLazily(g);
    expect(restored.pendingKeyGroups).toBe(groups.length);
    const byKey = (s: ReturnType<typeof restored.snapshot>) =>
      s
        .flatMap((k) => k.states.flatMap((st) => st.entries.map(([key, val]) => `${key}=${val}`)))
        .sort();
    expect(byKey(restored.snapshot())).toEqual(byKey(eager.snapshots));
  });

  it('only the key groups of a sub-range', () => {
    const { groups } = deferKeyGroups(dir, handle, { start: 2, end: 4 });
    expect(groups.map((g) => g.keyGroup)).toEqual([2, 3, 4]);
  });

  it('a damaged block fails the load of its key group, naming the file and key group', async () => {
    const chain = handle.chains[3]!;
    const block = chain.blocks[1]!;
    const file = join(sharedDirOf(dir), sharedFileName(handle.files[block.file]!));
    const fh = await open(file, 'r+');
    const one = Buffer.alloc(1);
    await fh.read(one, 0, 1, block.offset);
    one[0] = one[0]! ^ 0xff;
    await fh.write(one, 0, 1, block.offset);
    await fh.close();
    const { groups } = deferKeyGroups(dir, handle, RANGE);
    const err = (() => {
      try {
        groups[3]!.load();
      } catch (e) {
        return e as EddyError;
      }
    })();
    expect(err?.code).toBe('EDDY_CHECKPOINT_CORRUPT');
    expect(err?.message).toContain(file);
    expect(err?.message).toContain(`key group ${chain.keyGroup} (block 2 of its chain)`);
    expect(() => groups[2]!.load()).not.toThrow();
  });

  it('a missing shared file fails the load, naming it', async () => {
    const block = handle.chains[0]!.blocks[0]!;
    const file = join(sharedDirOf(dir), sharedFileName(handle.files[block.file]!));
    await unlink(file);
    const { groups } = deferKeyGroups(dir, handle, RANGE);
    expect(() => groups[0]!.loadChain!()).toThrow(EddyError);
    expect(() => groups[0]!.load()).toThrow(/is missing/);
  });
});
