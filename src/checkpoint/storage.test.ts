import { cp, mkdir, readFile, rm, stat, symlink, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { KeyGroupSnapshot } from '../state/types.js';
import { stateBytesOf } from './chains.js';
import { flipByte, makeTempDir, removeTempDir } from './checkpoint.testkit.js';
import { type DeltaSource, writeSharedBase, writeSharedDelta } from './incremental-file.js';
import { type KeyGroupSource, readKeyGroups, writeKeyedStateFile } from './keyed-file.js';
import { readOperatorStateElements, writeOperatorStateFile } from './operator-file.js';
import {
  fileInDir,
  keyedStateFileName,
  METADATA_FILE,
  operatorStateFileName,
  sharedKeyedFileName,
} from './paths.js';
import { CheckpointStorage, resolveRestorePath } from './storage.js';
import {
  CHECKPOINT_FORMAT_VERSION,
  type CheckpointMetadata,
  type IncrementalKeyedStateHandle,
} from './types.js';
import { verifyCheckpoint } from './verify.js';

let tmp: string;
let base: string;
let storage: CheckpointStorage;

beforeEach(async () => {
  tmp = await makeTempDir();
  base = join(tmp, 'checkpoints');
  storage = new CheckpointStorage(base);
});
afterEach(() => removeTempDir(tmp));

const snapshots = (id: number) =>
  [0, 1, 2, 3].map((kg) => ({
    keyGroup: kg,
    states: [
      { name: 'count', kind: 'value' as const, entries: [[`k${kg}`, id * 100 + kg]] as const },
    ],
  }));

/** Writes the data files of checkpoint `id` into `dir` and returns its metadata. */
const writeData = async (dir: string, id: number, formatVersion = CHECKPOINT_FORMAT_VERSION) => {
  const keyed = await writeKeyedStateFile(
    dir,
    keyedStateFileName('counter', 0),
    { start: 0, end: 3 },
    snapshots(id),
  );
  const operatorState = await writeOperatorStateFile(dir, operatorStateFileName('source', 0), {
    states: [{ name: 'offsets', mode: 'split', elements: [id, id + 1] }],
  });
  const metadata: CheckpointMetadata = {
    formatVersion,
    jobName: 'job',
    jobId: 'job-1',
    checkpointId: id,
    savepoint: false,
    timestamp: 1000 + id,
    operators: [
      {
        uid: 'counter',
        name: 'count',
        parallelism: 1,
        maxParallelism: 4,
        subtasks: [{ index: 0, keyed }],
      },
      {
        uid: 'source',
        name: 'src',
        parallelism: 1,
        maxParallelism: 4,
        subtasks: [{ index: 0, operatorState }],
      },
    ],
  };
  return metadata;
};

const completeCheckpoint = async (id: number) => {
  const dir = await storage.createCheckpointDir(id);
  await storage.commit(dir, await writeData(dir, id));
  return dir;
};

const keyedPath = (dir: string) => join(dir, keyedStateFileName('counter', 0));

const rejection = async (p: Promise<unknown>) => {
  try {
    await p;
  } catch (e) {
    return e as { code: string; message: string };
  }
  throw new Error('expected a rejection');
};

describe('CheckpointStorage layout', () => {
  it('builds checkpoint and savepoint paths', () => {
    expect(storage.checkpointDir(12)).toBe(join(base, 'chk-12'));
    const at = new Date(Date.UTC(2026, 0, 2, 3, 4, 5));
    expect(storage.savepointDir('/sp', 'my job', 7, at)).toBe(
      '/sp/savepoint-my%0020job-7-20260102T030405',
    );
  });
});

describe('CheckpointStorage completion', () => {
  it('a checkpoint is complete only after commit', async () => {
    await completeCheckpoint(1);
    const dir = await storage.createCheckpointDir(2);
    const metadata = await writeData(dir, 2);
    expect(await storage.listCompleted()).toEqual([1]);
    // A crash between writing _metadata.tmp and the rename leaves no _metadata.
    await writeFile(join(dir, '_metadata.tmp'), 'partial');
    expect(await storage.listCompleted()).toEqual([1]);
    expect((await storage.latestValid())?.dir).toBe(storage.checkpointDir(1));
    await storage.commit(dir, metadata);
    expect(await storage.listCompleted()).toEqual([2, 1]);
    const latest = await storage.latestValid({ verifyData: true });
    expect(latest?.dir).toBe(dir);
    expect(latest?.metadata).toEqual(JSON.parse(JSON.stringify(metadata)));
    expect(latest?.skipped).toEqual([]);
  });

  it('lists completed checkpoints newest first, by number', async () => {
    for (const id of [9, 10, 2]) await completeCheckpoint(id);
    await mkdir(join(base, 'chk-11'));
    await mkdir(join(base, 'other'));
    expect(await storage.listCompleted()).toEqual([10, 9, 2]);
    expect(await new CheckpointStorage(join(tmp, 'nothing')).listCompleted()).toEqual([]);
    expect(await new CheckpointStorage(join(tmp, 'nothing')).latestValid()).toBeUndefined();
  });

  it('clears a leftover incomplete directory but never overwrites a complete one', async () => {
    const dir = await completeCheckpoint(1);
    const err = await rejection(storage.createCheckpointDir(1));
    expect(err.code).toBe('EDDY_CHECKPOINT_IO');
    expect(err.message).toMatch(/already exists and is complete/);
    expect((await storage.latestValid({ verifyData: true }))?.dir).toBe(dir);
    const stale = await storage.createCheckpointDir(2);
    await writeFile(join(stale, 'junk'), 'x');
    await storage.createCheckpointDir(2);
    await expect(readFile(join(stale, 'junk'))).rejects.toThrow();
  });

  it('abort removes an incomplete checkpoint and refuses foreign directories', async () => {
    const dir = await storage.createCheckpointDir(3);
    await writeData(dir, 3);
    await storage.abort(dir);
    await expect(readFile(keyedPath(dir))).rejects.toThrow();
    const mine = join(tmp, 'my-data');
    await mkdir(mine);
    await writeFile(join(mine, 'keep'), 'x');
    await storage.abort(mine);
    expect(await readFile(join(mine, 'keep'), 'utf8')).toBe('x');
  });
});

describe('CheckpointStorage.latestValid', () => {
  it('falls back past a checkpoint with a flipped data byte (verifyData) and says why', async () => {
    const good = await completeCheckpoint(1);
    const bad = await completeCheckpoint(2);
    const path = keyedPath(bad);
    await writeFile(path, flipByte(await readFile(path), 3));
    expect((await storage.latestValid())?.dir).toBe(bad); // sizes still match
    const latest = await storage.latestValid({ verifyData: true });
    expect(latest?.dir).toBe(good);
    expect(latest?.skipped).toHaveLength(1);
    expect(latest?.skipped[0]?.dir).toBe(bad);
    expect(latest?.skipped[0]?.reason).toContain(path);
    expect(latest?.skipped[0]?.reason).toMatch(/key group 0 .*CRC-32/);
    expect(latest?.skipped[0]?.error.code).toBe('EDDY_CHECKPOINT_CORRUPT');
  });

  it('falls back past truncated and missing data files and corrupt metadata', async () => {
    const good = await completeCheckpoint(1);
    const truncated = await completeCheckpoint(2);
    const missing = await completeCheckpoint(3);
    const corrupt = await completeCheckpoint(4);
    await truncate(keyedPath(truncated), 5);
    await rm(keyedPath(missing));
    const meta = join(corrupt, METADATA_FILE);
    await writeFile(meta, flipByte(await readFile(meta), 40));
    const latest = await storage.latestValid();
    expect(latest?.dir).toBe(good);
    expect(latest?.skipped.map((s) => s.dir)).toEqual([corrupt, missing, truncated]);
    const [c, m, t] = latest!.skipped;
    expect(c?.reason).toContain(meta);
    expect(c?.reason).toMatch(/CRC-32 mismatch/);
    expect(m?.reason).toContain(keyedPath(missing));
    expect(m?.reason).toMatch(/is missing/);
    expect(t?.reason).toContain(keyedPath(truncated));
    expect(t?.reason).toMatch(/truncated: it has 5 bytes/);
  });

  it('skips a checkpoint of another format version with the incompatibility message', async () => {
    const good = await completeCheckpoint(1);
    const dir = await storage.createCheckpointDir(2);
    await storage.commit(dir, await writeData(dir, 2, 3));
    const err = await rejection(storage.loadMetadata(dir));
    expect(err.code).toBe('EDDY_CHECKPOINT_INCOMPATIBLE');
    expect(err.message).toMatch(
      /has format version 3; this eddy reads versions 1 and 2: restore it with the eddy/,
    );
    const latest = await storage.latestValid();
    expect(latest?.dir).toBe(good);
    expect(latest?.skipped[0]?.error.code).toBe('EDDY_CHECKPOINT_INCOMPATIBLE');
  });

  it('restores checkpoints of format version 1 (no incremental handles)', async () => {
    await completeCheckpoint(1);
    const dir = await storage.createCheckpointDir(2);
    await storage.commit(dir, await writeData(dir, 2, 1));
    const latest = await storage.latestValid({ verifyData: true });
    expect(latest?.dir).toBe(dir);
    expect(latest?.metadata.formatVersion).toBe(1);
  });
});

describe('CheckpointStorage.retain', () => {
  it('keeps the newest n and deletes stale incomplete directories older than the newest', async () => {
    for (const id of [1, 2, 3, 4, 5]) await completeCheckpoint(id);
    await storage.createCheckpointDir(0); // crashed long ago: incomplete and older
    await storage.createCheckpointDir(6); // maybe in progress: newer than every complete one
    const deleted = await storage.retain(3);
    expect(deleted.sort()).toEqual([0, 1, 2].map((id) => storage.checkpointDir(id)).sort());
    expect(await storage.listCompleted()).toEqual([5, 4, 3]);
    expect((await stat(storage.checkpointDir(6))).isDirectory()).toBe(true);
    expect(await storage.retain()).toEqual([]);
  });

  it('never deletes the newest valid checkpoint, even beyond n', async () => {
    for (const id of [1, 2, 3]) await completeCheckpoint(id);
    await rm(keyedPath(storage.checkpointDir(3)));
    await rm(keyedPath(storage.checkpointDir(2)));
    await storage.retain(1);
    expect(await storage.listCompleted()).toEqual([3, 1]);
    expect((await storage.latestValid())?.dir).toBe(storage.checkpointDir(1));
  });

  it('never deletes the latest completed checkpoint, even when it fails validation', async () => {
    for (const id of [1, 2, 3]) await completeCheckpoint(id);
    await rm(keyedPath(storage.checkpointDir(3)));
    await storage.retain(1);
    // 3 is the latest completed (kept though invalid), 2 the newest valid (kept beyond n).
    expect(await storage.listCompleted()).toEqual([3, 2]);
    const meta = join(storage.checkpointDir(3), METADATA_FILE);
    await writeFile(meta, flipByte(await readFile(meta), 40));
    await storage.retain(1);
    expect(await storage.listCompleted()).toEqual([3, 2]);
  });

  it('leaves a newer checkpoint that is committing out: it neither dies nor counts', async () => {
    for (const id of [1, 2, 3]) await completeCheckpoint(id);
    // Checkpoint 4 commits while retention for 3 runs: its _metadata is already there.
    await completeCheckpoint(4);
    await storage.createCheckpointDir(5); // pending
    const deleted = await storage.retain(1, { inflightFrom: 4 });
    expect(deleted.sort()).toEqual([1, 2].map((id) => storage.checkpointDir(id)).sort());
    // 3 stays: had 4 counted, retain(1) would have deleted it, and if 4's commit then turned
    // out to have failed, no completed checkpoint would be left.
    expect(await storage.listCompleted()).toEqual([4, 3]);
    expect((await stat(storage.checkpointDir(5))).isDirectory()).toBe(true);
  });

  it('never deletes a directory whose id is >= inflightFrom, complete or not', async () => {
    await completeCheckpoint(1);
    await storage.createCheckpointDir(2); // in flight
    await completeCheckpoint(3);
    await storage.createCheckpointDir(4);
    const deleted = await storage.retain(1, { inflightFrom: 2 });
    expect(deleted).toEqual([]);
    expect(await storage.listCompleted()).toEqual([3, 1]);
    for (const id of [2, 4])
      expect((await stat(storage.checkpointDir(id))).isDirectory()).toBe(true);
    // Without the bound, 2 is stale (older than 3, incomplete) and 1 is beyond n.
    expect((await storage.retain(1)).sort()).toEqual(
      [1, 2].map((id) => storage.checkpointDir(id)).sort(),
    );
  });

  it('keeps the latest completed and the newest valid below inflightFrom, for any layout', async () => {
    type Kind = 'complete' | 'corrupt' | 'incomplete';
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.constantFrom<Kind>('complete', 'corrupt', 'incomplete'), {
          minLength: 1,
          maxLength: 6,
        }),
        fc.integer({ min: 1, max: 3 }),
        fc.integer({ min: 1, max: 8 }),
        async (kinds, n, inflightFrom) => {
          await rm(base, { recursive: true, force: true });
          for (const [i, kind] of kinds.entries()) {
            const id = i + 1;
            if (kind === 'incomplete') await storage.createCheckpointDir(id);
            else await completeCheckpoint(id);
            if (kind === 'corrupt') await rm(keyedPath(storage.checkpointDir(id)));
          }
          const ids = kinds.map((_, i) => i + 1);
          const scope = ids.filter((id) => id < inflightFrom);
          const complete = scope.filter((id) => kinds[id - 1] !== 'incomplete').reverse();
          const valid = scope.filter((id) => kinds[id - 1] === 'complete').reverse();
          await storage.retain(n, { inflightFrom });
          const exists = async (id: number) =>
            stat(storage.checkpointDir(id)).then(
              () => true,
              () => false,
            );
          for (const id of ids.filter((x) => x >= inflightFrom))
            expect(await exists(id)).toBe(true);
          for (const id of complete.slice(0, n)) expect(await exists(id)).toBe(true);
          if (valid[0] !== undefined) expect(await exists(valid[0])).toBe(true);
          for (const id of complete.slice(n)) expect(await exists(id)).toBe(id === valid[0]);
        },
      ),
      { numRuns: 40 },
    );
  });

  it('rejects a retain count below 1', async () => {
    await expect(storage.retain(0)).rejects.toThrow(/integer >= 1/);
  });
});

