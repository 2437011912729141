import { describe, expect, it } from 'vitest';
import { carriedTimestamp } from '../runtime/record-time.js';
import { memorySink, memorySource } from '../runtime/testing/memory.js';
import { WatermarkStrategy } from '../runtime/watermarks.js';
import { TumblingEventTimeWindows } from '../runtime/windows/index.js';
import { ValueStateDescriptor } from '../state/descriptors.js';
import type { ValueState } from '../state/types.js';
import { StreamExecutionEnvironment } from './environment.js';
import { defineJob, runJobInThread } from './job.js';

const sumJob = (events: { user: string; amount: number }[], out: unknown[]) =>
  defineJob({
    name: 'sum',
    build(env) {
      env
        .fromSource(memorySource(events), { uid: 'events' })
        .keyBy((e) => e.user)
        .process(
          () => {
            let s: ValueState<number>;
            return {
              open(ctx) {
                s = ctx.getState(new ValueStateDescriptor<number>('s', { defaultValue: 0 }));
              },
              processElement(e, ctx, o) {
                const t = (s.value() ?? 0) + e.amount;
                s.update(t);
                o.collect({ user: ctx.currentKey, total: t });
              },
            };
          },
          { uid: 'sum' },
        )
        .sinkTo(memorySink(out), { uid: 'out' });
    },
  });

describe('DataStream in one thread', () => {
  it('keyed running sums are exact at every parallelism', async () => {
    const events = Array.from({ length: 5000 }, (_, i) => ({
      user: `u${(i * 7) % 97}`,
      amount: i % 13,
    }));
    const finals = async (p: number) => {
      const out: { user: string; total: number }[] = [];
      await runJobInThread(sumJob(events, out), { parallelism: p });
      expect(out).toHaveLength(events.length);
      const last = new Map<string, number>();
      for (const r of out) last.set(r.user, Math.max(last.get(r.user) ?? 0, r.total));
      return [...last.entries()].sort();
    };
    const expected = new Map<string, number>();
    for (const e of events) expected.set(e.user, (expected.get(e.user) ?? 0) + e.amount);
    for (const p of [1, 2, 3, 4]) expect(await finals(p)).toEqual([...expected.entries()].sort());
  });
});

describe('uid warnings', () => {
  type E = { k: string; n: number };
  const build = (withUids: boolean) => {
    const env = new StreamExecutionEnvironment({ jobName: 'w', parallelism: 1 });
    const uid = (u: string) => (withUids ? { uid: u } : {});
    env
      .fromSource(memorySource<E>([{ k: 'a', n: 1 }]), uid('src'))
      .map((e) => e, uid('m'))
      .filter(() => true)
      .process<E>({ processElement: (e, _ctx, out) => out.collect(e) })
      .process<E>(
        {
          initializeState() {},
          processElement: (e, _ctx, out) => out.collect(e),
        },
        uid('held'),
      )
      .keyBy((e) => e.k)
      .reduce((a, b) => ({ k: a.k, n: a.n + b.n }), uid('sum'))
      .sinkTo(memorySink([]), uid('out'));
    return env.uidWarnings();
  };

  it('names each stateful operator without a uid, once, and how to set one', () => {
    const warnings = build(false);
    expect(warnings).toHaveLength(4); // source, process with operator state, reduce, sink
    expect(warnings.join('\n')).not.toMatch(/'map'|'filter'|operator 'process' .*process-3/);
    const reduce = warnings.find((w) => w.includes("'reduce'"));
    expect(reduce).toMatch(/uid 'reduce-5' is derived from its position/);
    expect(reduce).toMatch(/\{ uid: 'reduce' \}/);
  });

  it('is silent when stateful operators have uids', () => {
    expect(build(true)).toEqual([]);
  });

  it('a run logs the warnings once per operator, through its log', async () => {
    const lines: string[] = [];
    const job = defineJob({
      name: 'uid-warning-run',
      build(env) {
        env.fromSource(memorySource([1, 2]), { uid: 'nums' }).sinkTo(memorySink([]));
      },
    });
    await runJobInThread(job, { parallelism: 1 }, { log: (l) => lines.push(l) });
    await runJobInThread(job, { parallelism: 1 }, { log: (l) => lines.push(l) });
    expect(lines.filter((l) => l.startsWith('warning:'))).toEqual([
      expect.stringMatching(/stateful operator '.*' has no uid/),
    ]);
  });
});

describe('timestamps at build time', () => {
  interface Ev {
    user: string;
    ts: number;
  }
  const source = (env: StreamExecutionEnvironment) =>
    env.fromSource(memorySource<Ev>([]), {
      uid: 'events',
      watermarks: WatermarkStrategy.forMonotonousTimestamps<Ev>().withTimestampAssigner(
        (e) => e.ts,
      ),
    });

  it('map, flatMap, process and windows carry timestamps; only edges that need them carry them', () => {
    const env = new StreamExecutionEnvironment({ jobName: 't', parallelism: 1 });
    const events = source(env);
    const ts = events.timestampOf!;
    expect(events.filter(() => true).timestampOf).toBe(ts);
    const mapped = events.map((e) => e.user);
    expect(mapped.timestampOf).toBe(carriedTimestamp);
    expect(mapped.filter(() => true).timestampOf).toBe(carriedTimestamp);
    expect(events.flatMap<string>((e, o) => o.collect(e.user)).timestampOf).toBe(carriedTimestamp);
    expect(events.process<string>({ processElement: () => {} }).timestampOf).toBe(carriedTimestamp);
    // The pipeline builds (it used to throw 'the stream has no timestamps').
    const windowed = mapped
      .keyBy((u) => u)
      .window(TumblingEventTimeWindows.of(1000))
      .reduce((a) => a);
    expect(windowed.timestampOf).toBe(carriedTimestamp);
    // assignTimestamps still overrides: a function of the record again, nothing carried.
    const reassigned = windowed.map((u) => ({ u, t: 1 })).assignTimestamps((r) => r.t);
    expect(reassigned.inputs.every((i) => i.timestamps === undefined)).toBe(true);
    windowed.sinkTo(memorySink([]));
    const g = env.buildGraph();
    const into = (name: string) => g.edges.filter((e) => g.nodes[e.target]!.name.startsWith(name));
    // Out of the source (map, filter... chained to it): its assigner runs there, nothing carried.
    expect(g.edges.filter((e) => e.source === 0).every((e) => !e.timestamps)).toBe(true);
    // keyBy after map: the hash edge carries the map's timestamps.
    const windowEdges = into('window');
    expect(windowEdges.length).toBe(1);
    expect(windowEdges[0]!.timestamps).toBe(carriedTimestamp);
    // A map after the window reads carried timestamps; a sink needs none.
    expect(into('map').some((e) => e.timestamps === carriedTimestamp)).toBe(true);
    expect(into('memory-sink').map((e) => e.timestamps)).toEqual([undefined]);
  });

  it('a stream without a watermark strategy carries nothing', () => {
    const env = new StreamExecutionEnvironment({ jobName: 't', parallelism: 1 });
    const mapped = env.fromSource(memorySource<Ev>([])).map((e) => e.user);
    expect(mapped.timestampOf).toBeUndefined();
    mapped.keyBy((u) => u).reduce((a) => a);
    expect(env.buildGraph().edges.every((e) => e.timestamps === undefined)).toBe(true);
  });
});
