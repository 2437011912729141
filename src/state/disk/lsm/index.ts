/** The disk backend's log-structured store (see lsm-store.ts). */
export {
  type LsmEntry,
  type LsmOptions,
  LsmSnapshot,
  type LsmStats,
  LsmStore,
} from './lsm-store.js';
