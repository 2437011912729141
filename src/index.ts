/**
 * eddy: a stateful stream-processing engine for TypeScript.
 * The public face: key-group math, state, the DataStream API, connectors and errors.
 */

export { DataStream, KeyedStream, type KeyFields } from './api/datastream.js';
export {
  type EnvironmentConfig,
  type OperatorOptions,
  type SourceOptions,
  StreamExecutionEnvironment,
} from './api/environment.js';
export type { RunOptions } from './api/job.js';
export {
  buildGraph,
  defineJob,
  type JobDefinition,
  type JobSpec,
  runGraphInThread,
  runJobInThread,
  runJobModule,
} from './api/job.js';
export { WindowedStream } from './api/windowed-stream.js';
export * from './connectors/index.js';
export type {
  CheckpointBarrier,
  EndOfInput,
  RecordBatch,
  StreamElement,
  Watermark,
  WatermarkStatus,
} from './core/elements.js';
export * from './core/errors.js';
export * from './keygroups/index.js';
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
export type {
  ConnectorContext,
  Counter,
  MetricGroup,
  PollResult,
  Sink,
  SinkWriter,
  Source,
  SourceReader,
} from './runtime/io.js';
export type {
  CheckpointConfig,
  CheckpointStats,
  JobRunResult,
  RestartStrategy,
} from './runtime/job-master.js';
export type { SubtaskMetricsReport } from './runtime/metrics.js';
export {
  MAX_WATERMARK,
  MIN_WATERMARK,
  OutputTag,
  type ProcessingClock,
  type TimeDomain,
  type TimerService,
} from './runtime/time.js';
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
export * from './state/index.js';
