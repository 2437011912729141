/**
 * The state layer's public face: the state contract, descriptors and the heap backends.
 * `KeyGroupRange` is deliberately not re-exported: the keygroups layer owns that name, and the
 * backends accept it structurally. The on-disk backend is imported from `./disk/index.js`
 * only: jobs choose it by name (`RunOptions.stateBackend`), they never construct it.
 */
export type * from './backend.js';
export * from './descriptors.js';
export {
  HeapDeltaView,
  HeapKeyedStateBackend,
  type HeapKeyedStateBackendOptions,
} from './heap-keyed-backend.js';
export { HeapOperatorStateStore } from './operator-state.js';
export type * from './types.js';
