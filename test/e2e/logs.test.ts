/**
 * `eddy logs`: a job's structured log in $EDDY_HOME/logs/<id>.log, human-readable or raw
 * JSON, followed while the job runs, and still found after the job ended and its registry
 * entry was pruned.
 */
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { eddy, tempDir, waitUntil, writeEventFiles } from './helpers.js';

const EVENTS = 4000;

describe('eddy logs', () => {
  it('shows start, checkpoints and end; --json lines carry the documented fields; -f follows', async () => {
    const env = { ...process.env, EDDY_HOME: tempDir('eddy-logs-home-') };
    const input = writeEventFiles([
      Array.from({ length: EVENTS }, (_, i) => ({ user: `u${i % 20}`, amount: 1 })),
    ]);
    const output = join(tempDir(), 'out');
    let jobId: string | undefined;
    let jobStderr = '';
    let job: ChildProcess | undefined;
    const run = eddy(
      [
        'run',
        'examples/keyed-sum.ts',
        '-p',
        '2',
        '--checkpoint-interval',
        '100',
        '--',
        '--input',
        input,
        '--output',
        output,
        '--rate',
        '1000',
      ],
      (child) => {
        job = child;
        child.stderr?.on('data', (d) => {
          jobStderr += d;
          jobId ??= /^job (\S+) \(keyed-sum\) started/m.exec(jobStderr)?.[1];
        });
      },
      env,
    );
    await waitUntil(() => jobId !== undefined, 'the job id on stderr');
    // Follow the running job: lines arrive while it runs, and the follower ends with it.
    let followed = '';
    const follow = eddy(
      ['logs', jobId!.slice(0, 8), '-f'],
      (child) => child.stdout?.on('data', (d) => (followed += d)),
      env,
    );
    await waitUntil(() => /checkpoint \d+ completed/.test(followed), 'a followed checkpoint line');
    expect(job!.exitCode).toBe(null); // seen while the job still runs
    const [r, f] = await Promise.all([run, follow]);
    expect(r.code, r.stderr).toBe(0);
    expect(f.code, f.stderr).toBe(0);
    expect(f.stdout).toMatch(/finished in [\d.]+ s: 4,000 records read/);

    const human = await eddy(['logs', jobId!], undefined, env);
    expect(human.code, human.stderr).toBe(0);
    const lines = human.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^\S+Z INFO {2}job \S+ \(keyed-sum\) started/);
    expect(lines.some((l) => / INFO {2}checkpoint \d+ completed: /.test(l))).toBe(true);
    expect(lines.at(-1)).toMatch(/ INFO {2}finished in .* 4,000 written by sinks/);
    // The log file holds what stderr showed, line for line (here: no restarts or rescales).
    expect(f.stdout).toBe(human.stdout);

    const json = await eddy(['logs', jobId!, '--json'], undefined, env);
    const events = json.stdout
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    for (const e of events) {
      expect(e).toMatchObject({ jobId, jobName: 'keyed-sum' });
      expect(typeof e.level).toBe('string');
      expect(typeof e.time).toBe('string');
      expect(typeof e.event).toBe('string');
      expect(typeof e.msg).toBe('string');
    }
    expect(events[0]).toMatchObject({ event: 'job-start', parallelism: 2, level: 'info' });
    const checkpoints = events.filter((e) => e.event === 'checkpoint');
    expect(checkpoints.length).toBeGreaterThan(0);
    for (const c of checkpoints) {
      expect(c.checkpointId).toEqual(expect.any(Number));
      expect(c.bytes).toBeGreaterThan(0);
      expect(c.ms).toEqual(expect.any(Number));
    }
    expect(events.at(-1)).toMatchObject({
      event: 'job-end',
      status: 'finished',
      recordsIn: EVENTS,
      recordsOut: EVENTS,
      restarts: 0,
    });

    // After its registry entry is pruned, the log is still found by its id.
    expect((await eddy(['list', '--prune'], undefined, env)).code).toBe(0);
    const pruned = await eddy(['logs', jobId!.slice(0, 8)], undefined, env);
    expect(pruned.code, pruned.stderr).toBe(0);
    expect(pruned.stdout).toBe(human.stdout);

    const unknown = await eddy(['logs', 'no-such-job'], undefined, env);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(
      /no job with id 'no-such-job' \(eddy list shows the known jobs\)/,
    );
    expect(unknown.stdout).toBe('');
  });
});
