import { spawn } from 'node:child_process';
import { cp, mkdir, readFile, truncate, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chainBytes, isIncremental } from '../checkpoint/chains.js';
import { makeTempDir, removeTempDir } from '../checkpoint/checkpoint.testkit.js';
import {
  type CheckpointMetadata,
  CheckpointStorage,
  type IncrementalKeyedStateHandle,
  type KeyedStateHandle,
  type KeyGroupChain,
  keyedStateFileName,
  METADATA_FILE,
  operatorStateFileName,
  readKeyGroups,
  readOperatorStateElements,
  redistributeOperatorState,
  type SubtaskStateHandle,
  writeKeyedStateFile,
  writeOperatorStateFile,
} from '../checkpoint/index.js';
import { planRestore } from '../checkpoint/restore-plan.js';
import { EddyError } from '../core/errors.js';
import {
  assignToKeyGroup,
  computeKeyGroupRange,
  intersectKeyGroupRanges,
} from '../keygroups/index.js';
import type { KeyGroupSnapshot, OperatorStateSnapshot } from '../state/types.js';
import {
  describeCheckpoint,
  formatInspectReport,
  type InspectReport,
  inspectCheckpoint,
  inspectCommand,
} from './inspect.js';

const MAX_P = 128;
const OLD_P = 2;
const HEAVY_KEY = 'user-7';

let base: string;
let dir: string;
let metadata: CheckpointMetadata;

/**
 * The first `keys` of 300 keys counted by a keyed operator; HEAVY_KEY carries a big value.
 * `round` marks the values written by one checkpoint of the incremental fixture.
 */
const keyedSnapshots = (keys = 300, round = 0): Map<number, KeyGroupSnapshot> => {
  const byGroup = new Map<number, Array<[string, unknown]>>();
  for (let i = 0; i < keys; i++) {
    const key = `user-${i}`;
    const kg = assignToKeyGroup(key, MAX_P);
    const value = key === HEAVY_KEY ? { n: i, round, pad: 'x'.repeat(5000) } : { n: i, round };
    byGroup.set(kg, [...(byGroup.get(kg) ?? []), [key, value]]);
  }
  return new Map(
    [...byGroup].map(([keyGroup, entries]) => [
      keyGroup,
      { keyGroup, states: [{ name: 'count', kind: 'value' as const, entries }] },
    ]),
  );
};

/** Writes a real checkpoint: a source with operator list state, a keyed counter. */
const writeCheckpoint = async (): Promise<{ dir: string; metadata: CheckpointMetadata }> => {
  const storage = new CheckpointStorage(base);
  const dir = await storage.createCheckpointDir(7);
  const snapshots = keyedSnapshots();
  const source: SubtaskStateHandle[] = [];
  const counter: SubtaskStateHandle[] = [];
  for (let i = 0; i < OLD_P; i++) {
    const opState: OperatorStateSnapshot = {
      states: [
        {
          name: 'offsets',
          mode: 'split',
          elements: [0, 1, 2].map((p) => ({ partition: i * 3 + p, offset: 100 * i + p })),
        },
        { name: 'assignment', mode: 'union', elements: [`subtask-${i}`] },
      ],
    };
    source.push({
      index: i,
      operatorState: await writeOperatorStateFile(dir, operatorStateFileName('src-1', i), opState),
    });
    const range = computeKeyGroupRange(MAX_P, OLD_P, i);
    const mine = [...snapshots.values()].filter(
      (s) => s.keyGroup >= range.start && s.keyGroup <= range.end,
    );
    counter.push({
      index: i,
      keyed: await writeKeyedStateFile(dir, keyedStateFileName('count-1', i), range, mine),
    });
  }
  const metadata: CheckpointMetadata = {
    formatVersion: 1,
    jobName: 'clicks',
    jobId: 'job-0123',
    checkpointId: 7,
    savepoint: false,
    timestamp: Date.UTC(2025, 0, 2, 3, 4, 5),
    operators: [
      { uid: 'src-1', name: 'source', parallelism: OLD_P, maxParallelism: MAX_P, subtasks: source },
      {
        uid: 'count-1',
        name: 'count',
        parallelism: OLD_P,
        maxParallelism: MAX_P,
        subtasks: counter.reverse(),
      },
    ],
  };
  await storage.commit(dir, metadata);
  return { dir, metadata };
};

