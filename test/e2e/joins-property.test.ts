/**
 * Window join, coGroup, interval join and the unbounded keyed join under random parallelism
 * and random rescale schedules, in one thread (as rescale-property.test.ts): run, stop with a
 * savepoint at a random moment, restore at a random parallelism (sometimes with a crash and
 * restart in between), repeat; the final output must equal a straightforward model (nested
 * loops per key, and per window or interval) of the whole input.
 */

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import type { DataStream } from '../../src/api/datastream.js';
import { defineJob, type JobDefinition } from '../../src/api/job.js';
import { FileSink, GeneratorSource, hashToUnit } from '../../src/connectors/index.js';
import { WatermarkStrategy } from '../../src/runtime/watermarks.js';
import {
  EventTimeSessionWindows,
  SlidingEventTimeWindows,
  TumblingEventTimeWindows,
} from '../../src/runtime/windows/index.js';
import { readParts } from './helpers.js';
import {
  type Fault,
  runSchedule as runSteps,
  type Step,
  stepsArb as scheduleSteps,
} from './schedules.js';

interface Ev {
  id: number;
  key: string;
  ts: number;
}

const LEFTS = 1500;
const RIGHTS = 1200;
const KEYS = 9;
/** Each record is at most this late relative to its split's order: never late for windows. */
const JITTER = 6;
const MAX_PARALLELISM = 8;

const left = (i: number): Ev => ({
  id: i,
  key: `k${Math.floor(hashToUnit(i, 1) * KEYS)}`,
  ts: i * 3 + Math.floor(hashToUnit(i, 2) * JITTER),
});
// Right keys include three the left never has: windows with only right records.
const right = (i: number): Ev => ({
  id: i,
  key: `k${Math.floor(hashToUnit(i, 3) * (KEYS + 3))}`,
  ts: i * 4 + Math.floor(hashToUnit(i, 4) * JITTER),
});

type Windows =
  | { kind: 'tumbling'; size: number }
  | { kind: 'sliding'; size: number; slide: number }
  | { kind: 'session'; gap: number };

const assignerOf = (w: Windows) =>
  w.kind === 'tumbling'
    ? TumblingEventTimeWindows.of(w.size)
    : w.kind === 'sliding'
      ? SlidingEventTimeWindows.of(w.size, w.slide)
      : EventTimeSessionWindows.withGap(w.gap);

const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'eddy-jp-'));
  dirs.push(d);
  return d;
};
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const timed = () =>
  WatermarkStrategy.forBoundedOutOfOrderness<Ev>(JITTER).withTimestampAssigner((e) => e.ts);

/**
 * A job over the two generated inputs; `wire` adds the operators under test and their sinks
 * (under `out`), calling `crash()` once per call of a user function it wants crashable.
 */
const job = (
  out: string,
  fault: Fault,
  wire: (
    ls: DataStream<Ev>,
    rs: DataStream<Ev>,
    crash: () => void,
    sink: (name: string) => FileSinkOf,
  ) => void,
) => {
  let seen = 0;
  return defineJob({
    name: 'joins-property',
    build(env) {
      const ls = env.fromSource(
        GeneratorSource.of({ count: LEFTS, generate: left, ratePerSecond: 10_000 }),
        { uid: 'lefts', watermarks: timed() },
      );
      const rs = env.fromSource(
        GeneratorSource.of({ count: RIGHTS, generate: right, ratePerSecond: 10_000 }),
        { uid: 'rights', watermarks: timed() },
      );
      const crash = () => {
        if (fault && ++seen === fault.at) throw new Error('injected crash');
      };
      wire(ls, rs, crash, (name) => FileSink.jsonl<string>({ path: join(out, name) }));
    },
  });
};
type FileSinkOf = ReturnType<typeof FileSink.jsonl<string>>;

const windowJobs = (windows: Windows) => (out: string, fault: Fault) =>
  job(out, fault, (ls, rs, crash, sink) => {
    ls.join(rs)
      .where((l) => l.key)
      .equalTo((r) => r.key)
      .window(assignerOf(windows))
      .apply(
        (l, r) => {
          crash();
          return `${l.id}:${r.id}`;
        },
        { uid: 'join' },
      )
      .sinkTo(sink('join'), { uid: 'join-out' });
    ls.coGroup(rs)
      .where((l) => l.key)
      .equalTo((r) => r.key)
      .window(assignerOf(windows))
      .apply(
        (lefts, rights, o) => {
          const key = (lefts[0] ?? rights[0])!.key;
          o.collect(`${key}|${ids(lefts)}|${ids(rights)}`);
        },
        { uid: 'cogroup' },
      )
      .sinkTo(sink('cogroup'), { uid: 'cogroup-out' });
  });