describe('CheckpointStorage failures leave the previous checkpoint valid', () => {
  it('an uncreatable checkpoint directory fails with EDDY_CHECKPOINT_IO naming it', async () => {
    const file = join(tmp, 'a-file');
    await writeFile(file, 'not a directory');
    const blocked = new CheckpointStorage(join(file, 'sub'));
    const err = await rejection(blocked.createCheckpointDir(1));
    expect(err.code).toBe('EDDY_CHECKPOINT_IO');
    expect(err.message).toContain(join(file, 'sub', 'chk-1'));
    expect(err.message).toMatch(/ENOTDIR|EEXIST/);
  });

  it('a full disk while writing data fails that checkpoint only', async () => {
    const good = await completeCheckpoint(1);
    const dir = await storage.createCheckpointDir(2);
    // /dev/full fails every write with ENOSPC, for root too.
    await symlink('/dev/full', keyedPath(dir));
    const err = await rejection(writeData(dir, 2));
    expect(err.code).toBe('EDDY_CHECKPOINT_IO');
    expect(err.message).toContain(keyedPath(dir));
    expect(err.message).toMatch(/ENOSPC \(no space left on device\)/);
    await storage.abort(dir);
    expect(await storage.listCompleted()).toEqual([1]);
    expect((await storage.latestValid({ verifyData: true }))?.dir).toBe(good);
  });

  it('a full disk while committing leaves the checkpoint incomplete', async () => {
    const good = await completeCheckpoint(1);
    const dir = await storage.createCheckpointDir(2);
    const metadata = await writeData(dir, 2);
    await symlink('/dev/full', join(dir, '_metadata.tmp'));
    const err = await rejection(storage.commit(dir, metadata));
    expect(err.code).toBe('EDDY_CHECKPOINT_IO');
    expect(err.message).toMatch(/_metadata\.tmp: ENOSPC/);
    expect(await storage.listCompleted()).toEqual([1]);
    expect((await storage.latestValid({ verifyData: true }))?.dir).toBe(good);
  });
});