/** The keys written by checkpoints 1, 2 and 3 of the incremental fixture. */
const ROUNDS = [300, 60, 10] as const;

/**
 * Writes an incremental checkpoint 3 as the writers lay it out: per subtask, checkpoint c wrote
 * shared file `count-1-<i>-<c>-0000000<c>.keyed` with a block for each key group changed since
 * (checkpoint 1: every key; 2: the first 60 keys; 3: the first 10). A delta without deletions
 * is byte for byte a base block of its entries, so writeKeyedStateFile writes valid deltas.
 * Chains: 1 to 3 blocks, base first.
 */
const writeIncrementalCheckpoint = async (
  at: string,
): Promise<{ dir: string; metadata: CheckpointMetadata }> => {
  const storage = new CheckpointStorage(at);
  const dir = await storage.createCheckpointDir(3);
  const shared = join(at, 'blocks');
  await mkdir(shared, { recursive: true });
  const rounds = ROUNDS.map((keys, round) => keyedSnapshots(keys, round + 1));
  const subtasks: SubtaskStateHandle[] = [];
  for (let i = 0; i < OLD_P; i++) {
    const range = computeKeyGroupRange(MAX_P, OLD_P, i);
    const files: string[] = [];
    const written: KeyedStateHandle[] = [];
    for (const [c, snapshots] of rounds.entries()) {
      const name = `count-1-${i}-${c + 1}-0000000${c + 1}.keyed`;
      const mine = [...snapshots.values()].filter(
        (s) => s.keyGroup >= range.start && s.keyGroup <= range.end,
      );
      written.push(await writeKeyedStateFile(shared, name, range, mine));
      files.push(`../blocks/${name}`);
    }
    const records = (c: number, kg: number) => rounds[c]!.get(kg)!.states[0]!.entries.length;
    const chains: KeyGroupChain[] = written[0]!.blocks.map((base) => ({
      keyGroup: base.keyGroup,
      entries: records(0, base.keyGroup),
      blocks: written.flatMap((h, file) => {
        const b = h.blocks.find((x) => x.keyGroup === base.keyGroup);
        return b
          ? [
              {
                file,
                offset: b.offset,
                length: b.length,
                crc32: b.crc32,
                records: records(file, b.keyGroup),
              },
            ]
          : [];
      }),
    }));
    const keyed: IncrementalKeyedStateHandle = {
      type: 'incremental',
      keyGroupRange: [range.start, range.end],
      files,
      chains,
      bytes: written[2]!.bytes,
    };
    subtasks.push({ index: i, keyed });
  }
  const metadata: CheckpointMetadata = {
    formatVersion: 2,
    jobName: 'clicks',
    jobId: 'job-0123',
    checkpointId: 3,
    savepoint: false,
    timestamp: Date.UTC(2025, 0, 2, 3, 4, 5),
    operators: [
      { uid: 'count-1', name: 'count', parallelism: OLD_P, maxParallelism: MAX_P, subtasks },
    ],
  };
  await storage.commit(dir, metadata);
  return { dir, metadata };
};

let incBase: string;
let incDir: string;
let incMetadata: CheckpointMetadata;

beforeAll(async () => {
  base = await makeTempDir('eddy-inspect-');
  ({ dir, metadata } = await writeCheckpoint());
  incBase = await makeTempDir('eddy-inspect-incremental-');
  ({ dir: incDir, metadata: incMetadata } = await writeIncrementalCheckpoint(incBase));
});

afterAll(async () => {
  await removeTempDir(base);
  await removeTempDir(incBase);
});

