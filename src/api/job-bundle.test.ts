import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EddyError } from '../core/errors.js';
import { fingerprint } from '../runtime/graph.js';
import { buildGraph, importJob } from './job.js';
import { bundleJob, loadBundledJob, writeBundledJob } from './job-bundle.js';

// Jobs live in a temp folder outside the checkout (their own node_modules, no eddy installed);
// bundles are loaded from another temp folder without any node_modules.
let jobDir: string;
let loadDir: string;

const write = (rel: string, text: string): string => {
  const path = join(jobDir, rel);
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, text);
  return path;
};

const JOB = `
import { defineJob, FileSink, GeneratorSource } from 'eddy';
import { label } from './helper.js';
import { shout } from 'tinypkg';

globalThis.__eddyBundleLoads = (globalThis.__eddyBundleLoads ?? 0) + 1;
globalThis.__eddyBundleGenerator = GeneratorSource;

export default defineJob({
  name: shout('bundled'),
  build(env, args) {
    env
      .fromSource(GeneratorSource.of({ count: 10, generate: (i) => ({ k: i % 3, v: i }) }), { uid: 'gen' })
      .map((e) => ({ ...e, tag: label(e.v) }), { uid: label('map') })
      .keyBy((e) => e.k)
      .reduce((a, b) => ({ ...a, v: a.v + b.v }), { uid: 'sum' })
      .sinkTo(FileSink.jsonl({ path: args[0] ?? 'out' }), { uid: 'sink' });
  },
});
`;

beforeAll(() => {
  jobDir = mkdtempSync(join(tmpdir(), 'eddy-bundle-job-'));
  loadDir = mkdtempSync(join(tmpdir(), 'eddy-bundle-load-'));
  write('package.json', '{ "type": "module" }');
  write('node_modules/tinypkg/package.json', '{ "name": "tinypkg", "main": "index.js" }');
  // CommonJS and requires a builtin: the bundle's `require` shim must work in an ES module.
  write(
    'node_modules/tinypkg/index.js',
    "const os = require('node:os');\nexports.shout = (s) => s.toUpperCase() + (os.EOL ? '' : '?');\n",
  );
  write('helper.js', "export const label = (x) => 'h-' + x;\n");
  write('job.js', JOB);
  write(
    'ts-job.ts',
    `import { defineJob, GeneratorSource, FileSink } from 'eddy';
import { double } from './ts-helper.ts';
interface Row { readonly n: number }
export default defineJob({
  name: 'ts-job',
  build(env) {
    env
      .fromSource(GeneratorSource.of({ count: 5, generate: (i): Row => ({ n: double(i) }) }), { uid: 'g' })
      .map((r: Row) => r.n + 1, { uid: 'plus' })
      .sinkTo(FileSink.jsonl({ path: 'out' }), { uid: 's' });
  },
});
`,
  );
  write('ts-helper.ts', 'export const double = (n: number): number => n * 2;\n');
  // The throw is on line 3, column 9 of thrower.ts: the stack must say so.
  write(
    'thrower.ts',
    "export const explode = (what: string): never => {\n  const msg: string = 'boom: ' + what;\n  throw new Error(msg);\n};\n",
  );
  write(
    'throwing-job.ts',
    "import { explode } from './thrower.ts';\nexport default { name: 'throws', build(): void { explode('build'); } };\n",
  );
  write('bad-syntax.ts', "export default {\n  name: 'x',\n  build() { const = 1; },\n};\n");
  write(
    'bad-import.ts',
    "import { nope } from './imports-missing.ts';\nexport default { name: nope, build() {} };\n",
  );
  write('imports-missing.ts', "import { z } from 'not-installed-pkg';\nexport const nope = z;\n");
});

afterAll(() => {
  rmSync(jobDir, { recursive: true, force: true });
  rmSync(loadDir, { recursive: true, force: true });
});

