/**
 * The checkpoint format, version 1. A checkpoint (or savepoint) is one directory:
 *
 *   chk-<id>/                  (savepoints: savepoint-<jobName>-<id>-<time>/)
 *     _metadata                written last, atomically (tmp + fsync + rename + dir fsync)
 *     <uid>-<subtask>.keyed    keyed state of one subtask, key group after key group
 *     <uid>-<subtask>.opstate  operator list state of one subtask, element after element
 *
 * Every path inside `_metadata` is relative to the checkpoint directory, so a checkpoint can
 * be moved or copied (savepoints are relocatable). Each key-group block and each operator
 * state element carries its own CRC-32, so a restore that reads only some byte ranges of a
 * file can still verify everything it reads; `_metadata` carries a CRC-32 of its body.
 */

export const CHECKPOINT_FORMAT_VERSION = 1;

/** One contiguous, separately checksummed byte range of a state file. */
export interface BlockHandle {
  readonly offset: number;
  readonly length: number;
  readonly crc32: number;
}

/** A key group's entries inside a keyed state file. */
export interface KeyGroupBlock extends BlockHandle {
  readonly keyGroup: number;
}

/** Keyed state of one subtask: one file, key groups written in ascending order. */
export interface KeyedStateHandle {
  /** Relative to the checkpoint directory. */
  readonly file: string;
  /** Inclusive key-group range the subtask owned. */
  readonly keyGroupRange: readonly [number, number];
  /** Only non-empty key groups have a block; ascending by key group, contiguous in the file. */
  readonly blocks: readonly KeyGroupBlock[];
  readonly bytes: number;
}

/** Operator list state of one subtask: each element is its own block. */
export interface OperatorStateHandle {
  readonly file: string;
  readonly states: ReadonlyArray<{
    readonly name: string;
    readonly mode: 'split' | 'union' | 'broadcast';
    readonly elements: readonly BlockHandle[];
  }>;
  readonly bytes: number;
}

export interface SubtaskStateHandle {
  readonly index: number;
  readonly keyed?: KeyedStateHandle | undefined;
  readonly operatorState?: OperatorStateHandle | undefined;
}

export interface OperatorStateEntry {
  readonly uid: string;
  readonly name: string;
  readonly parallelism: number;
  readonly maxParallelism: number;
  /** The source's split enumerator state (JSON), when it has one. */
  readonly enumeratorState?: unknown;
  readonly subtasks: readonly SubtaskStateHandle[];
}

export interface CheckpointMetadata {
  readonly formatVersion: number;
  readonly jobName: string;
  readonly jobId: string;
  readonly checkpointId: number;
  readonly savepoint: boolean;
  /** Epoch ms when the checkpoint was triggered. */
  readonly timestamp: number;
  readonly operators: readonly OperatorStateEntry[];
}
