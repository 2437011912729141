/** Process functions: keyed (with keyed state) and non-keyed (with operator list state). */
import type { Key } from '../../keygroups/index.js';
import type {
  KeyedProcessFunction,
  KeyedRuntimeContext,
  OnTimerContext,
  ProcessContext,
  ProcessFunction,
} from '../functions.js';
import type { OperatorContext, Output, StreamOperator } from '../operator.js';
import { recordTime } from '../record-time.js';
import type { OutputTag, TimeDomain, TimerService } from '../time.js';
import { KeyedTimers } from '../timers.js';
import { callHook, type KeyGroupAware, runtimeContext, userFailure } from './base.js';

type Hooks<OUT> = Pick<
  KeyedProcessFunction<unknown, unknown, OUT>,
  'initializeState' | 'snapshotState' | 'finish' | 'close'
>;

export abstract class FunctionOperator<IN, OUT> implements StreamOperator<IN, OUT> {
  protected ctx!: OperatorContext;
  protected out!: Output<OUT>;
  protected position = 0;

  constructor(private readonly hooks: Hooks<OUT>) {}

  async open(ctx: OperatorContext, output: Output<OUT>): Promise<void> {
    this.ctx = ctx;
    this.out = output;
    const init = this.hooks.initializeState;
    if (init) {
      await callHook(ctx.subtask, 'initializeState', () =>
        init.call(this.hooks, { operatorState: ctx.operatorState, isRestored: ctx.isRestored }),
      );
    }
    await this.openFunction();
  }

  protected abstract openFunction(): Promise<void>;
  abstract processRecord(record: IN): void;

  processWatermark(timestamp: number): void {
    this.out.emitWatermark(timestamp);
  }

  snapshotState(checkpointId: number): void {
    const snap = this.hooks.snapshotState;
    if (!snap) return;
    try {
      snap.call(this.hooks, { checkpointId, operatorState: this.ctx.operatorState });
    } catch (e) {
      throw userFailure(this.ctx.subtask, 'snapshotState', undefined, e);
    }
  }

  finish(): void {
    const finish = this.hooks.finish;
    if (!finish) return;
    try {
      finish.call(this.hooks, this.out);
    } catch (e) {
      throw userFailure(this.ctx.subtask, 'finish', undefined, e);
    }
  }

  async close(): Promise<void> {
    const close = this.hooks.close;
    if (close) await callHook(this.ctx.subtask, 'close', () => close.call(this.hooks));
  }
}

export class ProcessOperator<IN, OUT> extends FunctionOperator<IN, OUT> {
  protected context: ProcessContext = {
    output: <X>(tag: OutputTag<X>, value: X) => this.out.collectSide(tag.id, value),
  };

  constructor(
    protected readonly fn: ProcessFunction<IN, OUT>,
    /** The input's timestamp assigner, to stamp the outputs (see stateless.ts `Stamp`). */
    private readonly stamp?: ((record: IN) => number) | undefined,
    /** The user method called per record, as errors name it. */
    private readonly method = 'processElement',
  ) {
    super(fn);
  }

  protected async openFunction(): Promise<void> {
    const open = this.fn.open;
    if (open)
      await callHook(this.ctx.subtask, 'open', () => open.call(this.fn, runtimeContext(this.ctx)));
  }

  processRecord(record: IN): void {
    this.position++;
    try {
      if (this.stamp !== undefined) recordTime.value = this.stamp(record);
      this.fn.processElement(record, this.context, this.out);
    } catch (e) {
      throw userFailure(this.ctx.subtask, this.method, this.position, e, { record });
    }
  }
}

/**
 * Sets the current key (and its key group) on the state backend before every call into the
 * function, so state reads and writes hit that key's entry in that key group. Timers are
 * keyed state too (timers.ts); they are only indexed at open when the function has `onTimer`,
 * so a function without timers keeps the restore lazy.
 */
