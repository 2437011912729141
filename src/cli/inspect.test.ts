import { spawn } from 'node:child_process';
import { cp, readFile, truncate, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir, removeTempDir } from '../checkpoint/checkpoint.testkit.js';
import {
  type CheckpointMetadata,
  CheckpointStorage,
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

/** 300 keys counted by a keyed operator; HEAVY_KEY carries a big value. */
const keyedSnapshots = (): Map<number, KeyGroupSnapshot> => {
  const byGroup = new Map<number, Array<[string, unknown]>>();
  for (let i = 0; i < 300; i++) {
    const key = `user-${i}`;
    const kg = assignToKeyGroup(key, MAX_P);
    const value = key === HEAVY_KEY ? { n: i, pad: 'x'.repeat(5000) } : { n: i };
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

beforeAll(async () => {
  base = await makeTempDir('eddy-inspect-');
  ({ dir, metadata } = await writeCheckpoint());
});

afterAll(async () => {
  await removeTempDir(base);
});

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
    const keyedOf = (i: number) => handles.find((s) => s.index === i)!.keyed!;
    expect(count!.subtasks).toEqual(
      [0, 1].map((i) => ({
        index: i,
        keyGroupRange: keyedOf(i).keyGroupRange,
        bytes: keyedOf(i).bytes,
        keyGroups: keyedOf(i).blocks.length,
        operatorStateBytes: 0,
      })),
    );
    expect(count!.keyedStateBytes).toBe(keyedOf(0).bytes + keyedOf(1).bytes);
    expect(count!.plan).toBeUndefined();
    // The heavy key's key group leads; then descending.
    const heaviest = count!.heaviestKeyGroups;
    expect(heaviest).toHaveLength(5);
    expect(heaviest[0]!.keyGroup).toBe(assignToKeyGroup(HEAVY_KEY, MAX_P));
    const blocks = handles.flatMap((s) => s.keyed!.blocks);
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
        const handle = metadata.operators[1]!.subtasks.find((o) => o.keyed!.file === r.file)!;
        return handle
          .keyed!.blocks.filter((b) => b.offset >= r.offset && b.offset < r.offset + r.length)
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
    const file = metadata.operators[1]!.subtasks[0]!.keyed!.file;
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
