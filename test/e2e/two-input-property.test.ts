/**
 * Two-input operators under random rescale schedules, in one thread: run, stop with a
 * savepoint at a random moment, restore at a random parallelism (sometimes crashing and
 * restarting in between), repeat; the output must equal a direct computation.
 *
 * The job reads one generated stream of events, rule changes and profile changes:
 * - a keyed broadcast operator scores each event with the rule valid at its event time (rules
 *   kept in broadcast state, events held in keyed state until the watermark passes them);
 * - a keyed co-process operator connects the scores with the profiles (both keyed by user)
 *   and keeps a running total per user, named with the profile valid at the event's time.
 * Both wait for the watermark, so the output is one exact answer whatever the schedule:
 * broadcast state must reach every new subtask, and keyed state and timers of both inputs
 * must move with their key groups.
 */

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { defineJob } from '../../src/api/job.js';
import { FileSink, GeneratorSource } from '../../src/connectors/index.js';
import { WatermarkStrategy } from '../../src/runtime/watermarks.js';
import {
  ListStateDescriptor,
  MapStateDescriptor,
  ValueStateDescriptor,
} from '../../src/state/descriptors.js';
import type { ListState, MapState, ValueState } from '../../src/state/types.js';
import { readParts } from './helpers.js';
import { type Fault, runSchedule, stepsArb } from './schedules.js';

type Input =
  | { kind: 'event'; id: number; ts: number; user: string; amount: number }
  | { kind: 'rule'; ts: number; factor: number }
  | { kind: 'profile'; ts: number; user: string; name: string };
type Event = Extract<Input, { kind: 'event' }>;
type Rule = Extract<Input, { kind: 'rule' }>;
type Profile = Extract<Input, { kind: 'profile' }>;
interface Scored {
  id: number;
  ts: number;
  user: string;
  value: number;
}
interface Row {
  id: number;
  user: string;
  total: number;
  name: string;
}

const COUNT = 6000;
const MAX_PARALLELISM = 8;
const USERS = 31;

const input = (i: number): Input => {
  if (i % 25 === 0) return { kind: 'rule', ts: i, factor: ((i / 25) % 5) + 1 };
  if (i % 25 === 7) return { kind: 'profile', ts: i, user: `u${(i * 3) % USERS}`, name: `n${i}` };
  return { kind: 'event', id: i, ts: i, user: `u${i % USERS}`, amount: (i % 7) + 1 };
};

/** The latest entry of a time-ordered history at or before `ts` (histories are small). */
const validAt = <V>(history: Iterable<[number, V]>, ts: number): V | undefined => {
  let best: [number, V] | undefined;
  for (const e of history) if (e[0] <= ts && (best === undefined || e[0] > best[0])) best = e;
  return best?.[1];
};

const rules = new MapStateDescriptor<number, number>('rules');

