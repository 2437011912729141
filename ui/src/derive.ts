/** Figures the views derive from the job's graph. */
import type { Edge, PlanRead, Vertex } from './types.js';

/** Operators nothing feeds: their rate is what they emit. */
export const sourceUids = (vertices: readonly Vertex[], edges: readonly Edge[]): Set<string> => {
  const fed = new Set(edges.map((e) => e.to));
  return new Set(vertices.filter((v) => !fed.has(v.uid)).map((v) => v.uid));
};

const total = (xs: readonly number[]) => xs.reduce((a, b) => a + (Number.isFinite(b) ? b : 0), 0);

/** Records per second through an operator: emitted by a source, received by anything else. */
export const operatorRate = (v: Vertex, isSource: boolean): number => {
  const source = v.kind ? v.kind === 'source' : isSource;
  const summed = source ? v.recordsOutPerSecond : v.recordsInPerSecond;
  if (summed !== undefined) return summed;
  return total(v.subtasks.map((s) => (source ? s.recordsOutPerSecond : s.recordsInPerSecond)));
};

/** An operator is as backpressured as its busiest subtask. */
export const operatorPressure = (v: Vertex): number =>
  Math.max(0, ...v.subtasks.map((s) => (Number.isFinite(s.backpressure) ? s.backpressure : 0)));

export const operatorStateBytes = (v: Vertex): number =>
  total(v.subtasks.map((s) => s.stateBytes ?? 0));

/**
 * The old subtask a planned read comes from: keyed files are named `<uid>-<subtask>.keyed`;
 * otherwise the subtask whose key-group range holds the read's first key group.
 */
export const oldSubtaskOf = (read: PlanRead, old: Vertex | undefined): number | undefined => {
  if (read.oldSubtask !== undefined) return read.oldSubtask;
  // Shared files (incremental checkpoints) end in a checkpoint id and a tag, not a subtask.
  const m = read.file.startsWith('../') ? null : /-(\d+)\.keyed$/.exec(read.file);
  if (m) return Number(m[1]);
  return old?.subtasks.find(
    (s) =>
      s.keyGroupRange !== null &&
      s.keyGroupRange[0] <= read.keyGroups[0] &&
      read.keyGroups[0] <= s.keyGroupRange[1],
  )?.index;
};

/** The operator whose state matters most: the one with the most state bytes, else the first. */
export const defaultOperator = (vertices: readonly Vertex[]): string | undefined => {
  const keyed = vertices.find((v) => v.keyed);
  if (keyed) return keyed.uid;
  let best: Vertex | undefined;
  for (const v of vertices) if (!best || operatorStateBytes(v) > operatorStateBytes(best)) best = v;
  return best?.uid;
};
