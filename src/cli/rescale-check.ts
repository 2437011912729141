/**
 * Checks an `eddy rescale` request inside the running `eddy run`, which knows the job's graph,
 * before anything changes: no worker thread is started and nothing is stopped for a request
 * that would fail, and a request that changes nothing is answered as such.
 */
import { buildGraph, type JobDefinition } from '../api/job.js';
import { InvalidArgumentError } from '../core/errors.js';
import { UPPER_BOUND_MAX_PARALLELISM } from '../keygroups/index.js';
import type { JobGraph, JobNode } from '../runtime/graph.js';

/** What the running generation was built from (see run.ts). */
export interface RunningGeneration {
  readonly args: readonly string[];
  readonly parallelism: number;
  readonly maxParallelism?: number | undefined;
  readonly overrides: Readonly<Record<string, number>>;
  readonly restoredMaxParallelism?: Readonly<Record<string, number>> | undefined;
}

/** The outcome of a valid request: whether any operator's parallelism changes. */
export interface RescaleCheck {
  readonly changed: boolean;
  /** Each operator's parallelism now, e.g. `sentences=2, counts=2, out=2`. */
  readonly current: string;
}

/**
 * @throws InvalidArgumentError naming what is wrong: a parallelism that is not an integer
 *   >= 1, an operator uid the job does not have, or a new parallelism above an operator's
 *   maxParallelism (fixed by its state: a restore keeps it).
 */
export const checkRescale = (
  job: JobDefinition,
  running: RunningGeneration,
  parallelism: number | undefined,
  operators: Readonly<Record<string, number>>,
): RescaleCheck => {
  if (parallelism !== undefined) checkInt('parallelism', parallelism);
  for (const [uid, n] of Object.entries(operators)) checkInt(`operator '${uid}'`, n);
  const current = buildGraph(job, {
    parallelism: running.parallelism,
    maxParallelism: running.maxParallelism,
    args: running.args,
    parallelismOverrides: running.overrides,
    restoredMaxParallelism: running.restoredMaxParallelism,
  });
  const byUid = new Map(current.nodes.map((n) => [n.uid, n]));
  const unknown = Object.keys(operators).filter((uid) => !byUid.has(uid));
  if (unknown.length > 0) {
    throw new InvalidArgumentError(
      `job ${current.name} has no operator with uid ${unknown.map((u) => `'${u}'`).join(', ')}: its operators are ${current.nodes.map((n) => `${n.uid} ('${n.name}')`).join(', ')}`,
    );
  }
  const newDefault = parallelism ?? running.parallelism;
  const overrides = { ...running.overrides, ...operators };
  // The job's parallelism at the new settings. Its maxParallelism is left as high as it can
  // be, so that building it fails only on a maxParallelism set in the job's code; the limit
  // that counts is the running operator's, which the restore keeps.
  let next: JobGraph | undefined;
  try {
    next = buildGraph(job, {
      parallelism: newDefault,
      maxParallelism: UPPER_BOUND_MAX_PARALLELISM,
      args: running.args,
      parallelismOverrides: overrides,
    });
  } catch {
    next = undefined;
  }
  const target = (node: JobNode): number | undefined => {
    if (next) return next.nodes.find((n) => n.uid === node.uid)?.parallelism;
    // The build failed: name the operators whose parallelism follows the default or is
    // overridden (one set in the job's code does not change).
    if (overrides[node.uid] !== undefined) return overrides[node.uid];
    return node.parallelism === running.parallelism ? newDefault : node.parallelism;
  };
  // Grouped by (new parallelism, maxParallelism): `parallelism 500 exceeds maxParallelism 128
  // of operators 'a' (uid a), 'b' (uid b)`.
  const groups = new Map<string, string[]>();
  for (const node of current.nodes) {
    const p = target(node);
    if (p === undefined || p <= node.maxParallelism) continue;
    const key = `parallelism ${p} exceeds maxParallelism ${node.maxParallelism}`;
    groups.set(key, [...(groups.get(key) ?? []), `'${node.name}' (uid ${node.uid})`]);
  }
  const tooHigh = [...groups].map(
    ([key, ops]) => `${key} of operator${ops.length > 1 ? 's' : ''} ${ops.join(', ')}`,
  );
  if (tooHigh.length > 0 || !next) {
    throw new InvalidArgumentError(
      `${tooHigh.length > 0 ? tooHigh.join('; ') : `the job cannot run at parallelism ${newDefault}`}; max parallelism is fixed once a job has state`,
      'EDDY_INVALID_PARALLELISM',
    );
  }
  return {
    changed: current.nodes.some((node) => target(node) !== node.parallelism),
    current: current.nodes.map((n) => `${n.uid}=${n.parallelism}`).join(', '),
  };
};

const checkInt = (what: string, n: unknown) => {
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1) {
    throw new InvalidArgumentError(
      `the parallelism of ${what} must be an integer >= 1, got ${JSON.stringify(n)}`,
      'EDDY_INVALID_PARALLELISM',
    );
  }
};