describe('bundleJob', () => {
  it('inlines relative imports and npm packages, keeps eddy external, same graph elsewhere', async () => {
    const bundle = await bundleJob(join(jobDir, 'job.js'));
    expect(bundle.bytes).toBe(Buffer.byteLength(bundle.code));
    expect(bundle.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(bundle.warnings).toEqual([]);
    expect(bundle.code).toMatch(/from ["']eddy["']/);
    expect(bundle.code).not.toMatch(/from ["']tinypkg["']|\.\/helper/);
    expect(bundle.code).toContain('sourceMappingURL=data:application/json;base64,');

    const job = await loadBundledJob(bundle.code, { dir: loadDir });
    expect(job.name).toBe('BUNDLED');
    const original = await importJob(join(jobDir, 'job.js'));
    const config = { parallelism: 2, args: ['out'] };
    expect(fingerprint(buildGraph(job, config))).toBe(fingerprint(buildGraph(original, config)));
    // Sanity: the fingerprint does see the graph (a different parallelism differs).
    expect(fingerprint(buildGraph(job, { ...config, parallelism: 3 }))).not.toBe(
      fingerprint(buildGraph(original, config)),
    );
  });

  it('loads in a plain node process from a folder without node_modules, with its eddy', async () => {
    const bundle = await bundleJob(join(jobDir, 'job.js'));
    const codeFile = join(loadDir, 'code.txt');
    writeFileSync(codeFile, bundle.code);
    const src = (rel: string) => JSON.stringify(new URL(`../${rel}`, import.meta.url).href);
    // eddy from its sources as bin/eddy.mjs with EDDY_DEV=1 runs it: `eddy` in the bundle must
    // resolve to that same copy (ensureEddyResolvable), not fail or load a second one.
    const script = `
      import { readFileSync } from 'node:fs';
      const { registerSourceMode } = await import(${src('runtime/source-mode.mjs')});
      await registerSourceMode();
      const { loadBundledJob } = await import(${src('api/job-bundle.ts')});
      const { buildGraph } = await import(${src('api/job.ts')});
      const { fingerprint } = await import(${src('runtime/graph.ts')});
      const eddy = await import(${src('index.ts')});
      const job = await loadBundledJob(readFileSync(${JSON.stringify(codeFile)}, 'utf8'), { dir: 'bundles' });
      const fp = fingerprint(buildGraph(job, { parallelism: 2, args: ['out'] }));
      console.log(JSON.stringify({ fp, sameEddy: globalThis.__eddyBundleGenerator === eddy.GeneratorSource }));
    `;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
      encoding: 'utf8',
      cwd: loadDir,
    });
    const original = await importJob(join(jobDir, 'job.js'));
    expect(JSON.parse(out)).toEqual({
      fp: fingerprint(buildGraph(original, { parallelism: 2, args: ['out'] })),
      sameEddy: true,
    });
  });

  it('bundles a TypeScript job and its .ts imports', async () => {
    const bundle = await bundleJob(join(jobDir, 'ts-job.ts'));
    expect(bundle.code).not.toContain('interface Row');
    const job = await loadBundledJob(bundle.code, { dir: loadDir });
    const original = await importJob(join(jobDir, 'ts-job.ts'));
    const config = { parallelism: 3 };
    expect(fingerprint(buildGraph(job, config))).toBe(fingerprint(buildGraph(original, config)));
  });

  it('names file, line and column of a syntax error', async () => {
    const err = await bundleJob(join(jobDir, 'bad-syntax.ts')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EddyError);
    expect((err as EddyError).code).toBe('EDDY_JOB_MODULE');
    expect((err as Error).message).toMatch(
      /cannot bundle job module .*bad-syntax\.ts: .*bad-syntax\.ts:3:19: /,
    );
    expect((err as Error).message).toMatch(/Expected/);
  });

  it('names an unresolved import and the file importing it', async () => {
    const err = await bundleJob(join(jobDir, 'bad-import.ts')).catch((e: unknown) => e);
    expect((err as EddyError).code).toBe('EDDY_JOB_MODULE');
    expect((err as Error).message).toMatch(
      /imports-missing\.ts:1:19: cannot resolve import 'not-installed-pkg' in .*imports-missing\.ts/,
    );
  });
});

describe('loadBundledJob', () => {
  it('writes the same code to one content-addressed file and evaluates it once', async () => {
    const dir = join(loadDir, 'once');
    const bundle = await bundleJob(join(jobDir, 'job.js'));
    const g = globalThis as { __eddyBundleLoads?: number };
    const before = g.__eddyBundleLoads ?? 0;
    const a = await loadBundledJob(bundle.code, { dir, sha256: bundle.sha256 });
    const file = join(dir, `${bundle.sha256}.mjs`);
    const mtime = statSync(file).mtimeMs;
    const b = await loadBundledJob(bundle.code, { dir });
    expect(b).toBe(a);
    expect(g.__eddyBundleLoads).toBe(before + 1);
    expect(readdirSync(dir)).toEqual([`${bundle.sha256}.mjs`]);
    expect(statSync(file).mtimeMs).toBe(mtime);
    expect(await writeBundledJob(bundle.code, { dir })).toBe(file);
  });

  it('refuses a bundle whose sha256 is not the announced one', async () => {
    const err = await loadBundledJob('export default 1;', {
      dir: loadDir,
      sha256: 'ab'.repeat(32),
    }).catch((e: unknown) => e);
    expect((err as EddyError).code).toBe('EDDY_JOB_MODULE');
    expect((err as Error).message).toMatch(/corrupted/);
  });
});

describe('stack traces of a bundled job', () => {
  // Plain node in a child process: what a worker process sees (vitest maps stacks itself).
  const stackIn = (file: string, nodeArgs: string[], setEnabled: boolean): string => {
    const script =
      (setEnabled ? 'process.setSourceMapsEnabled(true);\n' : '') +
      `const m = await import(${JSON.stringify(pathToFileURL(file).href)});\n` +
      'try { m.default.build(); } catch (e) { console.log(e.stack); }\n';
    return execFileSync(process.execPath, [...nodeArgs, '--input-type=module', '-e', script], {
      encoding: 'utf8',
      cwd: loadDir,
    });
  };

  it('point at the original .ts file and line with source maps on, at the bundle without', async () => {
    const bundle = await bundleJob(join(jobDir, 'throwing-job.ts'));
    const file = await writeBundledJob(bundle.code, { dir: join(loadDir, 'stack') });
    const original = `${join(jobDir, 'thrower.ts')}:3:9`;
    const viaFlag = stackIn(file, ['--enable-source-maps'], false);
    expect(viaFlag).toContain('boom: build');
    expect(viaFlag).toContain(original);
    expect(stackIn(file, [], true)).toContain(original);
    // Without source maps the stack names the bundle: the check above can fail.
    const plain = stackIn(file, [], false);
    expect(plain).not.toContain('thrower.ts');
    expect(plain).toContain(`${bundle.sha256}.mjs`);
  });
});
