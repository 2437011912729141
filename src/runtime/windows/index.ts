/**
 * Keyed windows: assigners (tumbling, sliding, session; event and processing time), the
 * window functions users write, and the window operator the API compiles them into.
 */
export {
  compareWindows,
  EventTimeSessionWindows,
  ProcessingTimeSessionWindows,
  SlidingEventTimeWindows,
  SlidingProcessingTimeWindows,
  TimeWindow,
  TumblingEventTimeWindows,
  TumblingProcessingTimeWindows,
  type WindowAssigner,
  windowStart,
} from './assigners.js';
export type {
  AggregateFunction,
  ProcessWindowContext,
  ProcessWindowFunction,
  ReduceFunction,
} from './functions.js';
export { type AddWindowResult, addWindow, type MergeGroup, mergeWindows } from './merging.js';
export {
  checkAllowedLateness,
  WINDOW_CONTENTS_STATE,
  WINDOW_ELEMENTS_STATE,
  WINDOW_SEQ_STATE,
  WINDOW_SESSION_SET_STATE,
  WINDOW_SESSIONS_STATE,
  type WindowFunctionSpec,
  WindowOperator,
  type WindowOperatorOptions,
} from './window-operator.js';
