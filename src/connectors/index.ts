/**
 * Connectors: bounded file sources (JSON Lines, CSV), a JSON Lines file sink, a deterministic
 * generator source, and the pieces they are built from.
 */

export type { DeadLetter } from './dead-letters.js';
export {
  FileSink,
  type FileSinkOptions,
  inProgressFileName,
  NEXT_CHECKPOINT,
  PENDING_STATE,
  type PendingPart,
  partFileName,
} from './file-sink.js';
export {
  type CsvFileSourceOptions,
  FILE_SPLITS_STATE,
  type FileEnumeratorState,
  FileSource,
  type FileSourceOptions,
  type FileSplitState,
} from './file-source.js';
export {
  type CsvOptions,
  csvFormat,
  jsonlFormat,
  type LineDecoder,
  type LineFormat,
  RecordDecodeError,
  splitCsvLine,
} from './formats.js';
export {
  GENERATOR_STATE,
  GeneratorSource,
  type GeneratorSourceOptions,
  type GeneratorSplitState,
  hashToUint32,
  hashToUnit,
  initialGeneratorSplits,
} from './generator-source.js';
export { LineReader, type LineReaderOptions, readFirstLine } from './line-reader.js';
export {
  NATS_SINK_PENDING,
  NATS_SPLITS_STATE,
  type NatsConnectionSettings,
  type NatsEnumeratorState,
  type NatsMessageMeta,
  type NatsPendingBatch,
  NatsSink,
  type NatsSinkOptions,
  NatsSource,
  type NatsSourceOptions,
  type SequenceSplitState,
} from './nats/index.js';
export { type ConnectorClock, RateLimiter } from './rate-limiter.js';
