/**
 * Incremental checkpoints end to end, in one thread: a keyed job with value, map and list
 * state (and deletions) checkpoints incrementally every few ms, crashes and restarts from its
 * latest incremental checkpoint, and is stopped and resumed from its latest checkpoint at
 * random parallelisms in the same checkpoint directory (so restored chains are added to across
 * rescales). Its output must be exactly the uninterrupted run's, and the checkpoints must
 * really be incremental: deltas on top of shared base blocks. With the heap backend and with
 * the disk backend (its stores in a local directory that must be empty after every run).
 */

import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { defineJob, runJobInThread } from '../../src/api/job.js';
import { CheckpointStorage, isIncremental } from '../../src/checkpoint/index.js';
import { FileSink, GeneratorSource } from '../../src/connectors/index.js';
import type { RestoreSource } from '../../src/runtime/protocol.js';
import {
  ListStateDescriptor,
  MapStateDescriptor,
  ValueStateDescriptor,
} from '../../src/state/descriptors.js';
import type { ListState, MapState, ValueState } from '../../src/state/types.js';
import { readParts } from './helpers.js';

const COUNT = 5000;
const MAX_PARALLELISM = 16;
const USERS = 211;

interface Event {
  id: number;
  user: string;
  amount: number;
}

const event = (i: number): Event => ({
  id: i,
  user: `u${(i * 7919) % USERS}`,
  amount: (i % 5) + 1,
});

const tmp = () => mkdtempSync(join(tmpdir(), 'eddy-inc-'));

interface Row {
  user: string;
  id: number;
  total: number;
  seen: number;
  recent: number[];
}

/**
 * Per user: a running total that resets (state cleared: a deletion) when it passes 40, how many
 * events of each amount were seen (map state), and the last three ids (list state).
 */
const step = (
  state: { total: number | undefined; seen: Map<number, number>; recent: number[] },
  e: Event,
) => {
  let total = (state.total ?? 0) + e.amount;
  const reset = total > 40;
  if (reset) total = 0;
  const count = (state.seen.get(e.amount) ?? 0) + 1;
  const recent = [...state.recent, e.id].slice(-3);
  return { total, reset, count, recent };
};

const job = (output: string, crashAt: number | undefined, ratePerSecond = 25_000) => {
  let processed = 0;
  return defineJob({
    name: 'incremental-sum',
    build(env) {
      env
        .fromSource(GeneratorSource.of({ count: COUNT, generate: event, ratePerSecond }), {
          uid: 'gen',
          // One source subtask: each key's events then arrive in id order at any parallelism,
          // so the expected output is one sequential computation.
          parallelism: 1,
        })
        .keyBy((e) => e.user)
        .process(
          () => {
            let total: ValueState<number>;
            let seen: MapState<number, number>;
            let recent: ListState<number>;
            return {
              open(ctx) {
                total = ctx.getState(new ValueStateDescriptor<number>('total'));
                seen = ctx.getState(new MapStateDescriptor<number, number>('seen'));
                recent = ctx.getState(new ListStateDescriptor<number>('recent'));
              },
              processElement(e: Event, ctx, out) {
                if (crashAt !== undefined && ++processed === crashAt) throw new Error('crash');
                const next = step(
                  { total: total.value(), seen: new Map(seen.entries()), recent: recent.get() },
                  e,
                );
                if (next.reset) total.clear();
                else total.update(next.total);
                seen.put(e.amount, next.count);
                if (next.count % 4 === 0) seen.delete(e.amount);
                recent.update(next.recent);
                out.collect({
                  user: ctx.currentKey as string,
                  id: e.id,
                  total: next.total,
                  seen: next.count,
                  recent: next.recent,
                } satisfies Row);
              },
            };
          },
          { uid: 'sum' },
        )
        .sinkTo(FileSink.jsonl({ path: output }), { uid: 'out' });
    },
  });
};

/** The uninterrupted run's rows, computed here without eddy. */
const expected = (): Row[] => {
  const users = new Map<
    string,
    { total: number | undefined; seen: Map<number, number>; recent: number[] }
  >();
  const rows: Row[] = [];
  for (let i = 0; i < COUNT; i++) {
    const e = event(i);
    const s = users.get(e.user) ?? { total: undefined, seen: new Map(), recent: [] };
    const next = step(s, e);
    s.total = next.reset ? undefined : next.total;
    s.seen.set(e.amount, next.count);
    if (next.count % 4 === 0) s.seen.delete(e.amount);
    s.recent = next.recent;
    users.set(e.user, s);
    rows.push({ user: e.user, id: e.id, total: next.total, seen: next.count, recent: next.recent });
  }
  return rows;
};

