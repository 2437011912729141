import { describe, expect, it } from 'vitest';
import {
  parseCheckpointFailure,
  parseCheckpointLine,
  parseCheckpointLog,
} from './checkpoint-parse.js';

const MiB = 1024 * 1024;

describe('checkpoint stderr line parser', () => {
  it('parses the line eddy run prints', () => {
    expect(
      parseCheckpointLine(
        'checkpoint 3 completed: 12.4 MiB in 812 ms (sync 15.1 ms, async 700 ms) → /tmp/x/chk-3',
      ),
    ).toEqual({
      kind: 'checkpoint',
      id: 3,
      bytes: Math.round(12.4 * MiB),
      totalMs: 812,
      syncMs: 15.1,
      asyncMs: 700,
      dir: '/tmp/x/chk-3',
    });
  });

  it('handles B, KiB, GiB and SI units', () => {
    const bytes = (s: string) =>
      parseCheckpointLine(`checkpoint 1 completed: ${s} in 5 ms (sync 1 ms, async 2 ms)`)?.bytes;
    expect(bytes('977 B')).toBe(977);
    expect(bytes('346.6 KiB')).toBe(Math.round(346.6 * 1024));
    expect(bytes('1.5 GiB')).toBe(1.5 * 1024 ** 3);
    expect(bytes('2 MB')).toBe(2_000_000);
    expect(bytes('1,234 bytes')).toBe(1234);
    expect(bytes('12.4MiB')).toBe(Math.round(12.4 * MiB));
  });

  it('tolerates other duration units, field order, colours and a missing dir or total', () => {
    const a = parseCheckpointLine(
      '\u001b[2mcheckpoint 12 completed: 3.0 MiB (async 1.2 s, sync 850 µs) in 1.5 s\u001b[0m',
    );
    expect(a).toMatchObject({ id: 12, bytes: 3 * MiB, totalMs: 1500, dir: undefined });
    expect(a?.syncMs).toBeCloseTo(0.85);
    expect(a?.asyncMs).toBe(1200);
    const b = parseCheckpointLine('checkpoint 4 completed: 1 KiB (sync 2.5ms, async 7ms) -> d');
    expect(b).toMatchObject({ id: 4, bytes: 1024, totalMs: undefined, syncMs: 2.5 });
    expect(b?.asyncMs).toBe(7);
    expect(b?.dir).toBe('d');
  });

  it('does not read numbers from the directory path', () => {
    const c = parseCheckpointLine(
      'checkpoint 2 completed: 5.0 KiB in 9 ms (sync 1.0 ms, async 3 ms) → /data/7 MiB/sync 99 ms',
    );
    expect(c).toMatchObject({
      bytes: 5 * 1024,
      syncMs: 1,
      asyncMs: 3,
      dir: '/data/7 MiB/sync 99 ms',
    });
  });

  it('recognises savepoints and ignores other lines', () => {
    expect(
      parseCheckpointLine('savepoint 9 completed: 1.0 MiB in 10 ms (sync 1.0 ms, async 8 ms) → s')
        ?.kind,
    ).toBe('savepoint');
    expect(parseCheckpointLine('finished in 9.28 s: 2,000,000 records in')).toBeUndefined();
    expect(parseCheckpointLine('checkpoint 3 completed: in a hurry')).toBeUndefined();
    expect(parseCheckpointLine('')).toBeUndefined();
  });

  it('parses the lines of an incremental run (bytes written, down to 0 B)', () => {
    // As `eddy run --checkpoint-mode incremental` printed them (2026-11-26): the bytes are what
    // each checkpoint wrote, its directory holds only metadata and operator state.
    const log = [
      'checkpoint 1 completed: 410.0 KiB in 288 ms (sync 3.0 ms, async 220 ms) → /tmp/ckt/chk/chk-1',
      'checkpoint 2 completed: 366.1 KiB in 247 ms (sync 9.4 ms, async 198 ms) → /tmp/ckt/chk/chk-2',
      'checkpoint 3 completed: 0 B in 12 ms (sync 0.4 ms, async 3 ms) → /tmp/ckt/chk/chk-3',
      'finished in 2.37 s: 300,000 records read by sources, 300,000 written by sinks (126,339 rec/s read)',
    ].join('\n');
    const { completed, failed } = parseCheckpointLog(log);
    expect(failed).toEqual([]);
    expect(completed.map((c) => [c.id, c.bytes, c.asyncMs])).toEqual([
      [1, Math.round(410 * 1024), 220],
      [2, Math.round(366.1 * 1024), 198],
      [3, 0, 3],
    ]);
    expect(completed[2]?.dir).toBe('/tmp/ckt/chk/chk-3');
  });

  it('parses failures and a whole stderr log', () => {
    expect(parseCheckpointFailure('checkpoint 5 failed: disk full')).toMatchObject({
      kind: 'checkpoint',
      id: 5,
    });
    const log = [
      'checkpoint 1 completed: 346.6 KiB in 1568 ms (sync 24.2 ms, async 1361 ms) → /t/chk-1',
      'checkpoint 2 declined by subtask 0',
      'checkpoint 3 completed: 1.4 MiB in 69 ms (sync 33.8 ms, async 61 ms) → /t/chk-3',
      'savepoint 4 completed: 1.4 MiB in 69 ms (sync 33.8 ms, async 61 ms) → /t/sp-4',
      'finished in 9.28 s: 2,000,000 records in, 2,000,000 out (215,458 rec/s)',
      '',
    ].join('\r\n');
    const { completed, failed } = parseCheckpointLog(log);
    expect(completed.map((c) => c.id)).toEqual([1, 3]);
    expect(failed.map((f) => f.id)).toEqual([2]);
  });
});
