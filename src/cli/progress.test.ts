import { describe, expect, it, vi } from 'vitest';
import type { SubtaskMetricsReport } from '../runtime/metrics.js';
import { ProgressLine, totals } from './progress.js';

const report = (
  kind: SubtaskMetricsReport['kind'],
  values: Record<string, number>,
): SubtaskMetricsReport => ({
  nodeId: 0,
  operatorName: kind,
  kind,
  subtaskIndex: 0,
  values,
});

describe('progress', () => {
  it('counts records in at sources, out at sinks, and dead letters anywhere', () => {
    const t = totals([
      report('source', { recordsOut: 10, deadLetters: 2 }),
      report('source', { recordsOut: 5 }),
      report('operator', { recordsIn: 15, recordsOut: 15 }),
      report('sink', { recordsIn: 7 }),
    ]);
    expect(t).toEqual({ recordsIn: 15, recordsOut: 7, deadLetters: 2 });
  });

  it('prints rates per second between two updates on one line', () => {
    const writes: string[] = [];
    const stream = { write: (s: string) => writes.push(s) } as unknown as NodeJS.WriteStream;
    const now = vi.spyOn(performance, 'now');
    const line = new ProgressLine(stream, 'job');
    now.mockReturnValue(1000);
    line.update([report('source', { recordsOut: 0 }), report('sink', { recordsIn: 0 })]);
    now.mockReturnValue(3000);
    line.update([report('source', { recordsOut: 4000 }), report('sink', { recordsIn: 2000 })]);
    now.mockRestore();
    expect(writes).toHaveLength(1);
    expect(writes[0]).toMatch(
      /^\rjob: in 2,000 rec\/s {2}out 1,000 rec\/s {2}\(total in 4,000, out 2,000\)/,
    );
  });
});
