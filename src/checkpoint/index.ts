/**
 * The checkpoint layer's public face: the on-disk format (types.ts), writers and range readers
 * of keyed and operator state files, the `_metadata` envelope, the directory tree with atomic
 * completion, retention and fallback, integrity checks, and operator-state redistribution.
 */

export { decodeKeyGroupBlock, encodeKeyGroupBlock } from './keyed-block.js';
export {
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
  safeFileComponent,
  savepointDirName,
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
  CheckpointStorage,
  type LatestValidOptions,
  latestRestorePoint,
  resolveRestorePath,
  type SkippedCheckpoint,
  type ValidCheckpoint,
} from './storage.js';
export * from './types.js';
export { checkDataFiles, stateFiles, type VerifyReport, verifyCheckpoint } from './verify.js';
