/**
 * The two-input operators at the operator level, where the order of the two inputs' records
 * is chosen by the test: applyToKeyedState, broadcast state through a checkpoint and a
 * restore at other parallelisms, the shared `this` of both methods, and errors.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { redistributeOperatorState } from '../../checkpoint/redistribute.js';
import { assignToKeyGroup, computeKeyGroupRange, type Key } from '../../keygroups/index.js';
import { BACKENDS, disposeBackends } from '../../state/backend.testkit.js';
import { MapStateDescriptor, ValueStateDescriptor } from '../../state/descriptors.js';
import { HeapOperatorStateStore } from '../../state/operator-state.js';
import type { OperatorStateSnapshot, ValueState } from '../../state/types.js';
import { SubtaskMetrics } from '../metrics.js';
import type { OperatorContext, Output } from '../operator.js';
import { wallClock } from '../time.js';
import type {
  KeyedBroadcastProcessFunction,
  KeyedCoProcessFunction,
} from '../two-input-functions.js';
import {
  BroadcastProcessOperator,
  KeyedBroadcastProcessOperator,
  KeyedCoProcessOperator,
} from './two-input.js';

const MAXP = 16;
const factors = new MapStateDescriptor<string, number>('factors');

const context = (
  store: HeapOperatorStateStore,
  subtaskIndex = 0,
  parallelism = 1,
  keyedState?: OperatorContext['keyedState'],
): OperatorContext => ({
  subtask: { operatorName: 'two', operatorUid: 'two', subtaskIndex, parallelism },
  maxParallelism: MAXP,
  operatorState: store,
  keyedState,
  isRestored: false,
  metrics: new SubtaskMetrics(),
  stopSignal: new AbortController().signal,
  checkpointing: true,
  jobName: 'test-job',
  clock: wallClock,
  runInMailbox: (action) => action(),
});

const collector = <T>(into: T[]): Output<T> => ({
  collect: (v) => into.push(v),
  emitWatermark() {},
  collectSide() {},
});

afterAll(disposeBackends);

describe.each(BACKENDS)('$name backend: keyed two-input operators', ({ create }) => {
  const backend = (subtask = 0, parallelism = 1) =>
    create({
      keyGroupRange: computeKeyGroupRange(MAXP, parallelism, subtask),
      maxParallelism: MAXP,
    });

  it('applyToKeyedState visits every key with that state, and its writes stick', async () => {
    type Ev = { user: Key; n: number };
    const counts = new ValueStateDescriptor<number>('count', { defaultValue: 0 });
    const out: string[] = [];
    const fn: KeyedBroadcastProcessFunction<Key, Ev, string, string> = {
      open(ctx) {
        this.count = ctx.getState(counts);
      },
      processElement(e, ctx, o) {
        const c = (this.count as ValueState<number>).value()! + e.n;
        (this.count as ValueState<number>).update(c);
        o.collect(`${JSON.stringify(ctx.currentKey)}=${c}`);
      },
      processBroadcastElement(cmd, ctx) {
        ctx.applyToKeyedState(counts, (key, state) => {
          if (cmd === 'reset') state.clear();
          else out.push(`seen ${JSON.stringify(key)}=${state.value()}`);
        });
      },
    } as KeyedBroadcastProcessFunction<Key, Ev, string, string> & { count?: unknown };
    const op = new KeyedBroadcastProcessOperator(
      fn,
      [factors],
      (e: Ev) => e.user,
      undefined,
      undefined,
    );
    await op.open(context(new HeapOperatorStateStore(), 0, 1, backend()), collector(out));
    const users: Key[] = ['a', ['t', 1], 7];
    for (const user of users) op.processRecord({ user, n: 2 });
    op.processRecord({ user: 'a', n: 1 });
    op.processRecord2('list');
    const seen = out.filter((l) => l.startsWith('seen')).sort();
    expect(seen).toEqual(['seen "a"=3', 'seen 7=2', 'seen ["t",1]=2']);
    op.processRecord2('reset');
    op.processRecord2('list');
    expect(out.filter((l) => l.startsWith('seen'))).toHaveLength(3);
    op.processRecord({ user: 'a', n: 5 });
    expect(out.at(-1)).toBe('"a"=5');
  });

  it("keyed co-process: both inputs share one key's state and timers, carried key groups or not", async () => {
    const out: string[] = [];
    const fn: KeyedCoProcessFunction<string, { k: string; v: number }, { id: string }, string> & {
      sum?: ValueState<number>;
    } = {
      open(ctx) {
        this.sum = ctx.getState(new ValueStateDescriptor<number>('sum', { defaultValue: 0 }));
      },
      processElement1(r, _ctx, o) {
        this.sum!.update(this.sum!.value()! + r.v);
        o.collect(`1:${r.k}=${this.sum!.value()}`);
      },
      processElement2(_r, ctx, o) {
        ctx.timerService.registerEventTimeTimer(10);
        o.collect(`2:${ctx.currentKey}=${this.sum!.value()}`);
      },
      onTimer(t, ctx, o) {
        o.collect(`timer ${t} ${ctx.currentKey}=${this.sum!.value()}`);
      },
    };
    const op = new KeyedCoProcessOperator(
      fn,
      'co',
      (r: { k: string }) => r.k,
      (r: { id: string }) => r.id,
      undefined,
      undefined,
    );
    await op.open(context(new HeapOperatorStateStore(), 0, 1, backend()), collector(out));
    op.processRecord({ k: 'x', v: 2 });
    op.processRecordInGroup2({ id: 'x' }, assignToKeyGroup('x', MAXP));
    op.processRecordInGroup({ k: 'y', v: 5 }, assignToKeyGroup('y', MAXP));
    op.processRecord2({ id: 'y' });
    op.processWatermark(10);
    expect(out).toEqual(['1:x=2', '2:x=2', '1:y=5', '2:y=5', 'timer 10 x=2', 'timer 10 y=5']);
  });

  it('names processElement2 and the position when the second input fails', async () => {
    const fn: KeyedCoProcessFunction<string, string, string, string> = {
      processElement1() {},
      processElement2() {
        throw new Error('boom');
      },
    };
    const op = new KeyedCoProcessOperator(
      fn,
      'co',
      (s: string) => s,
      (s: string) => s,
      undefined,
      undefined,
    );
    await op.open(context(new HeapOperatorStateStore(), 0, 1, backend()), collector([]));
    op.processRecord('a');
    expect(() => op.processRecord2('b')).toThrow(
      /subtask 1\/1 failed in processElement2 at record #2: boom/,
    );
  });
});

describe('broadcast state through checkpoints', () => {
  const rulesFn = (seen: string[]) => ({
    processElement(
      e: string,
      ctx: { getBroadcastState(d: typeof factors): { get(k: string): number | undefined } },
    ) {
      seen.push(`${e}=${ctx.getBroadcastState(factors).get(e)}`);
    },
    processBroadcastElement(
      r: [string, number],
      ctx: { getBroadcastState(d: typeof factors): { put(k: string, v: number): void } },
    ) {
      ctx.getBroadcastState(factors).put(r[0], r[1]);
    },
  });

  const open = async (store: HeapOperatorStateStore, seen: string[]) => {
    const op = new BroadcastProcessOperator(rulesFn(seen), [factors], undefined, undefined);
    await op.open(context(store), collector([]));
    return op;
  };

  it('every new subtask gets one full copy at any parallelism', async () => {
    const snapshots: OperatorStateSnapshot[] = [];
    for (let i = 0; i < 3; i++) {
      const store = new HeapOperatorStateStore();
      const op = await open(store, []);
      for (const r of [
        ['a', 1],
        ['b', 2],
        ['a', 3],
      ] as [string, number][])
        op.processRecord2(r);
      op.snapshotState(1);
      snapshots.push(store.snapshot());
    }
    for (const p of [1, 2, 5]) {
      for (const snapshot of redistributeOperatorState(snapshots, p)) {
        const seen: string[] = [];
        const op = await open(HeapOperatorStateStore.restore(snapshot), seen);
        op.processRecord('a');
        op.processRecord('b');
        op.processRecord('c');
        expect(seen).toEqual(['a=3', 'b=2', 'c=undefined']);
      }
    }
  });

  it('an empty broadcast state restores empty', async () => {
    const store = new HeapOperatorStateStore();
    const op = await open(store, []);
    op.snapshotState(1);
    const seen: string[] = [];
    const restored = await open(HeapOperatorStateStore.restore(store.snapshot()), seen);
    restored.processRecord('a');
    expect(seen).toEqual(['a=undefined']);
  });
});
