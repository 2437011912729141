/**
 * What the CLI prints when a job fails, from the user's side: a job's own build error is the
 * job's (not eddy's), the max-parallelism advice is one consistent thing, and a failure in user
 * code shows the failing record and the user's own (source-mapped) stack frames.
 */
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { eddy, tempDir } from './helpers.js';

const events = (dir: string, n: number) => {
  mkdirSync(dir, { recursive: true });
  const lines = Array.from({ length: n }, (_, i) =>
    JSON.stringify({ user: `u${i % 7}`, amount: 1 }),
  );
  writeFileSync(join(dir, 'events-000.jsonl'), `${lines.join('\n')}\n`);
  return dir;
};

describe('CLI error reports', () => {
  it("a job's own build error is reported as the job's, not as EDDY_INTERNAL", async () => {
    const r = await eddy(['run', 'examples/keyed-sum.ts', '--no-progress']);
    expect(r.code).toBe(1);
    expect(r.stderr).not.toContain('EDDY_INTERNAL');
    expect(r.stderr).toContain(
      "eddy: error [EDDY_INVALID_JOB]: job 'keyed-sum' (examples/keyed-sum.ts) failed to build: keyed-sum needs -- --input <dir> --output <dir>",
    );
    // The job's own frame, where it threw its usage message.
    expect(r.stderr).toMatch(/\n {4}at .*examples\/keyed-sum\.ts:\d+:\d+/);
  });

  it('max-parallelism advice: raise it when the job has no state; fixed once it has state', async () => {
    const root = tempDir();
    const input = events(join(root, 'in'), 3000);
    // Without state: raising --max-parallelism is the advice.
    const fresh = await eddy([
      'run',
      'examples/keyed-sum.ts',
      '-p',
      '500',
      '--max-parallelism',
      '256',
      '--no-progress',
      '--',
      '--input',
      input,
      '--output',
      join(root, 'out0'),
    ]);
    expect(fresh.code).toBe(1);
    expect(fresh.stderr).toContain(
      '[EDDY_INVALID_PARALLELISM]: parallelism 500 exceeds maxParallelism 256: raise --max-parallelism to at least 500, or lower the parallelism',
    );
    expect(fresh.stderr).not.toContain('fixed once');

    // With state: a checkpoint of the job at p=2 (maxParallelism 128).
    const cp = join(root, 'cp');
    const first = await eddy([
      'run',
      'examples/keyed-sum.ts',
      '-p',
      '2',
      '--no-progress',
      '--checkpoint-interval',
      '50',
      '--checkpoint-dir',
      cp,
      '--',
      '--input',
      input,
      '--output',
      join(root, 'out1'),
      '--rate',
      '10000',
    ]);
    expect(first.code, first.stderr).toBe(0);
    const chk = readdirSync(cp).filter((d) => d.startsWith('chk-'));
    expect(chk.length).toBeGreaterThan(0);
    const restore = (extra: string[]) =>
      eddy([
        'run',
        'examples/keyed-sum.ts',
        ...extra,
        '--no-progress',
        '--from-savepoint',
        join(cp, chk[chk.length - 1]!),
        '--',
        '--input',
        input,
        '--output',
        join(root, 'out2'),
      ]);
    // Both without and with a raised --max-parallelism, the advice is the same: the
    // maxParallelism is fixed, lower the parallelism (raising it would be refused).
    for (const extra of [
      ['-p', '500'],
      ['-p', '500', '--max-parallelism', '1024'],
    ]) {
      const r = await restore(extra);
      expect(r.code, extra.join(' ')).toBe(1);
      expect(r.stderr).toContain('[EDDY_INVALID_PARALLELISM]');
      expect(r.stderr).toContain(
        'parallelism 500 exceeds maxParallelism 128, which is fixed once the job has state (its state has 128 key groups): choose a parallelism <= 128',
      );
      expect(r.stderr).not.toContain('raise --max-parallelism');
    }
  });

  it("a failure in user code shows the failing record and the user's own .ts frame", async () => {
    const out = join(tempDir(), 'out');
    const r = await eddy([
      'run',
      'test/e2e/fixtures/failing-map.ts',
      '-p',
      '2',
      '--no-progress',
      '--',
      out,
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('[EDDY_USER_FUNCTION]');
    expect(r.stderr).toContain('\n  record: {"n":1234}\n');
    // The frame of the user's map function, source-mapped to the line that throws.
    expect(r.stderr).toMatch(/\n {4}at .*test\/e2e\/fixtures\/failing-map\.ts:13:\d+\)?\n/);
    // Only user frames: none of eddy's own (dist/ or src/) or Node's.
    const frames = r.stderr.split('\n').filter((l) => /^\s+at /.test(l));
    expect(frames.length).toBeGreaterThan(0);
    expect(frames.length).toBeLessThanOrEqual(3);
    for (const f of frames) expect(f).not.toMatch(/\/(dist|src)\/|node:/);
  });
});
