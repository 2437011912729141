/**
 * The published package, as a user gets it: `npm pack` the repository, install the tarball
 * into an empty project, then use it there — a plain `node` program importing from 'eddy', a
 * type check of a TypeScript consumer against the shipped .d.ts files, and `npx eddy run` of a
 * job written in plain JavaScript (no TypeScript loader loaded) and of one in TypeScript.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assignToKeyGroup, computeKeyGroupRange } from '../../src/index.js';
import { ROOT, readParts, sorted, tempDir } from './helpers.js';

const exec = promisify(execFile);
const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const NPX = process.platform === 'win32' ? 'npx.cmd' : 'npx';
const TSC = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');

let dir = '';
let project = '';

// A job that says whether this thread registered the TypeScript loader (core/ts-loader.ts).
const jobSource = (types: boolean) => `import { defineJob, FileSink, GeneratorSource } from 'eddy';

const loader = () => globalThis[Symbol.for('eddy.tsLoaderRegistered')] === true;
console.error('ts-loader:' + loader());

export default defineJob({
  name: 'package-${types ? 'ts' : 'js'}',
  build(env, args) {
    env
      .fromSource(GeneratorSource.of({ count: 20, generate: (i${types ? ': number' : ''}) => i }), { uid: 'numbers', parallelism: 1 })
      .keyBy((n${types ? ': number' : ''}) => n % 4)
      .reduce((a${types ? ': number' : ''}, b${types ? ': number' : ''}) => a + b, { uid: 'sums' })
      .sinkTo(FileSink.jsonl({ path: args[0]${types ? '!' : ''} }), { uid: 'out' });
  },
});
`;

// The running sums per key (n % 4) of 0..19, one line per record.
const expectedSums = (() => {
  const sums = new Map<number, number>();
  const out: string[] = [];
  for (let n = 0; n < 20; n++) {
    const total = (sums.get(n % 4) ?? 0) + n;
    sums.set(n % 4, total);
    out.push(String(total));
  }
  return sorted(out);
})();

describe('the packed npm package', () => {
  beforeAll(async () => {
    dir = tempDir('eddy-package-');
    // dist/ is fresh (test/global-setup.ts); --ignore-scripts: no rebuild under other tests' feet.
    await exec(NPM, ['pack', '--ignore-scripts', '--silent', '--pack-destination', dir], {
      cwd: ROOT,
    });
    const tarball = readdirSync(dir).find((f) => /^eddy-.*\.tgz$/.test(f));
    expect(tarball).toBeDefined();
    project = join(dir, 'project');
    mkdirSync(project);
    await exec(NPM, ['init', '-y'], { cwd: project });
    await exec(
      NPM,
      ['install', join(dir, tarball!), '--prefer-offline', '--no-audit', '--no-fund'],
      { cwd: project },
    );
  }, 120_000);

  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('is importable from a plain node program', async () => {
    writeFileSync(
      join(project, 'consumer.mjs'),
      `import { assignToKeyGroup, computeKeyGroupRange, defineJob, FileSink } from 'eddy';
console.log(JSON.stringify({
  kg: assignToKeyGroup('user-42', 128),
  range: computeKeyGroupRange(128, 4, 1),
  defineJob: typeof defineJob,
  FileSink: typeof FileSink,
}));
`,
    );
    const { stdout } = await exec(process.execPath, ['consumer.mjs'], { cwd: project });
    const range = computeKeyGroupRange(128, 4, 1);
    expect(JSON.parse(stdout)).toEqual({
      kg: assignToKeyGroup('user-42', 128),
      range: JSON.parse(JSON.stringify(range)),
      defineJob: 'function',
      FileSink: 'object',
    });
  });

  it('ships full types', async () => {
    writeFileSync(
      join(project, 'consumer.ts'),
      `import { assignToKeyGroup, defineJob, type JobDefinition, ValueStateDescriptor } from 'eddy';

const kg: number = assignToKeyGroup('user-42', 128);
// @ts-expect-error a key group is a number, not a string: the types are real, not any
const wrong: string = assignToKeyGroup('user-42', 128);
const job: JobDefinition = defineJob({ name: 'typed', build() {} });
const sum = new ValueStateDescriptor<number>('sum', { defaultValue: 0 });
export { job, kg, sum, wrong };
`,
    );
    writeFileSync(
      join(project, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          module: 'nodenext',
          moduleResolution: 'nodenext',
          target: 'es2022',
          strict: true,
          noEmit: true,
          skipLibCheck: false,
          types: ['node'],
          typeRoots: [join(ROOT, 'node_modules', '@types')],
        },
        files: ['consumer.ts'],
      }),
    );
    const r = await exec(process.execPath, [TSC, '-p', 'tsconfig.json'], { cwd: project }).catch(
      (e: { stdout: string; stderr: string }) => e,
    );
    expect(`${r.stdout}${r.stderr}`).toBe('');
  });

  for (const ext of ['mjs', 'ts'] as const) {
    it(`runs \`npx eddy run job.${ext}\``, async () => {
      writeFileSync(join(project, `job.${ext}`), jobSource(ext === 'ts'));
      const out = join(project, `out-${ext}`);
      const { stderr } = await exec(
        NPX,
        ['--no', 'eddy', 'run', `job.${ext}`, '-p', '2', '--no-progress', '--', out],
        { cwd: project },
      );
      expect(sorted(readParts(out))).toEqual(expectedSums);
      // The main thread and every worker thread (one or two, by the number of cores): the
      // loader is there exactly for the TypeScript job.
      const flags = stderr.match(/ts-loader:\w+/g) ?? [];
      expect(flags.length).toBeGreaterThanOrEqual(2);
      expect(new Set(flags)).toEqual(new Set([`ts-loader:${ext === 'ts'}`]));
    });
  }
});
