import { describe, expect, it } from 'vitest';
import { memorySink, memorySource } from '../runtime/testing/memory.js';
import { ValueStateDescriptor } from '../state/descriptors.js';
import type { ValueState } from '../state/types.js';
import { defineJob, runJobInThread } from './job.js';

const sumJob = (events: { user: string; amount: number }[], out: unknown[]) =>
  defineJob({
    name: 'sum',
    build(env) {
      env
        .fromSource(memorySource(events))
        .keyBy((e) => e.user)
        .process(() => {
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
        })
        .sinkTo(memorySink(out));
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
