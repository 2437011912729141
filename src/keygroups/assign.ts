import { type Key, keyHashCode } from './hash.js';
import { murmurHashInt } from './murmur.js';
import { checkMaxParallelism } from './parallelism.js';

/**
 * The key group of a key: `murmurHashInt(keyHashCode(key)) % maxParallelism`, exactly Flink's
 * `KeyGroupRangeAssignment.assignToKeyGroup` for string and int32 keys.
 * @returns an integer in [0, maxParallelism).
 * @throws UnhashableKeyError if the key is not a `Key`.
 * @throws InvalidArgumentError (`EDDY_INVALID_PARALLELISM`) unless maxParallelism is an integer
 *   in [1, 32768]. The check is two comparisons; `keyGroupForHash` skips it.
 * @example
 * assignToKeyGroup('hello', 128); // 35
 */
export const assignToKeyGroup = (key: Key, maxParallelism: number): number => {
  checkMaxParallelism(maxParallelism);
  return keyGroupForHash(keyHashCode(key), maxParallelism);
};

/**
 * The key group of a key whose `keyHashCode` is `hash` (the raw key hash, *before* murmur):
 * Flink's `computeKeyGroupForKeyHash`. Unchecked, for the hot path: the caller guarantees
 * maxParallelism is an integer in [1, 32768] (otherwise the result is meaningless, e.g. NaN).
 * @example
 * keyGroupForHash(keyHashCode('hello'), 128); // 35
 */
export const keyGroupForHash = (hash: number, maxParallelism: number): number =>
  murmurHashInt(hash) % maxParallelism;
