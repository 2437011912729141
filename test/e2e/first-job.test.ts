/**
 * The README's job snippets, run as a user runs them: copied out of README.md into an empty
 * folder outside the checkout (no package.json, no node_modules), where `import 'eddy'` must
 * resolve to the eddy that runs the job — as .ts, .mts, .js and .mjs.
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  eddy,
  ROOT,
  readParts,
  referenceSums,
  sorted,
  tempDir,
  writeEventFiles,
} from './helpers.js';

const README = readFileSync(join(ROOT, 'README.md'), 'utf8');

/** The fenced block right after `<!-- first-job: <name> -->`. */
const block = (name: string): string => {
  const m = new RegExp(`<!-- first-job: ${name} -->\\n\`\`\`\\w*\\n([\\s\\S]*?)\`\`\``).exec(
    README,
  );
  if (!m) throw new Error(`README.md has no block marked <!-- first-job: ${name} -->`);
  return m[1]!;
};

/** The README's command, with `node /path/to/eddy/bin/eddy.mjs` dropped (eddy() adds it). */
const commandArgs = (): string[] => {
  const cmd = block('run').trim();
  const prefix = 'node /path/to/eddy/bin/eddy.mjs ';
  expect(cmd.startsWith(prefix), cmd).toBe(true);
  return cmd.slice(prefix.length).split(/\s+/);
};

/** The TypeScript job as plain JavaScript: its one interface and type argument removed. */
const asJavaScript = (ts: string): string =>
  ts.replace(/^interface .*\n/m, '').replace(/<Order>/g, '');

/** Each user's last (largest) total: the sum of `i % 10` over orders `i ≡ u (mod 5)`. */
const expectedTotals = () =>
  Object.fromEntries([0, 1, 2, 3, 4].map((u) => [`user-${u}`, 2000 * u + 5000]));

const runIn = async (folder: string, file: string, args: string[]) => {
  const home = tempDir('eddy-home-');
  const r = await eddy(
    args.map((a) => (a === 'orders.ts' ? file : a)),
    undefined,
    { ...process.env, EDDY_HOME: home },
    folder,
  );
  return { ...r, home };
};

const finalTotals = (dir: string): Record<string, number> => {
  const last: Record<string, number> = {};
  const lines = readParts(dir).map((l) => JSON.parse(l) as { user: string; amount: number });
  expect(lines).toHaveLength(10_000);
  for (const o of lines) last[o.user] = Math.max(last[o.user] ?? 0, o.amount);
  return last;
};

describe("README's first job, from an empty folder outside the checkout", () => {
  it('orders.ts as written: exact totals, state under $EDDY_HOME/jobs/orders', async () => {
    const folder = tempDir('first-job-');
    writeFileSync(join(folder, 'orders.ts'), block('orders.ts'));
    const r = await runIn(folder, 'orders.ts', commandArgs());
    expect(r.code, r.stderr).toBe(0);
    expect(finalTotals(join(folder, 'totals'))).toEqual(expectedTotals());
    const checkpoints = join(r.home, 'jobs', 'orders', 'checkpoints');
    expect(readdirSync(checkpoints).some((d) => d.startsWith('chk-'))).toBe(true);
    // Nothing lands in the folder the job ran in besides its own output.
    expect(readdirSync(folder).sort()).toEqual(['orders.ts', 'totals']);
  });

  it.each([
    ['orders.mts', 'ts', undefined],
    ['orders.mjs', 'js', undefined],
    ['orders.js', 'js', '{"type":"module"}'],
    ['orders.ts', 'ts', '{"type":"module"}'],
  ])('%s (written in %s; package.json: %s)', async (file, lang, pkg) => {
    const folder = tempDir('first-job-');
    const ts = block('orders.ts');
    writeFileSync(join(folder, file), lang === 'js' ? asJavaScript(ts) : ts);
    if (pkg) writeFileSync(join(folder, 'package.json'), pkg);
    const r = await runIn(folder, file, commandArgs());
    expect(r.code, r.stderr).toBe(0);
    expect(finalTotals(join(folder, 'totals'))).toEqual(expectedTotals());
  });

  it('a job whose own imports are missing still says which package, with no eddy hint in the way', async () => {
    const folder = tempDir('first-job-');
    writeFileSync(
      join(folder, 'orders.ts'),
      `import 'left-pad-not-installed';\n${block('orders.ts')}`,
    );
    const r = await runIn(folder, 'orders.ts', commandArgs());
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/EDDY_JOB_MODULE.*left-pad-not-installed/);
  });
});

describe("README's keyed-sum snippet", () => {
  it('runs as shown, reading --input and writing --output', async () => {
    const m = /```ts\n(\/\/ examples\/keyed-sum\.ts[\s\S]*?)```/.exec(README);
    expect(m, 'README.md has the keyed-sum snippet').not.toBeNull();
    const folder = tempDir('readme-snippet-');
    writeFileSync(join(folder, 'keyed-sum.ts'), m![1]!);
    // Each user in one file: a running total is then the same whatever the parallelism.
    const data = [
      [
        { user: 'a', amount: 1 },
        { user: 'a', amount: 3 },
      ],
      [{ user: 'b', amount: 2 }],
    ];
    const input = writeEventFiles(data);
    const output = join(folder, 'out');
    const r = await eddy(
      ['run', 'keyed-sum.ts', '-p', '2', '--', '--input', input, '--output', output],
      undefined,
      { ...process.env, EDDY_HOME: tempDir('eddy-home-') },
      folder,
    );
    expect(r.code, r.stderr).toBe(0);
    expect(sorted(readParts(output))).toEqual(sorted(referenceSums(data)));
    expect(existsSync(join(folder, '.eddy'))).toBe(false);
  });
});