const job = (output: string, fault: Fault) => {
  let seen = 0;
  return defineJob({
    name: 'two-input-rescaled',
    build(env) {
      const all = env.fromSource(
        GeneratorSource.of({ count: COUNT, generate: input, ratePerSecond: 20_000 }),
        {
          uid: 'gen',
          watermarks: WatermarkStrategy.forMonotonousTimestamps<Input>().withTimestampAssigner(
            (e) => e.ts,
          ),
        },
      );
      const events = all.filter((e): e is Event => e.kind === 'event');
      const ruleStream = all.filter((e): e is Rule => e.kind === 'rule');
      const profiles = all.filter((e): e is Profile => e.kind === 'profile');
      const scored = events
        .keyBy((e) => e.user)
        .connect(ruleStream.broadcast(rules))
        .process<Scored>(
          () => {
            let held: ListState<Event>;
            return {
              open(ctx) {
                held = ctx.getState(new ListStateDescriptor<Event>('held'));
              },
              processElement(e, ctx) {
                if (fault && ++seen === fault.at) throw new Error('injected crash');
                held.add(e);
                ctx.timerService.registerEventTimeTimer(e.ts);
              },
              processBroadcastElement(r, ctx) {
                ctx.getBroadcastState(rules).put(r.ts, r.factor);
              },
              onTimer(t, ctx, out) {
                const factor = validAt(ctx.getBroadcastState(rules).entries(), t) ?? 0;
                const keep: Event[] = [];
                for (const e of held.get()) {
                  if (e.ts === t)
                    out.collect({ id: e.id, ts: e.ts, user: e.user, value: e.amount * factor });
                  else keep.push(e);
                }
                held.update(keep);
              },
            };
          },
          { uid: 'score' },
        );
      scored
        .keyBy((s) => s.user)
        .connect(profiles.keyBy((p) => p.user))
        .process<Row>(
          () => {
            let held: ListState<Scored>;
            let names: MapState<number, string>;
            let total: ValueState<number>;
            return {
              open(ctx) {
                held = ctx.getState(new ListStateDescriptor<Scored>('held'));
                names = ctx.getState(new MapStateDescriptor<number, string>('names'));
                total = ctx.getState(
                  new ValueStateDescriptor<number>('total', { defaultValue: 0 }),
                );
              },
              processElement1(s, ctx) {
                held.add(s);
                ctx.timerService.registerEventTimeTimer(s.ts);
              },
              processElement2(p) {
                names.put(p.ts, p.name);
              },
              onTimer(t, ctx, out) {
                const keep: Scored[] = [];
                for (const s of held.get()) {
                  if (s.ts !== t) {
                    keep.push(s);
                    continue;
                  }
                  const next = (total.value() ?? 0) + s.value;
                  total.update(next);
                  out.collect({
                    id: s.id,
                    user: ctx.currentKey,
                    total: next,
                    name: validAt(names.entries(), t) ?? '-',
                  });
                }
                held.update(keep);
              },
            };
          },
          { uid: 'totals' },
        )
        .sinkTo(FileSink.jsonl({ path: output }), { uid: 'out' });
    },
  });
};

/** The answer, computed directly from the inputs in event-time order. */
const expected = (): Row[] => {
  const ruleHistory: [number, number][] = [];
  const names = new Map<string, [number, string][]>();
  const totals = new Map<string, number>();
  const rows: Row[] = [];
  for (let i = 0; i < COUNT; i++) {
    const e = input(i);
    if (e.kind === 'rule') ruleHistory.push([e.ts, e.factor]);
    else if (e.kind === 'profile')
      names.set(e.user, [...(names.get(e.user) ?? []), [e.ts, e.name]]);
    else {
      const total = (totals.get(e.user) ?? 0) + e.amount * (validAt(ruleHistory, e.ts) ?? 0);
      totals.set(e.user, total);
      rows.push({
        id: e.id,
        user: e.user,
        total,
        name: validAt(names.get(e.user) ?? [], e.ts) ?? '-',
      });
    }
  }
  return rows;
};

const dirs: string[] = [];
const tmp = () => {
  const dir = mkdtempSync(join(tmpdir(), 'eddy-2in-'));
  dirs.push(dir);
  return dir;
};
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
const byId = (a: Row, b: Row) => a.id - b.id;

describe('two-input operators under random rescale schedules', () => {
  const want = expected();

  it.each([
    { backend: 'heap' as const, runs: 4 },
    { backend: 'disk' as const, runs: 2 },
  ])(
    '$backend backend: broadcast state and keyed connect give the direct computation',
    async ({ backend, runs }) => {
      await fc.assert(
        fc.asyncProperty(
          stepsArb({
            maxParallelism: MAX_PARALLELISM,
            maxCrashAt: 400,
            stopMs: { min: 30, max: 150 },
            steps: { min: 1, max: 3 },
          }),
          fc.integer({ min: 1, max: MAX_PARALLELISM }),
          async (steps, lastParallelism) => {
            const output = join(tmp(), 'out');
            await runSchedule((fault) => job(output, fault), steps, lastParallelism, {
              maxParallelism: MAX_PARALLELISM,
              tmp,
              backend,
            });
            const got = readParts(output).map((l) => JSON.parse(l) as Row);
            expect(got.sort(byId)).toEqual(want);
          },
        ),
        { numRuns: runs, seed: 17 },
      );
    },
  );
});
