/**
 * Operators with two inputs over user functions: connected streams (non-keyed and keyed) and
 * the broadcast state pattern. Each extends its one-input counterpart (process.ts), which
 * handles the first input, hooks, timers and checkpoints; the second input arrives through
 * `processRecord2` (the subtask routes edges marked `input: 2` there).
 *
 * The user's function object is wrapped in an object whose prototype it is, with
 * `processElement` pointing at the first input's method: every method (open, both
 * processElement methods, onTimer) runs with that wrapper as `this`, so fields one method
 * sets are the fields the others read.
 */
import type { SubtaskRef } from '../../core/errors.js';
import { denormalizeKey, type Key } from '../../keygroups/index.js';
import { BroadcastStates } from '../../state/broadcast-state.js';
import type { MapStateDescriptor, StateDescriptor, StateFor } from '../../state/descriptors.js';
import type { NormalizedKey } from '../../state/types.js';
import type { Collector, KeyedProcessFunction, ProcessFunction } from '../functions.js';
import type { OperatorContext, Output, TwoInputStreamOperator } from '../operator.js';
import { recordTime } from '../record-time.js';
import type { OutputTag } from '../time.js';
import type {
  BroadcastContext,
  BroadcastProcessFunction,
  CoProcessFunction,
  KeyedBroadcastContext,
  KeyedBroadcastProcessFunction,
  KeyedCoProcessFunction,
  ReadOnlyProcessBroadcastContext,
} from '../two-input-functions.js';
import { userFailure } from './base.js';
import { KeyKindCheck } from './key-kind-check.js';
import { KeyedProcessOperator, ProcessOperator } from './process.js';

/** A timestamp function for an input without event time beside one with it: none (NaN). */
export const NO_TIMESTAMP = (_record: unknown): number => Number.NaN;

type Stamp<T> = ((record: T) => number) | undefined;

/** The wrapper described above: `processElement` is the first input's method. */
const firstInputView = <F extends object>(fn: F, first: keyof F): F & { processElement: never } => {
  const view = Object.create(fn) as F & { processElement: unknown };
  view.processElement = fn[first];
  return view as F & { processElement: never };
};

/** `a.connect(b).process(fn)` (and map/flatMap over two inputs). */
export class CoProcessOperator<IN1, IN2, OUT>
  extends ProcessOperator<IN1, OUT>
  implements TwoInputStreamOperator<IN1, IN2, OUT>
{
  constructor(
    fn: CoProcessFunction<IN1, IN2, OUT>,
    stamp1: Stamp<IN1>,
    private readonly stamp2: Stamp<IN2>,
  ) {
    super(
      firstInputView(fn, 'processElement1') as ProcessFunction<IN1, OUT>,
      stamp1,
      'processElement1',
    );
  }

  processRecord2(record: IN2): void {
    this.position++;
    try {
      if (this.stamp2 !== undefined) recordTime.value = this.stamp2(record);
      (this.fn as unknown as CoProcessFunction<IN1, IN2, OUT>).processElement2(
        record,
        this.context,
        this.out,
      );
    } catch (e) {
      throw userFailure(this.ctx.subtask, 'processElement2', this.position, e, { record });
    }
  }
}

/** `a.keyBy(f).connect(b.keyBy(g)).process(fn)`: one keyed state and timers for both inputs. */
export class KeyedCoProcessOperator<K extends Key, IN1, IN2, OUT>
  extends KeyedProcessOperator<K, IN1, OUT>
  implements TwoInputStreamOperator<IN1, IN2, OUT>
{
  private readonly selector2: (value: IN2) => K;

  constructor(
    fn: KeyedCoProcessFunction<K, IN1, IN2, OUT>,
    operatorName: string,
    selector1: (value: IN1) => K,
    selector2: (value: IN2) => K,
    timestamps1: Stamp<IN1>,
    private readonly timestamps2: Stamp<IN2>,
  ) {
    const check = new KeyKindCheck(operatorName);
    super(
      firstInputView(fn, 'processElement1') as KeyedProcessFunction<K, IN1, OUT>,
      check.wrap(selector1, 0),
      timestamps1,
      'processElement1',
    );
    this.selector2 = check.wrap(selector2, 1);
  }

  processRecord2(record: IN2): void {
    this.process2(record, -1);
  }

  /** The second input's record with the key group its hash edge computed (see process.ts). */
  processRecordInGroup2(record: IN2, keyGroup: number): void {
    this.process2(record, keyGroup);
  }

  private process2(record: IN2, keyGroup: number): void {
    this.position++;
    try {
      this.enter(this.selector2(record), keyGroup, this.timestamps2, record);
      (this.fn as unknown as KeyedCoProcessFunction<K, IN1, IN2, OUT>).processElement2(
        record,
        this.keyed,
        this.out,
      );
    } catch (e) {
      throw userFailure(this.ctx.subtask, 'processElement2', this.position, e, { record });
    }
  }
}

/** The broadcast input of both broadcast operators: its states and its records. */
class BroadcastInput<IN2, OUT, C> {
  states!: BroadcastStates;

  constructor(
    private readonly fn: {
      processBroadcastElement(value: IN2, ctx: C, out: Collector<OUT>): void;
    },
    private readonly descriptors: readonly MapStateDescriptor<unknown, unknown>[],
    private readonly stamp: Stamp<IN2>,
  ) {}

  /** Called before the user's hooks: initializeState and open may already read the states. */
  open(ctx: OperatorContext): void {
    this.states = new BroadcastStates(
      this.descriptors,
      ctx.operatorState,
      ctx.subtask.operatorName,
    );
  }