describe('savepoints', () => {
  it('are self-contained and relocatable', async () => {
    const target = join(tmp, 'savepoints');
    const dir = storage.savepointDir(target, 'job', 4, new Date(0));
    await storage.createDir(dir);
    await storage.commit(dir, { ...(await writeData(dir, 4)), savepoint: true });
    const moved = join(tmp, 'elsewhere', 'sp');
    await cp(dir, moved, { recursive: true });
    await rm(target, { recursive: true });
    expect(await resolveRestorePath(join(moved, METADATA_FILE))).toBe(moved);
    expect(await resolveRestorePath(moved)).toBe(moved);
    const m = await storage.loadMetadata(moved);
    expect(m.savepoint).toBe(true);
    const keyed = m.operators[0]!.subtasks[0]!.keyed!;
    expect((await readKeyGroups(moved, keyed, { start: 1, end: 2 })).snapshots).toEqual(
      snapshots(4).slice(1, 3),
    );
    const op = m.operators[1]!.subtasks[0]!.operatorState!;
    expect((await readOperatorStateElements(moved, op)).states[0]!.elements).toEqual([4, 5]);
    expect(await verifyCheckpoint(moved)).toEqual({
      files: 2,
      blocks: 6,
      bytes: keyed.bytes + op.bytes,
    });
  });

  it('resolveRestorePath explains what is wrong with a path', async () => {
    await completeCheckpoint(1);
    await expect(resolveRestorePath(join(tmp, 'nope'))).rejects.toThrow(/does not exist/);
    await expect(resolveRestorePath(base)).rejects.toThrow(/checkpoint base directory.*chk-1/);
    await expect(resolveRestorePath(keyedPath(storage.checkpointDir(1)))).rejects.toThrow(
      /is a file/,
    );
    await storage.createCheckpointDir(2);
    await expect(resolveRestorePath(storage.checkpointDir(2))).rejects.toThrow(/never completed/);
  });
});

