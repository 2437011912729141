import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { SubtaskMetricsReport } from './metrics.js';
import { MetricsSampler } from './metrics-sampler.js';

const source = (subtask: number, out: number): SubtaskMetricsReport => ({
  nodeId: 0,
  operatorName: 'src',
  kind: 'source',
  subtaskIndex: subtask,
  values: { recordsIn: 0, recordsOut: out },
});
const sink = (subtask: number, inn: number): SubtaskMetricsReport => ({
  nodeId: 1,
  operatorName: 'sink',
  kind: 'sink',
  subtaskIndex: subtask,
  values: { recordsIn: inn, recordsOut: 0 },
});

const read = (rs: readonly SubtaskMetricsReport[]) =>
  rs.filter((r) => r.kind === 'source').reduce((a, r) => a + (r.values.recordsOut ?? 0), 0);
const written = (rs: readonly SubtaskMetricsReport[]) =>
  rs.filter((r) => r.kind === 'sink').reduce((a, r) => a + (r.values.recordsIn ?? 0), 0);

/**
 * Two workers, each with a source and a sink subtask; every record read by a source on one
 * worker is written by the sink on the other (a rebalance). Questions and answers travel
 * with arbitrary delays while records flow.
 */
class Pipeline {
  readBy = [0, 0];
  writtenBy = [0, 0];
  /** Records read, not yet written, per destination worker. */
  inFlight = [0, 0];
  asked: Array<{ worker: number; round: number }> = [];
  delivered: SubtaskMetricsReport[][] = [];
  finished = new Set<number>();
  sampler = new MetricsSampler(
    () => [0, 1].filter((w) => !this.finished.has(w)),
    (worker, round) => this.asked.push({ worker, round }),
    () => new Map([...this.finished].map((w) => [w, this.reports(w)])),
    (r) => this.delivered.push(r),
  );

  reports(w: number): SubtaskMetricsReport[] {
    return [source(w, this.readBy[w]!), sink(w, this.writtenBy[w]!)];
  }

  readAt(w: number): void {
    this.readBy[w]!++;
    this.inFlight[1 - w]!++;
  }

  writeAt(w: number): void {
    if (this.inFlight[w]! === 0) return;
    this.inFlight[w]!--;
    this.writtenBy[w]!++;
  }

  /** A worker answers one question it was asked (the oldest). */
  answer(index: number): void {
    if (this.asked.length === 0) return;
    const [q] = this.asked.splice(index % this.asked.length, 1);
    this.sampler.onReports(q!.worker, q!.round, this.reports(q!.worker));
  }
}

describe('MetricsSampler', () => {
  it('never shows more written than read, whatever the interleaving (property)', () => {
    const step = fc.oneof(
      fc.record({ op: fc.constant('read' as const), w: fc.integer({ min: 0, max: 1 }) }),
      fc.record({ op: fc.constant('write' as const), w: fc.integer({ min: 0, max: 1 }) }),
      fc.record({ op: fc.constant('answer' as const), w: fc.nat(8) }),
      fc.record({ op: fc.constant('tick' as const), w: fc.constant(0) }),
    );
    fc.assert(
      fc.property(fc.array(step, { maxLength: 300 }), (steps) => {
        const p = new Pipeline();
        for (const s of steps) {
          if (s.op === 'read') p.readAt(s.w);
          else if (s.op === 'write') p.writeAt(s.w);
          else if (s.op === 'answer') p.answer(s.w);
          else p.sampler.tick();
        }
        for (const d of p.delivered) expect(written(d)).toBeLessThanOrEqual(read(d));
      }),
    );
  });

  it('asks the sinks first, then everything else, and delivers once both rounds answered', () => {
    const p = new Pipeline();
    p.sampler.tick();
    expect(p.asked.map((a) => a.round)).toEqual([1, 1]);
    p.answer(0);
    p.sampler.tick(); // still sampling: no new round
    expect(p.asked).toHaveLength(1);
    p.answer(0);
    expect(p.asked.map((a) => a.round)).toEqual([2, 2]);
    p.readAt(0);
    p.writeAt(1);
    p.answer(0);
    p.answer(0);
    expect(p.delivered).toHaveLength(1);
    // The sink count is round 1's (0), the source count round 2's (1).
    expect(read(p.delivered[0]!)).toBe(1);
    expect(written(p.delivered[0]!)).toBe(0);
  });

  it('uses the final reports of finished workers and does not wait for them', () => {
    const p = new Pipeline();
    p.readAt(1);
    p.writeAt(0);
    p.sampler.tick();
    p.finished.add(1);
    p.sampler.forget(1);
    p.asked = p.asked.filter((a) => a.worker !== 1); // a finished worker answers nothing
    p.answer(0);
    p.answer(0);
    expect(p.delivered).toHaveLength(1);
    expect(read(p.delivered[0]!)).toBe(1);
    expect(written(p.delivered[0]!)).toBe(1);
  });

  it('ignores answers to an older round', () => {
    const p = new Pipeline();
    p.sampler.tick();
    p.sampler.onReports(0, 99, p.reports(0));
    expect(p.asked).toHaveLength(2);
    expect(p.delivered).toHaveLength(0);
  });
});
