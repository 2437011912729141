/**
 * The checkpoint layer's public face: the on-disk format (types.ts), writers and range readers
 * of keyed and operator state files, the `_metadata` envelope, the directory tree with atomic
 * completion, retention and fallback, integrity checks, and operator-state redistribution.
 */

export {
  type ChainBlockRef,
  type ChainFileReads,
  type ChainView,
  chainBytes,
  chainsInRange,
  chainsOf,
  isIncremental,
  keyedFilesOf,
  planChainReads,
  stateBytesOf,
} from './chains.js';
export { MAX_CHAIN_BLOCKS, MAX_READ_FACTOR, shouldCompact } from './compaction.js';
export {
  type DeltaSource,
  sharedDirOf,
  writeSharedBase,
  writeSharedDelta,
} from './incremental-file.js';
export {
  applyChain,
  decodeBlock,
  decodeKeyGroupBlock,
  encodeKeyGroupBlock,
  type KeyGroupDelta,
} from './keyed-block.js';
export {
  deferKeyGroups,
  forEachKeyGroup,
  planKeyedReads,
  readKeyGroups,
  readKeyGroupsLazily,
  writeKeyedStateFile,
} from './keyed-file.js';
export { decodeMetadata, encodeMetadata } from './metadata.js';
export { loadMetadata } from './metadata-io.js';
export {
  type OperatorElementBlock,
  type OperatorStateRead,
  type OperatorStateSelection,
  planOperatorReads,
  readOperatorStateElements,
  writeOperatorStateFile,
} from './operator-file.js';
export {
  checkpointDirName,
  isContainedRelativePath,
  keyedStateFileName,
  METADATA_FILE,
  operatorStateFileName,
  parseCheckpointDirName,
  SHARED_DIR,
  safeFileComponent,
  savepointDirName,
  sharedKeyedFileName,
} from './paths.js';
export {
  type BlockRead,
  coalesceBlocks,
  DEFAULT_MAX_READ_BYTES,
  type ReadOptions,
} from './read-plan.js';
export { redistributeOperatorState } from './redistribute.js';
export * from './restore-plan.js';
export {
  collectSharedFiles,
  type SharedFilesCollection,
  sharedFilesOf,
} from './shared-files.js';
export {
  CheckpointStorage,
  type LatestValidOptions,
  latestRestorePoint,
  resolveRestorePath,
  type SkippedCheckpoint,
  type ValidCheckpoint,
} from './storage.js';
export * from './types.js';
export {
  checkDataFiles,
  type StateFile,
  stateFiles,
  type VerifyReport,
  verifyCheckpoint,
} from './verify.js';
