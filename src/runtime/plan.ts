/**
 * Pure planning: which operators chain together, where each subtask runs, and which
 * channels connect them. Every worker computes the same plan from the same graph.
 *
 * Chaining rule: an edge s -> t is chained (a plain function call, no channel) when it is
 * forward, both ends have the same parallelism, s has no other outgoing edge and t no
 * other input. So only a chain's tail has network outputs.
 *
 * Placement (task slots, as Flink's slot sharing): a job runs on W workers, W = min(the
 * workers asked for, the largest parallelism); subtask i of every chain runs on worker
 * i mod W. So subtask i of all chains share a worker (forward and chained edges stay local),
 * and a worker hosts several subtasks of a chain when its parallelism exceeds W. The job
 * master computes the placement once ({@link planExecution}) and sends the table
 * ({@link PlacementTable}, plain data) to the workers, which plan with it
 * (`planExecution(graph, { placement })`) instead of deciding for themselves.
 */
import { InvalidArgumentError } from '../core/errors.js';
import type { JobEdge, JobGraph, JobNode } from './graph.js';

export interface Chain {
  readonly index: number;
  /** Head first. */
  readonly nodeIds: readonly number[];
  readonly parallelism: number;
}

export interface TaskRef {
  readonly chain: number;
  readonly subtask: number;
}

export interface ChannelSpec {
  readonly id: number;
  /** Index into graph.edges. */
  readonly edge: number;
  readonly from: TaskRef;
  readonly to: TaskRef;
  readonly fromWorker: number;
  readonly toWorker: number;
}

/**
 * `per-subtask`: subtask i of every chain on worker i (one worker per subtask index).
 * `single`: everything on worker 0. `{ workers: n }`: at most n workers, subtask i on worker
 * i mod W. `{ placement }`: a table computed by the master.
 */
export type Placement =
  | 'per-subtask'
  | 'single'
  | { readonly workers: number }
  | { readonly placement: PlacementTable };

/** Where every subtask runs, as plain (structured-cloneable) data. */
export interface PlacementTable {
  readonly workers: number;
  /** Per chain (plan order), per subtask: its worker. */
  readonly workerOf: readonly (readonly number[])[];
}

export interface ExecutionPlan {
  readonly workers: number;
  readonly workerOf: (task: TaskRef) => number;
  /** The same placement as data, for the workers. */
  readonly placement: PlacementTable;
  readonly chains: readonly Chain[];
  readonly chainOfNode: readonly number[];
  readonly channels: readonly ChannelSpec[];
}

export const planExecution = (
  graph: JobGraph,
  placement: Placement = 'per-subtask',
): ExecutionPlan => {
  validateGraph(graph);
  const chains = buildChains(graph);
  const chainOfNode: number[] = [];
  for (const c of chains) for (const id of c.nodeIds) chainOfNode[id] = c.index;
  const table = placementTable(graph, chains, placement);
  const workerOf = (t: TaskRef) => table.workerOf[t.chain]![t.subtask]!;
  const channels = buildChannels(graph, chains, chainOfNode, workerOf);
  return { workers: table.workers, workerOf, placement: table, chains, chainOfNode, channels };
};

const placementTable = (
  graph: JobGraph,
  chains: readonly Chain[],
  placement: Placement,
): PlacementTable => {
  const maxParallelism = Math.max(...graph.nodes.map((n) => n.parallelism));
  if (typeof placement === 'object' && 'placement' in placement) {
    const table = placement.placement;
    const fits =
      table.workerOf.length === chains.length &&
      chains.every((c, i) => {
        const row = table.workerOf[i]!;
        return (
          row.length === c.parallelism &&
          row.every((w) => Number.isInteger(w) && w >= 0 && w < table.workers)
        );
      });
    if (!fits) {
      throw new InvalidArgumentError(
        `job '${graph.name}': the placement does not fit the job's chains and parallelisms`,
        'EDDY_NONDETERMINISTIC_JOB',
      );
    }
    return table;
  }
  const workers =
    placement === 'single'
      ? 1
      : placement === 'per-subtask'
        ? maxParallelism
        : Math.max(1, Math.min(Math.floor(placement.workers), maxParallelism));
  return {
    workers,
    workerOf: chains.map((c) => Array.from({ length: c.parallelism }, (_, i) => i % workers)),
  };
};

