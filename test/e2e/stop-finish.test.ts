/**
 * Stop versus end of input: a stop with savepoint is not the end of the input, so an operator's
 * `finish` (which emits what it holds back for the end) must not run at the stop; it runs once,
 * at the real end after the restore. Before, the stop ran it and the restored job ran it again.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { defineJob, runJobInThread } from '../../src/api/job.js';
import { CheckpointStorage } from '../../src/checkpoint/index.js';
import { FileSink, GeneratorSource } from '../../src/connectors/index.js';
import { TumblingEventTimeWindows, WatermarkStrategy } from '../../src/index.js';
import type { RestoreSource } from '../../src/runtime/protocol.js';
import type { OperatorListState } from '../../src/state/types.js';
import { readParts } from './helpers.js';

const COUNT = 20_000;
const tmp = () => mkdtempSync(join(tmpdir(), 'eddy-sf-'));

/** Counts records in operator state and emits one summary line from `finish`. */
const job = (output: string) =>
  defineJob({
    name: 'count-at-end',
    build(env) {
      const numbers = env.fromSource(
        GeneratorSource.of({ count: COUNT, generate: (i) => ({ n: i }), ratePerSecond: 40_000 }),
        { uid: 'gen' },
      );
      numbers
        .process<{ summary: number }>(
          () => {
            let count = 0;
            let state: OperatorListState<number>;
            return {
              initializeState(ctx) {
                state = ctx.operatorState.getListState<number>('count', 'split');
                count = ctx.isRestored ? state.get().reduce((a, b) => a + b, 0) : 0;
              },
              snapshotState() {
                state.update([count]);
              },
              processElement() {
                count++;
              },
              finish(out) {
                out.collect({ summary: count });
              },
            };
          },
          { uid: 'count', parallelism: 1 },
        )
        .sinkTo(FileSink.jsonl({ path: join(output, 'summary') }), { uid: 'summary-out' });
      numbers.sinkTo(FileSink.jsonl({ path: join(output, 'records') }), { uid: 'records-out' });
    },
  });

describe('stop versus end of input', () => {
  it('a stop with savepoint does not run finish; the restored job runs it once at the end', async () => {
    const output = tmp();
    const savepoints = tmp();
    let stopped = false;
    let master: { stop(dir?: string): void } | undefined;
    const first = await runJobInThread(
      job(output),
      { parallelism: 2 },
      {
        checkpoint: { intervalMs: 50, dir: join(tmp(), 'chk') },
        log: () => {},
        onCheckpoint: (s) => {
          if (!stopped && !s.savepoint) {
            stopped = true;
            master?.stop(savepoints);
          }
        },
        onMaster: (m) => {
          master = m;
        },
      },
    );
    expect(first.stopped).toBe(true);
    expect(first.savepoint).toBeDefined();
    // The stop emitted no summary: finish did not run.
    expect(readParts(join(output, 'summary'))).toEqual([]);
    const partial = readParts(join(output, 'records')).length;
    expect(partial).toBeLessThan(COUNT);

    const metadata = await new CheckpointStorage(first.savepoint!).loadMetadata(first.savepoint!);
    const restore: RestoreSource = { dir: first.savepoint!, metadata };
    await runJobInThread(
      job(output),
      { parallelism: 3 },
      { restore, checkpoint: { intervalMs: 50, dir: join(tmp(), 'chk') }, log: () => {} },
    );
    expect(readParts(join(output, 'summary'))).toEqual([JSON.stringify({ summary: COUNT })]);
    const ns = readParts(join(output, 'records')).map((l) => (JSON.parse(l) as { n: number }).n);
    expect(ns.sort((a, b) => a - b)).toEqual(Array.from({ length: COUNT }, (_, i) => i));
  });

  it('stop --drain ends the input for real: every window fires before the savepoint', async () => {
    const output = tmp();
    const savepoints = tmp();
    let master: { stop(dir?: string, o?: { drain?: boolean }): void } | undefined;
    let stopped = false;
    const drainJob = defineJob({
      name: 'drain',
      build(env) {
        const numbers = env.fromSource(
          GeneratorSource.of({ count: COUNT, generate: (i) => ({ n: i }), ratePerSecond: 40_000 }),
          {
            uid: 'gen',
            // Event time = n ms: windows of 1000 records each.
            watermarks: WatermarkStrategy.forMonotonousTimestamps<{
              n: number;
            }>().withTimestampAssigner((r) => r.n),
          },
        );
        numbers
          .keyBy((r) => r.n % 2)
          .window(TumblingEventTimeWindows.of(1000))
          .aggregate(
            {
              createAccumulator: () => 0,
              add: (_r: { n: number }, acc: number) => acc + 1,
              getResult: (acc: number) => acc,
              merge: (a: number, b: number) => a + b,
            },
            { uid: 'count-window' },
          )
          .sinkTo(FileSink.jsonl({ path: join(output, 'windows') }), { uid: 'windows-out' });
        numbers.sinkTo(FileSink.jsonl({ path: join(output, 'records') }), { uid: 'records-out' });
      },
    });
    const result = await runJobInThread(
      drainJob,
      { parallelism: 2 },
      {
        checkpoint: { intervalMs: 50, dir: join(tmp(), 'chk') },
        log: () => {},
        onCheckpoint: (s) => {
          if (!stopped && !s.savepoint) {
            stopped = true;
            master?.stop(savepoints, { drain: true });
          }
        },
        onMaster: (m) => {
          master = m;
        },
      },
    );
    expect(result.savepoint).toBeDefined();
    const records = readParts(join(output, 'records')).length;
    expect(records).toBeGreaterThan(0);
    expect(records).toBeLessThan(COUNT);
    // MAX_WATERMARK fired every window, the last partial ones included: every record counted.
    const counted = readParts(join(output, 'windows')).reduce((a, l) => a + Number(l), 0);
    expect(counted).toBe(records);
  });
});