type Backend = 'heap' | 'disk';
/** Runs per state backend: the disk backend is slower, so fewer. */
const BACKENDS = [
  { backend: 'heap' as const, runs: 4 },
  { backend: 'disk' as const, runs: 2 },
];

const stepsArb = scheduleSteps({
  maxParallelism: 6,
  maxCrashAt: 3000,
  stopMs: { min: 20, max: 120 },
  steps: { min: 0, max: 3 },
});

/** Runs the schedule (see schedules.ts); returns the output directory. */
const runSchedule = async (
  make: (out: string, fault: Fault) => JobDefinition,
  steps: readonly Step[],
  lastParallelism: number,
  backend: Backend,
): Promise<string> => {
  const out = join(tmp(), 'out');
  await runSteps((fault) => make(out, fault), steps, lastParallelism, {
    maxParallelism: MAX_PARALLELISM,
    tmp,
    backend,
  });
  return out;
};

/** Ids in ascending order: after a restore the arrival order within a window may differ. */
const ids = (es: readonly Ev[]) =>
  es
    .map((e) => e.id)
    .sort((a, b) => a - b)
    .join(',');

// The model: windows computed directly, then nested loops per key and window.

/** [start, end) of every window holding `ts`, for the non-merging kinds. */
const windowsOf = (w: Windows, ts: number): [number, number][] => {
  if (w.kind === 'tumbling') {
    const start = Math.floor(ts / w.size) * w.size;
    return [[start, start + w.size]];
  }
  if (w.kind !== 'sliding') throw new Error('sessions merge');
  const out: [number, number][] = [];
  for (let s = Math.floor(ts / w.slide) * w.slide; s > ts - w.size; s -= w.slide) {
    out.push([s, s + w.size]);
  }
  return out;
};

/** Per key, the groups of records (both sides) that share a window. */
const groups = (w: Windows, ls: Ev[], rs: Ev[]): { lefts: Ev[]; rights: Ev[] }[] => {
  const tagged = [
    ...ls.map((e) => ({ e, side: 0 as const })),
    ...rs.map((e) => ({ e, side: 1 as const })),
  ];
  const byWindow = new Map<string, { lefts: Ev[]; rights: Ev[] }>();
  const add = (id: string, t: (typeof tagged)[number]) => {
    const g = byWindow.get(id) ?? { lefts: [], rights: [] };
    (t.side === 0 ? g.lefts : g.rights).push(t.e);
    byWindow.set(id, g);
  };
  if (w.kind === 'session') {
    // A session: records of a key sorted by time, a new one where the gap to the session's
    // end (its latest timestamp + gap) is exceeded; [a, a+g) and [b, b+g) merge when b <= a+g.
    const byKey = new Map<string, typeof tagged>();
    for (const t of tagged) byKey.set(t.e.key, [...(byKey.get(t.e.key) ?? []), t]);
    for (const [key, ts] of byKey) {
      ts.sort((a, b) => a.e.ts - b.e.ts);
      let session = 0;
      let end = Number.NEGATIVE_INFINITY;
      for (const t of ts) {
        if (t.e.ts > end) session++;
        end = Math.max(end, t.e.ts + w.gap);
        add(`${key}@${session}`, t);
      }
    }
  } else {
    for (const t of tagged) {
      for (const [s] of windowsOf(w, t.e.ts)) add(`${t.e.key}@${s}`, t);
    }
  }
  return [...byWindow.values()];
};

const model = (w: Windows) => {
  const ls = Array.from({ length: LEFTS }, (_, i) => left(i));
  const rs = Array.from({ length: RIGHTS }, (_, i) => right(i));
  const joined: string[] = [];
  const grouped: string[] = [];
  for (const g of groups(w, ls, rs)) {
    for (const l of g.lefts) for (const r of g.rights) joined.push(`${l.id}:${r.id}`);
    const key = (g.lefts[0] ?? g.rights[0])!.key;
    grouped.push(`${key}|${ids(g.lefts)}|${ids(g.rights)}`);
  }
  return { joined: joined.sort(), grouped: grouped.sort() };
};

const lines = (dir: string) => readParts(dir).map((l) => JSON.parse(l) as string);

