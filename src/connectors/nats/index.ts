/**
 * NATS JetStream connectors: a source (one split per subject, positions by stream sequence)
 * and an exactly-once sink (write-ahead batches in the checkpoint, `Nats-Msg-Id` dedup).
 */
export { DEFAULT_MAX_OUTAGE_MS, type NatsConnectionSettings } from './connection.js';
export { type NatsEnumeratorState, NatsSplitEnumerator } from './enumerator.js';
export { msgIdPrefix, natsMsgId } from './msg-id.js';
export type { SequenceSplitState } from './positions.js';
export {
  NATS_SINK_PENDING,
  type NatsPendingBatch,
  NatsSink,
  type NatsSinkOptions,
} from './sink.js';
export {
  NATS_SPLITS_STATE,
  type NatsMessageMeta,
  NatsSource,
  type NatsSourceOptions,
} from './source.js';
export { resolveSubjects, subjectMatches } from './subjects.js';
