import { describe, expect, it } from 'vitest';
import { assignToKeyGroup, computeKeyGroupRange } from '../../keygroups/index.js';
import { BACKENDS } from '../../state/backend.testkit.js';
import { ValueStateDescriptor } from '../../state/descriptors.js';
import { HeapOperatorStateStore } from '../../state/operator-state.js';
import type { OperatorListState } from '../../state/types.js';
import type { KeyedProcessFunction, ProcessFunction } from '../functions.js';
import { SubtaskMetrics } from '../metrics.js';
import type { OperatorContext, Output } from '../operator.js';
import { wallClock } from '../time.js';
import { KeyedProcessOperator, ProcessOperator } from './process.js';

/** Counts records per subtask in operator list state (union mode), as a checkpoint would see it. */
const counting = (): ProcessFunction<number, number> & { seen: number } => {
  let state: OperatorListState<number>;
  return {
    seen: 0,
    initializeState(ctx) {
      state = ctx.operatorState.getListState<number>('seen', 'union');
      this.seen = ctx.isRestored ? state.get().reduce((a, b) => a + b, 0) : 0;
    },
    snapshotState() {
      state.update([this.seen]);
    },
    processElement(value, _ctx, out) {
      this.seen++;
      out.collect(value);
    },
  };
};

const context = (store: HeapOperatorStateStore, isRestored: boolean): OperatorContext => ({
  subtask: { operatorName: 'count', operatorUid: 'count', subtaskIndex: 0, parallelism: 1 },
  maxParallelism: 128,
  operatorState: store,
  keyedState: undefined,
  isRestored,
  metrics: new SubtaskMetrics(),
  stopSignal: new AbortController().signal,
  checkpointing: false,
  jobName: 'test-job',
  clock: wallClock,
  runInMailbox: (action) => action(),
});

describe('operator list state through a process function', () => {
  it('snapshots through snapshotState and comes back through initializeState', async () => {
    const out: number[] = [];
    const sink: Output<number> = {
      collect: (v) => out.push(v),
      emitWatermark() {},
      collectSide() {},
    };
    const store = new HeapOperatorStateStore();
    const op = new ProcessOperator(counting());
    await op.open(context(store, false), sink);
    for (let i = 0; i < 5; i++) op.processRecord(i);
    op.snapshotState(1);
    const snapshot = store.snapshot();
    expect(snapshot.states).toEqual([{ name: 'seen', mode: 'union', elements: [5] }]);

    const restoredStore = HeapOperatorStateStore.restore(snapshot);
    const fn = counting();
    await new ProcessOperator(fn).open(context(restoredStore, true), sink);
    expect(fn.seen).toBe(5);
    expect(out).toEqual([0, 1, 2, 3, 4]);
  });

  it('attributes a failing snapshotState to the operator', async () => {
    const op = new ProcessOperator<number, number>({
      processElement() {},
      snapshotState() {
        throw new Error('disk on fire');
      },
    });
    await op.open(context(new HeapOperatorStateStore(), false), {
      collect() {},
      emitWatermark() {},
      collectSide() {},
    });
    expect(() => op.snapshotState(1)).toThrow(
      /operator 'count' \(uid count\), subtask 1\/1 failed in snapshotState: disk on fire/,
    );
  });
});

describe.each(BACKENDS)(
  '$name backend: keyed process operator with carried key groups',
  ({ create }) => {
    type Ev = { user: string; amount: number };
    const runningSum = (): KeyedProcessFunction<string, Ev, string> => {
      let sum: { value(): number | undefined; update(v: number): void };
      return {
        open(ctx) {
          sum = ctx.getState(new ValueStateDescriptor<number>('sum', { defaultValue: 0 }));
        },
        processElement(e, ctx, out) {
          const total = (sum.value() ?? 0) + e.amount;
          sum.update(total);
          out.collect(`${ctx.currentKey}=${total}`);
        },
      };
    };
    const keyedOperator = async (subtaskIndex: number, parallelism: number) => {
      const keyedState = create({
        keyGroupRange: computeKeyGroupRange(128, parallelism, subtaskIndex),
        maxParallelism: 128,
      });
      const out: string[] = [];
      const op = new KeyedProcessOperator(runningSum(), (e: Ev) => e.user);
      await op.open(
        { ...context(new HeapOperatorStateStore(), false), keyedState },
        { collect: (v) => out.push(v), emitWatermark() {}, collectSide() {} },
      );
      return { op, out };
    };
    const events: Ev[] = ['a', 'b', 'a', 'c', 'b', 'a'].map((user, i) => ({ user, amount: i + 1 }));

    it('gives the same results as hashing the key itself', async () => {
      const hashed = await keyedOperator(0, 1);
      const carried = await keyedOperator(0, 1);
      for (const e of events) {
        hashed.op.processRecord(e);
        carried.op.processRecordInGroup(e, assignToKeyGroup(e.user, 128));
      }
      expect(carried.out).toEqual(hashed.out);
      expect(carried.out).toEqual(['a=1', 'b=2', 'a=4', 'c=4', 'b=7', 'a=10']);
    });

    it('still refuses a key group outside its range (a misrouted record)', async () => {
      const { op } = await keyedOperator(0, 2); // key groups 0..63
      expect(() => op.processRecordInGroup({ user: 'a', amount: 1 }, 100)).toThrow(/range/);
    });
  },
);