  /** Writes the states into operator state, before the user's snapshotState. */
  snapshot(): void {
    this.states.snapshot();
  }

  process(record: IN2, ctx: C, out: Collector<OUT>, subtask: SubtaskRef, position: number): void {
    try {
      if (this.stamp !== undefined) recordTime.value = this.stamp(record);
      this.fn.processBroadcastElement(record, ctx, out);
    } catch (e) {
      throw userFailure(subtask, 'processBroadcastElement', position, e, { record });
    }
  }
}

/** `events.connect(rules.broadcast(d)).process(fn)`: broadcast state, no keys. */
export class BroadcastProcessOperator<IN1, IN2, OUT>
  extends ProcessOperator<IN1, OUT>
  implements TwoInputStreamOperator<IN1, IN2, OUT>
{
  private readonly side: BroadcastInput<IN2, OUT, BroadcastContext>;
  private readonly broadcastContext: BroadcastContext;

  constructor(
    fn: BroadcastProcessFunction<IN1, IN2, OUT>,
    descriptors: readonly MapStateDescriptor<unknown, unknown>[],
    stamp1: Stamp<IN1>,
    stamp2: Stamp<IN2>,
  ) {
    super(fn as unknown as ProcessFunction<IN1, OUT>, stamp1);
    const side = new BroadcastInput<IN2, OUT, BroadcastContext>(fn, descriptors, stamp2);
    this.side = side;
    const output = <X>(tag: OutputTag<X>, value: X) => this.out.collectSide(tag.id, value);
    const context: ReadOnlyProcessBroadcastContext = {
      output,
      getBroadcastState: (d) => side.states.getReadOnly(d),
      timestamp: recordTimestamp,
    };
    this.context = context;
    this.broadcastContext = {
      output,
      getBroadcastState: (d) => side.states.get(d),
      timestamp: recordTimestamp,
    };
  }

  override async open(ctx: OperatorContext, output: Output<OUT>): Promise<void> {
    this.side.open(ctx);
    await super.open(ctx, output);
  }

  override snapshotState(checkpointId: number): void {
    this.side.snapshot();
    super.snapshotState(checkpointId);
  }

  processRecord2(record: IN2): void {
    this.side.process(record, this.broadcastContext, this.out, this.ctx.subtask, ++this.position);
  }
}

/** The event time of the record being processed (carried or stamped), undefined if none. */
const recordTimestamp = (): number | undefined =>
  Number.isNaN(recordTime.value) ? undefined : recordTime.value;

/** `events.keyBy(f).connect(rules.broadcast(d)).process(fn)`: keyed state, timers, broadcast state. */
export class KeyedBroadcastProcessOperator<K extends Key, IN1, IN2, OUT>
  extends KeyedProcessOperator<K, IN1, OUT>
  implements TwoInputStreamOperator<IN1, IN2, OUT>
{
  private readonly side: BroadcastInput<IN2, OUT, KeyedBroadcastContext>;
  private readonly broadcastContext: KeyedBroadcastContext;

  constructor(
    fn: KeyedBroadcastProcessFunction<K, IN1, IN2, OUT>,
    descriptors: readonly MapStateDescriptor<unknown, unknown>[],
    selector: (value: IN1) => K,
    timestamps1: Stamp<IN1>,
    stamp2: Stamp<IN2>,
  ) {
    super(fn as unknown as KeyedProcessFunction<K, IN1, OUT>, selector, timestamps1);
    const side = new BroadcastInput<IN2, OUT, KeyedBroadcastContext>(fn, descriptors, stamp2);
    this.side = side;
    // processElement and onTimer get the keyed context, with broadcast state read-only.
    Object.assign(this.keyed, {
      getBroadcastState: (d: MapStateDescriptor<Key, unknown>) => side.states.getReadOnly(d),
    });
    this.broadcastContext = {
      output: (tag, value) => this.out.collectSide(tag.id, value),
      getBroadcastState: (d) => side.states.get(d),
      timestamp: recordTimestamp,
      currentWatermark: () => this.timers.currentWatermark(),
      applyToKeyedState: (d, f) => this.applyToKeyedState(d, f),
    };
  }

  override async open(ctx: OperatorContext, output: Output<OUT>): Promise<void> {
    this.side.open(ctx);
    await super.open(ctx, output);
  }

  override snapshotState(checkpointId: number): void {
    this.side.snapshot();
    super.snapshotState(checkpointId);
  }

  processRecord2(record: IN2): void {
    this.side.process(record, this.broadcastContext, this.out, this.ctx.subtask, ++this.position);
  }

  /**
   * Flink's `applyToKeyedState`: the keys are collected first, then visited, so `fn` may
   * write or clear the state it is given without disturbing the iteration.
   */
  private applyToKeyedState<D extends StateDescriptor>(
    descriptor: D,
    fn: (key: Key, state: StateFor<D>) => void,
  ): void {
    const backend = this.ctx.keyedState!;
    const state = backend.getState(descriptor);
    const keys: NormalizedKey[] = [];
    const groups: number[] = [];
    backend.forEachEntry(descriptor.name, (_value, key, keyGroup) => {
      keys.push(key);
      groups.push(keyGroup);
    });
    for (let i = 0; i < keys.length; i++) {
      const key = denormalizeKey(keys[i]!);
      this.timers.setCurrentKey(key, groups[i]!);
      fn(key, state);
    }
  }
}
