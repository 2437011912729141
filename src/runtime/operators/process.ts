/** Process functions: keyed (with keyed state) and non-keyed (with operator list state). */
import { assignToKeyGroup, type Key, normalizeKey } from '../../keygroups/index.js';
import type { HeapKeyedStateBackend } from '../../state/heap-keyed-backend.js';
import type {
  KeyedContext,
  KeyedProcessFunction,
  KeyedRuntimeContext,
  ProcessFunction,
} from '../functions.js';
import type { OperatorContext, Output, StreamOperator } from '../operator.js';
import { callHook, runtimeContext, userFailure } from './base.js';

type Hooks<OUT> = Pick<
  KeyedProcessFunction<unknown, unknown, OUT>,
  'initializeState' | 'snapshotState' | 'finish' | 'close'
>;

abstract class FunctionOperator<IN, OUT> implements StreamOperator<IN, OUT> {
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
  constructor(private readonly fn: ProcessFunction<IN, OUT>) {
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
      this.fn.processElement(record, this.out);
    } catch (e) {
      throw userFailure(this.ctx.subtask, 'processElement', this.position, e);
    }
  }
}

/**
 * Sets the current key (and its key group) on the state backend before every call into the
 * function, so state reads and writes hit that key's entry in that key group.
 */
export class KeyedProcessOperator<K extends Key, IN, OUT> extends FunctionOperator<IN, OUT> {
  private backend!: HeapKeyedStateBackend;
  private maxParallelism = 0;
  /** One mutable context per operator: no allocation per record. */
  private readonly keyed: { currentKey: K } = { currentKey: undefined as unknown as K };

  constructor(
    private readonly fn: KeyedProcessFunction<K, IN, OUT>,
    private readonly keySelector: (value: IN) => K,
  ) {
    super(fn);
  }

  protected async openFunction(): Promise<void> {
    const backend = this.ctx.keyedState;
    if (!backend) throw new Error('keyed operator without a keyed state backend');
    this.backend = backend;
    this.maxParallelism = this.ctx.maxParallelism;
    const rc: KeyedRuntimeContext = {
      ...runtimeContext(this.ctx),
      getState: (d) => backend.getState(d),
    };
    const open = this.fn.open;
    if (open) await callHook(this.ctx.subtask, 'open', () => open.call(this.fn, rc));
  }

  processRecord(record: IN): void {
    this.position++;
    try {
      const key = this.keySelector(record);
      this.keyed.currentKey = key;
      this.backend.setCurrentKey(normalizeKey(key), assignToKeyGroup(key, this.maxParallelism));
      this.fn.processElement(record, this.keyed as KeyedContext<K>, this.out);
    } catch (e) {
      throw userFailure(this.ctx.subtask, 'processElement', this.position, e);
    }
  }
}
