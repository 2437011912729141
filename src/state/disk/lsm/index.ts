/** The disk backend's log-structured store (see lsm-store.ts). */
export {
  type LsmEntry,
  type LsmOptions,
  LsmSnapshot,
  type LsmStats,
  LsmStore,
  ScanCursor,
} from './lsm-store.js';
