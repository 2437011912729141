import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  digestDir,
  digestLines,
  ensureKeyedSumData,
  type KeyedSumDataParams,
  LineDigest,
  mulberry32,
  sameDigest,
} from './data.js';

const root = mkdtempSync(join(tmpdir(), 'eddy-bench-data-test-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const small: KeyedSumDataParams = { events: 2_000, users: 50, files: 3, seed: 7 };

/** File name → contents of the data files (the manifest, with its timestamp, excluded). */
const contents = (dir: string): Record<string, string> =>
  Object.fromEntries(
    readdirSync(dir)
      .filter((n) => !n.startsWith('_'))
      .sort()
      .map((n) => [n, readFileSync(join(dir, n), 'utf8')]),
  );

describe('keyed-sum data generator', () => {
  it('is deterministic: same parameters give the same bytes', () => {
    const a = ensureKeyedSumData(small, join(root, 'a'));
    const b = ensureKeyedSumData(small, join(root, 'b'));
    expect(a.cached).toBe(false);
    expect(contents(a.dir)).toEqual(contents(b.dir));
    expect(sameDigest(digestDir(a.dir), digestDir(b.dir))).toBe(true);
    expect(a.manifest.eventsPerFile.reduce((x, y) => x + y, 0)).toBe(small.events);
  });

  it('writes valid events, each user in exactly one file', () => {
    const { dir, manifest } = ensureKeyedSumData(small, join(root, 'a'));
    const fileOfUser = new Map<string, string>();
    let n = 0;
    for (const [name, text] of Object.entries(contents(dir))) {
      expect(manifest.fileNames).toContain(name);
      for (const line of text.split('\n')) {
        if (line === '') continue;
        const e = JSON.parse(line) as { user: string; amount: number };
        expect(e.user).toMatch(/^user-\d+$/);
        expect(Number(e.user.slice(5))).toBeLessThan(small.users);
        expect(Number.isInteger(e.amount) && e.amount >= 1 && e.amount <= 1000).toBe(true);
        expect(fileOfUser.get(e.user) ?? name).toBe(name);
        fileOfUser.set(e.user, name);
        n++;
      }
    }
    expect(n).toBe(small.events);
  });

  it('reuses a cached data set with the same parameters, regenerates otherwise', () => {
    const dir = join(root, 'cache');
    expect(ensureKeyedSumData(small, dir).cached).toBe(false);
    expect(ensureKeyedSumData(small, dir).cached).toBe(true);
    const more = ensureKeyedSumData({ ...small, events: 3_000 }, dir);
    expect(more.cached).toBe(false);
    expect(digestDir(dir).lines).toBe(3_000);
  });

  it('a different seed gives different data', () => {
    const a = ensureKeyedSumData(small, join(root, 'a'));
    const c = ensureKeyedSumData({ ...small, seed: 8 }, join(root, 'c'));
    expect(contents(a.dir)).not.toEqual(contents(c.dir));
    expect(sameDigest(digestDir(a.dir), digestDir(c.dir))).toBe(false);
  });

  it('mulberry32 is seeded and in [0, 1)', () => {
    const a = mulberry32(1);
    const b = mulberry32(1);
    const xs = Array.from({ length: 1000 }, () => a());
    expect(xs).toEqual(Array.from({ length: 1000 }, () => b()));
    expect(xs.every((x) => x >= 0 && x < 1)).toBe(true);
    expect(mulberry32(2)()).not.toBe(xs[0]);
  });
});

describe('line digest', () => {
  const lines = Array.from({ length: 200 }, (_, i) => `{"user":"user-${i % 17}","total":${i * 3}}`);

  it('is independent of line order', () => {
    const shuffled = [...lines].reverse();
    shuffled.push(shuffled.shift()!);
    expect(digestLines(shuffled)).toEqual(digestLines(lines));
  });

  it('changes when a line changes, is added, removed or duplicated', () => {
    const d = digestLines(lines);
    const changed = [...lines];
    changed[42] = changed[42]!.replace('"total":126', '"total":127');
    expect(sameDigest(digestLines(changed), d)).toBe(false);
    expect(sameDigest(digestLines(lines.slice(1)), d)).toBe(false);
    expect(sameDigest(digestLines([...lines, lines[0]!]), d)).toBe(false);
    // Swapping content between two lines (same bytes overall) is caught too.
    const swapped = [...lines];
    swapped[0] = '{"user":"user-0","total":3}';
    swapped[1] = '{"user":"user-1","total":0}';
    expect(sameDigest(digestLines(swapped), d)).toBe(false);
  });

  it('does not depend on chunk boundaries, files, empty lines or CRLF', () => {
    const text = `${lines.join('\n')}\n`;
    const bytes = new TextEncoder().encode(text);
    const whole = new LineDigest().update(bytes).endFile().value();
    expect(whole).toEqual(digestLines(lines));
    for (const size of [1, 7, 64, 1000]) {
      const d = new LineDigest();
      for (let i = 0; i < bytes.length; i += size) d.update(bytes.subarray(i, i + size));
      expect(d.endFile().value()).toEqual(whole);
    }
    const dir = join(root, 'digest');
    rmSync(dir, { recursive: true, force: true });
    const crlf = `${lines.slice(0, 100).join('\r\n')}\r\n\r\n`;
    const noFinalNewline = lines.slice(100).join('\n');
    mkdirSync(dir);
    writeFileSync(join(dir, 'part-1'), crlf);
    writeFileSync(join(dir, 'part-0'), noFinalNewline);
    writeFileSync(join(dir, '.part-2.inprogress'), 'ignored\n');
    writeFileSync(join(dir, '_SUCCESS'), 'ignored\n');
    expect(digestDir(dir)).toEqual({ ...whole, files: 2 });
  });
});

describe('keyed-sum data generator, cover layout', () => {
  const userCounts = (dir: string): Map<string, number> => {
    const counts = new Map<string, number>();
    for (const text of Object.values(contents(dir))) {
      for (const line of text.split('\n')) {
        if (line === '') continue;
        const { user } = JSON.parse(line) as { user: string };
        counts.set(user, (counts.get(user) ?? 0) + 1);
      }
    }
    return counts;
  };

  it('has every user, each floor(events / users) or one more times, in its own file', () => {
    const p: KeyedSumDataParams = {
      events: 2_500,
      users: 1_000,
      files: 3,
      seed: 7,
      layout: 'cover',
    };
    const { dir, manifest } = ensureKeyedSumData(p, join(root, 'cover'));
    expect(manifest.layout).toBe('cover');
    const counts = userCounts(dir);
    expect(counts.size).toBe(1_000);
    expect([...counts.values()].reduce((x, y) => x + y, 0)).toBe(2_500);
    expect(Math.min(...counts.values())).toBe(2);
    expect(Math.max(...counts.values())).toBe(3);
    for (const [name, text] of Object.entries(contents(dir))) {
      for (const line of text.split('\n')) {
        if (line === '') continue;
        const k = Number((JSON.parse(line) as { user: string }).user.slice(5));
        expect(manifest.fileNames[k % 3]).toBe(name);
      }
    }
  });

  it('is cached separately from the uniform layout and deterministic', () => {
    const dir = join(root, 'cover-cache');
    const p: KeyedSumDataParams = { ...small, layout: 'cover' };
    expect(ensureKeyedSumData(p, dir).cached).toBe(false);
    expect(ensureKeyedSumData(p, dir).cached).toBe(true);
    expect(ensureKeyedSumData(small, dir).cached).toBe(false);
    const a = ensureKeyedSumData(p, join(root, 'cover-a'));
    const b = ensureKeyedSumData(p, join(root, 'cover-b'));
    expect(contents(a.dir)).toEqual(contents(b.dir));
    expect(userCounts(a.dir).size).toBe(small.users);
  });
});
