import { describe, expect, it } from 'vitest';
import type { IncrementalKeyedStateHandle } from '../checkpoint/types.js';
import { JobMonitor } from './monitor.js';
import { reports, testGraph, testMetadata } from './server.testkit.js';

const monitor = () => {
  const m = new JobMonitor('job-1', 'test-job', async () => testMetadata(5));
  m.setGraph(testGraph());
  return m;
};

const sumVertex = (m: JobMonitor) => m.vertices().find((v) => v.uid === 'sum')!;

describe('JobMonitor', () => {
  it('lays out the graph: vertices with kinds, key-group ranges and edges by uid', () => {
    const m = monitor();
    const vs = m.vertices();
    expect(vs.map((v) => [v.uid, v.kind, v.keyed, v.parallelism])).toEqual([
      ['events', 'source', false, 2],
      ['sum', 'operator', true, 2],
      ['out', 'sink', false, 2],
    ]);
    expect(sumVertex(m).subtasks.map((s) => s.keyGroupRange)).toEqual([
      [0, 3],
      [4, 7],
    ]);
    expect(vs[0]!.subtasks[0]!.keyGroupRange).toBeNull();
    expect(m.edges()).toEqual([
      { from: 'events', to: 'sum', partitioning: 'hash' },
      { from: 'sum', to: 'out', partitioning: 'forward' },
    ]);
    expect(m.maxParallelism()).toBe(8);
    // Before any sample: zeros and nulls, never missing fields.
    expect(sumVertex(m).subtasks[0]).toEqual({
      index: 0,
      worker: null,
      recordsIn: 0,
      recordsOut: 0,
      recordsInPerSecond: 0,
      recordsOutPerSecond: 0,
      backpressure: 0,
      watermark: null,
      keyGroupRange: [0, 3],
      stateBytes: null,
    });
  });

  it('computes rates and backpressure from successive samples', () => {
    const m = monitor();
    m.onMetrics(reports(1, 'operator', [{ recordsIn: 100, backpressuredMs: 0 }, {}]), 1000);
    m.onMetrics(
      reports(1, 'operator', [
        { recordsIn: 600, recordsOut: 50, backpressuredMs: 250, watermark: 1234 },
        {},
      ]),
      1500,
    );
    const s = sumVertex(m).subtasks[0]!;
    expect(s.recordsIn).toBe(600);
    expect(s.recordsInPerSecond).toBe(1000); // 500 records in 500 ms
    expect(s.recordsOutPerSecond).toBe(100);
    expect(s.backpressure).toBe(0.5); // blocked 250 of 500 ms
    expect(s.watermark).toBe(1234);
    expect(s.worker).toBe(0);
    expect(sumVertex(m).recordsInPerSecond).toBe(1000);
    expect(sumVertex(m).backpressure).toBe(0.5);
  });

  it('measures over the last ~2 s and starts over when counts go down (a restart)', () => {
    const m = monitor();
    for (let t = 0; t <= 5000; t += 500) {
      // 100 rec/s until 3 s, then 1000 rec/s
      const n = t <= 3000 ? t / 10 : 300 + (t - 3000);
      m.onMetrics(reports(1, 'operator', [{ recordsIn: n }]), t);
    }
    expect(sumVertex(m).subtasks[0]!.recordsInPerSecond).toBe(1000);
    m.onRestart();
    m.onMetrics(reports(1, 'operator', [{ recordsIn: 10 }]), 5500);
    expect(sumVertex(m).subtasks[0]!.recordsInPerSecond).toBe(0);
    m.onMetrics(reports(1, 'operator', [{ recordsIn: 60 }]), 6000);
    expect(sumVertex(m).subtasks[0]!.recordsInPerSecond).toBe(100);
    expect(m.restarts).toBe(1);
  });

  it('takes state bytes from the latest snapshot at the running parallelism only', async () => {
    const m = monitor();
    m.setRestored('/chk-3', testMetadata(3, 4)); // restored from p=4: sizes unknown at p=2
    expect(sumVertex(m).stateBytes).toBeNull();
    await m.onCheckpoint({
      checkpointId: 5,
      dir: '/chk-5',
      savepoint: false,
      bytes: 300,
      syncMs: 1,
      asyncMs: 2,
      totalMs: 12.34,
      triggeredAt: 1_700_000_000_000,
    });
    // Read only when asked.
    expect(m.latestSnapshot()?.dir).toBe('/chk-3');
    await m.refresh();
    expect(sumVertex(m).subtasks.map((s) => s.stateBytes)).toEqual([100, 101]);
    expect(sumVertex(m).stateBytes).toBe(201);
    expect(m.vertices()[0]!.stateBytes).toBe(20);
    expect(m.latestSnapshot()?.dir).toBe('/chk-5');
    const kg = m.keyGroups();
    expect(kg.checkpointId).toBe(5);
    expect(kg.operators.map((o) => o.uid)).toEqual(['sum']);
    expect(kg.operators[0]!.bytes).toEqual([100, 0, 0, 0, 101, 0, 0, 0]);
  });

  it('counts an incremental snapshot by its chains (base + deltas), not by what it wrote', () => {
    const m = monitor();
    const base = testMetadata(6);
    const block = (file: number, offset: number, length: number) => ({
      file,
      offset,
      length,
      crc32: 0,
      records: 1,
    });
    const incremental = (index: number): IncrementalKeyedStateHandle => ({
      type: 'incremental',
      keyGroupRange: [index * 4, index * 4 + 3],
      files: [`../blocks/sum-${index}-5-00000005.keyed`, `../blocks/sum-${index}-6-00000006.keyed`],
      chains: [
        // Key group 4i: base (50 B) in checkpoint 5, delta (7 B) in 6; 4i+2: base only (20 B).
        { keyGroup: index * 4, entries: 3, blocks: [block(0, 0, 50), block(1, 0, 7)] },
        { keyGroup: index * 4 + 2, entries: 1, blocks: [block(0, 50, 20)] },
      ],
      bytes: 7,
    });
    m.setRestored('/chk-6', {
      ...base,
      operators: base.operators.map((o) =>
        o.uid === 'sum'
          ? { ...o, subtasks: [0, 1].map((index) => ({ index, keyed: incremental(index) })) }
          : o,
      ),
    });
    expect(sumVertex(m).subtasks.map((s) => s.stateBytes)).toEqual([77, 77]);
    expect(sumVertex(m).stateBytes).toBe(154);
    expect(m.keyGroups().operators[0]!.bytes).toEqual([57, 0, 20, 0, 57, 0, 20, 0]);
  });

  it('keeps the checkpoint history newest first, with the latest failure and its cause', async () => {
    const m = monitor();
    await m.onCheckpoint({
      checkpointId: 1,
      dir: '/chk-1',
      savepoint: false,
      bytes: 10,
      syncMs: 1.04,
      asyncMs: 2,
      totalMs: 3,
      triggeredAt: Date.parse('2026-01-01T00:00:00Z'),
    });
    m.onCheckpointFailed({
      checkpointId: 2,
      savepoint: true,
      triggeredAt: Date.parse('2026-01-01T00:00:01Z'),
      failedAt: Date.parse('2026-01-01T00:00:03Z'),
      cause: 'savepoint 2 failed: disk full',
    });
    const h = m.checkpoints();
    expect(h.counts).toEqual({ completed: 1, failed: 1 });
    expect(h.history.map((c) => [c.id, c.kind, c.status])).toEqual([
      [2, 'savepoint', 'failed'],
      [1, 'checkpoint', 'completed'],
    ]);
    expect(h.latestFailure).toMatchObject({
      id: 2,
      durationMs: 2000,
      cause: 'savepoint 2 failed: disk full',
      path: null,
    });
    expect(h.latestCompleted).toMatchObject({
      id: 1,
      triggerTime: '2026-01-01T00:00:00.000Z',
      syncMs: 1,
      path: '/chk-1',
    });
  });

  it('exports Prometheus counters that only rise, across a restart', async () => {
    const m = monitor();
    const value = async (name: string, labels: string) => {
      const line = (await m.prometheus.text())
        .split('\n')
        .find((l) => l.startsWith(`${name}{`) && l.includes(labels));
      return Number(line?.split(' ').pop());
    };
    m.onMetrics(reports(1, 'operator', [{ recordsIn: 100 }]), 0);
    m.onMetrics(reports(1, 'operator', [{ recordsIn: 150 }]), 500);
    expect(await value('eddy_records_in_total', 'operator="sum",subtask="0"')).toBe(150);
    m.onRestart();
    m.onMetrics(reports(1, 'operator', [{ recordsIn: 30 }]), 1000);
    expect(await value('eddy_records_in_total', 'operator="sum",subtask="0"')).toBe(180);
    expect(await value('eddy_restarts_total', 'job="test-job"')).toBe(1);
    m.onRescaled({
      savepoint: '/sp',
      fromParallelism: 2,
      toParallelism: 3,
      operators: {},
      pauseMs: 250,
      prepareMs: 1,
      bytesRead: 1,
      keyGroups: 1,
      restoreMs: 1,
    });
    expect(await value('eddy_last_rescale_pause_seconds', 'job="test-job"')).toBe(0.25);
    expect(m.lastRescale).toMatchObject({ fromParallelism: 2, toParallelism: 3, pauseMs: 250 });
  });
});