/** The full keyed handle of a subtask of the full fixture. */
const fullOf = (s: SubtaskStateHandle): KeyedStateHandle => {
  if (!s.keyed || isIncremental(s.keyed)) throw new Error('expected a full keyed handle');
  return s.keyed;
};

/** The incremental keyed handle of a subtask of the incremental fixture. */
const incrementalOf = (s: SubtaskStateHandle): IncrementalKeyedStateHandle => {
  if (!s.keyed || !isIncremental(s.keyed)) throw new Error('expected an incremental handle');
  return s.keyed;
};

const capture = () => {
  const out: string[] = [];
  return { out, write: (t: string) => void out.push(t) };
};

const inspectJson = async (path: string, plan?: number): Promise<InspectReport> => {
  const { out, write } = capture();
  expect(await inspectCommand(path, { json: true, plan, write })).toBe(0);
  return JSON.parse(out.join('')) as InspectReport;
};

const errorOf = async (p: Promise<unknown>): Promise<EddyError> => {
  const e = await p.then(
    () => undefined,
    (x: unknown) => x,
  );
  expect(e).toBeInstanceOf(EddyError);
  return e as EddyError;
};

/** Runs the real CLI. */
const eddy = (...args: string[]) =>
  new Promise<{ code: number | null; stdout: string; stderr: string }>((done, fail) => {
    const child = spawn(process.execPath, [resolve('bin/eddy.mjs'), ...args]);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', fail);
    child.on('close', (code) => done({ code, stdout, stderr }));
  });

