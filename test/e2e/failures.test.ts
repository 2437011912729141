/** Failures through the real CLI: clear messages, non-zero exit, nothing half-visible. */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { eddy, readParts, tempDir, writeEventFiles } from './helpers.js';

describe('failures', () => {
  it('a malformed JSON line fails the job naming the file and the 1-based line', async () => {
    const input = writeEventFiles([[{ user: 'a', amount: 1 }], [{ user: 'b', amount: 2 }]]);
    writeFileSync(
      join(input, 'events-001.jsonl'),
      '{"user":"b","amount":2}\n{"user":"c",\n{"user":"d","amount":3}\n',
    );
    const output = join(tempDir(), 'out');
    const r = await eddy([
      'run',
      'examples/keyed-sum.ts',
      '-p',
      '2',
      '--',
      '--input',
      input,
      '--output',
      output,
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/EDDY_BAD_RECORD/);
    expect(r.stderr).toContain(`events-001.jsonl at line 2`);
    // No partial output is visible after a failure.
    expect(
      existsSync(output) ? readdirSync(output).filter((f) => f.startsWith('part-')) : [],
    ).toEqual([]);
  });

  it('with a dead-letter dir, malformed lines are kept aside and counted, the rest processed', async () => {
    const input = writeEventFiles([[{ user: 'a', amount: 1 }]]);
    writeFileSync(
      join(input, 'events-001.jsonl'),
      '{"user":"b","amount":2}\nnot json\n{"user":"b","amount":3}\n',
    );
    const output = join(tempDir(), 'out');
    const dead = join(tempDir(), 'dead');
    const r = await eddy([
      'run',
      'examples/keyed-sum.ts',
      '-p',
      '2',
      '--',
      '--input',
      input,
      '--output',
      output,
      '--dead-letter-dir',
      dead,
    ]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/, 1 dead letter(?!s)/);
    expect(readParts(output).sort()).toEqual(
      ['{"user":"a","total":1}', '{"user":"b","total":2}', '{"user":"b","total":5}'].sort(),
    );
    const letters = readdirSync(dead).flatMap((f) =>
      readFileSync(join(dead, f), 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l)),
    );
    expect(letters).toEqual([expect.objectContaining({ line: 2, raw: 'not json' })]);
    expect(letters[0].file).toMatch(/events-001\.jsonl$/);
  });

  it('an exception in user code names the operator, the subtask and the record position', async () => {
    const output = join(tempDir(), 'out');
    const r = await eddy(['run', 'test/e2e/fixtures/failing-map.ts', '-p', '2', '--', output]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/EDDY_USER_FUNCTION/);
    expect(r.stderr).toMatch(/operator 'explode' \(uid explode\), subtask \d\/2/);
    expect(r.stderr).toMatch(/at record #\d+: boom on 1234/);
  });

  it('a job module that builds a different graph per thread is refused', async () => {
    const r = await eddy([
      'run',
      'test/e2e/fixtures/nondeterministic.ts',
      '-p',
      '2',
      '--',
      join(tempDir(), 'o'),
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/EDDY_NONDETERMINISTIC_JOB/);
  });

  it('bad CLI input gets a clear error', async () => {
    const missing = await eddy(['run', 'no/such/job.ts']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/cannot load job module .*no\/such\/job\.ts/);
    const badP = await eddy(['run', 'examples/keyed-sum.ts', '-p', 'zero']);
    expect(badP.code).not.toBe(0);
    expect(badP.stderr).toMatch(/--parallelism must be an integer >= 1, got 'zero'/);
    const tooHigh = await eddy([
      'run',
      'examples/keyed-sum.ts',
      '-p',
      '4',
      '--max-parallelism',
      '2',
      '--',
      '--input',
      '.',
      '--output',
      tempDir(),
    ]);
    expect(tooHigh.code).toBe(1);
    expect(tooHigh.stderr).toMatch(/parallelism 4 exceeds maxParallelism 2/);
  });
});
