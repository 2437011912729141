/**
 * Event-time windows end to end through the real CLI: examples/sessions.ts (session windows)
 * and examples/top-items.ts (sliding windows, then a keyed stage with event-time timers),
 * compared with straightforward references computed here.
 *
 * The input is built for per-split watermarks: every user's events are spread over several
 * files, each file is out of order by up to 3 s (less than the 5 s bound, so no event is ever
 * late), some events of a user share a timestamp, and many sessions are "bridged": an event
 * arrives after both sessions it joins have formed, and the window operator must merge them.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { byRank } from '../../examples/top-items.js';
import {
  committedParts,
  EDDY,
  eddy,
  readParts,
  runningJobId,
  sorted,
  tempDir,
  waitUntil,
  writeEventFiles,
} from './helpers.js';
import {
  countBridges,
  dealIntoFiles,
  GAP_MS,
  prng,
  referenceSessions,
  sessionEvents,
  T0,
} from './sessions-data.js';

const sessionData = (() => {
  const events = sessionEvents(7, 60, 400);
  const files = dealIntoFiles(events, 6, prng(8));
  return { files, expected: referenceSessions(events, GAP_MS) };
})();

const sessionArgs = (input: string, output: string, p: number, extra: string[] = []) => [
  'run',
  'examples/sessions.ts',
  '-p',
  String(p),
  '--no-progress',
  ...extra,
  '--',
  '--input',
  input,
  '--output',
  output,
  '--gap-ms',
  String(GAP_MS),
];

const cli = (args: string[], env: NodeJS.ProcessEnv) => eddy(args, undefined, env);

describe('examples/sessions.ts', () => {
  it('has users over several files, bridged sessions and equal timestamps (the test data)', () => {
    const { files, expected } = sessionData;
    const usersPerFile = files.map((f) => new Set(f.map((e) => e.user)).size);
    expect(Math.min(...usersPerFile)).toBe(60);
    expect(countBridges(files, GAP_MS)).toBeGreaterThan(100);
    expect(expected.length).toBeGreaterThan(3000);
    expect(expected.some((l) => (JSON.parse(l) as { count: number }).count === 1)).toBe(true);
  });

  it('refuses a missing or invalid --gap-ms with a clear message', async () => {
    const base = [
      'run',
      'examples/sessions.ts',
      '--',
      '--input',
      tempDir(),
      '--output',
      join(tempDir(), 'out'),
    ];
    const missing = await eddy(base);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toContain(
      'sessions needs -- --input <dir> --output <dir> --gap-ms <ms>',
    );
    const invalid = await eddy([...base, '--gap-ms', '0']);
    expect(invalid.code).not.toBe(0);
    expect(invalid.stderr).toContain("--gap-ms must be a positive integer, got '0'");
  });

  it.each([1, 2])('writes exactly the reference sessions at p=%i', async (p) => {
    const input = writeEventFiles(sessionData.files);
    const output = join(tempDir(), 'out');
    const r = await eddy(sessionArgs(input, output, p));
    expect(r.code, r.stderr).toBe(0);
    expect(sorted(readParts(output))).toEqual(sorted(sessionData.expected));
  });

  it('stop with a savepoint at p=3 mid-stream, restore at p=5: exactly the reference sessions', async () => {
    const env = { ...process.env, EDDY_HOME: tempDir('eddy-home-') };
    const input = writeEventFiles(sessionData.files);
    const output = join(tempDir(), 'out');
    const chk = join(tempDir(), 'chk');
    const args = sessionArgs(input, output, 3, [
      '--checkpoint-interval',
      '200',
      '--checkpoint-dir',
      chk,
    ]);
    const job = spawn(process.execPath, [EDDY, ...args, '--rate', '8000'], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    job.stderr.on('data', (d) => {
      stderr += d;
    });
    const exited = new Promise<number | null>((r) => job.on('exit', r));
    const id = await runningJobId(env);
    // Stop once some sessions are committed, whatever the machine's speed.
    await waitUntil(() => committedParts(output).length > 0, 'committed sessions');
    const stop = await cli(['stop', id, '--savepoint', '--dir', tempDir('eddy-sp-')], env);
    expect(stop.code, stop.stderr).toBe(0);
    expect(await exited, stderr).toBe(0);
    const savepoint = stop.stdout.trim().split('\n').pop()!;
    const partial = readParts(output);
    // Stopped mid-stream: some sessions written, not all (the pending ones wait in the savepoint).
    expect(partial.length).toBeGreaterThan(0);
    expect(partial.length).toBeLessThan(sessionData.expected.length);

    const restored = await eddy(
      sessionArgs(input, output, 5, [
        '--from-savepoint',
        savepoint,
        '--checkpoint-dir',
        join(tempDir(), 'chk2'),
      ]),
    );
    expect(restored.code, restored.stderr).toBe(0);
    expect(sorted(readParts(output))).toEqual(sorted(sessionData.expected));
  });

  it("Arroyo's shape: p=2 with checkpoints, rescaled to 3, then to 1: exactly the reference sessions", async () => {
    const env = { ...process.env, EDDY_HOME: tempDir('eddy-home-') };
    const input = writeEventFiles(sessionData.files);
    const output = join(tempDir(), 'out');
    const args = sessionArgs(input, output, 2, [
      '--checkpoint-interval',
      '200',
      '--checkpoint-dir',
      join(tempDir(), 'chk'),
    ]);
    // Slow enough to outlast two rescales, each starting its threads before it stops the job.
    const job = cli([...args, '--rate', '2000'], env);
    const id = await runningJobId(env);
    for (const p of [3, 1]) {
      await new Promise((r) => setTimeout(r, 500));
      const r = await cli(['rescale', id, String(p)], env);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`rescaled \\d+ -> ${p}`));
    }
    const done = await job;
    expect(done.code, done.stderr).toBe(0);
    expect(sorted(readParts(output))).toEqual(sorted(sessionData.expected));
  });
});

// ---------------------------------------------------------------------------------------------
// Top items per sliding window

interface ItemEv {
  item: string;
  ts: number;
}

const SIZE_MS = 10_000;
const SLIDE_MS = 2_000;
const TOP = 3;

/** Items drawn with skewed popularity (many ties among the rarer ones) along one timeline. */
const itemEvents = (seed: number, n: number, items: number): ItemEv[] => {
  const rand = prng(seed);
  const events: ItemEv[] = [];
  let ts = T0 + 1234;
  for (let i = 0; i < n; i++) {
    const k = Math.floor(items * rand() ** 2);
    events.push({ item: `item-${String.fromCharCode(97 + (k % 26))}${k}`, ts });
    ts += Math.floor(rand() * 40);
  }
  return events;
};