const byId = (rows: Row[]) => [...rows].sort((a, b) => a.id - b.id);

/** Per backend: the number of runs of the property. */
const backends: Array<['heap' | 'disk', number]> = [
  ['heap', 5],
  ['disk', 5],
];

describe.each(backends)('incremental checkpoints, %s backend', (backend, numRuns) => {
  it('crashes and rescales through incremental checkpoints give the uninterrupted output', async () => {
    const want = byId(expected());
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            stopAfterMs: fc.integer({ min: 40, max: 120 }),
            parallelism: fc.integer({ min: 1, max: 6 }),
            crashAt: fc.option(fc.integer({ min: 50, max: 600 }), { nil: undefined }),
          }),
          { minLength: 1, maxLength: 3 },
        ),
        fc.integer({ min: 1, max: 6 }),
        async (steps, lastParallelism) => {
          const output = join(tmp(), 'out');
          const chk = join(tmp(), 'chk');
          const local = join(tmp(), 'local');
          const storage = new CheckpointStorage(chk);
          let restore: RestoreSource | undefined;
          for (const s of [
            ...steps,
            { stopAfterMs: undefined, parallelism: lastParallelism, crashAt: undefined },
          ]) {
            await runJobInThread(
              job(output, s.crashAt),
              { parallelism: s.parallelism, maxParallelism: MAX_PARALLELISM },
              {
                restore,
                stateBackend: backend,
                localStateDir: local,
                checkpoint: { intervalMs: 5, dir: chk, mode: 'incremental', retain: 2 },
                restart: { kind: 'fixed-delay', attempts: 3, delayMs: 0 },
                log: () => {},
                onCheckpoint: () => {},
                onMaster: (m) => {
                  if (s.stopAfterMs !== undefined) setTimeout(() => m.stop(), s.stopAfterMs);
                },
              },
            );
            if (backend === 'disk') expect(readdirSync(local)).toEqual([]);
            const latest = await storage.latestValid();
            if (latest === undefined) {
              restore = undefined;
              continue;
            }
            const metadata = await storage.loadMetadata(latest.dir);
            const keyed = metadata.operators
              .find((o) => o.uid === 'sum')!
              .subtasks.flatMap((t) => (t.keyed ? [t.keyed] : []));
            expect(keyed.every(isIncremental)).toBe(true);
            restore = { dir: latest.dir, metadata };
          }
          const got = byId(readParts(output).map((l) => JSON.parse(l) as Row));
          expect(got).toEqual(want);
          expect(readdirSync(join(chk, 'blocks')).length).toBeGreaterThan(0);
        },
      ),
      { numRuns, seed: 11 },
    );
  });

  // Deterministic, unlike how many checkpoints a random stop time lets through on a loaded
  // machine: a run stopped once its third checkpoint completed, with input still flowing.
  it('writes deltas on top of shared base blocks, not a base every time', async () => {
    const chk = join(tmp(), 'chk');
    let completed = 0;
    let control: { stop(): void } | undefined;
    const result = await runJobInThread(
      job(join(tmp(), 'out'), undefined, 2_000),
      { parallelism: 2, maxParallelism: MAX_PARALLELISM },
      {
        stateBackend: backend,
        localStateDir: join(tmp(), 'local'),
        checkpoint: { intervalMs: 20, dir: chk, mode: 'incremental', retain: 2 },
        log: () => {},
        onCheckpoint: (c) => {
          if (!c.savepoint && ++completed === 3) control?.stop();
        },
        onMaster: (m) => {
          control = m;
        },
      },
    );
    expect(result.stopped).toBe(true);
    const storage = new CheckpointStorage(chk);
    const latest = (await storage.latestValid())!;
    const metadata = await storage.loadMetadata(latest.dir);
    const keyed = metadata.operators
      .find((o) => o.uid === 'sum')!
      .subtasks.flatMap((t) => (t.keyed ? [t.keyed] : []));
    expect(keyed.every(isIncremental)).toBe(true);
    expect(keyed.some((k) => isIncremental(k) && k.chains.some((c) => c.blocks.length > 1))).toBe(
      true,
    );
  });
});
