/**
 * The checkpoint format, version 2 (version 1 is version 2 without incremental handles; both
 * are read). A checkpoint (or savepoint) is one directory:
 *
 *   chk-<id>/                  (savepoints: savepoint-<jobName>-<id>-<time>/)
 *     _metadata                written last, atomically (tmp + fsync + rename + dir fsync)
 *     <uid>-<subtask>.keyed    keyed state of one subtask, key group after key group
 *     <uid>-<subtask>.opstate  operator list state of one subtask, element after element
 *   blocks/                    beside the chk-<id> directories (incremental checkpoints only)
 *     <uid>-<subtask>-<id>-<tag>.keyed   blocks written by checkpoint <id>, referenced by it
 *                              and by later checkpoints until a key group's base is rewritten
 *
 * Every path inside `_metadata` is relative to the checkpoint directory, so a checkpoint can
 * be moved or copied (savepoints are relocatable). Each key-group block and each operator
 * state element carries its own CRC-32, so a restore that reads only some byte ranges of a
 * file can still verify everything it reads; `_metadata` carries a CRC-32 of its body.
 */

export const CHECKPOINT_FORMAT_VERSION = 2;

/** Every format version this eddy reads. */
export const READABLE_FORMAT_VERSIONS: readonly number[] = [1, 2];

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

/** One block of a key group's chain: a base block or a delta block, in one of `files`. */
export interface ChainBlock extends BlockHandle {
  /** Index into the handle's `files`. */
  readonly file: number;
  /** Entries plus deletions the block holds (the compaction rule's size estimate). */
  readonly records: number;
}

/**
 * One key group of an incremental handle: its base block, then its delta blocks oldest
 * first. A delta holds the entries written since the previous block and the keys deleted;
 * the key group's state is the base with each delta applied in order.
 */
export interface KeyGroupChain {
  readonly keyGroup: number;
  readonly blocks: readonly ChainBlock[];
  /**
   * Live (state, key) entries of the key group when the checkpoint was taken; 0 when unknown
   * (a base block passed through from a restore without being decoded).
   */
  readonly entries: number;
}

/**
 * Keyed state of one subtask in an incremental checkpoint: per non-empty key group a chain of
 * blocks in shared files, written by this checkpoint or an earlier one of the same job.
 */
export interface IncrementalKeyedStateHandle {
  readonly type: 'incremental';
  /** Inclusive key-group range the subtask owned. */
  readonly keyGroupRange: readonly [number, number];
  /** Shared files the chains use, relative to the checkpoint directory (`../blocks/<name>`). */
  readonly files: readonly string[];
  /** Non-empty key groups only, ascending. */
  readonly chains: readonly KeyGroupChain[];
  /** Bytes this checkpoint wrote (its new blocks). */
  readonly bytes: number;
}

/** Keyed state of one subtask, full or incremental. */
export type AnyKeyedStateHandle = KeyedStateHandle | IncrementalKeyedStateHandle;

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
  readonly keyed?: AnyKeyedStateHandle | undefined;
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
