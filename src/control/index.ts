/**
 * Job control: a local registry of running jobs under `$EDDY_HOME` (default `~/.eddy`) and a
 * control socket per job, used by `eddy list`, `eddy savepoint` and `eddy stop`.
 */
export { probeSocket, type SendControlOptions, sendControl } from './client.js';
export {
  checkSocketPath,
  eddyHome,
  jobsDir,
  MAX_SOCKET_PATH_BYTES,
  runDir,
  SOCKET_ID_CHARS,
  socketPathFor,
} from './paths.js';
export {
  isProcessAlive,
  type JobEntryPatch,
  JobRegistry,
  type JobRegistryOptions,
} from './registry.js';
export { type ControlServer, startControlServer } from './server.js';
export {
  type JobControlSession,
  type JobControlSessionOptions,
  openJobControlSession,
} from './session.js';
export type {
  ControlFailure,
  ControlRequest,
  ControlResponse,
  ControlResults,
  JobControlTarget,
  JobEntry,
  JobState,
  JobStatusInfo,
  ListedJob,
  ListedJobStatus,
  SavepointRequest,
  StatusRequest,
  StopRequest,
} from './types.js';