const referenceTop = (events: readonly ItemEv[]): string[] => {
  const counts = new Map<number, Map<string, number>>();
  for (const e of events) {
    const lastStart = e.ts - (e.ts % SLIDE_MS);
    for (let start = lastStart; start > e.ts - SIZE_MS; start -= SLIDE_MS) {
      const end = start + SIZE_MS;
      const m = counts.get(end) ?? new Map<string, number>();
      m.set(e.item, (m.get(e.item) ?? 0) + 1);
      counts.set(end, m);
    }
  }
  const out: string[] = [];
  for (const [windowEnd, m] of counts) {
    [...m]
      .map(([item, count]) => ({ windowEnd, item, count }))
      .sort(byRank)
      .slice(0, TOP)
      .forEach((c, i) => {
        out.push(JSON.stringify({ windowEnd, item: c.item, count: c.count, rank: i + 1 }));
      });
  }
  return out;
};

/** `eddy run examples/top-items.ts` with the test's windows; `run` options, then job options. */
const topItemsArgs = (input: string, output: string, run: string[], job: string[] = []) => [
  'run',
  'examples/top-items.ts',
  ...run,
  '--no-progress',
  '--',
  '--input',
  input,
  '--output',
  output,
  '--size-ms',
  String(SIZE_MS),
  '--slide-ms',
  String(SLIDE_MS),
  '--top',
  String(TOP),
  ...job,
];

describe('examples/top-items.ts', () => {
  it('writes exactly the reference top items per sliding window at p=2', async () => {
    const events = itemEvents(11, 12_000, 40);
    const files = dealIntoFiles(events, 4, prng(12));
    const expected = referenceTop(events);
    // Ties at the cut-off exist, so the tie-break by item name matters.
    expect(expected.length).toBeGreaterThan(300);
    const input = writeEventFiles(files);
    const output = join(tempDir(), 'out');
    const r = await eddy(topItemsArgs(input, output, ['-p', '2']));
    expect(r.code, r.stderr).toBe(0);
    expect(sorted(readParts(output))).toEqual(sorted(expected));
  });

  it("Arroyo's shape: p=2 with checkpoints, rescaled to 3, then to 1: exactly the reference top items", async () => {
    const events = itemEvents(21, 12_000, 40);
    const expected = referenceTop(events);
    const input = writeEventFiles(dealIntoFiles(events, 4, prng(22)));
    const output = join(tempDir(), 'out');
    const env = { ...process.env, EDDY_HOME: tempDir('eddy-home-') };
    const job = cli(
      topItemsArgs(
        input,
        output,
        ['-p', '2', '--checkpoint-interval', '200', '--checkpoint-dir', join(tempDir(), 'chk')],
        // Slow enough to outlast two rescales (each starts its threads before it stops).
        ['--rate', '1500'],
      ),
      env,
    );
    const id = await runningJobId(env);
    for (const p of [3, 1]) {
      await new Promise((r) => setTimeout(r, 500));
      const r = await cli(['rescale', id, String(p)], env);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`rescaled \\d+ -> ${p}`));
    }
    const done = await job;
    expect(done.code, done.stderr).toBe(0);
    expect(sorted(readParts(output))).toEqual(sorted(expected));
  });

  it('refuses a window size that is not a multiple of the slide, naming both', async () => {
    const r = await eddy([
      'run',
      'examples/top-items.ts',
      '--',
      '--input',
      tempDir(),
      '--output',
      join(tempDir(), 'out'),
      '--size-ms',
      '1000',
      '--slide-ms',
      '300',
    ]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/--size-ms \(1000\) must be a multiple of --slide-ms \(300\)/);
  });
});
