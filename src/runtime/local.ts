/**
 * Runs a whole job in the calling thread: every subtask on one WorkerRuntime, all channels
 * local. Same operators, same exchange code, same results as the threaded mode; used by
 * tests and for jobs whose functions are closures that cannot be re-imported by a worker.
 */
import type { JobRunResult, RunOptions } from './coordinator.js';
import type { JobGraph } from './graph.js';
import { planExecution } from './plan.js';
import { DEFAULT_WORKER_OPTIONS, WorkerRuntime } from './worker-runtime.js';

export const runInThread = async (
  graph: JobGraph,
  options: RunOptions = {},
): Promise<JobRunResult> => {
  const started = performance.now();
  const runtime = new WorkerRuntime(graph, planExecution(graph, 'single'), 0, {
    ...DEFAULT_WORKER_OPTIONS,
    ...options.worker,
  });
  const onStop = () => runtime.requestStop();
  options.stopSignal?.addEventListener('abort', onStop, { once: true });
  const timer = options.onMetrics
    ? setInterval(() => options.onMetrics?.(runtime.metrics()), options.metricsIntervalMs ?? 500)
    : undefined;
  try {
    await runtime.open();
    if (options.stopSignal?.aborted) onStop();
    await runtime.run();
    await runtime.close(false);
  } catch (e) {
    await runtime.close(true).catch(() => {});
    throw e;
  } finally {
    clearInterval(timer);
    options.stopSignal?.removeEventListener('abort', onStop);
  }
  return {
    durationMs: performance.now() - started,
    stopped: options.stopSignal?.aborted ?? false,
    metrics: runtime.metrics(),
  };
};