describe('eddy inspect --json', () => {
  it('describes the written handles', async () => {
    const report = await inspectJson(dir);
    expect(report).toMatchObject({
      path: dir,
      formatVersion: 1,
      jobName: 'clicks',
      jobId: 'job-0123',
      checkpointId: 7,
      savepoint: false,
      timestamp: Date.UTC(2025, 0, 2, 3, 4, 5),
    });
    const [source, count] = report.operators;
    const handles = metadata.operators[1]!.subtasks;
    const keyedOf = (i: number) => fullOf(handles.find((s) => s.index === i)!);
    expect(count!.subtasks).toEqual(
      [0, 1].map((i) => ({
        index: i,
        keyGroupRange: keyedOf(i).keyGroupRange,
        bytes: keyedOf(i).bytes,
        keyGroups: keyedOf(i).blocks.length,
        blocks: keyedOf(i).blocks.length,
        bytesWritten: keyedOf(i).bytes,
        operatorStateBytes: 0,
      })),
    );
    expect(count!.keyedStateBytes).toBe(keyedOf(0).bytes + keyedOf(1).bytes);
    expect(count!.keyedState).toEqual({
      format: 'full',
      files: ['count-1-0.keyed', 'count-1-1.keyed'],
      keyGroups: count!.keyGroups,
      blocks: count!.keyGroups,
      longestChain: 1,
      bytesReferenced: count!.keyedStateBytes,
      bytesWritten: count!.keyedStateBytes,
    });
    expect(source!.keyedState.format).toBe('none');
    expect(count!.plan).toBeUndefined();
    // The heavy key's key group leads; then descending.
    const heaviest = count!.heaviestKeyGroups;
    expect(heaviest).toHaveLength(5);
    expect(heaviest[0]!.keyGroup).toBe(assignToKeyGroup(HEAVY_KEY, MAX_P));
    const blocks = handles.flatMap((s) => fullOf(s).blocks);
    for (const h of heaviest) {
      expect(h.bytes).toBe(blocks.find((b) => b.keyGroup === h.keyGroup)!.length);
    }
    const sizes = heaviest.map((h) => h.bytes);
    expect(sizes).toEqual([...sizes].sort((a, b) => b - a));
    expect(Math.min(...sizes)).toBeGreaterThanOrEqual(
      [...blocks.map((b) => b.length)].sort((a, b) => b - a)[4]!,
    );
    // The source: operator state only.
    expect(source!.keyedStateBytes).toBe(0);
    expect(source!.heaviestKeyGroups).toEqual([]);
    expect(source!.operatorState.map((s) => [s.name, s.mode, s.elements])).toEqual([
      ['offsets', 'split', 6],
      ['assignment', 'union', 2],
    ]);
    expect(source!.operatorStateBytes).toBe(
      metadata.operators[0]!.subtasks.reduce((n, s) => n + s.operatorState!.bytes, 0),
    );
  });

  it('accepts the _metadata file as the path', async () => {
    expect((await inspectJson(join(dir, METADATA_FILE))).path).toBe(dir);
  });

  it('--plan 3 is the planner, and the runtime reads exactly those bytes', async () => {
    const report = await inspectJson(dir, 3);
    const planned = planRestore(metadata, 3);
    const count = report.operators[1]!;
    const plan = count.plan!;
    const p = planned.operators[1]!;
    expect(plan.parallelism).toBe(3);
    expect(plan.subtasks).toEqual(
      p.subtasks.map((s) => ({
        index: s.index,
        keyGroupRange: s.keyGroupRange,
        bytes: s.bytes,
        blocks: s.blocks,
        reads: s.reads,
      })),
    );
    expect(plan.readAmplification).toBe(1);
    expect(plan.bytesRead).toBe(count.keyedStateBytes);
    expect(plan.operatorState).toEqual([]);

    // Read as the runtime's loadOperator does: intersect each old range, read those key groups.
    for (const s of plan.subtasks) {
      expect(s.keyGroupRange).toEqual(
        Object.values(computeKeyGroupRange(MAX_P, 3, s.index)) as [number, number],
      );
      let bytesRead = 0;
      const keyGroups: number[] = [];
      for (const old of metadata.operators[1]!.subtasks) {
        const [start, end] = old.keyed!.keyGroupRange;
        const overlap = intersectKeyGroupRanges(
          { start: s.keyGroupRange[0], end: s.keyGroupRange[1] },
          { start, end },
        );
        if (!overlap) continue;
        const read = await readKeyGroups(dir, old.keyed!, overlap);
        bytesRead += read.bytesRead;
        keyGroups.push(...read.snapshots.map((x) => x.keyGroup));
      }
      expect(bytesRead).toBe(s.bytes);
      const plannedGroups = s.reads.flatMap((r) => {
        const handle = metadata.operators[1]!.subtasks.find((o) => fullOf(o).file === r.file)!;
        return fullOf(handle)
          .blocks.filter((b) => b.offset >= r.offset && b.offset < r.offset + r.length)
          .map((b) => b.keyGroup);
      });
      expect(plannedGroups).toEqual(keyGroups);
    }

    // Operator state: the counts the runtime's redistribution gives, per new subtask.
    const source = report.operators[0]!.plan!;
    const olds = [];
    for (const s of [...metadata.operators[0]!.subtasks].sort((a, b) => a.index - b.index)) {
      olds.push(await readOperatorStateElements(dir, s.operatorState!));
    }
    const dealt = redistributeOperatorState(olds, 3);
    expect(source.operatorState).toEqual(
      planned.operators[0]!.subtasks.map((s) => ({ index: s.index, states: s.operatorState })),
    );
    expect(source.operatorState.map((s) => s.states.map((st) => [st.name, st.elements]))).toEqual(
      dealt.map((d) => d.states.map((st) => [st.name, st.elements.length])),
    );
    expect(source.operatorStateReads.map((r) => r.length)).toEqual(
      metadata.operators[0]!.subtasks.map((s) => s.operatorState!.bytes),
    );
  });

  it('the CLI prints the same JSON', async () => {
    const { code, stdout, stderr } = await eddy('inspect', dir, '--plan', '3', '--json');
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toEqual(await inspectJson(dir, 3));
  });
});

