/**
 * Redistribution of operator list state on restore (docs/DESIGN.md §3), as Flink's round-robin
 * repartitioner does it. Pure; no I/O.
 *
 * - split: every element of every old subtask, in old-subtask order, dealt into contiguous
 *   chunks; the first `total % p` new subtasks get one element more. At unchanged parallelism
 *   each subtask keeps exactly its own elements (a source keeps its own partitions).
 * - union: every new subtask gets all elements of all old subtasks.
 * - broadcast: new subtask i gets old subtask `i % oldParallelism`'s copy (all copies are equal).
 */
import { EddyError } from '../core/errors.js';
import type { OperatorStateSnapshot, RedistributionMode } from '../state/types.js';

type State = { name: string; mode: RedistributionMode; elements: unknown[] };

/**
 * The operator state of each of `newParallelism` subtasks, from the states of the old subtasks
 * (`old[i]` = old subtask i; an empty `{ states: [] }` for a subtask that had none). States keep
 * their first-seen order; every new subtask lists every state, possibly with no elements.
 * @throws EddyError `EDDY_STATE` if one name has different modes in different old subtasks.
 */
export const redistributeOperatorState = (
  old: readonly OperatorStateSnapshot[],
  newParallelism: number,
): OperatorStateSnapshot[] => {
  const out = Array.from({ length: newParallelism }, () => ({ states: [] as State[] }));
  for (const [name, mode] of modesByName(old)) {
    const perOld = old.map((s) => s.states.find((x) => x.name === name)?.elements ?? []);
    const dealt = deal(mode, perOld, newParallelism);
    dealt.forEach((elements, i) => {
      out[i]!.states.push({ name, mode, elements });
    });
  }
  return out;
};

const modesByName = (old: readonly OperatorStateSnapshot[]): Map<string, RedistributionMode> => {
  const modes = new Map<string, RedistributionMode>();
  for (const snapshot of old) {
    for (const { name, mode } of snapshot.states) {
      const seen = modes.get(name);
      if (seen !== undefined && seen !== mode) {
        throw new EddyError(
          'EDDY_STATE',
          `operator state '${name}' was checkpointed with mode '${seen}' in one subtask and ` +
            `'${mode}' in another; one name must always use one redistribution mode`,
          { domain: 'internal' },
        );
      }
      modes.set(name, mode);
    }
  }
  return modes;
};

const deal = (
  mode: RedistributionMode,
  perOld: ReadonlyArray<readonly unknown[]>,
  p: number,
): unknown[][] => {
  if (mode === 'union') {
    const all = perOld.flat();
    return Array.from({ length: p }, () => all.slice());
  }
  if (mode === 'broadcast') {
    return Array.from({ length: p }, (_, i) => (perOld[i % perOld.length] ?? []).slice());
  }
  if (perOld.length === p) return perOld.map((e) => e.slice());
  return splitEvenly(perOld.flat(), p);
};

const splitEvenly = (all: readonly unknown[], p: number): unknown[][] => {
  const base = Math.floor(all.length / p);
  const extra = all.length % p;
  const out: unknown[][] = [];
  let at = 0;
  for (let i = 0; i < p; i++) {
    const n = base + (i < extra ? 1 : 0);
    out.push(all.slice(at, at + n));
    at += n;
  }
  return out;
};
