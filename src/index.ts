/**
 * eddy: a stateful stream-processing engine for TypeScript.
 *
 * The public API, and nothing else: the DataStream API and job helpers, the interfaces user
 * functions implement, state descriptors and state, windows, event time, the connectors and
 * the connector contract, the errors users catch, and the key-group math. Everything else
 * (stream elements, the runtime's classes, the checkpoint format, state backends) is internal
 * and may change in any release; see docs/ARCHITECTURE.md ("Public surface").
 */

// The DataStream API (one input, two inputs: connect, broadcast state, joins) and running jobs.
export {
  BroadcastConnectedStream,
  BroadcastStream,
  ConnectedStreams,
  KeyedBroadcastConnectedStream,
  KeyedConnectedStreams,
} from './api/connected-streams.js';
export { DataStream, KeyedStream, type KeyFields } from './api/datastream.js';
export {
  type EnvironmentConfig,
  type OperatorOptions,
  type SourceOptions,
  StreamExecutionEnvironment,
} from './api/environment.js';
export {
  IntervalJoin,
  IntervalJoined,
  type ProcessJoinContext,
  type ProcessJoinFunction,
} from './api/interval-join.js';
export {
  defineJob,
  type JobControl,
  type JobDefinition,
  type JobSpec,
  type RunOptions,
  runJobInThread,
  runJobModule,
} from './api/job.js';
export {
  CoGroupEqualTo,
  CoGroupedStreams,
  type CoGroupFunction,
  CoGroupWhere,
  JoinEqualTo,
  JoinedStreams,
  type JoinFunction,
  JoinWhere,
  WindowedCoGroup,
  WindowedJoin,
} from './api/joined-streams.js';
export { KeyedJoin } from './api/keyed-join.js';
export { WindowedStream } from './api/windowed-stream.js';

// Connectors.
export type { DeadLetter } from './connectors/dead-letters.js';
export { FileSink, type FileSinkOptions } from './connectors/file-sink.js';
export {
  type CsvFileSourceOptions,
  FileSource,
  type FileSourceOptions,
} from './connectors/file-source.js';
export type { CsvOptions } from './connectors/formats.js';
export {
  GeneratorSource,
  type GeneratorSourceOptions,
  hashToUint32,
  hashToUnit,
} from './connectors/generator-source.js';
// NATS JetStream connectors.
export {
  type NatsConnectionSettings,
  type NatsMessageMeta,
  NatsSink,
  type NatsSinkOptions,
  NatsSource,
  type NatsSourceOptions,
} from './connectors/nats/index.js';
// The Nexmark benchmark: event model, deterministic generator and source (docs/NEXMARK-QUERIES.md).
export {
  type Auction,
  type Bid,
  type NexmarkConfig,
  type NexmarkEvent,
  NexmarkSource,
  type NexmarkSourceOptions,
  nexmarkEvent,
  type Person,
} from './connectors/nexmark/index.js';
// PostgreSQL connectors.
export {
  type PostgresAppendOptions,
  PostgresSink,
  type PostgresSinkOptions,
  type PostgresUpsertOptions,
} from './connectors/postgres/index.js';
// Redis Streams connectors.
export {
  type RedisEntryMeta,
  RedisStreamSink,
  type RedisStreamSinkOptions,
  RedisStreamSource,
  type RedisStreamSourceOptions,
} from './connectors/redis/index.js';

// Errors users catch or throw.
export {
  BadRecordError,
  EddyError,
  type EddyErrorOptions,
  type ErrorCode,
  type ErrorDomain,
  FatalError,
  InvalidArgumentError,
  JobFailedError,
  type RecordOrigin,
  type SubtaskRef,
  UnhashableKeyError,
  UserFunctionError,
} from './core/errors.js';

// Key-group math (identical to Flink's for string and int32 keys).
export { assignToKeyGroup } from './keygroups/assign.js';
export { type Key, keyHashCode } from './keygroups/hash.js';
export {
  DEFAULT_LOWER_BOUND_MAX_PARALLELISM,
  defaultMaxParallelism,
  UPPER_BOUND_MAX_PARALLELISM,
} from './keygroups/parallelism.js';
export {
  computeKeyGroupRange,
  type KeyGroupRange,
  keyGroupRangeContains,
  keyGroupRangeSize,
  operatorIndexForKeyGroup,
} from './keygroups/ranges.js';
export { MAX_KEY_DEPTH } from './keygroups/unhashable.js';

// The interfaces user functions implement.
export type {
  Collector,
  FilterFunction,
  FlatMapFunction,
  KeyedContext,
  KeyedProcessFunction,
  KeyedRuntimeContext,
  MapFunction,
  OnTimerContext,
  ProcessContext,
  ProcessFunction,
  ReduceFunction,
  RuntimeContext,
  StateInitializationContext,
  StateSnapshotContext,
  TaskInfo,
} from './runtime/functions.js';
// The connector contract (for writing sources and sinks).
export type {
  ConnectorContext,
  Counter,
  MetricGroup,
  PollResult,
  Sink,
  SinkWriter,
  Source,
  SourceReader,
  SourceSplits,
  SplitEnumerator,
  SplitEnumeratorContext,
} from './runtime/io.js';
// What a run reports.
export type {
  CheckpointConfig,
  CheckpointStats,
  JobRunResult,
  RestartStrategy,
} from './runtime/job-master.js';
export type { SubtaskMetricsReport } from './runtime/metrics.js';
// Event time and windows.
export {
  MAX_WATERMARK,
  MIN_WATERMARK,
  OutputTag,
  type TimeDomain,
  type TimerService,
} from './runtime/time.js';
export type {
  BroadcastContext,
  BroadcastProcessFunction,
  CoProcessFunction,
  KeyedBroadcastContext,
  KeyedBroadcastProcessFunction,
  KeyedBroadcastTimerContext,
  KeyedCoProcessFunction,
  ReadOnlyBroadcastContext,
  ReadOnlyKeyedBroadcastContext,
  ReadOnlyProcessBroadcastContext,
} from './runtime/two-input-functions.js';
export { WatermarkStrategy, type WatermarkStrategyBuilder } from './runtime/watermarks.js';
export {
  EventTimeSessionWindows,
  ProcessingTimeSessionWindows,
  type ProcessWindowContext,
  type ProcessWindowFunction,
  SlidingEventTimeWindows,
  SlidingProcessingTimeWindows,
  TimeWindow,
  TumblingEventTimeWindows,
  TumblingProcessingTimeWindows,
  type WindowAssigner,
} from './runtime/windows/index.js';

// State: descriptors and the state handles they give.
export {
  AggregatingStateDescriptor,
  ListStateDescriptor,
  MapStateDescriptor,
  ReducingStateDescriptor,
  type StateDescriptor,
  type StateFor,
  ValueStateDescriptor,
  type ValueStateOptions,
} from './state/descriptors.js';
export type {
  AggregateFunction,
  AggregatingState,
  BroadcastState,
  ListState,
  MapState,
  OperatorListState,
  OperatorStateStore,
  ReadOnlyBroadcastState,
  RedistributionMode,
  ReducingState,
  ValueState,
} from './state/types.js';
