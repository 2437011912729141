/**
 * `--checkpoint-mode incremental` through the real CLI: checkpoints go to `blocks/` as chains,
 * `eddy rescale` restores from the stop's final incremental checkpoint (no rescale savepoint),
 * `eddy inspect` shows the chains, and after several rescales and a resume the output of a
 * keyed count is exactly once (every key's running counts 1..n, no gap, no repeat).
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  eddy,
  ROOT,
  readParts,
  startCheckpointingJob,
  stopGracefully,
  tempDir,
} from './helpers.js';

const JOB = join(ROOT, 'test/e2e/fixtures/rated-counter.ts');

/** Per key the running counts must be exactly 1..n: nothing lost, nothing twice. */
const expectExactlyOnce = (lines: string[]) => {
  const counts = new Map<string, number[]>();
  for (const l of lines) {
    const { key, n } = JSON.parse(l) as { key: string; n: number };
    counts.set(key, [...(counts.get(key) ?? []), n]);
  }
  expect(counts.size).toBe(16);
  for (const [key, ns] of counts) {
    const sorted = [...ns].sort((a, b) => a - b);
    expect(sorted, key).toEqual(Array.from({ length: sorted.length }, (_, i) => i + 1));
  }
};

describe('eddy run --checkpoint-mode incremental', () => {
  it('rescales through final incremental checkpoints and resumes, exactly once', async () => {
    const home = tempDir('eddy-home-');
    const env = { ...process.env, EDDY_HOME: home };
    const cwd = tempDir('run-cwd-');
    const job = await startCheckpointingJob(JOB, cwd, env, ['--checkpoint-mode', 'incremental']);
    const id = job.id;
    for (const p of ['3', '1', '2']) {
      const r = await eddy(['rescale', id, p], undefined, env);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/via \S+\/checkpoints\/chk-\d+\n/);
    }
    const root = join(home, 'jobs', 'rated-counter');
    expect(
      existsSync(join(root, 'rescales')) && readdirSync(join(root, 'rescales')).length,
    ).toBeFalsy();
    expect(readdirSync(join(root, 'checkpoints', 'blocks')).length).toBeGreaterThan(0);
    expect(job.stderr()).toMatch(/rescaling: stopping with a final incremental checkpoint/);
    await stopGracefully(job.child, job.exited);

    const checkpoints = readdirSync(join(root, 'checkpoints')).filter((d) => d.startsWith('chk-'));
    const newest = checkpoints.sort((a, b) => Number(a.slice(4)) - Number(b.slice(4))).at(-1)!;
    const inspected = await eddy(
      ['inspect', join(root, 'checkpoints', newest), '--json'],
      undefined,
      env,
    );
    expect(inspected.code, inspected.stderr).toBe(0);
    const report = JSON.parse(inspected.stdout) as {
      operators: { uid: string; keyedState?: { format: string } }[];
    };
    expect(report.operators.find((o) => o.uid === 'counts')?.keyedState?.format).toBe(
      'incremental',
    );

    const resumed = await startCheckpointingJob(JOB, cwd, env, [
      '--checkpoint-mode',
      'incremental',
      '--resume',
    ]);
    expect(resumed.stderr()).toMatch(/resuming from \S+\/checkpoints\/chk-\d+/);
    await stopGracefully(resumed.child, resumed.exited);
    expectExactlyOnce(readParts(join(cwd, 'out')));
  });

  it('refuses an unknown mode, naming the choices', async () => {
    const r = await eddy(['run', JOB, '--checkpoint-mode', 'delta', '--', 'out']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/--checkpoint-mode.*'delta'.*full, incremental/);
  });
});
