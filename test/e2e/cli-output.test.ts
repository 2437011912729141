/**
 * What `eddy` prints, through the real CLI: the job id as the first line of `eddy run`, the
 * final summary over the whole run (across an `eddy rescale`), `--version`, and the plural of
 * dead letters.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  eddy,
  ROOT,
  readParts,
  referenceSums,
  type SumEvent,
  tempDir,
  writeEventFiles,
} from './helpers.js';

const JOB_LINE =
  /^job ([0-9a-f-]{36}) \(keyed-sum\) started: eddy stop ([0-9a-f-]{36}) to stop it$/;

/** Polls `eddy list --json` until a job runs; returns its id. */
const listedJob = async (env: NodeJS.ProcessEnv) => {
  for (let i = 0; i < 200; i++) {
    await new Promise((r) => setTimeout(r, 50));
    const list = JSON.parse((await eddy(['list', '--json'], undefined, env)).stdout) as {
      id: string;
      name: string;
      status: string;
    }[];
    const job = list.find((j) => j.status === 'running');
    if (job) return job;
  }
  throw new Error('the job never showed up as running in `eddy list`');
};

describe('eddy CLI output', () => {
  it('eddy --version prints the version from package.json', async () => {
    const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
      version: string;
    };
    for (const flag of ['--version', '-V']) {
      const r = await eddy([flag]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout.trim()).toBe(version);
    }
  });

  it('prints the job id first, the one `eddy list` shows; the summary after a rescale counts the whole run', async () => {
    const data: SumEvent[][] = Array.from({ length: 4 }, (_, f) =>
      Array.from({ length: 2500 }, (_, i) => ({ user: `f${f}-u${i % 37}`, amount: (i % 5) + 1 })),
    );
    const input = writeEventFiles(data);
    const output = join(tempDir(), 'out');
    const env = { ...process.env, EDDY_HOME: tempDir('eddy-home-') };
    const job = eddy(
      [
        'run',
        'examples/keyed-sum.ts',
        '-p',
        '2',
        '--checkpoint-interval',
        '200',
        '--checkpoint-dir',
        join(tempDir(), 'chk'),
        '--',
        '--input',
        input,
        '--output',
        output,
        '--rate',
        '3000',
      ],
      undefined,
      env,
    );
    const listed = await listedJob(env);
    expect(listed.name).toBe('keyed-sum');
    await new Promise((r) => setTimeout(r, 600));
    const rescale = await eddy(['rescale', listed.id, '3'], undefined, env);
    expect(rescale.code, rescale.stderr).toBe(0);
    expect(rescale.stdout).toMatch(/^rescaled 2 -> 3/);
    const r = await job;
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stderr.split('\n');
    const first = JOB_LINE.exec(lines[0]!);
    expect(first, r.stderr).not.toBeNull();
    expect(first![1]).toBe(listed.id);
    expect(first![2]).toBe(listed.id);
    // The run really was rescaled, and its output is complete.
    expect(r.stderr).toMatch(/^rescaled 2 -> 3: /m);
    expect(readParts(output).sort()).toEqual(referenceSums(data).sort());
    // 10,000 records read and written over both generations, not just the last one's.
    expect(r.stderr).toMatch(
      /^finished in [\d.]+ s: 10,000 records read by sources, 10,000 written by sinks \([\d,]+ rec\/s read\)$/m,
    );
  });

  it('one dead letter is "1 dead letter", two are "2 dead letters"', async () => {
    for (const bad of [1, 2]) {
      const input = writeEventFiles([[{ user: 'a', amount: 1 }]]);
      writeFileSync(
        join(input, 'events-001.jsonl'),
        `{"user":"b","amount":2}\n${'not json\n'.repeat(bad)}{"user":"b","amount":3}\n`,
      );
      const r = await eddy([
        'run',
        'examples/keyed-sum.ts',
        '-p',
        '1',
        '--',
        '--input',
        input,
        '--output',
        join(tempDir(), 'out'),
        '--dead-letter-dir',
        join(tempDir(), 'dead'),
      ]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toMatch(
        new RegExp(
          `^finished in [\\d.]+ s: 3 records read by sources, 3 written by sinks, ${bad} dead letters?(?!s) `,
          'm',
        ),
      );
      expect(r.stderr).toContain(bad === 1 ? ', 1 dead letter (' : ', 2 dead letters (');
    }
  });
});
