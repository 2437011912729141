/** The `server` layer: a running job's REST API, Prometheus metrics and dashboard files. */
export { JobMonitor, type LatestSnapshot, RATE_WINDOW_MS } from './monitor.js';
export { JobPrometheus } from './prometheus.js';
export { checkUiAccess, isLoopbackHost } from './security.js';
export {
  DEFAULT_UI_PORT,
  type RestJob,
  type RestServer,
  type RestServerOptions,
  startRestServer,
} from './server.js';
export type * from './types.js';
