/**
 * What the runtime drives. The API layer compiles user functions into these; the runtime
 * knows nothing of DataStream. Records are pushed synchronously down a chain of operators,
 * so a chain costs one function call per record and operator, never a Promise.
 */
import type { SubtaskRef } from '../core/errors.js';
import type { KeyedStateBackend } from '../state/backend.js';
import type { OperatorStateStore } from '../state/types.js';
import type { MetricGroup } from './io.js';
import type { ProcessingClock } from './time.js';

/** Where an operator emits: the next chained operator or the network output. */
export interface Output<T> {
  collect(record: T): void;
  /** Event-time progress; forwarded downstream. */
  emitWatermark(timestamp: number): void;
  /**
   * A record for the side output `tagId` (an `OutputTag`'s id). Dropped when no stream reads
   * that side output, as Flink does.
   */
  collectSide(tagId: string, record: unknown): void;
}

export interface OperatorContext {
  readonly subtask: SubtaskRef;
  /** The job's name (see `ConnectorContext.jobName`). */
  readonly jobName: string;
  readonly maxParallelism: number;
  readonly operatorState: OperatorStateStore;
  /** Present on operators after keyBy: state partitioned by key group. */
  readonly keyedState: KeyedStateBackend | undefined;
  readonly isRestored: boolean;
  readonly metrics: MetricGroup;
  readonly stopSignal: AbortSignal;
  /** The job takes checkpoints (sinks then commit in two phases). */
  readonly checkpointing: boolean;
  /** Processing time (the wall clock unless a test injects one). */
  readonly clock: ProcessingClock;
  /**
   * Runs `action` on the subtask's own loop, between two input batches (never concurrently
   * with record processing); failures in it fail the subtask like any user-code failure.
   * Processing-time timers fire through this.
   */
  readonly runInMailbox: (action: () => void) => void;
}

export interface StreamOperator<IN = unknown, OUT = unknown> {
  open(ctx: OperatorContext, output: Output<OUT>): void | Promise<void>;
  /** Hot path. May throw: the operator wraps user-code failures in UserFunctionError. */
  processRecord(record: IN): void;
  processWatermark?(timestamp: number): void;
  /** Called after each input batch: a chance to do batched I/O. Awaiting it is backpressure. */
  endOfBatch?(): void | Promise<void>;
  /**
   * All inputs really ended (end of bounded input, or `stop --drain`): emit what is pending.
   * Called once, before close. Never called when the job is stopped without drain: what it
   * would emit then stays in state for the restored job, and is emitted once, at the real end.
   */
  finish?(): void | Promise<void>;
  /**
   * The inputs ended because the job was stopped without drain (instead of `finish`). Only
   * for what must not be lost when no checkpoint follows (a sink without checkpointing makes
   * its output visible); emit nothing here.
   */
  endOfStoppedInput?(): void | Promise<void>;
  /** Writes operator state; called before a checkpoint barrier is forwarded. */
  snapshotState?(checkpointId: number): void;
  /**
   * Asynchronous part of the snapshot: awaited (while records flow) before the subtask
   * acknowledges the checkpoint. Rejecting declines the checkpoint.
   */
  snapshotStateAsync?(checkpointId: number): Promise<void> | undefined;
  /** The checkpoint completed: sinks make its pending output visible. */
  notifyCheckpointComplete?(checkpointId: number): Promise<void>;
  /** The checkpoint was aborted and will never complete. */
  notifyCheckpointAborted?(checkpointId: number): void | Promise<void>;
  /** Releases resources; `failed` means the job is being torn down after a failure. */
  close?(failed: boolean): void | Promise<void>;
}

/**
 * An operator with two inputs (connect, broadcast state, joins). Records of edges marked
 * `input: 2` arrive through {@link processRecord2}, the others through `processRecord`; the
 * watermark is the minimum over the channels of both inputs, idle ones left out.
 */
export interface TwoInputStreamOperator<IN1 = unknown, IN2 = unknown, OUT = unknown>
  extends StreamOperator<IN1, OUT> {
  processRecord2(record: IN2): void;
}

/** Whether `op` takes a second input; checked once per gate. */
export const isTwoInput = (op: StreamOperator): op is TwoInputStreamOperator =>
  typeof (op as Partial<TwoInputStreamOperator>).processRecord2 === 'function';
