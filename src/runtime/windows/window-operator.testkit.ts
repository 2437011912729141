/** Test harness for the window operator: a real keyed backend and timers, a manual clock. */
import type { Key } from '../../keygroups/index.js';
import type { KeyedStateBackend } from '../../state/backend.js';
import { HEAP, type TestBackend } from '../../state/backend.testkit.js';
import { HeapOperatorStateStore } from '../../state/operator-state.js';
import type { KeyGroupSnapshot } from '../../state/types.js';
import { SubtaskMetrics } from '../metrics.js';
import type { OperatorContext, Output } from '../operator.js';
import type { ProcessingClock } from '../time.js';
import { WindowOperator, type WindowOperatorOptions } from './window-operator.js';

/** A clock tests move by hand; due timers run (in `at` order) when it is advanced. */
export class ManualClock implements ProcessingClock {
  private time: number;
  private timers: Array<{ at: number; seq: number; callback: () => void; live: boolean }> = [];
  private seq = 0;

  constructor(start = 0) {
    this.time = start;
  }

  now(): number {
    return this.time;
  }

  setTimer(at: number, callback: () => void): { cancel(): void } {
    const timer = { at, seq: this.seq++, callback, live: true };
    this.timers.push(timer);
    return {
      cancel: () => {
        timer.live = false;
      },
    };
  }

  /** Moves the clock to `to` and runs the timers due by then. */
  advanceTo(to: number): void {
    if (to < this.time) throw new Error(`clock cannot go back from ${this.time} to ${to}`);
    this.time = to;
    for (;;) {
      const due = this.timers
        .filter((t) => t.live && t.at <= to)
        .sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
      if (due === undefined) break;
      due.live = false;
      due.callback();
    }
    this.timers = this.timers.filter((t) => t.live);
  }
}

export type Emitted<OUT> =
  | { readonly kind: 'out'; readonly value: OUT }
  | { readonly kind: 'side'; readonly tag: string; readonly value: unknown }
  | { readonly kind: 'watermark'; readonly timestamp: number };

export interface HarnessOptions {
  readonly maxParallelism?: number;
  readonly keyGroupRange?: { start: number; end: number };
  readonly clock?: ManualClock;
  /** Key groups to restore before open (a snapshot of another backend). */
  readonly restore?: readonly KeyGroupSnapshot[];
  /** The keyed state backend to run on (default: heap); disposed after the test. */
  readonly backend?: TestBackend;
}

export interface Harness<IN, OUT> {
  readonly operator: WindowOperator<Key, IN, unknown, OUT>;
  readonly backend: KeyedStateBackend;
  readonly clock: ManualClock;
  readonly metrics: SubtaskMetrics;
  /** Everything emitted, in order. */
  readonly emitted: Emitted<OUT>[];
  /** The main-output records emitted so far. */
  outputs(): OUT[];
  /** The side-output records of `tag` emitted so far. */
  side(tag: string): unknown[];
  /** Drains `emitted`, returning what it held. */
  take(): Emitted<OUT>[];
}

export const openWindowOperator = async <IN, OUT>(
  options: WindowOperatorOptions<Key, IN, unknown, OUT>,
  harness: HarnessOptions = {},
): Promise<Harness<IN, OUT>> => {
  const maxParallelism = harness.maxParallelism ?? 128;
  const backend = (harness.backend ?? HEAP).create({
    keyGroupRange: harness.keyGroupRange ?? { start: 0, end: maxParallelism - 1 },
    maxParallelism,
  });
  for (const group of harness.restore ?? []) {
    const { start, end } = backend.keyGroupRange;
    if (group.keyGroup >= start && group.keyGroup <= end) backend.restoreKeyGroup(group);
  }
  const clock = harness.clock ?? new ManualClock();
  const metrics = new SubtaskMetrics();
  const emitted: Emitted<OUT>[] = [];
  const output: Output<OUT> = {
    collect: (value) => emitted.push({ kind: 'out', value }),
    emitWatermark: (timestamp) => emitted.push({ kind: 'watermark', timestamp }),
    collectSide: (tag, value) => emitted.push({ kind: 'side', tag, value }),
  };
  const ctx: OperatorContext = {
    subtask: { operatorName: 'window', operatorUid: 'window', subtaskIndex: 0, parallelism: 1 },
    maxParallelism,
    operatorState: new HeapOperatorStateStore(),
    keyedState: backend,
    isRestored: harness.restore !== undefined,
    metrics,
    stopSignal: new AbortController().signal,
    checkpointing: false,
    jobName: 'test-job',
    clock,
    runInMailbox: (action) => action(),
  };
  const operator = new WindowOperator<Key, IN, unknown, OUT>(options);
  await operator.open(ctx, output);
  return {
    operator,
    backend,
    clock,
    metrics,
    emitted,
    outputs: () => emitted.flatMap((e) => (e.kind === 'out' ? [e.value] : [])),
    side: (tag) => emitted.flatMap((e) => (e.kind === 'side' && e.tag === tag ? [e.value] : [])),
    take: () => emitted.splice(0),
  };
};