describe('eddy inspect (human)', () => {
  it('prints a header, subtasks, a key-group chart, the heaviest key groups and the plan', async () => {
    const { out, write } = capture();
    await inspectCommand(dir, { plan: 3, write });
    const text = out.join('');
    expect(text).toContain("checkpoint 7 of job 'clicks' (id job-0123)");
    expect(text).toContain('taken     2025-01-02T03:04:05.000Z');
    expect(text).toContain("operator 'count' (uid count-1): parallelism 2, maxParallelism 128");
    expect(text).toContain(
      "operator 'source' (uid src-1): parallelism 2, maxParallelism 128\n  no keyed state\n" +
        '  SUBTASK  OPERATOR STATE\n',
    );
    expect(text).toMatch(/SUBTASK {2}KEY GROUPS {2}BYTES\n {2}0 {8}0-63 {8}\d/);
    expect(text).toMatch(/│[ ▁▂▃▄▅▆▇█]{40}│/);
    expect(text).toContain('█');
    expect(text).toContain(`heaviest key groups: ${assignToKeyGroup(HEAVY_KEY, MAX_P)} (`);
    expect(text).toContain('restore at parallelism 3 (from 2)');
    expect(text).toContain('read amplification 1.00');
    expect(text).toContain('count-1-0.keyed [0, ');
    expect(text).toContain("operator state 'offsets' (split): 6 elements");
    expect(text).toMatch(
      / {4}0: 'offsets' \(split\) 2 elements from src-1-0\.opstate; 'assignment' \(union\) 2 elements/,
    );
  });
});

