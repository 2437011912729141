/**
 * Exactly-once under failures, in one thread (fast enough for many random schedules):
 * faults injected at random records make the job restart from its latest completed
 * checkpoint; the committed output must equal the uninterrupted run's exactly.
 */

import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { defineJob, runJobInThread } from '../../src/api/job.js';
import { FileSink, GeneratorSource } from '../../src/connectors/index.js';
import { ValueStateDescriptor } from '../../src/state/descriptors.js';
import type { ValueState } from '../../src/state/types.js';
import { readParts, sorted } from './helpers.js';

interface Event {
  user: string;
  amount: number;
}

/**
 * Keys live in 50-record blocks; with subtask boundaries on block edges each key comes from
 * one source subtask, so its records arrive in a fixed order and the output is exact.
 */
const event = (i: number): Event => ({ user: `k${Math.floor(i / 50)}`, amount: (i % 7) + 1 });

const job = (count: number, output: string, faults: Set<number>, rate: number) => {
  let seen = 0;
  return defineJob({
    name: 'faulty-sum',
    build(env) {
      env
        .fromSource(GeneratorSource.of({ count, generate: event, ratePerSecond: rate }), {
          uid: 'gen',
        })
        // Faults only in subtask 0: a failed subtask stops at once, so every fault is its own
        // failure (faults in other subtasks could fire while the first failure is torn down).
        .process<Event>(
          () => {
            let subtask = -1;
            return {
              open(ctx) {
                subtask = ctx.task.subtaskIndex;
              },
              processElement(e, _ctx, out) {
                if (subtask === 0 && faults.delete(++seen)) {
                  throw new Error(`injected fault at record ${seen}`);
                }
                out.collect(e);
              },
            };
          },
          { uid: 'faulty', name: 'faulty' },
        )
        .keyBy((e) => e.user)
        .process(
          () => {
            let sum: ValueState<number>;
            return {
              open(ctx) {
                sum = ctx.getState(new ValueStateDescriptor<number>('sum', { defaultValue: 0 }));
              },
              processElement(e, ctx, out) {
                const total = (sum.value() ?? 0) + e.amount;
                sum.update(total);
                out.collect({ user: ctx.currentKey, total });
              },
            };
          },
          { uid: 'sum' },
        )
        .sinkTo(FileSink.jsonl({ path: output }), { uid: 'out' });
    },
  });
};

const reference = (count: number): string[] => {
  const sums = new Map<string, number>();
  return Array.from({ length: count }, (_, i) => {
    const e = event(i);
    const total = (sums.get(e.user) ?? 0) + e.amount;
    sums.set(e.user, total);
    return JSON.stringify({ user: e.user, total });
  });
};

const tmp = () => mkdtempSync(join(tmpdir(), 'eddy-eo-'));

describe('exactly-once with injected faults', () => {
  it('20+ faults at random records: committed output equals the uninterrupted run', async () => {
    const count = 120_000;
    // 24 faults in subtask 0's first 60,000 records (it processes at least that many in
    // all, so every point is reached), ~2,500 apart with random jitter: far enough apart
    // that checkpoints complete between them, so restarts resume from checkpoints.
    const [jitter] = fc.sample(
      fc.array(fc.integer({ min: 0, max: 1500 }), { minLength: 24, maxLength: 24 }),
      {
        numRuns: 1,
        seed: 42,
      },
    );
    const faults = new Set(jitter!.map((j, k) => 1000 + k * 2400 + j));
    const output = join(tmp(), 'out');
    const logs: string[] = [];
    const result = await runJobInThread(
      job(count, output, faults, 100_000),
      { parallelism: 2 },
      {
        checkpoint: { intervalMs: 5, dir: join(tmp(), 'chk') },
        restart: { kind: 'fixed-delay', attempts: 100, delayMs: 0 },
        log: (l) => logs.push(l),
      },
    );
    expect(result.restarts).toBe(24);
    const restarts = logs.filter((l) => l.includes('restarting from'));
    expect(restarts).toHaveLength(24);
    for (const l of restarts) expect(l).toMatch(/injected fault at record \d+/);
    // Most restarts resume from a checkpoint, not from the beginning.
    expect(restarts.filter((l) => l.includes('restarting from checkpoint')).length).toBeGreaterThan(
      12,
    );
    expect(sorted(readParts(output))).toEqual(sorted(reference(count)));
  });

  it('random fault schedules at random parallelism (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 4 }),
        fc.uniqueArray(fc.integer({ min: 1, max: 1050 }), { maxLength: 5 }),
        async (p, points) => {
          // Subtask boundaries floor(i * count / p) fall on 50-record key blocks for p in 1..4.
          const count = 4200;
          const output = join(tmp(), 'out');
          const result = await runJobInThread(
            job(count, output, new Set(points), 100_000),
            { parallelism: p },
            {
              checkpoint: { intervalMs: 5, dir: join(tmp(), 'chk') },
              restart: { kind: 'fixed-delay', attempts: 20, delayMs: 0 },
              log: () => {},
            },
          );
          expect(result.restarts).toBe(points.length);
          expect(sorted(readParts(output))).toEqual(sorted(reference(count)));
        },
      ),
      { numRuns: 8, seed: 7 },
    );
  });

  it('without checkpoints a fault fails the job with the cause', async () => {
    const output = join(tmp(), 'out');
    await expect(
      runJobInThread(job(1000, output, new Set([10]), 1e9), { parallelism: 2 }),
    ).rejects.toThrow(
      /operator 'faulty' \(uid faulty\), subtask 1\/2 failed in processElement at record #10: injected fault/,
    );
  });
});
