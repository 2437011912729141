/** Redis Streams connectors: an exactly-once source and sink. */

export {
  REDIS_SINK_PENDING_STATE,
  type RedisSinkPending,
  RedisStreamSink,
  type RedisStreamSinkOptions,
} from './sink.js';
export {
  REDIS_SPLITS_STATE,
  type RedisEntryMeta,
  RedisStreamSource,
  type RedisStreamSourceOptions,
  type RedisStreamSplitState,
} from './source.js';