describe('eddy inspect: an incremental checkpoint', () => {
  const handles = () => incMetadata.operators[0]!.subtasks.map(incrementalOf);
  const allChains = () => handles().flatMap((h) => h.chains);

  it('--json says incremental: shared files, blocks, longest chain, written vs referenced', async () => {
    const report = await inspectJson(incDir);
    expect(report.formatVersion).toBe(2);
    const count = report.operators[0]!;
    const chains = allChains();
    const referenced = chains.reduce((n, c) => n + chainBytes(c), 0);
    const written = handles().reduce((n, h) => n + h.bytes, 0);
    expect(count.keyedState).toEqual({
      format: 'incremental',
      files: [0, 1].flatMap((i) =>
        [1, 2, 3].map((c) => `../blocks/count-1-${i}-${c}-0000000${c}.keyed`),
      ),
      keyGroups: chains.length,
      blocks: chains.reduce((n, c) => n + c.blocks.length, 0),
      longestChain: 3,
      bytesReferenced: referenced,
      bytesWritten: written,
    });
    // Chains of every length 1..3 are there, and this checkpoint wrote only a small part.
    expect(new Set(chains.map((c) => c.blocks.length))).toEqual(new Set([1, 2, 3]));
    expect(written).toBeLessThan(referenced / 3);
    expect(count.keyedStateBytes).toBe(referenced);
    expect(count.keyGroups).toBe(chains.length);
    expect(count.subtasks).toEqual(
      handles().map((h, i) => ({
        index: i,
        keyGroupRange: h.keyGroupRange,
        bytes: h.chains.reduce((n, c) => n + chainBytes(c), 0),
        keyGroups: h.chains.length,
        blocks: h.chains.reduce((n, c) => n + c.blocks.length, 0),
        bytesWritten: h.bytes,
        operatorStateBytes: 0,
      })),
    );
    // A key group's bytes are its whole chain's: the heavy key's group (3 blocks) leads.
    const heavy = assignToKeyGroup(HEAVY_KEY, MAX_P);
    const heavyChain = chains.find((c) => c.keyGroup === heavy)!;
    expect(heavyChain.blocks).toHaveLength(3);
    expect(count.heaviestKeyGroups[0]).toEqual({ keyGroup: heavy, bytes: chainBytes(heavyChain) });
  });

  it('--plan 3 reads base + deltas from the shared files, exactly what the runtime reads', async () => {
    const report = await inspectJson(incDir, 3);
    const count = report.operators[0]!;
    const plan = count.plan!;
    expect(plan).toMatchObject({
      parallelism: 3,
      bytesRead: count.keyedStateBytes,
      bytesNeeded: count.keyedStateBytes,
      blocksRead: count.keyedState.blocks,
      readAmplification: 1,
    });
    const reads = plan.subtasks.flatMap((s) => s.reads);
    expect(reads.every((r) => r.file.startsWith('../blocks/count-1-'))).toBe(true);
    expect(reads.reduce((n, r) => n + r.deltas, 0)).toBe(
      count.keyedState.blocks - count.keyedState.keyGroups,
    );
    for (const s of plan.subtasks) {
      expect(s.bytes).toBe(s.reads.reduce((n, r) => n + r.length, 0));
      expect(s.blocks).toBe(s.reads.reduce((n, r) => n + r.blocks, 0));
      // As the runtime's restore: each old range intersected, its chains read and applied.
      let bytesRead = 0;
      const snapshots: KeyGroupSnapshot[] = [];
      for (const old of incMetadata.operators[0]!.subtasks) {
        const [start, end] = old.keyed!.keyGroupRange;
        const overlap = intersectKeyGroupRanges(
          { start: s.keyGroupRange[0], end: s.keyGroupRange[1] },
          { start, end },
        );
        if (!overlap) continue;
        const read = await readKeyGroups(incDir, old.keyed!, overlap);
        bytesRead += read.bytesRead;
        snapshots.push(...read.snapshots);
      }
      expect(bytesRead).toBe(s.bytes);
      // The chains give the newest value of every key: user-0..9 from checkpoint 3, etc.
      for (const snapshot of snapshots) {
        for (const [key, value] of snapshot.states[0]!.entries) {
          const n = Number(String(key).slice('user-'.length));
          const round = n < ROUNDS[2] ? 3 : n < ROUNDS[1] ? 2 : 1;
          expect((value as { round: number }).round).toBe(round);
        }
      }
    }
  });

  it('--verify reads every block of every chain, each shared file counted once', async () => {
    const { report } = await inspectCheckpoint(incDir, { verify: true });
    const k = report.operators[0]!.keyedState;
    expect(report.verified).toEqual({ files: 6, blocks: k.blocks, bytes: k.bytesReferenced });
  });

  it('the human report shows the chains and the plan reads base + deltas', async () => {
    const { out, write } = capture();
    await inspectCommand(incDir, { plan: 3, write });
    const text = out.join('');
    const k = (await inspectCheckpoint(incDir)).report.operators[0]!.keyedState;
    expect(text).toContain('format    version 2');
    expect(text).toMatch(
      new RegExp(
        `keyed state [\\d.]+ KiB in ${k.keyGroups} of 128 key groups, incremental: ` +
          `${k.blocks} blocks in 6 shared files, longest chain 3 blocks\\n` +
          '  this checkpoint wrote [\\d.]+ (B|KiB) of the [\\d.]+ KiB its chains reference \\(\\d+\\.\\d%\\)\\n',
      ),
    );
    expect(text).toMatch(/SUBTASK {2}KEY GROUPS {2}BYTES +BLOCKS {2}WRITTEN\n {2}0 {8}0-63 /);
    expect(text).toContain(
      `each key group's chain is read whole (its base, then its deltas): ${k.blocks} blocks from 6 files`,
    );
    expect(text).toMatch(/SUBTASK {2}KEY GROUPS {2}BYTES +BLOCKS {2}READS\n/);
    expect(text).toMatch(
      /\.\.\/blocks\/count-1-0-1-00000001\.keyed \[0, \d+\) [\d.]+ KiB, key groups 0-\d+, \d+ blocks \(0 deltas\)/,
    );
    expect(text).toMatch(/\.\.\/blocks\/count-1-0-3-00000003\.keyed \[0, \d+\) .*\(\d+ deltas\)/);
    expect(text).toContain('read amplification 1.00');
  });

  it('the CLI prints the same JSON, and describeCheckpoint is pure', async () => {
    const { code, stdout, stderr } = await eddy('inspect', incDir, '--plan', '3', '--json');
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toEqual(await inspectJson(incDir, 3));
    const { report } = await inspectCheckpoint(incDir, { plan: 5 });
    expect(describeCheckpoint(incDir, incMetadata, 5)).toEqual(report);
  });

  it('a mix of full and incremental handles says so', () => {
    const mixed: CheckpointMetadata = {
      ...incMetadata,
      operators: [
        {
          ...incMetadata.operators[0]!,
          subtasks: [
            incMetadata.operators[0]!.subtasks[0]!,
            metadata.operators[1]!.subtasks.find((s) => s.index === 1)!,
          ],
        },
      ],
    };
    const report = describeCheckpoint(incDir, mixed, 1);
    const op = report.operators[0]!;
    expect(op.keyedState.format).toBe('mixed');
    expect(op.keyedState.files.at(-1)).toBe('count-1-1.keyed');
    expect(op.plan!.readAmplification).toBe(1);
    expect(formatInspectReport(report, mixed)).toContain(
      `, full and incremental: ${op.keyedState.blocks} blocks in 4 files, longest chain 3 blocks`,
    );
  });
});