const windowsArb: fc.Arbitrary<Windows> = fc.oneof(
  fc.record({ kind: fc.constant('tumbling' as const), size: fc.integer({ min: 10, max: 200 }) }),
  fc
    .record({ slide: fc.integer({ min: 10, max: 60 }), times: fc.integer({ min: 1, max: 4 }) })
    .map(({ slide, times }) => ({ kind: 'sliding' as const, size: slide * times, slide })),
  fc.record({ kind: fc.constant('session' as const), gap: fc.integer({ min: 4, max: 20 }) }),
);

describe('window join and coGroup under random rescale schedules', () => {
  it.each(BACKENDS)(
    '$backend backend: equal the nested-loop model at random parallelism, across stops, restores and crashes',
    async ({ backend, runs }) => {
      await fc.assert(
        fc.asyncProperty(
          windowsArb,
          stepsArb,
          fc.integer({ min: 1, max: 6 }),
          async (windows, steps, lastParallelism) => {
            const out = await runSchedule(windowJobs(windows), steps, lastParallelism, backend);
            const expected = model(windows);
            expect(lines(join(out, 'join')).sort()).toEqual(expected.joined);
            expect(lines(join(out, 'cogroup')).sort()).toEqual(expected.grouped);
          },
        ),
        { numRuns: runs, seed: backend === 'heap' ? 17 : 29 },
      );
    },
  );
});

// The keyed joins: interval join and the unbounded regular join.

interface IntervalBounds {
  lower: number;
  upper: number;
  lowerExclusive: boolean;
  upperExclusive: boolean;
}

/** The regular join's key: finer than `key`, so the unbounded cross product stays small. */
const fineKey = (e: Ev) => `${e.key}/${e.id % 20}`;

const keyedJobs = (b: IntervalBounds) => (out: string, fault: Fault) =>
  job(out, fault, (ls, rs, crash, sink) => {
    let between = ls
      .keyBy((l) => l.key)
      .intervalJoin(rs.keyBy((r) => r.key))
      .between(b.lower, b.upper);
    if (b.lowerExclusive) between = between.lowerBoundExclusive();
    if (b.upperExclusive) between = between.upperBoundExclusive();
    between
      .process<string>(
        {
          processElement(l, r, _ctx, o) {
            crash();
            o.collect(`${l.id}:${r.id}`);
          },
        },
        { uid: 'interval' },
      )
      .sinkTo(sink('interval'), { uid: 'interval-out' });
    ls.keyBy(fineKey)
      .join(rs.keyBy(fineKey))
      .apply(
        (l, r) => {
          crash();
          return `${l.id}:${r.id}`;
        },
        { uid: 'keyed-join' },
      )
      .sinkTo(sink('keyed'), { uid: 'keyed-out' });
  });

const keyedModel = (b: IntervalBounds) => {
  const lo = b.lower + (b.lowerExclusive ? 1 : 0);
  const hi = b.upper - (b.upperExclusive ? 1 : 0);
  const ls = Array.from({ length: LEFTS }, (_, i) => left(i));
  const rs = Array.from({ length: RIGHTS }, (_, i) => right(i));
  const interval: string[] = [];
  const keyed: string[] = [];
  for (const l of ls) {
    for (const r of rs) {
      if (l.key === r.key && l.ts + lo <= r.ts && r.ts <= l.ts + hi)
        interval.push(`${l.id}:${r.id}`);
      if (fineKey(l) === fineKey(r)) keyed.push(`${l.id}:${r.id}`);
    }
  }
  return { interval: interval.sort(), keyed: keyed.sort() };
};

const boundsArb: fc.Arbitrary<IntervalBounds> = fc
  .record({
    lower: fc.integer({ min: -40, max: 20 }),
    width: fc.integer({ min: 2, max: 60 }),
    lowerExclusive: fc.boolean(),
    upperExclusive: fc.boolean(),
  })
  .map(({ lower, width, ...flags }) => ({ lower, upper: lower + width, ...flags }));

describe('interval join and keyed join under random rescale schedules', () => {
  it.each(BACKENDS)(
    '$backend backend: equal the nested-loop model at random parallelism, across stops, restores and crashes',
    async ({ backend, runs }) => {
      await fc.assert(
        fc.asyncProperty(
          boundsArb,
          stepsArb,
          fc.integer({ min: 1, max: 6 }),
          async (bounds, steps, lastParallelism) => {
            const out = await runSchedule(keyedJobs(bounds), steps, lastParallelism, backend);
            const expected = keyedModel(bounds);
            expect(lines(join(out, 'interval')).sort()).toEqual(expected.interval);
            expect(lines(join(out, 'keyed')).sort()).toEqual(expected.keyed);
          },
        ),
        { numRuns: runs, seed: backend === 'heap' ? 17 : 29 },
      );
    },
  );
});
