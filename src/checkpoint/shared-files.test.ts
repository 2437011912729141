import { mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { flipByte, makeTempDir, removeTempDir } from './checkpoint.testkit.js';
import { encodeMetadata } from './metadata.js';
import {
  METADATA_FILE,
  parseSharedFileCheckpointId,
  SHARED_DIR,
  sharedFileRef,
  sharedKeyedFileName,
} from './paths.js';
import { collectSharedFiles, sharedFilesOf } from './shared-files.js';
import { CheckpointStorage } from './storage.js';
import { CHECKPOINT_FORMAT_VERSION, type CheckpointMetadata } from './types.js';

let tmp: string;
let base: string;
let storage: CheckpointStorage;

beforeEach(async () => {
  tmp = await makeTempDir('eddy-shared-');
  base = join(tmp, 'checkpoints');
  storage = new CheckpointStorage(base);
});
afterEach(() => removeTempDir(tmp));

const FILE_BYTES = 8;
const sharedPath = (name: string) => join(base, SHARED_DIR, name);

/** Writes a shared file of checkpoint `id` (content is not a block: GC never reads it). */
const writeShared = async (id: number, subtask = 0): Promise<string> => {
  const name = sharedKeyedFileName('op', subtask, id);
  await mkdir(join(base, SHARED_DIR), { recursive: true });
  await writeFile(sharedPath(name), Buffer.alloc(FILE_BYTES, id));
  return name;
};

/** Metadata whose one incremental handle refers to `names`, one key group per file. */
const metadataOf = (id: number, names: readonly string[]): CheckpointMetadata => ({
  formatVersion: CHECKPOINT_FORMAT_VERSION,
  jobName: 'job',
  jobId: 'job-1',
  checkpointId: id,
  savepoint: false,
  timestamp: id,
  operators: [
    {
      uid: 'op',
      name: 'op',
      parallelism: 1,
      maxParallelism: 128,
      subtasks: [
        {
          index: 0,
          keyed: {
            type: 'incremental',
            keyGroupRange: [0, 127],
            files: names.map(sharedFileRef),
            chains: names.map((_, i) => ({
              keyGroup: i,
              entries: 1,
              blocks: [{ file: i, offset: 0, length: FILE_BYTES, crc32: 0, records: 1 }],
            })),
            bytes: FILE_BYTES,
          },
        },
      ],
    },
  ],
});

/** Completes checkpoint `id` referring to `reused` shared files and a new one of its own. */
const complete = async (id: number, reused: readonly string[] = []) => {
  const own = await writeShared(id);
  const dir = await storage.createCheckpointDir(id);
  await storage.commit(dir, metadataOf(id, [...reused, own]));
  return own;
};

const exists = (path: string) =>
  stat(path).then(
    () => true,
    () => false,
  );

const sharedNames = async () => (await readdir(join(base, SHARED_DIR))).sort();

describe('collectSharedFiles', () => {
  it('has nothing to do without a shared directory or a base directory', async () => {
    expect(await collectSharedFiles(join(tmp, 'nothing'))).toEqual({ deleted: [], kept: 0 });
    await mkdir(base);
    expect(await collectSharedFiles(base)).toEqual({ deleted: [], kept: 0 });
  });

  it('keeps orphans above the latest completed id until a later checkpoint completes', async () => {
    const f1 = await complete(1);
    // Crash of checkpoint 2 after its shared files, before _metadata; 3 is still pending.
    const crashed = await writeShared(2);
    await storage.createCheckpointDir(2);
    const pending = await writeShared(3, 1);
    expect(await storage.retain(3)).toEqual([]);
    expect(await sharedNames()).toEqual([f1, crashed, pending].sort());
    // 4 completes, reusing 1's file: 2's crash leftovers (dir and file) go; 3's file too, as
    // its id is now below a completed one (the job master passes inflightFrom to protect a
    // checkpoint still in flight, see the inflightFrom test).
    const f4 = await complete(4, [f1]);
    const deleted = await storage.retain(3);
    expect(deleted).toEqual([
      storage.checkpointDir(2),
      ...[crashed, pending].map(sharedPath).sort(),
    ]);
    expect(await sharedNames()).toEqual([f1, f4].sort());
  });

  it('collects the files of a checkpoint deleted by a retention that crashed before collecting', async () => {
    const f1 = await complete(1);
    const f2 = await complete(2);
    // A retention deleted chk-1 and stopped before collecting shared files.
    await rm(storage.checkpointDir(1), { recursive: true });
    expect(await sharedNames()).toEqual([f1, f2].sort());
    expect(await storage.retain(3)).toEqual([sharedPath(f1)]);
    expect(await sharedNames()).toEqual([f2]);
  });

  it('never deletes a file a retained checkpoint refers to, whoever wrote it', async () => {
    const f1 = await complete(1);
    const f2 = await complete(2, [f1]);
    const f3 = await complete(3, [f1]);
    const deleted = await storage.retain(1);
    expect(deleted).toEqual([storage.checkpointDir(2), storage.checkpointDir(1), sharedPath(f2)]);
    expect(await sharedNames()).toEqual([f1, f3].sort());
    const latest = await storage.latestValid();
    expect(latest?.dir).toBe(storage.checkpointDir(3));
    expect(latest?.skipped).toEqual([]);
  });

  it('never deletes files of ids from inflightFrom up', async () => {
    const f1 = await complete(1);
    const f2 = await complete(2); // committed while retention for 1 runs
    const otherAttempt = await writeShared(2, 1); // unreferenced, id 2
    const stale = await writeShared(1, 1); // unreferenced, id 1
    const result = await collectSharedFiles(base, { inflightFrom: 2 });
    expect(result).toEqual({ deleted: [sharedPath(stale)], kept: 3 });
    expect(await sharedNames()).toEqual([f1, f2, otherAttempt].sort());
    expect(await storage.retain(1, { inflightFrom: 2 })).toEqual([]);
    expect(await sharedNames()).toEqual([f1, f2, otherAttempt].sort());
    expect(await storage.retain(1, { inflightFrom: 3 })).toEqual([
      storage.checkpointDir(1),
      ...[f1, otherAttempt].map(sharedPath).sort(),
    ]);
    expect(await sharedNames()).toEqual([f2]);
  });

  it('deletes nothing while a completed checkpoint cannot be read, and says why', async () => {
    const f1 = await complete(1);
    const f2 = await complete(2);
    const orphan = await writeShared(1, 1);
    const meta = join(storage.checkpointDir(1), METADATA_FILE);
    await writeFile(meta, flipByte(await readFile(meta), 40));
    const result = await collectSharedFiles(base);
    expect(result.deleted).toEqual([]);
    expect(result.kept).toBe(3);
    expect(result.reason).toContain(meta);
    expect(result.reason).toMatch(/kept every shared file: cannot read the metadata .*CRC-32/);
    // A format this eddy cannot read counts the same (it may refer to anything).
    await writeFile(meta, encodeMetadata({ ...metadataOf(1, [f1]), formatVersion: 99 }));
    expect((await collectSharedFiles(base)).reason).toMatch(/format version 99/);
    expect(await sharedNames()).toEqual([f1, f2, orphan].sort());
    // Retention removes the unreadable checkpoint (beyond n, not the newest valid); then the
    // files only it could have referred to go.
    expect(await storage.retain(1)).toEqual([
      storage.checkpointDir(1),
      ...[f1, orphan].map(sharedPath).sort(),
    ]);
    expect(await sharedNames()).toEqual([f2]);
  });

  it('leaves names that are not shared file names alone', async () => {
    const f1 = await complete(1);
    await complete(2);
    await rm(storage.checkpointDir(1), { recursive: true }); // f1 is now collectable
    const others = [
      'notes.txt',
      'op-0-1-xyz.keyed',
      `${f1}.tmp`,
      'op-0-1-0BADF00D.keyed',
      'op-0-1.keyed',
    ];
    for (const name of others) await writeFile(sharedPath(name), 'x');
    // A directory with a shared file's name is not a file: left alone too.
    const dirNamed = sharedKeyedFileName('op', 3, 1);
    await mkdir(sharedPath(dirNamed));
    const result = await collectSharedFiles(base);
    expect(result.reason).toBeUndefined();
    expect(result.deleted).toEqual([sharedPath(f1)]);
    expect(result.kept).toBe(others.length + 1);
    for (const name of [...others, dirNamed]) expect(await exists(sharedPath(name))).toBe(true);
  });

  it('leaves savepoint storage alone', async () => {
    await complete(1);
    const orphan = await writeShared(0);
    const savepoints = new CheckpointStorage(base, { savepoints: true });
    expect(await savepoints.retain(1)).toEqual([]);
    expect(await exists(sharedPath(orphan))).toBe(true);
  });

  it('lists the shared files a checkpoint refers to', () => {
    const m = metadataOf(3, ['a-0-1-00000000.keyed', 'a-0-3-00000001.keyed']);
    expect([...sharedFilesOf(m)]).toEqual(['a-0-1-00000000.keyed', 'a-0-3-00000001.keyed']);
  });
});

type Step =
  | {
      readonly kind: 'checkpoint';
      readonly reuse: number;
      readonly outcome: Outcome;
      /** After a crash, the restarted job tries the crashed checkpoint's id again. */
      readonly retry: boolean;
    }
  | { readonly kind: 'retain'; readonly n: number; readonly inflight: number | undefined };
type Outcome = 'complete' | 'abort' | 'crash';

const step: fc.Arbitrary<Step> = fc.oneof(
  fc.record({
    kind: fc.constant('checkpoint' as const),
    reuse: fc.nat(),
    outcome: fc.constantFrom<Outcome>('complete', 'complete', 'abort', 'crash'),
    retry: fc.boolean(),
  }),
  fc.record({
    kind: fc.constant('retain' as const),
    n: fc.integer({ min: 1, max: 3 }),
    inflight: fc.option(fc.nat(), { nil: undefined }),
  }),
);

describe('collectSharedFiles through retain, for any history', () => {
  it('keeps every file a retained checkpoint refers to and nothing collectable', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 12 }), async (steps) => {
        await rm(base, { recursive: true, force: true });
        await mkdir(join(base, SHARED_DIR), { recursive: true });
        let nextId = 1;
        let crashed: number | undefined;
        const refsOf = new Map<number, readonly string[]>(); // the model: what each refers to
        for (const s of steps) {
          if (s.kind === 'checkpoint') {
            const id = s.retry && crashed !== undefined ? crashed : nextId++;
            crashed = s.outcome === 'crash' ? id : undefined;
            // Reuse a subset (picked by the bits of `reuse`) of the files on disk.
            const live = await sharedNames();
            const reused = live.filter((_, i) => ((s.reuse >>> (i % 30)) & 1) === 1);
            const own = [await writeShared(id), await writeShared(id, 1)];
            const names = [...reused, ...own];
            const dir = await storage.createCheckpointDir(id);
            if (s.outcome === 'complete') {
              await storage.commit(dir, metadataOf(id, names));
              refsOf.set(id, names);
            }
            if (s.outcome === 'abort') await storage.abort(dir);
            continue;
          }
          // Any bound from 1 to one above the newest id: checkpoints from it up are in flight.
          const inflightFrom = s.inflight === undefined ? undefined : 1 + (s.inflight % nextId);
          const before = await sharedNames();
          await storage.retain(s.n, { inflightFrom });
          await checkInvariants(inflightFrom, before, refsOf);
        }
      }),
      { numRuns: 60 },
    );
  });
});

