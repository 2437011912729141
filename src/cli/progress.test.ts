import { describe, expect, it, vi } from 'vitest';
import type { SubtaskMetricsReport } from '../runtime/metrics.js';
import { addTotals, formatProgress, ProgressLine, plural, totals } from './progress.js';

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

  it('prints rates per second between two updates on one line, with the job and checkpoint', () => {
    const writes: string[] = [];
    const stream = { write: (s: string) => writes.push(s) } as unknown as NodeJS.WriteStream;
    const now = vi.spyOn(performance, 'now');
    const line = new ProgressLine(stream, 'job', '1a2b3c4d-0000-4000-8000-000000000000');
    now.mockReturnValue(1000);
    line.update({ recordsIn: 0, recordsOut: 0, deadLetters: 0 });
    line.checkpointCompleted(7);
    now.mockReturnValue(3000);
    line.update({ recordsIn: 4000, recordsOut: 2000, deadLetters: 0 });
    now.mockRestore();
    expect(writes).toHaveLength(1);
    expect(writes[0]).toBe(
      '\rjob [1a2b3c4d]: read 2,000 rec/s, written 1,000 rec/s | total read 4,000, written 2,000 | checkpoint 7 (2 s ago)',
    );
  });

  it('formatProgress: name, short id, rates, totals, dead letters and the last checkpoint', () => {
    const base = {
      jobName: 'keyed-sum',
      jobId: 'abcdef12-3456-4789-8abc-def012345678',
      readRate: 1234.4,
      writeRate: 1000,
      totals: { recordsIn: 10_000, recordsOut: 9_990, deadLetters: 1 },
    };
    expect(formatProgress({ ...base, lastCheckpoint: { id: 3, ageMs: 65_500 } })).toBe(
      'keyed-sum [abcdef12]: read 1,234 rec/s, written 1,000 rec/s | total read 10,000, written 9,990, 1 dead letter | checkpoint 3 (1 min 5 s ago)',
    );
    expect(
      formatProgress({
        ...base,
        totals: { ...base.totals, deadLetters: 2 },
        lastCheckpoint: undefined,
      }),
    ).toBe(
      'keyed-sum [abcdef12]: read 1,234 rec/s, written 1,000 rec/s | total read 10,000, written 9,990, 2 dead letters | no checkpoint yet',
    );
  });

  it('plural', () => {
    expect(plural(1, 'dead letter')).toBe('1 dead letter');
    expect(plural(2, 'dead letter')).toBe('2 dead letters');
    expect(plural(1500, 'dead letter')).toBe('1,500 dead letters');
  });

  it('addTotals', () => {
    expect(
      addTotals(
        { recordsIn: 1, recordsOut: 2, deadLetters: 3 },
        { recordsIn: 10, recordsOut: 20, deadLetters: 30 },
      ),
    ).toEqual({ recordsIn: 11, recordsOut: 22, deadLetters: 33 });
  });
});
