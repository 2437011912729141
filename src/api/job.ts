/**
 * A job is a module whose default export is `defineJob({ name, build })`. The master and
 * every worker thread import the module and call `build`, which must construct the same
 * graph each time; the runtime checks this with a fingerprint.
 */
import { randomUUID } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import { EddyError, InvalidArgumentError } from '../core/errors.js';
import { prewarmWorkers, ThreadPool } from '../runtime/coordinator.js';
import type { JobGraph } from '../runtime/graph.js';
import {
  type CheckpointConfig,
  type CheckpointStats,
  JobMaster,
  type JobRunResult,
  type RestartStrategy,
} from '../runtime/job-master.js';
import { LocalPool } from '../runtime/local.js';
import type { SubtaskMetricsReport } from '../runtime/metrics.js';
import type { RestoreSource } from '../runtime/protocol.js';
import type { WorkerOptions } from '../runtime/worker-runtime.js';
import { StreamExecutionEnvironment } from './environment.js';

export interface JobDefinition {
  readonly name: string;
  /** Builds the pipeline. `args` are the job's own arguments (after `--` on the CLI). */
  build(env: StreamExecutionEnvironment, args: readonly string[]): void;
}

/**
 * Declares a job.
 * @example
 * export default defineJob({
 *   name: 'double',
 *   build(env) {
 *     env.fromSource(GeneratorSource.of({ count: 10, generate: (i) => i }))
 *       .map((n) => n * 2)
 *       .sinkTo(FileSink.jsonl({ path: 'out' }));
 *   },
 * });
 */
export const defineJob = (definition: JobDefinition): JobDefinition => {
  if (
    !definition ||
    typeof definition.name !== 'string' ||
    typeof definition.build !== 'function'
  ) {
    throw new InvalidArgumentError(
      'defineJob needs { name: string, build(env, args) { … } }',
      'EDDY_INVALID_JOB',
    );
  }
  return definition;
};

/** How to build a job anywhere: which module, with which arguments and parallelism. */
export interface JobSpec {
  /** File path or file: URL of the job module. */
  readonly module: string;
  readonly args: readonly string[];
  readonly parallelism: number;
  readonly maxParallelism?: number | undefined;
  /** Parallelism per operator uid, overriding the job's code. */
  readonly parallelismOverrides?: Readonly<Record<string, number>> | undefined;
  /** maxParallelism per uid of restored state: key groups are fixed once a job has state. */
  readonly restoredMaxParallelism?: Readonly<Record<string, number>> | undefined;
}

export interface RunOptions {
  /** Fresh per-subtask metrics every `metricsIntervalMs` (default 500). */
  readonly onMetrics?: ((reports: SubtaskMetricsReport[]) => void) | undefined;
  readonly metricsIntervalMs?: number | undefined;
  /** Aborting asks for a graceful stop: sources end their input and the job drains. */
  readonly stopSignal?: AbortSignal | undefined;
  readonly worker?: Partial<WorkerOptions> | undefined;
  /** Enables checkpoints: exactly-once sinks, recovery from failures. */
  readonly checkpoint?: CheckpointConfig | undefined;
  /** Start from a checkpoint or savepoint. */
  readonly restore?: RestoreSource | undefined;
  /** Drop checkpointed state of operators the job no longer has (else refuse to start). */
  readonly allowNonRestoredState?: boolean | undefined;
  readonly restart?: RestartStrategy | undefined;
  readonly onCheckpoint?: ((stats: CheckpointStats) => void) | undefined;
  readonly log?: ((line: string) => void) | undefined;
  readonly onRestored?:
    | ((stats: import('../runtime/protocol.js').RestoreStats) => void)
    | undefined;
  readonly onFirstRecord?: ((at: number) => void) | undefined;
  /** Receives the master once the job starts (savepoints, stop with savepoint). */
  readonly onMaster?: ((master: JobMaster) => void) | undefined;
  readonly jobId?: string | undefined;
}

export const buildGraph = (
  job: JobDefinition,
  config: {
    parallelism: number;
    maxParallelism?: number | undefined;
    args?: readonly string[];
    parallelismOverrides?: Readonly<Record<string, number>> | undefined;
    restoredMaxParallelism?: Readonly<Record<string, number>> | undefined;
  },
): JobGraph => {
  const env = new StreamExecutionEnvironment({
    jobName: job.name,
    parallelism: config.parallelism,
    maxParallelism: config.maxParallelism,
    parallelismOverrides: config.parallelismOverrides,
    restoredMaxParallelism: config.restoredMaxParallelism,
  });
  job.build(env, config.args ?? []);
  return env.buildGraph();
};

