/**
 * The sessions benchmark's data generator and hand-written baseline, on a small data set: the
 * files are within the job's out-of-orderness bound, and the baseline (streaming, per-file
 * watermarks, merging, firing) writes exactly the sessions a batch reference computes.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULT_SESSIONS_DATA, MAX_DELAY_MS, writeSessionsData } from './sessions.js';

const small = {
  ...DEFAULT_SESSIONS_DATA,
  events: 30_000,
  users: 500,
  files: 3,
  concurrent: 300,
  seed: 7,
};

/** Batch reference: per user, sorted times split where neighbours are more than the gap apart. */
const reference = (events: { user: string; ts: number }[], gap: number): string[] => {
  const byUser = new Map<string, number[]>();
  for (const e of events) {
    const ts = byUser.get(e.user) ?? [];
    ts.push(e.ts);
    byUser.set(e.user, ts);
  }
  const out: string[] = [];
  for (const [user, ts] of byUser) {
    ts.sort((a, b) => a - b);
    let start = 0;
    for (let i = 1; i <= ts.length; i++) {
      if (i === ts.length || ts[i]! - ts[i - 1]! > gap) {
        out.push(
          JSON.stringify({ user, start: ts[start]!, end: ts[i - 1]! + gap, count: i - start }),
        );
        start = i;
      }
    }
  }
  return out.sort();
};

describe('sessions bench: data and baseline', () => {
  it('generates files out of order by less than the bound; the baseline matches a batch reference', () => {
    const root = mkdtempSync(join(tmpdir(), 'eddy-bench-sessions-test-'));
    const dir = join(root, 'data');
    const m = writeSessionsData(dir, small);
    expect(m.eventsPerFile.reduce((a, b) => a + b, 0)).toBe(small.events);
    expect(readdirSync(dir).sort()).toEqual(['_manifest.json', ...m.fileNames]);
    const events: { user: string; ts: number }[] = [];
    for (const name of m.fileNames) {
      let max = Number.NEGATIVE_INFINITY;
      const users = new Set<string>();
      for (const line of readFileSync(join(dir, name), 'utf8').split('\n')) {
        if (line === '') continue;
        const e = JSON.parse(line) as { user: string; ts: number };
        expect(e.ts).toBeGreaterThan(max - MAX_DELAY_MS);
        max = Math.max(max, e.ts);
        users.add(e.user);
        events.push(e);
      }
      expect(users.size).toBeGreaterThan(small.users * 0.9);
    }
    // Deterministic: the same parameters give the same bytes.
    const again = writeSessionsData(join(root, 'again'), small);
    expect(again.bytes).toBe(m.bytes);
    expect(readFileSync(join(root, 'again', m.fileNames[0]!), 'utf8')).toBe(
      readFileSync(join(dir, m.fileNames[0]!), 'utf8'),
    );

    // 60 s: sessions of several events; 2 s (less than the files' disorder): many late events
    // bridge two sessions, which the baseline must merge.
    for (const gap of [60_000, 2000]) {
      const out = join(root, `out-${gap}`);
      const stats = join(root, `stats-${gap}.json`);
      const r = spawnSync(
        process.execPath,
        [
          join(import.meta.dirname, 'baselines', 'handwritten-sessions.mjs'),
          dir,
          out,
          stats,
          String(gap),
        ],
        { encoding: 'utf8' },
      );
      expect(r.status, r.stderr).toBe(0);
      const lines = readFileSync(join(out, 'part-0'), 'utf8').split('\n').filter(Boolean).sort();
      const expected = reference(events, gap);
      expect(lines).toEqual(expected);
      // Sessions of several events, and users with several sessions.
      expect(expected.length).toBeLessThan(small.events * (gap === 2000 ? 0.75 : 0.2));
      const users = new Set(expected.map((l) => (JSON.parse(l) as { user: string }).user));
      expect(users.size).toBeLessThan(expected.length);
      const s = JSON.parse(readFileSync(stats, 'utf8')) as {
        recordsIn: number;
        recordsOut: number;
      };
      expect(s).toMatchObject({ recordsIn: small.events, recordsOut: expected.length });
    }
  });
});
