/**
 * A source that never waits on real I/O (an unbounded generator with no rate) must not starve
 * its thread: checkpoints complete on schedule and Ctrl-C stops the job promptly. Before the
 * subtask loops yielded, this job took no checkpoint and ignored Ctrl-C.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { eddy, readParts, tempDir } from './helpers.js';

describe('an unbounded source that never waits', () => {
  it('checkpoints every 500 ms at -p 1 and stops soon after Ctrl-C with exact output', async () => {
    const dir = tempDir();
    const output = join(dir, 'out');
    let interruptedAt = 0;
    const completedBeforeStop: number[] = [];
    const r = await eddy(
      [
        'run',
        'test/e2e/fixtures/unbounded-generator.ts',
        '-p',
        '1',
        '--checkpoint-interval',
        '500',
        '--checkpoint-dir',
        join(dir, 'chk'),
        '--',
        output,
      ],
      (child) => {
        let err = '';
        child.stderr!.on('data', (d) => {
          err += d;
          const ids = [...err.matchAll(/^checkpoint (\d+) completed/gm)].map((m) => Number(m[1]));
          if (ids.length >= 3 && interruptedAt === 0) {
            completedBeforeStop.push(...ids);
            interruptedAt = performance.now();
            child.kill('SIGINT');
          }
        });
      },
    );
    const stopMs = performance.now() - interruptedAt;
    expect(r.stderr).toMatch(/stopped in/);
    expect(r.code).toBe(0);
    expect(completedBeforeStop.slice(0, 3)).toEqual([1, 2, 3]);
    // The issue asks for 1 s; the bound leaves room for a loaded CI machine (it was: never).
    expect(stopMs).toBeLessThan(5000);
    // Every multiple of 3 from 0 up to the last one written, each exactly once.
    const ns = readParts(output).map((l) => (JSON.parse(l) as { n: number }).n);
    ns.sort((a, b) => a - b);
    expect(ns.length).toBeGreaterThan(0);
    expect(ns).toEqual(Array.from({ length: ns.length }, (_, i) => i * 3));
  }, 60_000);
});
