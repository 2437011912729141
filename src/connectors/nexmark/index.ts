/** The Nexmark benchmark's event model, generator and source. */
export {
  DEFAULT_NEXMARK_CONFIG,
  eventKind,
  eventTime,
  type NexmarkConfig,
  nexmarkConfig,
  nexmarkEvent,
} from './generator.js';
export type { Auction, Bid, NexmarkEvent, Person } from './model.js';
export {
  NEXMARK_OUT_OF_ORDERNESS_MS,
  NexmarkSource,
  type NexmarkSourceOptions,
} from './source.js';
