/**
 * Checks, before any worker starts, that a checkpoint or savepoint can be restored into this
 * job: every operator with state still exists (unless the user allows dropping it) and keeps
 * its maxParallelism (key groups are fixed once a job has state).
 */
import type { CheckpointMetadata } from '../checkpoint/types.js';
import { EddyError } from '../core/errors.js';
import type { JobGraph } from './graph.js';

export const checkRestore = (
  graph: JobGraph,
  metadata: CheckpointMetadata,
  allowNonRestoredState: boolean,
): void => {
  const byUid = new Map(graph.nodes.map((n) => [n.uid, n]));
  for (const op of metadata.operators) {
    const hasState = op.subtasks.some((s) => s.keyed || s.operatorState);
    const node = byUid.get(op.uid);
    if (!node) {
      if (hasState && !allowNonRestoredState) {
        throw new EddyError(
          'EDDY_CHECKPOINT_INCOMPATIBLE',
          `the checkpoint has state for operator '${op.name}' (uid ${op.uid}), which this job no longer has: give the operator its uid back, or restore with --allow-non-restored-state to drop that state`,
          { domain: 'user' },
        );
      }
      continue;
    }
    if (hasState && node.maxParallelism !== op.maxParallelism) {
      throw new EddyError(
        'EDDY_CHECKPOINT_INCOMPATIBLE',
        `operator '${node.name}' (uid ${node.uid}) has maxParallelism ${node.maxParallelism}, but its state in the checkpoint has ${op.maxParallelism} key groups; maxParallelism is fixed once a job has state: run with --max-parallelism ${op.maxParallelism}`,
        { domain: 'user' },
      );
    }
  }
};