/**
 * After a retain: every file a remaining completed checkpoint refers to exists, every file
 * there `before` with an id above min(latest completed, inflightFrom - 1) is still there, and
 * no file with an id up to there that none refers to is left.
 */
const checkInvariants = async (
  inflightFrom: number | undefined,
  before: readonly string[],
  refsOf: ReadonlyMap<number, readonly string[]>,
) => {
  const completed = await storage.listCompleted();
  const referenced = new Set(completed.flatMap((id) => refsOf.get(id)!));
  const onDisk = new Set(await sharedNames());
  for (const name of referenced) expect(onDisk.has(name), `${name} referenced`).toBe(true);
  const bound = Math.min(completed[0] ?? -1, (inflightFrom ?? Number.POSITIVE_INFINITY) - 1);
  for (const name of onDisk) {
    const id = parseSharedFileCheckpointId(name)!;
    if (id <= bound) expect(referenced.has(name), `${name} unreferenced, id ${id}`).toBe(true);
  }
  for (const name of before) {
    if (parseSharedFileCheckpointId(name)! > bound) expect(onDisk.has(name), name).toBe(true);
  }
  if (completed[0] !== undefined) {
    expect((await storage.latestValid())?.dir).toBe(storage.checkpointDir(completed[0]));
  }
};
