/**
 * connect and the broadcast state pattern, end to end in one thread at several parallelisms:
 * exact outputs against a direct computation, build-time errors that name the operators, and
 * the run-time key type check.
 */
import { describe, expect, it } from 'vitest';
import { GeneratorSource } from '../connectors/generator-source.js';
import { EddyError, InvalidArgumentError } from '../core/errors.js';
import { memorySink, memorySource } from '../runtime/testing/memory.js';
import { WatermarkStrategy } from '../runtime/watermarks.js';
import {
  ListStateDescriptor,
  MapStateDescriptor,
  ValueStateDescriptor,
} from '../state/descriptors.js';
import type { ListState, ValueState } from '../state/types.js';
import { StreamExecutionEnvironment } from './environment.js';
import { defineJob, runJobInThread } from './job.js';

interface Customer {
  id: number;
  name: string;
}
interface Order {
  order: number;
  customer: number;
  amount: number;
}

const customers: Customer[] = Array.from({ length: 50 }, (_, i) => ({ id: i, name: `c${i}` }));
const orders: Order[] = Array.from({ length: 2000 }, (_, i) => ({
  order: i,
  customer: (i * 7) % 50,
  amount: (i % 13) + 1,
}));

/** Orders enriched with their customer's name, whichever side arrives first. */
const enrichJob = (out: string[]) =>
  defineJob({
    name: 'enrich',
    build(env) {
      const cs = env.fromSource(memorySource(customers), { uid: 'customers' });
      const os = env.fromSource(memorySource(orders, { batch: 7 }), { uid: 'orders' });
      os.keyBy((o) => o.customer)
        .connect(cs.keyBy((c) => c.id))
        .process<string>(
          () => {
            let name: ValueState<string>;
            let waiting: ListState<Order>;
            return {
              open(ctx) {
                name = ctx.getState(new ValueStateDescriptor<string>('name'));
                waiting = ctx.getState(new ListStateDescriptor<Order>('waiting'));
              },
              processElement1(o, ctx, collect) {
                expect(ctx.currentKey).toBe(o.customer);
                const n = name.value();
                if (n === undefined) waiting.add(o);
                else collect.collect(`${o.order}:${n}`);
              },
              processElement2(c, _ctx, collect) {
                name.update(c.name);
                for (const o of waiting.get()) collect.collect(`${o.order}:${c.name}`);
                waiting.clear();
              },
            };
          },
          { uid: 'enrich' },
        )
        .sinkTo(memorySink(out), { uid: 'out' });
    },
  });