describe('eddy inspect errors', () => {
  it('a missing path or a checkpoint base directory', async () => {
    const missing = await errorOf(inspectCheckpoint(join(base, 'nope')));
    expect(missing.code).toBe('EDDY_INVALID_ARGUMENT');
    expect(missing.message).toContain('does not exist');
    const baseDir = await errorOf(inspectCheckpoint(base));
    expect(baseDir.message).toContain(`pass one of its checkpoints, e.g. ${dir}`);
  });

  it('a parallelism above maxParallelism', async () => {
    const e = await errorOf(inspectCheckpoint(dir, { plan: 200 }));
    expect(e.code).toBe('EDDY_INVALID_PARALLELISM');
    expect(e.message).toContain('its maxParallelism is 128');
  });

  it('corrupt metadata, a truncated file, a flipped data byte (--verify)', async () => {
    const copy = join(base, 'copies', 'chk-8');
    await cp(dir, copy, { recursive: true });
    const file = fullOf(metadata.operators[1]!.subtasks[0]!).file;
    const bytes = await readFile(join(copy, file));
    bytes[bytes.length - 1]! ^= 0xff;
    await writeFile(join(copy, file), bytes);
    // Sizes still match: a plain inspect passes, --verify reads the blocks and fails.
    expect((await inspectCheckpoint(copy)).report.verified).toBeUndefined();
    const crc = await errorOf(inspectCheckpoint(copy, { verify: true }));
    expect(crc.code).toBe('EDDY_CHECKPOINT_CORRUPT');
    expect(crc.message).toContain(file);

    await truncate(join(copy, file), 10);
    const short = await errorOf(inspectCheckpoint(copy));
    expect(short.code).toBe('EDDY_CHECKPOINT_CORRUPT');
    expect(short.message).toContain('truncated');

    const meta = await readFile(join(copy, METADATA_FILE));
    meta[meta.length - 3]! ^= 0xff;
    await writeFile(join(copy, METADATA_FILE), meta);
    expect((await errorOf(inspectCheckpoint(copy))).code).toBe('EDDY_CHECKPOINT_CORRUPT');
  });

  it('--verify on a good checkpoint reports what it read', async () => {
    const { report } = await inspectCheckpoint(dir, { verify: true });
    expect(report.verified).toMatchObject({ files: 4 });
    expect(report.verified!.bytes).toBe(
      metadata.operators
        .flatMap((o) => o.subtasks)
        .reduce((n, s) => n + (s.keyed?.bytes ?? 0) + (s.operatorState?.bytes ?? 0), 0),
    );
  });

  it('the CLI prints the error with its code and exits 1', async () => {
    const { code, stderr } = await eddy('inspect', join(base, 'nope'));
    expect(code).toBe(1);
    expect(stderr).toContain('eddy: error [EDDY_INVALID_ARGUMENT]: checkpoint or savepoint path');
  });

  it('describeCheckpoint is pure: the same report from the metadata alone', async () => {
    const { report } = await inspectCheckpoint(dir, { plan: 5 });
    expect(describeCheckpoint(dir, metadata, 5)).toEqual(report);
  });
});
