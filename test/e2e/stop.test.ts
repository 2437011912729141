/** Ctrl-C is a graceful stop: sources end, in-flight records drain, output is complete. */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  eddy,
  hasWrittenOutput,
  readParts,
  tempDir,
  waitUntil,
  writeEventFiles,
} from './helpers.js';

describe('graceful stop', () => {
  it('SIGINT stops a throttled job cleanly with only complete output visible', async () => {
    const events = Array.from({ length: 50_000 }, (_, i) => ({ user: `u${i % 100}`, amount: 1 }));
    const input = writeEventFiles([events.slice(0, 25_000), events.slice(25_000)]);
    const output = join(tempDir(), 'out');
    const r = await eddy(
      [
        'run',
        'examples/keyed-sum.ts',
        '-p',
        '2',
        '--',
        '--input',
        input,
        '--output',
        output,
        '--rate',
        '5000',
      ],
      (child) => {
        // Stop mid-run, whatever the machine's speed: once a sink has written something (at
        // 5,000 events/s the 50,000 take 10 s).
        void waitUntil(() => hasWrittenOutput(output), 'output').then(() => child.kill('SIGINT'));
      },
    );
    expect(r.stderr).toMatch(/stopping/);
    expect(r.stderr).toMatch(/stopped in/);
    expect(r.code).toBe(0);
    const lines = readParts(output);
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.length).toBeLessThan(events.length);
    // Every visible line is whole, and every user's totals count up from 1 without gaps.
    const byUser = new Map<string, number[]>();
    for (const l of lines) {
      const { user, total } = JSON.parse(l) as { user: string; total: number };
      byUser.set(user, [...(byUser.get(user) ?? []), total]);
    }
    for (const totals of byUser.values()) {
      expect([...totals].sort((a, b) => a - b)).toEqual(totals.map((_, i) => i + 1));
    }
    expect(readdirSync(output).filter((f) => !f.startsWith('part-'))).toEqual([]);
  });
});
