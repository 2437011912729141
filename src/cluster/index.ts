/** The cluster layer's public face: master, worker process, client (see docs/ARCHITECTURE.md). */
export { ClusterClient } from './client.js';
export { HaStore } from './ha.js';
export { startHealthServer } from './health.js';
export { type ClusterJob, clusterRescalesDir } from './job.js';
export { ClusterMaster, DEFAULT_SLOT_TIMEOUT_MS, type MasterOptions } from './master.js';
export type { ClusterRescale, ClusterStatus, JobEvent, JobStatus, SubmitSpec } from './messages.js';
export { parseAddress } from './wire.js';
export { WorkerProcess, type WorkerProcessOptions } from './worker.js';