describe('incremental checkpoints', () => {
  const range = { start: 0, end: 3 };
  const sourceOf = (snaps: readonly KeyGroupSnapshot[]): KeyGroupSource => ({
    keyGroups: snaps.map((x) => x.keyGroup),
    read: (kg) => snaps.find((x) => x.keyGroup === kg)!,
  });
  /** Key group 1: `k1` deleted, `k1b` written; nothing else changes. */
  const change: DeltaSource = {
    keyGroups: [1],
    readDelta: (keyGroup) => ({
      keyGroup,
      states: [{ name: 'count', kind: 'value', entries: [['k1b', 7]], deleted: ['k1'] }],
    }),
    liveEntries: () => 1,
  };
  const afterChange = () =>
    snapshots(1).map((x) =>
      x.keyGroup === 1
        ? { ...x, states: [{ ...x.states[0]!, entries: [['k1b', 7]] as const }] }
        : x,
    );
  const metadataOf = (id: number, keyed: IncrementalKeyedStateHandle): CheckpointMetadata => ({
    formatVersion: CHECKPOINT_FORMAT_VERSION,
    jobName: 'job',
    jobId: 'job-1',
    checkpointId: id,
    savepoint: false,
    timestamp: id,
    operators: [
      {
        uid: 'counter',
        name: 'count',
        parallelism: 1,
        maxParallelism: 4,
        subtasks: [{ index: 0, keyed }],
      },
    ],
  });
  const sharedPathOf = (ref: string) => fileInDir(storage.checkpointDir(0), ref);

  /** Checkpoint `id` with every key group as a base block in a shared file. */
  const completeBase = async (id: number) => {
    const dir = await storage.createCheckpointDir(id);
    const name = sharedKeyedFileName('counter', 0, id);
    const keyed = await writeSharedBase(dir, name, range, sourceOf(snapshots(1)));
    await storage.commit(dir, metadataOf(id, keyed));
    return keyed;
  };

  /** Checkpoint `id`: {@link change} on top of `previous`, other chains reused. */
  const completeDelta = async (id: number, previous: IncrementalKeyedStateHandle) => {
    const dir = await storage.createCheckpointDir(id);
    const name = sharedKeyedFileName('counter', 0, id);
    const keyed = await writeSharedDelta(dir, name, range, previous, change);
    await storage.commit(dir, metadataOf(id, keyed));
    return keyed;
  };

  it('verifies and reads chains spanning files of older checkpoints, also after retain', async () => {
    const first = await completeBase(1);
    const second = await completeDelta(2, first);
    expect(second.files).toContain(first.files[0]);
    const dir = storage.checkpointDir(2);
    const blocks = second.chains.reduce((n, c) => n + c.blocks.length, 0);
    const report = { files: second.files.length, blocks, bytes: stateBytesOf(second) };
    expect(await verifyCheckpoint(dir)).toEqual(report);
    expect((await readKeyGroups(dir, second, range)).snapshots).toEqual(afterChange());
    // Checkpoint 1's directory goes; the file it wrote stays, as checkpoint 2 uses it.
    expect(await storage.retain(1)).toEqual([storage.checkpointDir(1)]);
    expect((await stat(sharedPathOf(first.files[0]!))).isFile()).toBe(true);
    const latest = await storage.latestValid({ verifyData: true });
    expect(latest?.dir).toBe(dir);
    expect(latest?.skipped).toEqual([]);
    expect(await verifyCheckpoint(dir)).toEqual(report);
  });

  it('falls back past missing and truncated shared files, naming them', async () => {
    const good = await completeCheckpoint(1); // a full checkpoint
    const base = await completeBase(2);
    const delta = await completeDelta(3, base);
    const own = delta.files.find((f) => !base.files.includes(f))!;
    await truncate(sharedPathOf(own), 1);
    let latest = await storage.latestValid();
    expect(latest?.dir).toBe(storage.checkpointDir(2));
    expect(latest?.skipped[0]?.reason).toContain(sharedPathOf(own));
    expect(latest?.skipped[0]?.reason).toMatch(
      /truncated: it has 1 bytes, the blocks the metadata references reach byte \d+/,
    );
    await rm(sharedPathOf(base.files[0]!));
    latest = await storage.latestValid();
    expect(latest?.dir).toBe(good);
    expect(latest?.skipped.map((x) => x.dir)).toEqual(
      [3, 2].map((id) => storage.checkpointDir(id)),
    );
    const missing = latest!.skipped[1]!;
    expect(missing.error.code).toBe('EDDY_CHECKPOINT_CORRUPT');
    expect(missing.reason).toBe(
      `checkpoint ${storage.checkpointDir(2)} refers to shared file ${sharedPathOf(base.files[0]!)}, which is missing (deleted by hand, or the checkpoint was copied without the blocks/ directory beside it)`,
    );
  });

  it('verifyData falls back past a flipped byte in a block an older checkpoint wrote', async () => {
    const good = await completeCheckpoint(1);
    const base = await completeBase(2);
    await completeDelta(3, base);
    const path = sharedPathOf(base.files[0]!);
    const kg0 = base.chains[0]!.blocks[0]!;
    await writeFile(path, flipByte(await readFile(path), kg0.offset + 2));
    expect((await storage.latestValid())?.dir).toBe(storage.checkpointDir(3)); // sizes match
    const latest = await storage.latestValid({ verifyData: true });
    expect(latest?.dir).toBe(good);
    for (const skipped of latest!.skipped) {
      expect(skipped.reason).toContain(path);
      expect(skipped.reason).toMatch(/key group 0 .*CRC-32/);
    }
  });
});