export const isChainable = (graph: JobGraph, edge: JobEdge): boolean => {
  const s = graph.nodes[edge.source]!;
  const t = graph.nodes[edge.target]!;
  return (
    edge.partitioning.kind === 'forward' &&
    edge.sideOutput === undefined &&
    s.parallelism === t.parallelism &&
    graph.edges.filter((e) => e.source === s.id).length === 1 &&
    graph.edges.filter((e) => e.target === t.id).length === 1
  );
};

const buildChains = (graph: JobGraph): Chain[] => {
  const chained = new Map<number, number>();
  const hasChainedInput = new Set<number>();
  for (const e of graph.edges) {
    if (isChainable(graph, e)) {
      chained.set(e.source, e.target);
      hasChainedInput.add(e.target);
    }
  }
  const chains: Chain[] = [];
  for (const n of graph.nodes) {
    if (hasChainedInput.has(n.id)) continue;
    const nodeIds = [n.id];
    for (let next = chained.get(n.id); next !== undefined; next = chained.get(next))
      nodeIds.push(next);
    chains.push({ index: chains.length, nodeIds, parallelism: n.parallelism });
  }
  return chains;
};

const buildChannels = (
  graph: JobGraph,
  chains: readonly Chain[],
  chainOfNode: number[],
  workerOf: (t: TaskRef) => number,
) => {
  const channels: ChannelSpec[] = [];
  // One TaskRef per subtask, shared by its channels: a hash edge at p=128 has 16,384 channels.
  const refs = chains.map((c) =>
    Array.from({ length: c.parallelism }, (_, subtask): TaskRef => ({ chain: c.index, subtask })),
  );
  graph.edges.forEach((e, edge) => {
    if (isChainable(graph, e)) return;
    const from = chains[chainOfNode[e.source]!]!;
    const to = chains[chainOfNode[e.target]!]!;
    for (let i = 0; i < from.parallelism; i++) {
      const targets = e.partitioning.kind === 'forward' ? [i] : range(to.parallelism);
      for (const j of targets) {
        const src = refs[from.index]![i]!;
        const dst = refs[to.index]![j]!;
        channels.push({
          id: channels.length,
          edge,
          from: src,
          to: dst,
          fromWorker: workerOf(src),
          toWorker: workerOf(dst),
        });
      }
    }
  });
  return channels;
};

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

const validateGraph = (graph: JobGraph) => {
  const invalid = (m: string) =>
    new InvalidArgumentError(`job '${graph.name}': ${m}`, 'EDDY_INVALID_JOB');
  if (graph.nodes.length === 0) throw invalid('the job has no operators; add a source and a sink');
  const describe = (n: JobNode) => `'${n.name}' (uid ${n.uid})`;
  const uids = new Set<string>();
  for (const n of graph.nodes) {
    if (uids.has(n.uid))
      throw invalid(`two operators share the uid '${n.uid}'; uids must be unique`);
    uids.add(n.uid);
  }
  for (const e of graph.edges) {
    const s = graph.nodes[e.source]!;
    const t = graph.nodes[e.target]!;
    if (t.kind === 'source') throw invalid(`source ${describe(t)} cannot have an input`);
    if (e.partitioning.kind === 'forward' && s.parallelism !== t.parallelism) {
      throw invalid(
        `forward edge from ${describe(s)} (parallelism ${s.parallelism}) to ${describe(t)} (parallelism ${t.parallelism}) needs equal parallelism; use rebalance()`,
      );
    }
  }
  for (const n of graph.nodes) {
    if (n.kind === 'operator' && !graph.edges.some((e) => e.target === n.id)) {
      throw invalid(`operator ${describe(n)} has no input`);
    }
  }
};
