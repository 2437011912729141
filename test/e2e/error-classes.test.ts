/**
 * Error classes through the real CLI: a FatalError fails the job at once, an ordinary user
 * error is restarted, and a sink's own I/O error names the sink rather than the user function
 * chained before it.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { eddy, tempDir, writeEventFiles } from './helpers.js';

const FIXTURE = 'test/e2e/fixtures/failing-sink.ts';

/** Runs the fixture in `mode` at parallelism 2, with checkpoints (so restarts are allowed). */
const run = (mode: string, ...options: string[]) => {
  const dir = tempDir();
  return eddy([
    'run',
    FIXTURE,
    '-p',
    '2',
    '--checkpoint-dir',
    join(dir, 'checkpoints'),
    ...options,
    '--',
    mode,
    join(dir, 'out'),
  ]);
};

describe('error classes', () => {
  it('user code throwing FatalError fails fast, naming EDDY_FATAL, without restarting', async () => {
    const r = await run('fatal', '--checkpoint-interval', '100');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/EDDY_FATAL/);
    expect(r.stderr).toMatch(/operator 'check' \(uid check\), subtask \d\/2/);
    expect(r.stderr).toContain('record 1234 breaks an invariant');
    // No restart was made ("restarting from ... (restart 1)"), nor counted in the final error.
    expect(r.stderr).not.toMatch(/restarting from/);
    expect(r.stderr).not.toMatch(/\(restart \d+\)|restart\(s\)/);
    expect(r.stderr).toMatch(/not restarted: .*not retriable/);
  });

  it('a malformed record without a dead-letter directory fails fast, even with checkpoints', async () => {
    const input = writeEventFiles([[{ user: 'a', amount: 1 }]]);
    writeFileSync(join(input, 'events-001.jsonl'), '{"user":"b","amount":2}\n{"user":\n');
    const dir = tempDir();
    const r = await eddy([
      'run',
      'examples/keyed-sum.ts',
      '-p',
      '2',
      '--checkpoint-interval',
      '100',
      '--checkpoint-dir',
      join(dir, 'chk'),
      '--',
      '--input',
      input,
      '--output',
      join(dir, 'out'),
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/EDDY_BAD_RECORD/);
    expect(r.stderr).toContain('events-001.jsonl at line 2');
    expect(r.stderr).not.toMatch(/restarting from/);
    expect(r.stderr).toMatch(/not restarted: EDDY_BAD_RECORD is not retriable/);
  });

  it('an ordinary user error is retriable: the job restarts before giving up', async () => {
    const r = await run('flaky', '--checkpoint-interval', '100', '--restart-attempts', '1');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/restarting from/);
    expect(r.stderr).toMatch(/operator 'check' \(uid check\), subtask \d\/2 failed in map/);
    expect(r.stderr).toContain('flaky on 1234');
  });

  it("a sink's own I/O error names the sink, not the user function before it", async () => {
    const r = await run('sink-io', '--restart-attempts', '0');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/operator 'store' \(uid store\), subtask \d\/2: cannot write/);
    expect(r.stderr).toContain('ECONNRESET');
    expect(r.stderr).not.toMatch(/EDDY_USER_FUNCTION/);
    expect(r.stderr).not.toMatch(/'enrich'/);
  });
});
