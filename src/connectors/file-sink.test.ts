import { mkdtempSync, readdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import type { EddyError } from '../core/errors.js';
import type { SinkWriter } from '../runtime/io.js';
import {
  FileSink,
  type FileSinkOptions,
  PENDING_STATE,
  type PendingPart,
  SEQ_STATE,
  type SeqWatermark,
} from './file-sink.js';
import { FileSource } from './file-source.js';
import {
  createTestContext,
  drainSource,
  type TestConnectorContext,
  type TestContextOptions,
} from './testing.js';

const root = mkdtempSync(join(tmpdir(), 'eddy-file-sink-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

let counter = 0;
/** A fresh, not yet existing output directory (the sink creates it). */
const outDir = () => join(root, `out${counter++}`, 'nested');

const openWriter = async <T>(
  options: FileSinkOptions,
  ctx: TestConnectorContext = createTestContext(),
): Promise<SinkWriter<T>> => {
  const writer = FileSink.jsonl<T>(options).createWriter(ctx);
  await writer.open();
  return writer;
};

const records = (n: number) => Array.from({ length: n }, (_, i) => ({ i, name: `rec-${i}-ü` }));
const jsonl = (rs: readonly unknown[]) => rs.map((r) => `${JSON.stringify(r)}\n`).join('');
const visibleParts = (dir: string) => readdirSync(dir).filter((n) => n.startsWith('part-'));

describe('FileSink.jsonl', () => {
  it('writes hidden in-progress files until finish, then complete part files', async () => {
    const dir = outDir();
    const ctx = createTestContext({ subtaskIndex: 3, parallelism: 4 });
    const writer = await openWriter<unknown>({ path: dir, bufferBytes: 64 }, ctx);
    const rs = records(50);
    for (const r of rs) writer.write(r);
    await writer.flush();
    expect(readdirSync(dir)).toEqual(['.part-3-0.jsonl.inprogress']);
    await writer.finish();
    expect(readdirSync(dir)).toEqual(['part-3-0.jsonl']);
    expect(readFileSync(join(dir, 'part-3-0.jsonl'), 'utf8')).toBe(jsonl(rs));
    expect(ctx.counters.get('bytesWritten')).toBe(Buffer.byteLength(jsonl(rs)));
  });

  it('rolls into several complete parts whose concatenation is the output', async () => {
    const dir = outDir();
    const writer = await openWriter<unknown>({ path: dir, rollBytes: 300 });
    const rs = records(100);
    for (const r of rs) writer.write(r);
    await writer.finish();
    const parts = visibleParts(dir).sort(
      (a, b) => Number(a.split('-')[2]!.split('.')[0]) - Number(b.split('-')[2]!.split('.')[0]),
    );
    expect(parts.length).toBeGreaterThan(3);
    expect(readdirSync(dir).filter((n) => n.startsWith('.'))).toEqual([]);
    const contents = parts.map((p) => readFileSync(join(dir, p), 'utf8'));
    for (const c of contents) expect(c.endsWith('\n')).toBe(true); // whole records only
    expect(contents.join('')).toBe(jsonl(rs));
  });

  it('abort deletes the in-progress file and leaves no part file', async () => {
    const dir = outDir();
    const writer = await openWriter<unknown>({ path: dir, bufferBytes: 10 });
    for (const r of records(20)) writer.write(r);
    expect(readdirSync(dir)).toHaveLength(1);
    await writer.abort();
    expect(readdirSync(dir)).toEqual([]);
  });

  it('writes nothing for a subtask without records', async () => {
    const dir = outDir();
    const writer = await openWriter<unknown>({ path: dir });
    await writer.finish();
    expect(readdirSync(dir)).toEqual([]);
  });

  it('never overwrites parts of an earlier run', async () => {
    const dir = outDir();
    const first = await openWriter<unknown>({ path: dir });
    first.write({ run: 1 });
    await first.finish();
    const second = await openWriter<unknown>({ path: dir });
    second.write({ run: 2 });
    await second.finish();
    expect(readFileSync(join(dir, 'part-0-0.jsonl'), 'utf8')).toBe('{"run":1}\n');
    expect(readFileSync(join(dir, 'part-0-1.jsonl'), 'utf8')).toBe('{"run":2}\n');
  });

  it('output reads back through FileSource without picking up in-progress files', async () => {
    const dir = outDir();
    const done = await openWriter<unknown>({ path: dir });
    const rs = records(30);
    for (const r of rs) done.write(r);
    await done.finish();
    const pending = await openWriter<unknown>(
      { path: dir, bufferBytes: 1 },
      createTestContext({ subtaskIndex: 1, parallelism: 2 }),
    );
    pending.write({ pending: true });
    const back = await drainSource(FileSource.jsonl({ path: dir }), createTestContext());
    expect(back).toEqual(rs);
    await pending.abort();
  });

  it('names the sink and subtask for records JSON cannot encode', async () => {
    const ctx = createTestContext({ subtaskIndex: 1, parallelism: 2, operatorName: 'totals' });
    const writer = await openWriter<unknown>({ path: outDir() }, ctx);
    expect(() => writer.write({ n: 1n })).toThrow(/file sink .*'totals'.*2\/2.*BigInt/);
    expect(() => writer.write(undefined)).toThrow(/undefined has no JSON form/);
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    const error = (() => {
      try {
        writer.write(circular);
      } catch (e) {
        return e as EddyError;
      }
    })();
    expect(error?.code).toBe('EDDY_SINK_IO');
    await writer.abort();
  });

  it('reports IO failures as EDDY_SINK_IO naming the path', async () => {
    const blocker = join(root, `file${counter++}`);
    writeFileSync(blocker, 'a file, not a directory');
    const writer = FileSink.jsonl({ path: join(blocker, 'out') }).createWriter(createTestContext());
    const error = await writer.open().catch((e: unknown) => e);
    expect((error as EddyError).code).toBe('EDDY_SINK_IO');
    expect((error as EddyError).message).toContain(blocker);
  });

  it('rejects writes after finish and invalid options', async () => {
    const writer = await openWriter<unknown>({ path: outDir() });
    await writer.finish();
    expect(() => writer.write({})).toThrow(/write after finish/);
    expect(() => FileSink.jsonl({ path: '' })).toThrow(/path/);
    expect(() => FileSink.jsonl({ path: 'x', rollBytes: 0 })).toThrow(/rollBytes/);
  });
});

/** A sink writer whose two-phase-commit hooks are known to exist. */
type TwoPhaseWriter<T> = Required<SinkWriter<T>>;

const cpContext = (options: TestContextOptions = {}): TestConnectorContext =>
  createTestContext({ ...options, checkpointing: true });

const openTwoPhase = async <T>(
  options: FileSinkOptions,
  ctx: TestConnectorContext,
): Promise<TwoPhaseWriter<T>> => {
  const writer = await openWriter<T>(options, ctx);
  if (
    writer.snapshotState === undefined ||
    writer.notifyCheckpointComplete === undefined ||
    writer.notifyCheckpointAborted === undefined
  ) {
    throw new Error('file sink writer lacks the two-phase-commit hooks');
  }
  return writer as TwoPhaseWriter<T>;
};

const hiddenFiles = (dir: string) =>
  readdirSync(dir)
    .filter((n) => n.endsWith('.inprogress'))
    .sort();

/** Visible part names ordered by (subtask, seq), so concatenation follows write order. */
const orderedParts = (dir: string) =>
  visibleParts(dir)
    .map((name) => ({ name, key: name.split(/[-.]/).slice(1, 3).map(Number) as [number, number] }))
    .sort((a, b) => a.key[0] - b.key[0] || a.key[1] - b.key[1])
    .map((p) => p.name);

/** Every visible record, parts in (subtask, seq) order. */
const visibleRecords = (dir: string): unknown[] =>
  orderedParts(dir).flatMap((name) =>
    readFileSync(join(dir, name), 'utf8')
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as unknown),
  );

const pendingOf = (ctx: TestConnectorContext) =>
  ctx.operatorState.elements<PendingPart>(PENDING_STATE);

const seqOf = (ctx: TestConnectorContext) => ctx.operatorState.elements<SeqWatermark>(SEQ_STATE);

/** The restored operator state of a completed checkpoint: the union lists of all `ctxs`. */
type SinkState = Record<string, readonly unknown[]>;
const unionState = (ctxs: readonly TestConnectorContext[]): SinkState => ({
  [PENDING_STATE]: ctxs.flatMap(pendingOf),
  [SEQ_STATE]: ctxs.flatMap(seqOf),
});

describe('FileSink.jsonl with checkpointing (two-phase commit)', () => {
  it('keeps output hidden until the checkpoint covering it completes', async () => {
    const dir = outDir();
    const ctx = cpContext();
    const writer = await openTwoPhase<unknown>({ path: dir, bufferBytes: 1 }, ctx);
    const rs = records(30);
    for (const r of rs.slice(0, 10)) writer.write(r);
    writer.snapshotState(1);
    expect(visibleParts(dir)).toEqual([]);
    expect(hiddenFiles(dir)).toEqual(['.part-0-0.jsonl.inprogress']);
    expect(pendingOf(ctx)).toEqual([
      { checkpointId: 1, inProgress: '.part-0-0.jsonl.inprogress', final: 'part-0-0.jsonl' },
    ]);
    expect(ctx.operatorState.modeOf(PENDING_STATE)).toBe('union');

    for (const r of rs.slice(10, 20)) writer.write(r); // after the barrier: next epoch
    await writer.notifyCheckpointComplete(1);
    expect(visibleParts(dir)).toEqual(['part-0-0.jsonl']);
    expect(visibleRecords(dir)).toEqual(rs.slice(0, 10));
    expect(hiddenFiles(dir)).toEqual(['.part-0-1.jsonl.inprogress']);

    writer.snapshotState(2);
    expect(pendingOf(ctx)).toEqual([
      { checkpointId: 2, inProgress: '.part-0-1.jsonl.inprogress', final: 'part-0-1.jsonl' },
    ]);
    for (const r of rs.slice(20)) writer.write(r);
    await writer.notifyCheckpointComplete(2);
    expect(visibleRecords(dir)).toEqual(rs.slice(0, 20));
    await writer.finish();
    writer.snapshotState(3);
    await writer.notifyCheckpointComplete(3);
    expect(visibleRecords(dir)).toEqual(rs);
    expect(hiddenFiles(dir)).toEqual([]);
  });

  it('keeps parts rolled inside an epoch hidden until the next checkpoint completes', async () => {
    const dir = outDir();
    const ctx = cpContext({ subtaskIndex: 1, parallelism: 2 });
    const writer = await openTwoPhase<unknown>({ path: dir, rollBytes: 100 }, ctx);
    const rs = records(40);
    for (const r of rs) writer.write(r);
    const rolled = hiddenFiles(dir).length;
    expect(rolled).toBeGreaterThan(3);
    expect(visibleParts(dir)).toEqual([]);
    writer.snapshotState(1);
    const pending = pendingOf(ctx);
    expect(pending.length).toBe(hiddenFiles(dir).length);
    expect(pending.every((p) => p.checkpointId === 1)).toBe(true);
    expect(visibleParts(dir)).toEqual([]);
    await writer.notifyCheckpointComplete(1);
    expect(hiddenFiles(dir)).toEqual([]);
    for (const c of orderedParts(dir).map((p) => readFileSync(join(dir, p), 'utf8'))) {
      expect(c.endsWith('\n')).toBe(true);
    }
    expect(visibleRecords(dir)).toEqual(rs);
  });

  it('commits parts of older checkpoints whose notification never came', async () => {
    const dir = outDir();
    const ctx = cpContext();
    const writer = await openTwoPhase<unknown>({ path: dir, bufferBytes: 1 }, ctx);
    writer.write({ a: 1 });
    writer.snapshotState(1);
    writer.write({ a: 2 });
    writer.snapshotState(2);
    expect(pendingOf(ctx).map((p) => p.checkpointId)).toEqual([1, 2]);
    writer.write({ a: 3 });
    writer.snapshotState(3);
    await writer.notifyCheckpointComplete(2); // 1 was lost; 3 is still in flight
    expect(visibleRecords(dir)).toEqual([{ a: 1 }, { a: 2 }]);
    expect(hiddenFiles(dir)).toEqual(['.part-0-2.jsonl.inprogress']);
    writer.snapshotState(4);
    expect(pendingOf(ctx).map((p) => p.checkpointId)).toEqual([3]);
  });

  it('an aborted checkpoint leaves its parts pending: the next one commits them exactly once', async () => {
    const dir = outDir();
    const ctx = cpContext();
    const writer = await openTwoPhase<unknown>({ path: dir, rollBytes: 40 }, ctx);
    const rs = records(6);
    for (const r of rs.slice(0, 3)) writer.write(r); // rolls: several parts for checkpoint 1
    writer.snapshotState(1);
    const parts1 = pendingOf(ctx);
    expect(parts1.length).toBeGreaterThan(1);
    expect(parts1.every((p) => p.checkpointId === 1)).toBe(true);
    await writer.notifyCheckpointAborted(1);
    expect(visibleParts(dir)).toEqual([]);
    expect(hiddenFiles(dir)).toEqual(parts1.map((p) => p.inProgress).sort());

    for (const r of rs.slice(3)) writer.write(r);
    writer.snapshotState(2);
    const pending2 = pendingOf(ctx);
    // Checkpoint 2 holds the parts of 1 (under id 1) and its own: a restore of it commits both.
    expect(pending2.slice(0, parts1.length)).toEqual(parts1);
    expect(pending2.slice(parts1.length).every((p) => p.checkpointId === 2)).toBe(true);
    await writer.notifyCheckpointComplete(2);
    expect(visibleRecords(dir)).toEqual(rs);
    expect(hiddenFiles(dir)).toEqual([]);
    await writer.notifyCheckpointComplete(2); // nothing is committed twice
    writer.snapshotState(3);
    expect(pendingOf(ctx)).toEqual([]);
    expect(visibleRecords(dir)).toEqual(rs);

    // A restore of checkpoint 2 after its notification commits nothing again either.
    const restored = await openTwoPhase<unknown>(
      { path: dir },
      cpContext({ restoredState: { [PENDING_STATE]: pending2 } }),
    );
    expect(visibleRecords(dir)).toEqual(rs);
    await restored.abort();
  });

  it('after an aborted checkpoint, restoring the next one commits the parts of both', async () => {
    const dir = outDir();
    const ctx = cpContext();
    const writer = await openTwoPhase<unknown>({ path: dir, bufferBytes: 1 }, ctx);
    writer.write({ a: 1 });
    writer.snapshotState(1);
    await writer.notifyCheckpointAborted(1);
    writer.write({ a: 2 });
    writer.snapshotState(2);
    writer.write({ lost: true }); // after checkpoint 2: replayed by the source
    await writer.abort(); // the job fails before checkpoint 2's notification arrives
    const restored = await openTwoPhase<unknown>(
      { path: dir },
      cpContext({ restoredState: { [PENDING_STATE]: pendingOf(ctx) } }),
    );
    expect(visibleRecords(dir)).toEqual([{ a: 1 }, { a: 2 }]);
    expect(hiddenFiles(dir)).toEqual([]);
    await restored.abort();
  });

  it('snapshots no part when nothing was written since the last checkpoint', async () => {
    const dir = outDir();
    const ctx = cpContext();
    const writer = await openTwoPhase<unknown>({ path: dir }, ctx);
    writer.snapshotState(1);
    expect(pendingOf(ctx)).toEqual([]);
    expect(readdirSync(dir)).toEqual([]);
    await writer.finish();
    writer.snapshotState(2);
    await writer.notifyCheckpointComplete(2);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('commits idempotently: a repeated notify, and a restore after the notify', async () => {
    const dir = outDir();
    const ctx = cpContext();
    const writer = await openTwoPhase<unknown>({ path: dir }, ctx);
    writer.write({ a: 1 });
    writer.snapshotState(1);
    const state = pendingOf(ctx);
    await writer.notifyCheckpointComplete(1);
    await writer.notifyCheckpointComplete(1);
    writer.write({ lost: true }); // not covered by checkpoint 1: discarded on restore
    await writer.flush();
    writer.snapshotState(2); // checkpoint 2 never completes

    const restoredCtx = cpContext({ restoredState: { [PENDING_STATE]: state } });
    const restored = await openTwoPhase<unknown>({ path: dir }, restoredCtx);
    expect(visibleRecords(dir)).toEqual([{ a: 1 }]);
    expect(hiddenFiles(dir)).toEqual([]);
    restored.write({ a: 2 });
    await restored.finish();
    restored.snapshotState(3);
    await restored.notifyCheckpointComplete(3);
    // Numbering continues after the highest part ever seen (the discarded one included).
    expect(readdirSync(dir).sort()).toEqual(['part-0-0.jsonl', 'part-0-2.jsonl']);
    expect(visibleRecords(dir)).toEqual([{ a: 1 }, { a: 2 }]);
  });

  it('reports a pending part that vanished before its commit as lost data', async () => {
    const dir = outDir();
    const writer = await openTwoPhase<unknown>({ path: dir }, cpContext());
    writer.write({ a: 1 });
    writer.snapshotState(7);
    unlinkSync(join(dir, '.part-0-0.jsonl.inprogress'));
    const error = (await writer.notifyCheckpointComplete(7).catch((e: unknown) => e)) as EddyError;
    expect(error.code).toBe('EDDY_SINK_IO');
    expect(error.message).toMatch(/\.part-0-0\.jsonl\.inprogress.*checkpoint 7.*lost/);
  });

  it('finish prepares the last part for the final checkpoint instead of committing it', async () => {
    const dir = outDir();
    const ctx = cpContext();
    const writer = await openTwoPhase<unknown>({ path: dir, rollBytes: 200 }, ctx);
    const rs = records(20);
    for (const r of rs.slice(0, 5)) writer.write(r);
    writer.snapshotState(1); // never notified: the final checkpoint covers it
    for (const r of rs.slice(5)) writer.write(r);
    await writer.finish();
    expect(visibleParts(dir)).toEqual([]);
    writer.snapshotState(2);
    const pending = pendingOf(ctx);
    expect(pending[0]?.checkpointId).toBe(1);
    expect(pending.slice(1).every((p) => p.checkpointId === 2)).toBe(true);
    expect(pending.length).toBe(hiddenFiles(dir).length);
    await writer.notifyCheckpointComplete(2);
    expect(hiddenFiles(dir)).toEqual([]);
    expect(visibleRecords(dir)).toEqual(rs);
  });

  it('abort deletes only the current in-progress file; pending parts survive a restore', async () => {
    const dir = outDir();
    const ctx = cpContext();
    const writer = await openTwoPhase<unknown>({ path: dir, bufferBytes: 1 }, ctx);
    writer.write({ a: 1 });
    writer.snapshotState(1);
    writer.write({ a: 2 });
    expect(hiddenFiles(dir)).toEqual(['.part-0-0.jsonl.inprogress', '.part-0-1.jsonl.inprogress']);
    await writer.abort();
    expect(readdirSync(dir)).toEqual(['.part-0-0.jsonl.inprogress']);
    // Checkpoint 1 completed, but the notification came too late for this writer.
    const restored = await openTwoPhase<unknown>(
      { path: dir },
      cpContext({ restoredState: { [PENDING_STATE]: pendingOf(ctx) } }),
    );
    expect(readdirSync(dir)).toEqual(['part-0-0.jsonl']);
    await restored.abort();
  });

  it('restore at lower parallelism: each new subtask commits and cleans up what it owns', async () => {
    const dir = outDir();
    const oldCtxs = [0, 1, 2].map((i) => cpContext({ subtaskIndex: i, parallelism: 3 }));
    const old = await Promise.all(
      oldCtxs.map((c) => openTwoPhase<unknown>({ path: dir, bufferBytes: 1 }, c)),
    );
    old.forEach((w, i) => w.write({ committed: i }));
    old.forEach((w) => w.snapshotState(1));
    old.forEach((w, i) => w.write({ uncommitted: i }));
    const union = oldCtxs.flatMap(pendingOf);
    expect(union).toHaveLength(3);

    const restore = (i: number) =>
      openTwoPhase<unknown>(
        { path: dir, bufferBytes: 1 },
        cpContext({ subtaskIndex: i, parallelism: 2, restoredState: { [PENDING_STATE]: union } }),
      );
    const first = await restore(0); // owns old subtasks 0 and 2
    expect(visibleParts(dir).sort()).toEqual(['part-0-0.jsonl', 'part-2-0.jsonl']);
    expect(hiddenFiles(dir)).toEqual(['.part-1-0.jsonl.inprogress', '.part-1-1.jsonl.inprogress']);
    const second = await restore(1);
    expect(visibleParts(dir).sort()).toEqual([
      'part-0-0.jsonl',
      'part-1-0.jsonl',
      'part-2-0.jsonl',
    ]);
    expect(hiddenFiles(dir)).toEqual([]);
    expect(visibleRecords(dir)).toEqual([{ committed: 0 }, { committed: 1 }, { committed: 2 }]);

    first.write({ fresh: 0 }); // numbered after the discarded .part-0-1
    second.write({ fresh: 1 });
    expect(hiddenFiles(dir)).toEqual(['.part-0-2.jsonl.inprogress', '.part-1-2.jsonl.inprogress']);
    await Promise.all([first.abort(), second.abort()]);
  });

  it('records the next sequence number per subtask index at every checkpoint, the final one too', async () => {
    const dir = outDir();
    const ctx = cpContext({ subtaskIndex: 1, parallelism: 2 });
    const writer = await openTwoPhase<unknown>({ path: dir, rollBytes: 1 }, ctx);
    writer.snapshotState(1);
    expect(seqOf(ctx)).toEqual([{ subtask: 1, nextSeq: 0 }]);
    expect(ctx.operatorState.modeOf(SEQ_STATE)).toBe('union');
    for (const r of records(4)) writer.write(r); // 4 rolls: parts 0..3
    writer.snapshotState(2);
    expect(seqOf(ctx)).toEqual([{ subtask: 1, nextSeq: 4 }]);
    writer.write({ last: true });
    await writer.finish();
    writer.snapshotState(3); // the final checkpoint
    expect(seqOf(ctx)).toEqual([{ subtask: 1, nextSeq: 5 }]);
    await writer.notifyCheckpointComplete(3);
    expect(visibleParts(dir)).toHaveLength(5);
  });

  it('restoring an older checkpoint retracts the output newer checkpoints committed', async () => {
    const dir = outDir();
    const rs = records(30);
    const ctx = cpContext();
    const writer = await openTwoPhase<unknown>({ path: dir, bufferBytes: 1 }, ctx);
    const states: SinkState[] = [];
    for (const [k, from] of [0, 10, 20].entries()) {
      for (const r of rs.slice(from, from + 10)) writer.write(r);
      writer.snapshotState(k + 1);
      states.push(unionState([ctx]));
      await writer.notifyCheckpointComplete(k + 1);
    }
    writer.write({ uncommitted: true });
    await writer.flush();
    expect(visibleRecords(dir)).toEqual(rs);
    expect(hiddenFiles(dir)).toEqual(['.part-0-3.jsonl.inprogress']);

    // The newest checkpoint is lost: restore checkpoint 1, which covers rs[0..9] only.
    const restoredCtx = cpContext({ restoredState: states[0] });
    const restored = await openTwoPhase<unknown>({ path: dir, bufferBytes: 1 }, restoredCtx);
    expect(readdirSync(dir)).toEqual(['part-0-0.jsonl']);
    expect(visibleRecords(dir)).toEqual(rs.slice(0, 10));
    expect(restoredCtx.counters.get('rolledBackFiles')).toBe(2);

    // The replay: exactly once again, numbered after every part seen before the restore.
    for (const r of rs.slice(10)) restored.write(r);
    restored.snapshotState(4);
    expect(seqOf(restoredCtx)).toEqual([{ subtask: 0, nextSeq: 5 }]);
    await restored.notifyCheckpointComplete(4);
    await restored.finish();
    restored.snapshotState(5);
    await restored.notifyCheckpointComplete(5);
    expect(readdirSync(dir).sort()).toEqual(['part-0-0.jsonl', 'part-0-4.jsonl']);
    expect(visibleRecords(dir)).toEqual(rs);
  });

  it('restoring the latest checkpoint retracts nothing', async () => {
    const dir = outDir();
    const ctx = cpContext();
    const writer = await openTwoPhase<unknown>({ path: dir, bufferBytes: 1 }, ctx);
    writer.write({ a: 1 });
    writer.snapshotState(1);
    await writer.notifyCheckpointComplete(1);
    writer.write({ a: 2 });
    writer.snapshotState(2);
    const state = unionState([ctx]); // notification of 2 never arrives
    const restoredCtx = cpContext({ restoredState: state });
    await (await openTwoPhase<unknown>({ path: dir }, restoredCtx)).abort();
    expect(visibleRecords(dir)).toEqual([{ a: 1 }, { a: 2 }]);
    expect(restoredCtx.counters.get('rolledBackFiles') ?? 0).toBe(0);
  });

  it('retracts the output of old indices beyond the new parallelism, and keeps their watermarks', async () => {
    const dir = outDir();
    const open3 = (i: number, restoredState?: SinkState) =>
      openTwoPhase<unknown>(
        { path: dir, bufferBytes: 1 },
        cpContext({ subtaskIndex: i, parallelism: 3, ...(restoredState && { restoredState }) }),
      );
    // Run A at parallelism 3: checkpoint 1, then checkpoint 2 commits more under every index.
    const ctxsA = [0, 1, 2].map((i) => cpContext({ subtaskIndex: i, parallelism: 3 }));
    const a = await Promise.all(
      ctxsA.map((c) => openTwoPhase<unknown>({ path: dir, bufferBytes: 1 }, c)),
    );
    a.forEach((w, i) => w.write({ a: i, cp: 1 }));
    a.forEach((w) => w.snapshotState(1));
    const cp1 = unionState(ctxsA);
    for (const w of a) await w.notifyCheckpointComplete(1);
    a.forEach((w, i) => w.write({ a: i, cp: 2 }));
    a.forEach((w) => w.snapshotState(2));
    for (const w of a) await w.notifyCheckpointComplete(2);
    expect(visibleParts(dir)).toHaveLength(6);

    // Run B restores checkpoint 1 at parallelism 1: the one subtask owns all three indices.
    const ctxB = cpContext({ restoredState: cp1 });
    const b = await openTwoPhase<unknown>({ path: dir, bufferBytes: 1 }, ctxB);
    expect(visibleParts(dir).sort()).toEqual([
      'part-0-0.jsonl',
      'part-1-0.jsonl',
      'part-2-0.jsonl',
    ]);
    expect(ctxB.counters.get('rolledBackFiles')).toBe(3);
    b.write({ b: 0 });
    b.snapshotState(3);
    // Indices 1 and 2 are carried: numbered after every part seen (their retracted 1s).
    expect(seqOf(ctxB)).toEqual([
      { subtask: 0, nextSeq: 3 },
      { subtask: 1, nextSeq: 2 },
      { subtask: 2, nextSeq: 2 },
    ]);
    const cp3 = unionState([ctxB]);
    await b.notifyCheckpointComplete(3);

    // Run C restores checkpoint 3 at parallelism 3 and commits more under index 2...
    const c = await Promise.all([0, 1, 2].map((i) => open3(i, cp3)));
    c[2]!.write({ c: 2 });
    await c[2]!.finish();
    await c[0]!.finish();
    await c[1]!.finish();
    c.forEach((w) => w.snapshotState(4));
    for (const w of c) await w.notifyCheckpointComplete(4);
    expect(visibleParts(dir)).toContain('part-2-2.jsonl');

    // ...and run D restores checkpoint 3 again at parallelism 2: index 2 (owned by subtask 0)
    // is retracted to its carried watermark.
    const ctxsD = [0, 1].map((i) =>
      cpContext({ subtaskIndex: i, parallelism: 2, restoredState: cp3 }),
    );
    const d = await Promise.all(ctxsD.map((x) => openTwoPhase<unknown>({ path: dir }, x)));
    expect(ctxsD[0]!.counters.get('rolledBackFiles')).toBe(1);
    expect(visibleRecords(dir)).toEqual([
      { a: 0, cp: 1 },
      { b: 0 },
      { a: 1, cp: 1 },
      { a: 2, cp: 1 },
    ]);
    await Promise.all(d.map((w) => w.abort()));
  });

  it('restores state from before the watermarks without retracting anything', async () => {
    const dir = outDir();
    const ctx = cpContext();
    const writer = await openTwoPhase<unknown>({ path: dir, bufferBytes: 1 }, ctx);
    writer.write({ a: 1 });
    writer.snapshotState(1);
    const legacy = { [PENDING_STATE]: pendingOf(ctx) }; // no SEQ_STATE list at all
    await writer.notifyCheckpointComplete(1);
    writer.write({ a: 2 });
    writer.snapshotState(2);
    await writer.notifyCheckpointComplete(2);
    writer.write({ uncommitted: true });
    await writer.flush();

    const restoredCtx = cpContext({ restoredState: legacy });
    const restored = await openTwoPhase<unknown>({ path: dir, bufferBytes: 1 }, restoredCtx);
    expect(readdirSync(dir).sort()).toEqual(['part-0-0.jsonl', 'part-0-1.jsonl']);
    expect(restoredCtx.counters.get('rolledBackFiles') ?? 0).toBe(0);
    restored.write({ a: 3 });
    restored.snapshotState(3);
    expect(seqOf(restoredCtx)).toEqual([{ subtask: 0, nextSeq: 4 }]);
    await restored.notifyCheckpointComplete(3);
    expect(visibleRecords(dir)).toEqual([{ a: 1 }, { a: 2 }, { a: 3 }]);

    // A list with watermarks for some indices only retracts those.
    const partial = {
      [PENDING_STATE]: [],
      [SEQ_STATE]: [{ subtask: 1, nextSeq: 0 }],
    };
    const other = cpContext({ subtaskIndex: 1, parallelism: 2 });
    const writer1 = await openTwoPhase<unknown>({ path: dir, bufferBytes: 1 }, other);
    writer1.write({ b: 1 });
    await writer1.finish();
    writer1.snapshotState(4);
    await writer1.notifyCheckpointComplete(4);
    const both = [0, 1].map((i) =>
      cpContext({ subtaskIndex: i, parallelism: 2, restoredState: partial }),
    );
    for (const x of both) await (await openTwoPhase<unknown>({ path: dir }, x)).abort();
    expect(visibleRecords(dir)).toEqual([{ a: 1 }, { a: 2 }, { a: 3 }]);
  });

  it('rejects malformed or inconsistent watermarks', async () => {
    const attempt = async (state: SinkState) => {
      const writer = FileSink.jsonl({ path: outDir() }).createWriter(
        cpContext({ restoredState: state }),
      );
      return (await writer.open().catch((e: unknown) => e)) as EddyError;
    };
    const part = {
      checkpointId: 1,
      inProgress: '.part-0-3.jsonl.inprogress',
      final: 'part-0-3.jsonl',
    };
    for (const [state, message] of [
      [{ [SEQ_STATE]: [{ subtask: 0, nextSeq: -1 }] }, /file-sink-seq.*malformed.*-1/],
      [{ [SEQ_STATE]: [{ subtask: '0', nextSeq: 1 }] }, /malformed/],
      [{ [SEQ_STATE]: [null] }, /malformed element: null/],
      [
        {
          [SEQ_STATE]: [
            { subtask: 0, nextSeq: 1 },
            { subtask: 0, nextSeq: 2 },
          ],
        },
        /conflicting next sequence numbers 1 and 2 for subtask index 0/,
      ],
      [
        { [PENDING_STATE]: [part], [SEQ_STATE]: [{ subtask: 0, nextSeq: 3 }] },
        /file-sink-pending.*part-0-3\.jsonl.*not below.*3/,
      ],
    ] as const) {
      const error = await attempt(state);
      expect(error.code).toBe('EDDY_CHECKPOINT_CORRUPT');
      expect(error.message).toMatch(message);
    }
    // The same watermark twice is harmless.
    const same = { subtask: 0, nextSeq: 4 };
    const writer = FileSink.jsonl({ path: outDir() }).createWriter(
      cpContext({ restoredState: { [PENDING_STATE]: [part], [SEQ_STATE]: [same, same] } }),
    );
    const error = (await writer.open().catch((e: unknown) => e)) as EddyError;
    expect(error.message).toMatch(/part-0-3.*missing/); // got past the watermarks
  });

  it('rejects a malformed restored element instead of renaming arbitrary paths', async () => {
    const bad = { checkpointId: 1, inProgress: '.x.inprogress', final: '../escape.jsonl' };
    const writer = FileSink.jsonl({ path: outDir() }).createWriter(
      cpContext({ restoredState: { [PENDING_STATE]: [bad] } }),
    );
    const error = (await writer.open().catch((e: unknown) => e)) as EddyError;
    expect(error.code).toBe('EDDY_CHECKPOINT_CORRUPT');
    expect(error.message).toContain('escape');
  });

  it('without checkpointing the hooks do nothing and a restore leaves files alone', async () => {
    const dir = outDir();
    const first = await openWriter<unknown>({ path: dir, bufferBytes: 1 });
    first.write({ leftover: true }); // a crashed run's hidden file
    const state = { [PENDING_STATE]: [] };
    const ctx = createTestContext({ restoredState: state });
    const writer = (await openWriter<unknown>({ path: dir }, ctx)) as TwoPhaseWriter<unknown>;
    expect(hiddenFiles(dir)).toEqual(['.part-0-0.jsonl.inprogress']);
    writer.write({ a: 1 });
    writer.snapshotState(1);
    await writer.notifyCheckpointComplete(1);
    expect(visibleParts(dir)).toEqual([]);
    await writer.finish();
    expect(readdirSync(dir).sort()).toEqual(['.part-0-0.jsonl.inprogress', 'part-0-1.jsonl']);
    await first.abort();
  });

  /*
   * Crash simulation. An old run at parallelism 1..3 writes records and takes checkpoints (a
   * checkpoint completes only when every subtask snapshotted it; its notifications may reach
   * any subset of subtasks before the crash); it may reach end of input and a final
   * checkpoint. Then it crashes: writers are dropped (some aborted first), the directory and
   * the states of all completed checkpoints survive. A new run at parallelism 1..4 restores
   * the union lists of one of them, chosen at random (an older one as after a fallback past a
   * corrupted checkpoint; or the latest one without the watermark list, as written before it
   * existed), receives again every record the restored checkpoint does not cover (as a
   * replaying source re-emits them) plus new ones, and ends with a final checkpoint.
   * Throughout, visible parts never change once visible (names never come back with other
   * content), hold whole records, hold no duplicate, and hold only records of completed
   * checkpoints; once the new run has opened they hold exactly the records of the restored
   * checkpoint (output committed after it is retracted); at the end they hold every record
   * exactly once and no hidden file is left.
   */
  it('survives crashes and restores at any parallelism with exactly-once output', async () => {
    const checkpointArb = fc.record({
      kind: fc.constant('checkpoint' as const),
      snapshotMask: fc.integer({ min: 0, max: 7 }),
      completes: fc.boolean(),
      notifyMask: fc.integer({ min: 0, max: 7 }),
    });
    const writeArb = fc.record({
      kind: fc.constant('write' as const),
      subtask: fc.nat(2),
      count: fc.integer({ min: 0, max: 12 }),
    });
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          oldParallelism: fc.integer({ min: 1, max: 3 }),
          ops: fc.array(fc.oneof({ arbitrary: writeArb, weight: 3 }, checkpointArb), {
            maxLength: 14,
          }),
          finalCheckpoint: fc.option(checkpointArb, { nil: undefined }),
          abortMask: fc.integer({ min: 0, max: 7 }),
          restoreChoice: fc.nat(),
          legacyState: fc.boolean(),
          newParallelism: fc.integer({ min: 1, max: 4 }),
          freshCount: fc.integer({ min: 0, max: 20 }),
          midCheckpoint: fc.boolean(),
          rollBytes: fc.integer({ min: 30, max: 400 }),
          bufferBytes: fc.integer({ min: 1, max: 150 }),
        }),
        async (c) => {
          const dir = outDir();
          const options: FileSinkOptions = {
            path: dir,
            rollBytes: c.rollBytes,
            bufferBytes: c.bufferBytes,
          };
          const record = (id: number) => ({ id, pad: 'x'.repeat(id % 9) });

          // Invariants checked after every step. `covered`: ids a completed checkpoint covers.
          let covered = new Set<number>();
          const seen = new Map<string, string>();
          const check = () => {
            const ids: number[] = [];
            for (const name of visibleParts(dir)) {
              const content = readFileSync(join(dir, name), 'utf8');
              const before = seen.get(name);
              if (before !== undefined) expect(content).toBe(before); // immutable once visible
              seen.set(name, content);
              expect(content.endsWith('\n')).toBe(true);
              for (const line of content.slice(0, -1).split('\n')) {
                ids.push((JSON.parse(line) as { id: number }).id);
              }
            }
            expect(new Set(ids).size).toBe(ids.length);
            for (const id of ids) expect(covered.has(id)).toBe(true);
          };

          // One checkpoint across `writers`: snapshot the masked subtasks, complete only if
          // all snapshotted, notify the masked ones. Returns the union state if completed.
          let cp = 0;
          const checkpoint = async (
            writers: readonly TwoPhaseWriter<unknown>[],
            ctxs: readonly TestConnectorContext[],
            written: readonly number[],
            op: { snapshotMask: number; completes: boolean; notifyMask: number },
          ): Promise<SinkState | undefined> => {
            cp++;
            const all = (1 << writers.length) - 1;
            writers.forEach((w, i) => {
              if (op.snapshotMask & (1 << i)) w.snapshotState(cp);
            });
            check();
            if ((op.snapshotMask & all) !== all || !op.completes) return undefined;
            const union = unionState(ctxs);
            covered = new Set(written);
            for (const [i, w] of writers.entries()) {
              if (op.notifyMask & (1 << i)) await w.notifyCheckpointComplete(cp);
              check();
            }
            return union;
          };

          // The old run, up to the crash.
          const oldCtxs = Array.from({ length: c.oldParallelism }, (_, i) =>
            cpContext({ subtaskIndex: i, parallelism: c.oldParallelism }),
          );
          const oldWriters: TwoPhaseWriter<unknown>[] = [];
          for (const ctx of oldCtxs) oldWriters.push(await openTwoPhase(options, ctx));
          const written: number[] = [];
          // Every completed checkpoint: its union state and the records it covers.
          const completed: { state: SinkState; covered: Set<number> }[] = [];
          const takeCheckpoint = async (op: Parameters<typeof checkpoint>[3]) => {
            const state = await checkpoint(oldWriters, oldCtxs, written, op);
            if (state !== undefined) completed.push({ state, covered });
          };
          for (const op of c.ops) {
            if (op.kind === 'write') {
              const w = oldWriters[op.subtask % c.oldParallelism]!;
              for (let k = 0; k < op.count; k++) {
                w.write(record(written.length));
                written.push(written.length);
              }
            } else {
              await takeCheckpoint(op);
            }
            check();
          }
          if (c.finalCheckpoint !== undefined) {
            for (const w of oldWriters) await w.finish();
            check();
            await takeCheckpoint(c.finalCheckpoint);
          }
          for (const [i, w] of oldWriters.entries()) if (c.abortMask & (1 << i)) await w.abort();
          check();
          const hiddenAtCrash = hiddenFiles(dir);
          const visibleAtCrash = visibleParts(dir);

          // The checkpoint to restore: any completed one; without watermarks only the latest
          // (an older one then re-emits output a newer one committed, as before watermarks).
          let restoredUnion: SinkState | undefined;
          let restoredCovered = new Set<number>();
          if (completed.length > 0) {
            const chosen = c.legacyState
              ? completed[completed.length - 1]!
              : completed[c.restoreChoice % completed.length]!;
            restoredCovered = chosen.covered;
            restoredUnion = c.legacyState
              ? { [PENDING_STATE]: chosen.state[PENDING_STATE]! }
              : chosen.state;
          }

          // The new run: restore, replay what the restored checkpoint does not cover, go on.
          const replay = written.filter((id) => !restoredCovered.has(id));
          const fresh = Array.from({ length: c.freshCount }, (_, k) => written.length + k);
          const newCtxs = Array.from({ length: c.newParallelism }, (_, i) =>
            cpContext({
              subtaskIndex: i,
              parallelism: c.newParallelism,
              ...(restoredUnion === undefined ? {} : { restoredState: restoredUnion }),
            }),
          );
          const newWriters: TwoPhaseWriter<unknown>[] = [];
          for (const ctx of newCtxs) {
            newWriters.push(await openTwoPhase(options, ctx));
            check(); // `covered` is still that of the latest checkpoint, a superset
          }
          // Every subtask has opened: output after the restored checkpoint is retracted.
          covered = restoredCovered;
          check();
          const visibleAfterOpen = visibleParts(dir);
          const retracted = visibleAtCrash.filter((name) => !visibleAfterOpen.includes(name));
          const rolledBack = newCtxs.reduce(
            (sum, ctx) => sum + (ctx.counters.get('rolledBackFiles') ?? 0),
            0,
          );
          expect(rolledBack).toBe(retracted.length);
          if (restoredUnion !== undefined) {
            const ids = (visibleRecords(dir) as { id: number }[]).map((r) => r.id);
            expect(ids.sort((a, b) => a - b)).toEqual([...restoredCovered].sort((a, b) => a - b));
          } else {
            expect(retracted).toEqual([]);
          }
          const toWrite = [...replay, ...fresh];
          const writtenAfter: number[] = [...covered];
          const half = c.midCheckpoint ? Math.floor(toWrite.length / 2) : -1;
          const all = (1 << c.newParallelism) - 1;
          for (const [k, id] of toWrite.entries()) {
            if (k === half) {
              await checkpoint(newWriters, newCtxs, writtenAfter, {
                snapshotMask: all,
                completes: true,
                notifyMask: all,
              });
            }
            newWriters[id % c.newParallelism]!.write(record(id));
            writtenAfter.push(id);
          }
          check();
          for (const w of newWriters) await w.finish();
          check();
          await checkpoint(newWriters, newCtxs, writtenAfter, {
            snapshotMask: all,
            completes: true,
            notifyMask: all,
          });

          const visibleIds = (visibleRecords(dir) as { id: number }[]).map((r) => r.id);
          expect(visibleIds.sort((a, b) => a - b)).toEqual([...written, ...fresh]);
          if (restoredUnion !== undefined) expect(hiddenFiles(dir)).toEqual([]);
          // Without a completed checkpoint the new run starts afresh and must leave the old
          // run's hidden files alone (it cannot tell them from another job's): only those stay.
          else for (const name of hiddenFiles(dir)) expect(hiddenAtCrash).toContain(name);
        },
      ),
      { numRuns: 100 },
    );
  });
});
