/**
 * A job is a module whose default export is `defineJob({ name, build })`. The master and
 * every worker thread import the module and call `build`, which must construct the same
 * graph each time; the runtime checks this with a fingerprint.
 */
import { randomUUID } from 'node:crypto';
import { tmpdir } from 'node:os';
import { isAbsolute, join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import { EddyError, InvalidArgumentError } from '../core/errors.js';
import { ensureTypeScriptLoader, needsTypeScriptLoader } from '../core/ts-loader.js';
import { prewarmWorkers, ThreadPool } from '../runtime/coordinator.js';
import type { JobGraph } from '../runtime/graph.js';
import {
  type CheckpointConfig,
  type CheckpointStats,
  incrementalBaseOf,
  JobMaster,
  type JobRunResult,
  type RestartStrategy,
} from '../runtime/job-master.js';
import { LocalPool } from '../runtime/local.js';
import type { SubtaskMetricsReport } from '../runtime/metrics.js';
import type { RestoreSource, StateBackendConfig } from '../runtime/protocol.js';
import type { WorkerOptions } from '../runtime/worker-runtime.js';
import { ensureEddyResolvable } from './eddy-resolve.js';
import { StreamExecutionEnvironment } from './environment.js';
import {
  type LocalRunDir,
  openLocalRunDir,
  parseStateBackend,
  type StateBackendKind,
} from './local-state.js';

/** A job: what `defineJob` takes and a job module exports by default. */
export interface JobDefinition {
  /** The job's name (logs, `eddy list`, savepoint directories). */
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
  /** The job's own arguments, passed to `build`. */
  readonly args: readonly string[];
  /** Default parallelism of the job's operators. */
  readonly parallelism: number;
  /** Job-wide maxParallelism (number of key groups); default per operator. */
  readonly maxParallelism?: number | undefined;
  /** Parallelism per operator uid, overriding the job's code. */
  readonly parallelismOverrides?: Readonly<Record<string, number>> | undefined;
  /** maxParallelism per uid of restored state: key groups are fixed once a job has state. */
  readonly restoredMaxParallelism?: Readonly<Record<string, number>> | undefined;
}

/**
 * Controls a running job: what {@link RunOptions.onMaster} receives. A small, stable view of
 * the job master (savepoints and stop), so the master itself stays internal.
 */
export interface JobControl {
  /** Takes a savepoint of the running job into `targetDir`; resolves with its path. */
  savepoint(targetDir: string): Promise<string>;
  /**
   * Stops the job (Flink's `stop`; with `drain`, `stop --drain`). Sources end their input
   * where they are; with `savepointDir` a final savepoint is written there (its path is in the
   * run's result). Without `drain`, windows and timers stay in state for a restore; with
   * `drain`, every window and timer fires and `finish` runs first. Idempotent.
   */
  stop(savepointDir?: string, options?: { drain?: boolean | undefined }): void;
}

/** Options of a run: checkpoints, restore, restarts, callbacks. */
export interface RunOptions {
  /** Fresh per-subtask metrics every `metricsIntervalMs` (default 500). */
  readonly onMetrics?: ((reports: SubtaskMetricsReport[]) => void) | undefined;
  /** How often `onMetrics` is called, in ms (default 500). */
  readonly metricsIntervalMs?: number | undefined;
  /** Aborting asks for a graceful stop: sources end their input and the job drains. */
  readonly stopSignal?: AbortSignal | undefined;
  /** Tuning of the worker threads; the defaults suit most jobs. */
  readonly worker?: Partial<WorkerOptions> | undefined;
  /**
   * Most worker threads (task slots' hosts) to run the job on; default the number of cores,
   * never more than the largest parallelism. Only `runJobModule` starts threads.
   */
  readonly workers?: number | undefined;
  /** Enables checkpoints: exactly-once sinks, recovery from failures. */
  readonly checkpoint?: CheckpointConfig | undefined;
  /**
   * Where keyed state lives while the job runs: `'heap'` (default: in memory) or `'disk'` (a
   * log-structured store per keyed operator subtask in {@link RunOptions.localStateDir}; bounded memory
   * for state larger than the heap). Checkpoints and savepoints have the same format with
   * both: a savepoint taken with one backend restores into the other, at any parallelism.
   */
  readonly stateBackend?: StateBackendKind | undefined;
  /**
   * With `stateBackend: 'disk'`: the local working directory of the stores (created if
   * missing; default `<os.tmpdir()>/eddy-local-state`). Each run uses a new directory in it,
   * removed when the run ends; what a crashed process left there is removed at the next start.
   * Local, fast disk: it is never read after a failure (recovery reads checkpoints).
   */
  readonly localStateDir?: string | undefined;
  /** Start from a checkpoint or savepoint. */
  readonly restore?: RestoreSource | undefined;
  /** Drop checkpointed state of operators the job no longer has (else refuse to start). */
  readonly allowNonRestoredState?: boolean | undefined;
  /**
   * What to do when the job fails with a retriable error. Default: with checkpoints, up to 5
   * restarts with exponential backoff; without, none.
   */
  readonly restart?: RestartStrategy | undefined;
  /** Called after each completed checkpoint or savepoint. */
  readonly onCheckpoint?: ((stats: CheckpointStats) => void) | undefined;
  /** Called when a checkpoint or savepoint is declined, times out or fails to commit. */
  readonly onCheckpointFailed?:
    | ((failure: import('../runtime/job-master.js').CheckpointFailure) => void)
    | undefined;
  /** Where the run's log lines and warnings go (default: stderr). */
  readonly log?: ((line: string) => void) | undefined;
  /** Called once all workers have read the state they restore (what was read, how long). */
  readonly onRestored?:
    | ((stats: import('../runtime/protocol.js').RestoreStats) => void)
    | undefined;
  /** Called with the time (epoch ms) of the first record processed after the start. */
  readonly onFirstRecord?: ((at: number) => void) | undefined;
  /** Receives the job's controls once it starts (savepoints, stop with savepoint). */
  readonly onMaster?: ((control: JobControl) => void) | undefined;
  /** The job's id (default: a random UUID). */
  readonly jobId?: string | undefined;
}

/** How to build a job's graph: its parallelism, max parallelism and arguments. */
export interface BuildConfig {
  readonly parallelism: number;
  readonly maxParallelism?: number | undefined;
  readonly args?: readonly string[];
  readonly parallelismOverrides?: Readonly<Record<string, number>> | undefined;
  readonly restoredMaxParallelism?: Readonly<Record<string, number>> | undefined;
}

/** A job module's path as the user would write it: relative to the working directory. */
const displayPath = (module: string): string => {
  if (!isAbsolute(module)) return module;
  const rel = relative(process.cwd(), module);
  return rel.startsWith('..') || isAbsolute(rel) ? module : rel;
};

const buildJob = (
  job: JobDefinition,
  config: BuildConfig,
  module?: string,
): { graph: JobGraph; uidWarnings: readonly string[] } => {
  const env = new StreamExecutionEnvironment({
    jobName: job.name,
    parallelism: config.parallelism,
    maxParallelism: config.maxParallelism,
    parallelismOverrides: config.parallelismOverrides,
    restoredMaxParallelism: config.restoredMaxParallelism,
  });
  try {
    job.build(env, config.args ?? []);
  } catch (e) {
    // The job's own code threw (e.g. its usage message): the job's error, not eddy's. An
    // EddyError (eddy's API rejecting what the job asked for) keeps its code.
    if (e instanceof EddyError) throw e;
    const where = module === undefined ? '' : ` (${displayPath(module)})`;
    const reason = e instanceof Error ? e.message : String(e);
    throw new EddyError(
      'EDDY_INVALID_JOB',
      `job '${job.name}'${where} failed to build: ${reason}`,
      {
        domain: 'user',
        retriable: false,
        cause: e,
      },
    );
  }
  return { graph: env.buildGraph(), uidWarnings: env.uidWarnings() };
};

/** Builds a job's graph without running it (e.g. to inspect or fingerprint it). */
export const buildGraph = (job: JobDefinition, config: BuildConfig): JobGraph =>
  buildJob(job, config).graph;

const warned = new Set<string>();

/**
 * The one place build-time warnings go: the run's `log` if it has one, else stderr. Each
 * warning is given once per process (a restart or rescale rebuilds the graph, and every worker
 * thread builds it too, but only the runner calls this).
 */
const warnOnce = (job: string, lines: readonly string[], log: RunOptions['log']): void => {
  for (const line of lines) {
    const key = `${job}\u0000${line}`;
    if (warned.has(key)) continue;
    warned.add(key);
    (log ?? ((l: string) => process.stderr.write(`${l}\n`)))(line);
  }
};

export const importJob = async (module: string): Promise<JobDefinition> => {
  const url = module.startsWith('file:') ? module : pathToFileURL(module).href;
  let mod: Record<string, unknown>;
  try {
    if (needsTypeScriptLoader(url)) await ensureTypeScriptLoader();
    ensureEddyResolvable(url);
    mod = (await import(url)) as Record<string, unknown>;
  } catch (e) {
    const reason = e instanceof Error ? e.message : String(e);
    throw new EddyError('EDDY_JOB_MODULE', `cannot load job module ${module}: ${reason}`, {
      domain: 'user',
      cause: e,
    });
  }
  let job = (mod.default ?? mod.job) as JobDefinition | undefined;
  // A .ts job in a CommonJS package is compiled to CommonJS: its default export arrives as
  // `module.exports.default`.
  const cjs = job as { default?: JobDefinition } | undefined;
  if (cjs && typeof (job as JobDefinition).build !== 'function' && cjs.default) job = cjs.default;
  if (!job || typeof job.build !== 'function' || typeof job.name !== 'string') {
    throw new EddyError(
      'EDDY_JOB_MODULE',
      `job module ${module} must export default defineJob({ name, build(env, args) { … } })`,
      { domain: 'user' },
    );
  }
  return job;
};

/** This module's URL: the `graphLoader` worker threads import (see runtime/protocol.ts). */
export const JOB_GRAPH_LOADER = import.meta.url;

/** Imported by every worker thread to rebuild the graph (see runtime/protocol.ts). */
export const loadJobGraph = async (spec: JobSpec): Promise<JobGraph> =>
  buildJob(await importJob(spec.module), spec, spec.module).graph;

const loadJob = async (spec: JobSpec) => buildJob(await importJob(spec.module), spec, spec.module);

/** Default of {@link RunOptions.localStateDir}. */
export const defaultLocalStateDir = (): string => join(tmpdir(), 'eddy-local-state');

/** The run's backend as workers receive it, and the run directory to remove at its end. */
const openStateBackend = (
  options: RunOptions,
): { config: StateBackendConfig | undefined; runDir: LocalRunDir | undefined } => {
  const kind = parseStateBackend(options.stateBackend ?? 'heap');
  if (kind === 'heap') return { config: undefined, runDir: undefined };
  const runDir = openLocalRunDir(options.localStateDir ?? defaultLocalStateDir());
  return { config: { kind: 'disk', dir: runDir.path }, runDir };
};

const execute = async (
  graph: JobGraph,
  pool: (
    checkpointing: boolean,
    incrementalBase: string | undefined,
    stateBackend: StateBackendConfig | undefined,
  ) => import('../runtime/job-master.js').WorkerPool,
  options: RunOptions,
): Promise<JobRunResult> => {
  const backend = openStateBackend(options);
  try {
    return await executeWith(graph, pool, options, backend.config);
  } finally {
    // The stores are deleted as their subtasks close; this also takes those of workers that
    // were terminated (failed attempts) before they could.
    backend.runDir?.remove();
  }
};

const executeWith = async (
  graph: JobGraph,
  pool: Parameters<typeof execute>[1],
  options: RunOptions,
  stateBackend: StateBackendConfig | undefined,
): Promise<JobRunResult> => {
  const incremental = incrementalBaseOf(options.checkpoint);
  const master = new JobMaster(
    graph,
    pool(options.checkpoint !== undefined, incremental, stateBackend),
    {
      jobId: options.jobId ?? randomUUID(),
      checkpoint: options.checkpoint,
      restore: options.restore,
      allowNonRestoredState: options.allowNonRestoredState,
      restart: options.restart,
      onMetrics: options.onMetrics,
      metricsIntervalMs: options.metricsIntervalMs,
      onCheckpoint: options.onCheckpoint,
      onCheckpointFailed: options.onCheckpointFailed,
      log: options.log,
      onRestored: options.onRestored,
      onFirstRecord: options.onFirstRecord,
    },
  );
  const onStop = () => master.stop();
  options.stopSignal?.addEventListener('abort', onStop, { once: true });
  if (options.stopSignal?.aborted) onStop();
  options.onMaster?.({
    savepoint: (dir) => master.savepoint(dir),
    stop: (dir, o) => master.stop(dir, o),
  });
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

/** Runs a job module on a bounded pool of worker threads (`options.workers`). */
export const runJobModule = async (
  spec: JobSpec,
  options: RunOptions = {},
): Promise<JobRunResult> => {
  const { graph, uidWarnings } = await loadJob(spec);
  warnOnce(spec.module, uidWarnings, options.log);
  return execute(
    graph,
    (checkpointing, incrementalBase, stateBackend) =>
      new ThreadPool(graph, {
        graphLoader: import.meta.url,
        spec,
        worker: options.worker,
        checkpointing,
        incrementalBase,
        stateBackend,
        warmKey: spec.module,
        workers: options.workers,
      }),
    options,
  );
};

/** Runs a job in the calling thread (all subtasks, same semantics). Handy in tests. */
export const runJobInThread = (
  job: JobDefinition,
  config: { parallelism: number; maxParallelism?: number; args?: readonly string[] },
  options: RunOptions = {},
): Promise<JobRunResult> => {
  const { graph, uidWarnings } = buildJob(job, config);
  warnOnce(job.name, uidWarnings, options.log);
  return runGraphInThread(graph, options);
};

export const runGraphInThread = (
  graph: JobGraph,
  options: RunOptions = {},
): Promise<JobRunResult> =>
  execute(
    graph,
    (checkpointing, incrementalBase, stateBackend) =>
      new LocalPool(graph, {
        worker: options.worker,
        checkpointing,
        incrementalBase,
        stateBackend,
      }),
    options,
  );