export const importJob = async (module: string): Promise<JobDefinition> => {
  const url = module.startsWith('file:') ? module : pathToFileURL(module).href;
  let mod: Record<string, unknown>;
  try {
    mod = (await import(url)) as Record<string, unknown>;
  } catch (e) {
    const reason = e instanceof Error ? e.message : String(e);
    throw new EddyError('EDDY_JOB_MODULE', `cannot load job module ${module}: ${reason}`, {
      domain: 'user',
      cause: e,
    });
  }
  const job = (mod.default ?? mod.job) as JobDefinition | undefined;
  if (!job || typeof job.build !== 'function' || typeof job.name !== 'string') {
    throw new EddyError(
      'EDDY_JOB_MODULE',
      `job module ${module} must export default defineJob({ name, build(env, args) { … } })`,
      { domain: 'user' },
    );
  }
  return job;
};

/** Imported by every worker thread to rebuild the graph (see runtime/protocol.ts). */
export const loadJobGraph = async (spec: JobSpec): Promise<JobGraph> =>
  buildGraph(await importJob(spec.module), spec);

const execute = async (
  graph: JobGraph,
  pool: (checkpointing: boolean) => import('../runtime/job-master.js').WorkerPool,
  options: RunOptions,
): Promise<JobRunResult> => {
  const master = new JobMaster(graph, pool(options.checkpoint !== undefined), {
    jobId: options.jobId ?? randomUUID(),
    checkpoint: options.checkpoint,
    restore: options.restore,
    allowNonRestoredState: options.allowNonRestoredState,
    restart: options.restart,
    onMetrics: options.onMetrics,
    metricsIntervalMs: options.metricsIntervalMs,
    onCheckpoint: options.onCheckpoint,
    log: options.log,
    onRestored: options.onRestored,
    onFirstRecord: options.onFirstRecord,
  });
  const onStop = () => master.stop();
  options.stopSignal?.addEventListener('abort', onStop, { once: true });
  if (options.stopSignal?.aborted) onStop();
  options.onMaster?.(master);
  try {
    return await master.run();
  } finally {
    options.stopSignal?.removeEventListener('abort', onStop);
  }
};

/** For warm worker threads (see `prewarmWorkers`): imports the job module ahead of time. */
export const preloadJob = async (spec: JobSpec): Promise<void> => {
  await importJob(spec.module);
};

/**
 * Starts `count` worker threads for `spec`'s job module now (TypeScript loader and module
 * loaded), for the next `runJobModule` of the same module to use: a rescale calls this when it
 * is requested, so starting threads overlaps the stop instead of lengthening the pause.
 */
export const prewarmJobWorkers = (
  spec: JobSpec,
  count: number,
  worker?: Partial<WorkerOptions>,
): Promise<void> =>
  prewarmWorkers({ graphLoader: import.meta.url, spec, worker, warmKey: spec.module }, count);

/** Runs a job module on worker threads: one per parallel subtask index. */
export const runJobModule = async (
  spec: JobSpec,
  options: RunOptions = {},
): Promise<JobRunResult> => {
  const graph = await loadJobGraph(spec);
  return execute(
    graph,
    (checkpointing) =>
      new ThreadPool(graph, {
        graphLoader: import.meta.url,
        spec,
        worker: options.worker,
        metricsIntervalMs: options.metricsIntervalMs,
        checkpointing,
        warmKey: spec.module,
      }),
    options,
  );
};

/** Runs a job in the calling thread (all subtasks, same semantics). Handy in tests. */
export const runJobInThread = (
  job: JobDefinition,
  config: { parallelism: number; maxParallelism?: number; args?: readonly string[] },
  options: RunOptions = {},
): Promise<JobRunResult> => runGraphInThread(buildGraph(job, config), options);

export const runGraphInThread = (
  graph: JobGraph,
  options: RunOptions = {},
): Promise<JobRunResult> =>
  execute(
    graph,
    (checkpointing) =>
      new LocalPool(graph, {
        worker: options.worker,
        metricsIntervalMs: options.metricsIntervalMs,
        checkpointing,
      }),
    options,
  );
