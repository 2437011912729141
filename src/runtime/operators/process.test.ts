import { describe, expect, it } from 'vitest';
import { HeapOperatorStateStore } from '../../state/operator-state.js';
import type { OperatorListState } from '../../state/types.js';
import type { ProcessFunction } from '../functions.js';
import { SubtaskMetrics } from '../metrics.js';
import type { OperatorContext, Output } from '../operator.js';
import { wallClock } from '../time.js';
import { ProcessOperator } from './process.js';

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
