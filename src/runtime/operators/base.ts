import { EddyError, previewRecord, type SubtaskRef, UserFunctionError } from '../../core/errors.js';
import type { RuntimeContext, TaskInfo } from '../functions.js';
import type { OperatorContext } from '../operator.js';

/**
 * A failure in user code, named by operator, subtask and the 1-based position of the record
 * in that subtask's input. An error already attributed to an operator subtask (an EddyError
 * with `subtask` set, e.g. thrown by an operator chained after this one and attributed by
 * ChainedOutput) passes through, so the operator that really failed is the one named.
 */
export const userFailure = (
  subtask: SubtaskRef,
  what: string,
  position: number | undefined,
  cause: unknown,
  failing?: { record: unknown },
): EddyError =>
  cause instanceof EddyError && cause.subtask !== undefined
    ? cause
    : new UserFunctionError(
        subtask,
        what,
        position,
        cause,
        failing === undefined ? undefined : previewRecord(failing.record),
      );

export const taskInfo = (ctx: OperatorContext): TaskInfo => ({
  operatorName: ctx.subtask.operatorName,
  operatorUid: ctx.subtask.operatorUid,
  subtaskIndex: ctx.subtask.subtaskIndex,
  parallelism: ctx.subtask.parallelism,
  maxParallelism: ctx.maxParallelism,
});

export const runtimeContext = (ctx: OperatorContext): RuntimeContext => ({
  task: taskInfo(ctx),
  metrics: ctx.metrics,
});

/** Runs a lifecycle hook of user code, attributing failures to the operator. */
export const callHook = async (
  subtask: SubtaskRef,
  what: string,
  hook: () => void | Promise<void>,
): Promise<void> => {
  try {
    await hook();
  } catch (e) {
    throw userFailure(subtask, what, undefined, e);
  }
};

/**
 * An operator at the receiving end of a hash edge that takes each record's key group as the
 * sender's routing computed it (carried in the batch), instead of hashing the key again.
 */
export interface KeyGroupAware<IN = unknown> {
  processRecordInGroup(record: IN, keyGroup: number): void;
  /** The second input's records, for a keyed two-input operator. */
  processRecordInGroup2?(record: unknown, keyGroup: number): void;
}

/** Whether `op` takes carried key groups (see {@link KeyGroupAware}); checked once per gate. */
export const takesKeyGroups = (op: unknown): op is KeyGroupAware =>
  typeof (op as Partial<KeyGroupAware> | undefined)?.processRecordInGroup === 'function';