describe('connect', () => {
  it('map over two inputs of different types gives every record of both, once', async () => {
    const nums = Array.from({ length: 300 }, (_, i) => i);
    const words = Array.from({ length: 200 }, (_, i) => `w${i}`);
    for (const p of [1, 3]) {
      const out: string[] = [];
      await runJobInThread(
        defineJob({
          name: 'co-map',
          build(env) {
            env
              .fromSource(memorySource(nums))
              .connect(env.fromSource(memorySource(words)))
              .map(
                (n) => `n${n}`,
                (w) => w.toUpperCase(),
              )
              .sinkTo(memorySink(out));
          },
        }),
        { parallelism: p },
      );
      expect(out.sort()).toEqual(
        [...nums.map((n) => `n${n}`), ...words.map((w) => w.toUpperCase())].sort(),
      );
    }
  });

  it('flatMap and process see both inputs; fields set in open are shared by both methods', async () => {
    const out: string[] = [];
    await runJobInThread(
      defineJob({
        name: 'co-process',
        build(env) {
          env
            .fromSource(memorySource([1, 2, 3]))
            .connect(env.fromSource(memorySource(['a', 'b'])))
            .process<string>({
              prefix: '',
              open() {
                this.prefix = '>';
              },
              processElement1(n, _ctx, o) {
                o.collect(`${this.prefix}${n * 10}`);
              },
              processElement2(s, _ctx, o) {
                o.collect(`${this.prefix}${s}`);
              },
            } as import('../runtime/two-input-functions.js').CoProcessFunction<
              number,
              string,
              string
            > & {
              prefix: string;
            })
            .connect(env.fromSource(memorySource([7])))
            .flatMap<string>(
              (s, o) => o.collect(s),
              (n, o) => {
                o.collect(`x${n}`);
                o.collect(`y${n}`);
              },
            )
            .sinkTo(memorySink(out));
        },
      }),
      { parallelism: 2 },
    );
    expect(out.sort()).toEqual(['>10', '>20', '>30', '>a', '>b', 'x7', 'y7']);
  });

  it('keyed connect: one keyed state per key for both inputs, exact at p = 1, 2, 4', async () => {
    const byId = new Map(customers.map((c) => [c.id, c.name]));
    const expected = orders.map((o) => `${o.order}:${byId.get(o.customer)}`).sort();
    for (const p of [1, 2, 4]) {
      const out: string[] = [];
      await runJobInThread(enrichJob(out), { parallelism: p, maxParallelism: 16 });
      expect(out.sort()).toEqual(expected);
    }
  });

  it("an input without event time does not hold back the other input's watermark", async () => {
    // Input 2 never ends and has no watermarks; event-time timers of input 1 must still fire.
    const events = Array.from({ length: 40 }, (_, i) => ({ k: i % 4, ts: i * 100 }));
    const fired: number[] = [];
    let control: { stop(dir?: string): void } | undefined;
    const result = await runJobInThread(
      defineJob({
        name: 'idle-side',
        build(env) {
          const endless = env.fromSource(
            GeneratorSource.of({ generate: (i) => i % 4, ratePerSecond: 20 }),
            { uid: 'endless' },
          );
          env
            .fromSource(memorySource(events), {
              uid: 'events',
              watermarks: WatermarkStrategy.forMonotonousTimestamps<{
                k: number;
                ts: number;
              }>().withTimestampAssigner((e) => e.ts),
            })
            .keyBy((e) => e.k)
            .connect(endless.keyBy((n) => n))
            .process<number>(
              {
                processElement1(e, ctx) {
                  ctx.timerService.registerEventTimeTimer(e.ts);
                },
                processElement2() {},
                onTimer(t, _ctx, out) {
                  out.collect(t);
                },
              },
              { uid: 'timers' },
            )
            .sinkTo(
              {
                defaultName: 'stop-when-done',
                createWriter: () => ({
                  async open() {},
                  write(t: number) {
                    fired.push(t);
                    // The last event's own timer waits for a later watermark: all but it fire.
                    if (fired.length === events.length - 1) control?.stop();
                  },
                  flush() {},
                  async finish() {},
                  async abort() {},
                }),
              },
              { uid: 'out' },
            );
        },
      }),
      { parallelism: 2 },
      {
        log: () => {},
        onMaster: (m) => {
          control = m;
        },
      },
    );
    expect(result.stopped).toBe(true);
    expect(fired.sort((a, b) => a - b)).toEqual(events.map((e) => e.ts));
  });

  it('keeps each input its own event time: a union of two assigners, a map, no timestamps', async () => {
    type A = { k: string; at: number };
    type B = { k: string; time: number };
    const as: A[] = Array.from({ length: 20 }, (_, i) => ({ k: `k${i % 3}`, at: 1000 + i }));
    const bs: B[] = Array.from({ length: 20 }, (_, i) => ({ k: `k${i % 3}`, time: 5000 + i }));
    const plain = ['k0', 'k1'];
    const out: string[] = [];
    await runJobInThread(
      defineJob({
        name: 'stamps',
        build(env) {
          const a = env.fromSource(memorySource(as), {
            watermarks: WatermarkStrategy.forMonotonousTimestamps<A>().withTimestampAssigner(
              (e) => e.at,
            ),
          });
          const b = env
            .fromSource(memorySource(bs), {
              watermarks: WatermarkStrategy.forMonotonousTimestamps<B>().withTimestampAssigner(
                (e) => e.time,
              ),
            })
            .map((e): A => ({ k: e.k, at: -1 }));
          a.union(b)
            .keyBy((e) => e.k)
            .connect(env.fromSource(memorySource(plain)).keyBy((k) => k))
            .process<string>({
              processElement1(e, ctx, o) {
                o.collect(`1:${e.at}@${ctx.timestamp()}`);
              },
              processElement2(k, ctx, o) {
                o.collect(`2:${k}@${ctx.timestamp()}`);
              },
            })
            .sinkTo(memorySink(out));
        },
      }),
      { parallelism: 2 },
      { log: () => {} },
    );
    const expected = [
      ...as.map((e) => `1:${e.at}@${e.at}`),
      ...bs.map((e) => `1:-1@${e.time}`),
      ...plain.map((k) => `2:${k}@undefined`),
    ];
    expect(out.sort()).toEqual(expected.sort());
  });

  it('fails with a clear error when the two key selectors give different key types', async () => {
    const job = defineJob({
      name: 'mismatch',
      build(env) {
        const a = env.fromSource(memorySource([{ id: 1 }]), { uid: 'a' });
        const b = env.fromSource(memorySource([{ id: '1' }]), { uid: 'b' });
        // The key types differ: a compile-time error (connected-streams.test-d.ts) unless cast.
        const bKeyed = b.keyBy((y) => y.id) as unknown as import('./datastream.js').KeyedStream<
          { id: string },
          number
        >;
        a.keyBy((x) => x.id)
          .connect(bKeyed)
          .process({ processElement1() {}, processElement2() {} }, { name: 'join-ab', uid: 'j' })
          .sinkTo(memorySink([]));
      },
    });
    const err = await runJobInThread(job, { parallelism: 1 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EddyError);
    expect(String((err as Error).message)).toMatch(
      /join-ab.*different types: the first input gave the number key 1, the second input gave the string key "1"/s,
    );
  });

  it('refuses at build time to connect a keyed stream with a non-keyed one, naming the operators', () => {
    const env = new StreamExecutionEnvironment({ jobName: 'x', parallelism: 1 });
    const a = env.fromSource(memorySource([1]), { uid: 'nums', name: 'nums' });
    const b = env.fromSource(memorySource([2]), { uid: 'others', name: 'others' });
    // @ts-expect-error a keyed stream connects a keyed or a broadcast stream
    expect(() => a.keyBy((x) => x).connect(b)).toThrow(InvalidArgumentError);
    // @ts-expect-error see above
    expect(() => a.keyBy((x) => x).connect(b)).toThrow(/'nums'.*'others' \(uid others\)/s);
    expect(() => a.connect(b.keyBy((x) => x) as never)).toThrow(/not keyed.*'others'.*keyBy/s);
  });
});

interface Rule {
  category: string;
  factor: number;
  ts: number;
}
interface Sale {
  category: string;
  amount: number;
  ts: number;
}

const rulesDescriptor = new MapStateDescriptor<string, number>('factors');

describe('broadcast state', () => {
  const rules: Rule[] = ['a', 'b', 'c'].map((c, i) => ({ category: c, factor: i + 2, ts: 0 }));
  const sales: Sale[] = Array.from({ length: 900 }, (_, i) => ({
    category: ['a', 'b', 'c'][i % 3]!,
    amount: i,
    ts: 10 + i,
  }));
  const byTime = <T extends { ts: number }>() =>
    WatermarkStrategy.forMonotonousTimestamps<T>().withTimestampAssigner((e) => e.ts);

  it('every subtask gets every rule; keyed events read them at their event time (p = 1, 3)', async () => {
    const factor = new Map(rules.map((r) => [r.category, r.factor]));
    const expected = sales.map((s) => s.amount * factor.get(s.category)!).sort((x, y) => x - y);
    for (const p of [1, 3]) {
      const out: number[] = [];
      await runJobInThread(
        defineJob({
          name: 'rules',
          build(env) {
            const rs = env.fromSource(memorySource(rules), {
              uid: 'rules',
              watermarks: byTime<Rule>(),
            });
            env
              .fromSource(memorySource(sales), { uid: 'sales', watermarks: byTime<Sale>() })
              .keyBy((s) => s.category)
              .connect(rs.broadcast(rulesDescriptor))
              .process<number>(
                () => {
                  let held: ListState<Sale>;
                  return {
                    open(ctx) {
                      held = ctx.getState(new ListStateDescriptor<Sale>('held'));
                    },
                    processElement(s, ctx, o) {
                      // Applied when the watermark passes the sale: every rule (ts 0) is in.
                      held.add(s);
                      ctx.timerService.registerEventTimeTimer(s.ts);
                      void o;
                    },
                    onTimer(t, ctx, o) {
                      const f = ctx.getBroadcastState(rulesDescriptor).get(ctx.currentKey)!;
                      for (const s of held.get()) if (s.ts === t) o.collect(s.amount * f);
                    },
                    processBroadcastElement(r, ctx) {
                      ctx.getBroadcastState(rulesDescriptor).put(r.category, r.factor);
                    },
                  };
                },
                { uid: 'apply' },
              )
              .sinkTo(memorySink(out));
          },
        }),
        { parallelism: p },
      );
      expect(out.sort((x, y) => x - y)).toEqual(expected);
    }
  });

  it('the non-keyed form: processElement reads, processBroadcastElement writes', async () => {
    const out: string[] = [];
    await runJobInThread(
      defineJob({
        name: 'rules-plain',
        build(env) {
          const rs = env.fromSource(memorySource(rules), { watermarks: byTime<Rule>() });
          env
            .fromSource(memorySource(sales.slice(0, 30)), { watermarks: byTime<Sale>() })
            .connect(rs.broadcast(rulesDescriptor))
            .process<string>({
              processElement(s, ctx, o) {
                o.collect(
                  `${s.amount}:${ctx.timestamp()}:${ctx.getBroadcastState(rulesDescriptor).size}`,
                );
              },
              processBroadcastElement(r, ctx, o) {
                ctx.getBroadcastState(rulesDescriptor).put(r.category, r.factor);
                o.collect(`rule:${r.category}:${ctx.timestamp()}`);
              },
            })
            .sinkTo(memorySink(out));
        },
      }),
      { parallelism: 2 },
    );
    // Each of the 2 subtasks saw each rule once.
    expect(out.filter((l) => l.startsWith('rule:')).sort()).toEqual(
      ['a', 'a', 'b', 'b', 'c', 'c'].map((c) => `rule:${c}:0`),
    );
    const salesOut = out.filter((l) => !l.startsWith('rule:'));
    expect(salesOut.map((l) => Number(l.split(':')[0])).sort((x, y) => x - y)).toEqual(
      sales.slice(0, 30).map((s) => s.amount),
    );
    for (const l of salesOut) expect(Number(l.split(':')[1])).toBe(Number(l.split(':')[0]) + 10);
  });

  it('a broadcast state written from processElement fails, naming the operator and the state', async () => {
    const err = await runJobInThread(
      defineJob({
        name: 'ro',
        build(env) {
          env
            .fromSource(memorySource([1]))
            .connect(env.fromSource(memorySource([2])).broadcast(rulesDescriptor))
            .process(
              {
                processElement(_n, ctx) {
                  (
                    ctx.getBroadcastState(rulesDescriptor) as unknown as {
                      put(k: string, v: number): void;
                    }
                  ).put('x', 1);
                },
                processBroadcastElement() {},
              },
              { name: 'writes-rules' },
            )
            .sinkTo(memorySink([]));
        },
      }),
      { parallelism: 1 },
    ).catch((e: unknown) => e);
    expect(String((err as Error).message)).toMatch(
      /writes-rules.*broadcast state 'factors' is read-only in processElement/s,
    );
  });

  it('refuses an undeclared broadcast state and a broadcast() without descriptors', async () => {
    const env = new StreamExecutionEnvironment({ jobName: 'x', parallelism: 1 });
    const s = env.fromSource(memorySource([1]));
    expect(() => s.broadcast({ name: 'x' } as never)).toThrow(/MapStateDescriptor/);
    expect(() => s.broadcast(rulesDescriptor, new MapStateDescriptor('factors'))).toThrow(
      /two broadcast states are named 'factors'/,
    );
    const err = await runJobInThread(
      defineJob({
        name: 'undeclared',
        build(e) {
          e.fromSource(memorySource([1]))
            .connect(e.fromSource(memorySource([2])).broadcast(rulesDescriptor))
            .process(
              {
                processElement() {},
                processBroadcastElement(_r, ctx) {
                  ctx
                    .getBroadcastState(new MapStateDescriptor<string, number>('other'))
                    .put('a', 1);
                },
              },
              { name: 'rules-op' },
            )
            .sinkTo(memorySink([]));
        },
      }),
      { parallelism: 1 },
    ).catch((e: unknown) => e);
    expect(String((err as Error).message)).toMatch(
      /rules-op.*broadcast state 'other' was not declared.*'factors'/s,
    );
  });
});