export class KeyedProcessOperator<K extends Key, IN, OUT>
  extends FunctionOperator<IN, OUT>
  implements KeyGroupAware<IN>
{
  protected timers!: KeyedTimers;
  /** Event time of the record or timer being processed. */
  protected time: number | undefined;
  /** One mutable context per operator: no allocation per record. */
  protected readonly keyed: Mutable<OnTimerContext<K>>;

  constructor(
    protected readonly fn: KeyedProcessFunction<K, IN, OUT>,
    private readonly keySelector: (value: IN) => K,
    private readonly timestampOf?: ((value: IN) => number) | undefined,
    /** The user method called per record, as errors name it. */
    private readonly method = 'processElement',
  ) {
    super(fn);
    this.keyed = {
      currentKey: undefined as unknown as K,
      timeDomain: 'event',
      timerService: undefined as unknown as TimerService,
      timestamp: () => this.time,
      output: (tag, value) => this.out.collectSide(tag.id, value),
    };
  }

  protected async openFunction(): Promise<void> {
    const backend = this.ctx.keyedState;
    if (!backend) throw new Error('keyed operator without a keyed state backend');
    this.timers = new KeyedTimers({
      backend,
      maxParallelism: this.ctx.maxParallelism,
      clock: this.ctx.clock,
      runInMailbox: this.ctx.runInMailbox,
      onTimer: (domain, timestamp, key) => this.onTimer(domain, timestamp, key as K),
    });
    if (this.fn.onTimer) this.timers.open();
    this.keyed.timerService = this.fn.onTimer ? this.timers : timersNeedOnTimer(this.timers);
    const rc: KeyedRuntimeContext = {
      ...runtimeContext(this.ctx),
      getState: (d) => backend.getState(d),
    };
    const open = this.fn.open;
    if (open) await callHook(this.ctx.subtask, 'open', () => open.call(this.fn, rc));
  }

  processRecord(record: IN): void {
    this.process(record, -1);
  }

  /**
   * A record with the key group the hash edge's routing computed for its key (same selector,
   * same maxParallelism), so the key is not hashed again. The state backend still checks that
   * the group is in this subtask's range (a misrouted record fails as before).
   */
  processRecordInGroup(record: IN, keyGroup: number): void {
    this.process(record, keyGroup);
  }

  /** `keyGroup` < 0: not carried, computed from the key. */
  private process(record: IN, keyGroup: number): void {
    this.position++;
    try {
      this.enter(this.keySelector(record), keyGroup, this.timestampOf, record);
      this.fn.processElement(record, this.keyed, this.out);
    } catch (e) {
      throw userFailure(this.ctx.subtask, this.method, this.position, e, { record });
    }
  }

  /**
   * Sets the key (state, timers, context) and the record's event time before a call into the
   * function. A timestamp of NaN means the record has none (one input of a two-input operator
   * without event time): the context then says undefined.
   */
  protected enter<R>(
    key: K,
    keyGroup: number,
    timestampOf: ((value: R) => number) | undefined,
    record: R,
  ): void {
    this.keyed.currentKey = key;
    if (timestampOf !== undefined) {
      // Its outputs carry the input's event time (Flink semantics).
      const t = timestampOf(record);
      this.time = Number.isNaN(t) ? undefined : t;
      recordTime.value = t;
    }
    if (keyGroup < 0) this.timers.setCurrentKey(key);
    else this.timers.setCurrentKey(key, keyGroup);
  }

  override processWatermark(timestamp: number): void {
    // Without onTimer no timer exists: this only records the watermark.
    this.timers.advanceWatermark(timestamp);
    this.out.emitWatermark(timestamp);
  }

  override async close(): Promise<void> {
    this.timers?.close();
    await super.close();
  }

  private onTimer(domain: TimeDomain, timestamp: number, key: K): void {
    const k = this.keyed;
    k.currentKey = key;
    k.timeDomain = domain;
    this.time = domain === 'event' ? timestamp : undefined;
    // Flink: what an event-time timer emits carries the timer's timestamp.
    recordTime.value = domain === 'event' ? timestamp : Number.NaN;
    try {
      this.fn.onTimer!(timestamp, k, this.out);
    } catch (e) {
      throw userFailure(this.ctx.subtask, 'onTimer', undefined, e);
    }
  }
}

export type Mutable<T> = { -readonly [P in keyof T]: T[P] };

/** The timer service of a function without `onTimer`: registering would fire into nothing. */
const timersNeedOnTimer = (timers: TimerService): TimerService => {
  const refuse = () => {
    throw new TypeError('this keyed process function registers timers but has no onTimer method');
  };
  return {
    currentWatermark: () => timers.currentWatermark(),
    currentProcessingTime: () => timers.currentProcessingTime(),
    registerEventTimeTimer: refuse,
    registerProcessingTimeTimer: refuse,
    deleteEventTimeTimer: refuse,
    deleteProcessingTimeTimer: refuse,
  };
};
