import { describe, expect, it } from 'vitest';
import type { CheckpointMetadata } from '../checkpoint/types.js';
import type { JobGraph } from './graph.js';
import { checkRestore } from './restore-check.js';

const graph = (maxParallelism = 128): JobGraph => ({
  name: 'j',
  nodes: [
    {
      id: 0,
      uid: 'src',
      name: 'src',
      parallelism: 2,
      maxParallelism,
      kind: 'source',
      source: {} as never,
    },
    {
      id: 1,
      uid: 'sum',
      name: 'sum',
      parallelism: 2,
      maxParallelism,
      kind: 'operator',
      keySelector: (r) => r as string,
      createOperator: () => ({}) as never,
    },
  ],
  edges: [{ source: 0, target: 1, partitioning: { kind: 'forward' } }],
});

const metadata = (uids: string[], maxParallelism = 128): CheckpointMetadata => ({
  formatVersion: 1,
  jobName: 'j',
  jobId: 'id',
  checkpointId: 3,
  savepoint: true,
  timestamp: 0,
  operators: uids.map((uid) => ({
    uid,
    name: uid,
    parallelism: 2,
    maxParallelism,
    subtasks: [{ index: 0, operatorState: { file: `${uid}-0.opstate`, states: [], bytes: 0 } }],
  })),
});

describe('checkRestore', () => {
  it('accepts state of operators the job has', () => {
    expect(() => checkRestore(graph(), metadata(['src', 'sum']), false)).not.toThrow();
  });

  it('refuses state of a uid the job no longer has, unless allowed', () => {
    expect(() => checkRestore(graph(), metadata(['src', 'gone']), false)).toThrow(
      /state for operator 'gone' \(uid gone\), which this job no longer has.*--allow-non-restored-state/,
    );
    expect(() => checkRestore(graph(), metadata(['src', 'gone']), true)).not.toThrow();
  });

  it('refuses a different maxParallelism, naming both numbers and the fix', () => {
    expect(() => checkRestore(graph(256), metadata(['sum'], 128), false)).toThrow(
      /maxParallelism 256, but its state in the checkpoint has 128 key groups.*--max-parallelism 128/,
    );
  });
});
