/** Fixtures of the server tests: a small job graph, metrics reports, metadata, a fake job. */
import type { CheckpointMetadata } from '../checkpoint/types.js';
import type { JobGraph } from '../runtime/graph.js';
import type { SubtaskMetricsReport } from '../runtime/metrics.js';
import { JobMonitor } from './monitor.js';
import type { RestJob } from './server.js';

const key = (r: unknown) => String(r);

/** events (source) -hash-> sum (keyed) -forward-> out (sink), each at `parallelism`. */
export const testGraph = (parallelism = 2, maxParallelism = 8): JobGraph =>
  ({
    name: 'test-job',
    nodes: [
      { id: 0, kind: 'source', uid: 'events', name: 'file-source', parallelism, maxParallelism },
      {
        id: 1,
        kind: 'operator',
        uid: 'sum',
        name: 'running-sum',
        parallelism,
        maxParallelism,
        keySelector: key,
      },
      {
        id: 2,
        kind: 'operator',
        uid: 'out',
        name: 'file-sink',
        parallelism,
        maxParallelism,
        keySelector: undefined,
        sink: { defaultName: 'file-sink' },
      },
    ],
    edges: [
      { source: 0, target: 1, partitioning: { kind: 'hash', keySelector: key } },
      { source: 1, target: 2, partitioning: { kind: 'forward' } },
    ],
  }) as unknown as JobGraph;

/** One report per subtask of `nodeId`, with `values`. */
export const reports = (
  nodeId: number,
  kind: SubtaskMetricsReport['kind'],
  values: Array<Record<string, number>>,
): SubtaskMetricsReport[] =>
  values.map((v, i) => ({
    nodeId,
    operatorName: `node-${nodeId}`,
    kind,
    subtaskIndex: i,
    worker: i,
    values: v,
  }));

/** Metadata of a checkpoint of `testGraph(parallelism)` with keyed blocks for `sum`. */
export const testMetadata = (checkpointId: number, parallelism = 2): CheckpointMetadata => ({
  formatVersion: 1,
  jobName: 'test-job',
  jobId: 'job-1',
  checkpointId,
  savepoint: false,
  timestamp: 1_700_000_000_000,
  operators: [
    {
      uid: 'events',
      name: 'file-source',
      parallelism,
      maxParallelism: 8,
      subtasks: Array.from({ length: parallelism }, (_, index) => ({
        index,
        operatorState: {
          file: `events-${index}.opstate`,
          bytes: 30,
          states: [
            { name: 'splits', mode: 'split', elements: [{ offset: 0, length: 10, crc32: 0 }] },
          ],
        },
      })),
    },
    {
      uid: 'sum',
      name: 'running-sum',
      parallelism,
      maxParallelism: 8,
      subtasks: Array.from({ length: parallelism }, (_, index) => ({
        index,
        keyed: {
          file: `sum-${index}.keyed`,
          keyGroupRange: [index * (8 / parallelism), (index + 1) * (8 / parallelism) - 1],
          blocks: [
            { keyGroup: index * (8 / parallelism), offset: 0, length: 100 + index, crc32: 0 },
          ],
          bytes: 100 + index,
        },
      })),
    },
    { uid: 'out', name: 'file-sink', parallelism, maxParallelism: 8, subtasks: [] },
  ],
});

/** A job whose controls record their calls; `monitor` has `testGraph()`. */
export const fakeJob = (id = 'a1b2c3d4-0000-4000-8000-000000000001') => {
  const monitor = new JobMonitor(id, 'test-job', async () => testMetadata(1));
  monitor.setGraph(testGraph());
  const calls: unknown[][] = [];
  const state = { rescaling: false, fail: undefined as Error | undefined };
  const job: RestJob = {
    id,
    name: 'test-job',
    monitor,
    state: () => ({
      status: 'running',
      parallelism: 2,
      startTime: '2026-01-01T00:00:00.000Z',
      rescaling: state.rescaling,
    }),
    async savepoint(dir) {
      calls.push(['savepoint', dir]);
      if (state.fail) throw state.fail;
      return `/sp/${dir ?? 'default'}`;
    },
    async stop(savepoint, dir, drain) {
      calls.push(['stop', savepoint, dir, drain]);
      return savepoint ? '/sp/final' : undefined;
    },
    async rescale(p, operators) {
      calls.push(['rescale', p, operators]);
      if (state.fail) throw state.fail;
      return {
        savepoint: '/sp/rescale',
        fromParallelism: 2,
        toParallelism: p ?? 2,
        operators,
        pauseMs: 100,
        prepareMs: 10,
        bytesRead: 1000,
        keyGroups: 8,
        restoreMs: 5,
      };
    },
    async rescalePlan(p, operators) {
      calls.push(['rescalePlan', p, operators]);
      if (state.fail) throw state.fail;
      return { plan: p, operators };
    },
  };
  return { job, monitor, calls, state };
};
