/**
 * Distinct id types. They are plain numbers/strings at run time; the brand stops a
 * subtask index from being passed where a key group is expected.
 */
declare const brand: unique symbol;
type Brand<T, B extends string> = T & { readonly [brand]: B };

/** Index of a node in the job graph (stable for a given job definition). */
export type OperatorId = Brand<number, 'OperatorId'>;
/** User-given stable operator id: maps state to operators across job versions. */
export type OperatorUid = Brand<string, 'OperatorUid'>;
/** 0-based index of a parallel subtask of one operator. */
export type SubtaskIndex = Brand<number, 'SubtaskIndex'>;
/** Key group in [0, maxParallelism). */
export type KeyGroup = Brand<number, 'KeyGroup'>;
/** Id of one exchange channel between two subtasks. */
export type ChannelId = Brand<number, 'ChannelId'>;
/** Id of one worker thread. */
export type WorkerId = Brand<number, 'WorkerId'>;
/** Id of a running job. */
export type JobId = Brand<string, 'JobId'>;
/** Id of a checkpoint (monotonic per job). */
export type CheckpointId = Brand<number, 'CheckpointId'>;

export const operatorId = (n: number) => n as OperatorId;
export const operatorUid = (s: string) => s as OperatorUid;
export const subtaskIndex = (n: number) => n as SubtaskIndex;
export const keyGroup = (n: number) => n as KeyGroup;
export const channelId = (n: number) => n as ChannelId;
export const workerId = (n: number) => n as WorkerId;
export const jobId = (s: string) => s as JobId;
export const checkpointId = (n: number) => n as CheckpointId;
