/**
 * A job is a module whose default export is `defineJob({ name, build })`. The coordinator
 * and every worker thread import the module and call `build`, which must construct the same
 * graph each time; the runtime checks this with a fingerprint.
 */
import { pathToFileURL } from 'node:url';
import { EddyError, InvalidArgumentError } from '../core/errors.js';
import { type JobRunResult, type RunOptions, runThreaded } from '../runtime/coordinator.js';
import type { JobGraph } from '../runtime/graph.js';
import { runInThread } from '../runtime/local.js';
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
}

export const buildGraph = (
  job: JobDefinition,
  config: { parallelism: number; maxParallelism?: number | undefined; args?: readonly string[] },
): JobGraph => {
  const env = new StreamExecutionEnvironment({
    jobName: job.name,
    parallelism: config.parallelism,
    maxParallelism: config.maxParallelism,
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

/** Runs a job module on worker threads: one per parallel subtask index. */
export const runJobModule = async (
  spec: JobSpec,
  options: RunOptions = {},
): Promise<JobRunResult> => {
  const graph = await loadJobGraph(spec);
  return runThreaded(graph, { ...options, graphLoader: import.meta.url, spec });
};

/** Runs a job in the calling thread (all subtasks, same semantics). Handy in tests. */
export const runJobInThread = (
  job: JobDefinition,
  config: { parallelism: number; maxParallelism?: number; args?: readonly string[] },
  options: RunOptions = {},
): Promise<JobRunResult> => runInThread(buildGraph(job, config), options);
