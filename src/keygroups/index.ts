/**
 * Key-group math: which key group a key belongs to, which key groups a subtask owns, and how
 * parallelism relates to maxParallelism (the number of key groups). Pure functions, no I/O.
 * String and int32 keys get exactly the key groups Apache Flink assigns.
 */
export { assignToKeyGroup, keyGroupForHash } from './assign.js';
export { javaStringHashCode, type Key, keyHashCode } from './hash.js';
export { keyKind } from './key-kind.js';
export { murmurHashInt } from './murmur.js';
export { denormalizeKey, normalizeKey } from './normalize.js';
export {
  checkMaxParallelism,
  DEFAULT_LOWER_BOUND_MAX_PARALLELISM,
  defaultMaxParallelism,
  UPPER_BOUND_MAX_PARALLELISM,
  validateParallelism,
  validateParallelismWithState,
} from './parallelism.js';
export {
  computeKeyGroupRange,
  intersectKeyGroupRanges,
  type KeyGroupRange,
  keyGroupRangeContains,
  keyGroupRangeSize,
  operatorIndexForKeyGroup,
  operatorIndexForKeyGroupUnchecked,
} from './ranges.js';
export { MAX_KEY_DEPTH } from './unhashable.js';
