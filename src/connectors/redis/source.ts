/**
 * Redis Streams source, exactly once. One split per stream key. The split enumerator, in the
 * job master, deals stream `i` to reader `i % p` (as the file source deals files); with
 * `bounded` it first reads each stream's last entry id, the split's end, so the job reads
 * what the streams held when it started and then ends.
 *
 * A split's position is the id of the last entry emitted (`0-0` before the first), kept in
 * operator list state in `split` mode ({@link REDIS_SPLITS_STATE}): a restore at any
 * parallelism re-deals the streams and each continues after its position, so every entry is
 * emitted exactly once into the job's state (Redis keeps the entries; nothing is
 * acknowledged, no consumer group is used). The end id of a bounded split lives in the same
 * element, so a restore keeps the bound.
 *
 * Reading: one non-blocking `XREAD COUNT n STREAMS k1 … km id1 … idm` per poll over the
 * reader's unfinished streams, its entries buffered and emitted synchronously (no per-record
 * async). When nothing is available the poll returns `'idle'` and a second connection waits
 * in `XREAD BLOCK` for the next entry of any of those streams, then calls `ctx.wakeup()`; the
 * runtime polls again on its own after a short back-off too, so a lost wake-up costs
 * latency, never progress. Each stream is declared as a split (`ctx.splits`) and its handle
 * passed with its records, so event time advances per stream.
 *
 * Outages: a poll that cannot reach the server returns `'idle'` (checkpoints and stops go
 * on) until the server has been unreachable for `maxOutageMs`, then fails with a retriable
 * `EDDY_SOURCE_IO`; a refusal (credentials, a key that is not a stream) fails with
 * `EDDY_CONNECTOR_CONFIG`.
 */
import { InvalidArgumentError } from '../../core/errors.js';
import type { Source } from '../../runtime/io.js';
import { validateBadRecords } from '../dead-letters.js';
import { type ConnectorClock, validateRate } from '../rate-limiter.js';
import { validateOutage, validateUrl } from './connection.js';
import { RedisStreamReader } from './reader.js';
import { RedisSplitEnumerator } from './splits.js';

export { REDIS_SPLITS_STATE, type RedisStreamSplitState } from './splits.js';

/** Metadata of an entry, passed to `deserialize`. */
export interface RedisEntryMeta {
  stream: string;
  id: string;
}

/** Options of {@link RedisStreamSource.of}. */
export interface RedisStreamSourceOptions<T> {
  /** `redis://[user:password@]host:port[/db]` (or `rediss://`). */
  url: string;
  /** Stream keys; one split per key. */
  streams: string[];
  /**
   * True: read each stream up to the last entry it had when the job first started (kept in
   * checkpoints, so a restored job keeps the bound), then end. Default false: read forever,
   * picking up new entries.
   */
  bounded?: boolean;
  /** Entry fields to a record. Default: `JSON.parse` of the field `data`. */
  deserialize?: (fields: Record<string, string>, meta: RedisEntryMeta) => T;
  /**
   * `'fail'` (default): a bad entry fails the job with a BadRecordError naming the stream and
   * entry id. Otherwise bad entries go to `<deadLetterDir>/dead-letters-<subtask>.jsonl`
   * (`file`: the stream key, `line`: 0, `raw`: `{"id": …, "fields": {…}}`).
   */
  badRecords?: 'fail' | { deadLetterDir: string };
  /**
   * Records per second in TOTAL, divided over the streams (splits): a subtask reads at
   * `ratePerSecond × its unfinished streams / all streams`.
   */
  ratePerSecond?: number;
  /**
   * How long an unreachable server is waited for (retrying with back-off) before the job
   * fails with a retriable EDDY_SOURCE_IO (default 30 000 ms).
   */
  maxOutageMs?: number;
  /** How long one blocking wait for new entries lasts (default 2000 ms). */
  blockMs?: number;
  /** ConnectorClock for the rate limiter (tests inject a fake one). */
  clock?: ConnectorClock;
}

const validateOptions = <T>(o: RedisStreamSourceOptions<T>): void => {
  const what = 'redis stream source';
  validateUrl(o.url, what);
  const streams = o.streams;
  if (
    !Array.isArray(streams) ||
    streams.length === 0 ||
    !streams.every((s) => typeof s === 'string' && s !== '')
  ) {
    throw new InvalidArgumentError(`${what}: streams must be a non-empty array of stream keys`);
  }
  const dup = streams.find((s, i) => streams.indexOf(s) !== i);
  if (dup !== undefined) {
    throw new InvalidArgumentError(`${what}: stream '${dup}' is listed twice`);
  }
  validateRate(o.ratePerSecond, what);
  validateOutage(o.maxOutageMs, what);
  if (o.blockMs !== undefined && !(Number.isSafeInteger(o.blockMs) && o.blockMs > 0)) {
    throw new InvalidArgumentError(`${what}: blockMs must be a positive integer, got ${o.blockMs}`);
  }
  if (o.deserialize !== undefined && typeof o.deserialize !== 'function') {
    throw new InvalidArgumentError(`${what}: deserialize must be a function`);
  }
  validateBadRecords(o.badRecords, what);
};

/**
 * Redis Streams source factory.
 *
 * @example
 * const orders = RedisStreamSource.of<Order>({
 *   url: 'redis://127.0.0.1:6379',
 *   streams: ['orders:eu', 'orders:us'],
 * });
 */
export const RedisStreamSource = {
  /** Reads the given streams (one split each), exactly once with checkpoints. */
  of<T = unknown>(options: RedisStreamSourceOptions<T>): Source<T> {
    validateOptions(options);
    return {
      defaultName: 'redis-stream-source',
      createReader: (ctx) => new RedisStreamReader<T>(ctx, options),
      createEnumerator: (ctx) => new RedisSplitEnumerator(ctx, options),
    };
  },
};
