/**
 * Shipping a job to workers that do not have its source: the submitting client bundles the job
 * module and everything it imports (relative modules, npm packages of the job's folder) into one
 * ES module with esbuild; a worker writes it to a file named by its sha256 and imports it.
 *
 * Hazards:
 * - `eddy` stays EXTERNAL (bare `eddy` and `eddy/…`): the worker's own eddy must be the one the
 *   job uses, else two copies of eddy's classes live in one process (instanceof, errors). A job
 *   that imports eddy through a relative path into eddy's sources would bundle a second copy.
 * - In the bundle, `import.meta.url`, `__dirname` and relative file paths of the job's code
 *   point at the bundle's file on the worker, not at the job's folder.
 * - npm packages with native addons (`.node` files) cannot be inlined: bundling fails, naming
 *   the file.
 * - Stack traces name the job's original files only with Node's source maps on:
 *   `loadBundledJob` turns them on in its thread (`process.setSourceMapsEnabled(true)`); worker
 *   threads get them from `--enable-source-maps` in the process's execArgv (threads inherit it)
 *   or by calling {@link enableJobSourceMaps} before importing the bundle.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { EddyError } from '../core/errors.js';
import { importJob, type JobDefinition } from './job.js';

/** A job module bundled into one ES module: what the master hands to every worker. */
export interface JobBundle {
  /** The bundle's JavaScript (ES module, source map inline). */
  readonly code: string;
  /** Hex sha256 of `code`: the bundle's name on workers (loaded once, reused on restarts). */
  readonly sha256: string;
  /** Size of `code` in bytes (UTF-8). */
  readonly bytes: number;
  /** esbuild's warnings, formatted `file:line:column: text`. */
  readonly warnings: string[];
}

/** Where and how {@link loadBundledJob} writes and imports a bundle. */
export interface LoadBundleOptions {
  /** Directory of bundle files (created if missing); one file per sha256. */
  readonly dir: string;
  /** The sha256 the sender announced: a mismatch (corrupted transfer) is refused. */
  readonly sha256?: string | undefined;
  /** Turn Node's source maps on in this thread, so stacks name the job's files (default true). */
  readonly sourceMaps?: boolean | undefined;
}

// The bundle is an ES module, but npm packages written as CommonJS call `require` (of node
// builtins, mostly): esbuild's shim needs a real `require` in scope. esbuild renames a job's own
// top-level `require` around it (seen: `require2`), so this name cannot clash.
const BANNER =
  "import { createRequire as __eddyCreateRequire } from 'node:module';\n" +
  'const require = __eddyCreateRequire(import.meta.url);';

const sha256Of = (code: string): string => createHash('sha256').update(code).digest('hex');

/** A path as the user would write it: relative to the working directory when inside it. */
const display = (path: string): string => {
  const rel = relative(process.cwd(), path);
  return rel.startsWith('..') || isAbsolute(rel) ? path : rel;
};

interface EsbuildMessage {
  readonly text: string;
  readonly location: { file: string; line: number; column: number } | null;
}

/** `file:line:column: text`, column 1-based as editors count (esbuild's is 0-based). */
const formatMessage = (m: EsbuildMessage, base: string): string => {
  const loc = m.location;
  if (!loc) return m.text;
  const where = `${display(resolve(base, loc.file))}:${loc.line}:${loc.column + 1}`;
  const unresolved = /^Could not resolve "([^"]+)"/.exec(m.text);
  if (unresolved) {
    return (
      `${where}: cannot resolve import '${unresolved[1]}' in ${display(resolve(base, loc.file))}` +
      ' (install the package in the job\u2019s folder or fix the path)'
    );
  }
  return `${where}: ${m.text}`;
};

const bundleError = (
  module: string,
  errors: readonly EsbuildMessage[],
  base: string,
  cause: unknown,
) => {
  const shown = errors.slice(0, 5).map((m) => formatMessage(m, base));
  if (errors.length > shown.length) shown.push(`… and ${errors.length - shown.length} more`);
  return new EddyError(
    'EDDY_JOB_MODULE',
    `cannot bundle job module ${display(module)}: ${shown.join('; ') || String(cause)}`,
    { domain: 'user', retriable: false, cause },
  );
};

/**
 * Source paths in the map as absolute file: URLs: esbuild writes them relative to the output
 * file, which would resolve against the bundle's directory on the worker.
 */
const absoluteSourceMap = (mapText: string, outDir: string): string => {
  const map = JSON.parse(mapText) as { sources: string[] };
  map.sources = map.sources.map((s) => pathToFileURL(resolve(outDir, s)).href);
  return Buffer.from(JSON.stringify(map)).toString('base64');
};

/**
 * Bundles a job module (TypeScript or JavaScript) and its imports into one ES module for
 * Node 20: relative imports and npm packages of the job's folder inlined, `eddy` and Node
 * builtins left as imports, source map inline (with sources) so stacks point at the job's files.
 * Throws EDDY_JOB_MODULE naming file, line and column of a syntax error or an unresolved import.
 */
export const bundleJob = async (modulePath: string): Promise<JobBundle> => {
  const entry = resolve(modulePath.startsWith('file:') ? fileURLToPath(modulePath) : modulePath);
  const base = dirname(entry);
  // Loaded on demand: only the submitting client bundles; workers never load esbuild.
  const esbuild = await import('esbuild');
  const outfile = join(base, '__eddy-job-bundle.mjs'); // never written: names the map's base
  let result: Awaited<ReturnType<typeof esbuild.build>>;
  try {
    result = await esbuild.build({
      entryPoints: [entry],
      absWorkingDir: base,
      outfile,
      write: false,
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      external: ['eddy', 'eddy/*'],
      sourcemap: 'external',
      sourcesContent: true,
      // Class and function names survive esbuild's renaming of clashing top-level symbols.
      keepNames: true,
      banner: { js: BANNER },
      logLevel: 'silent',
    });
  } catch (e) {
    const errors = (e as { errors?: EsbuildMessage[] }).errors ?? [];
    throw bundleError(entry, errors, base, e);
  }
  const files = result.outputFiles ?? [];
  const js = files.find((f) => f.path === outfile);
  const map = files.find((f) => f.path === `${outfile}.map`);
  if (!js || !map) throw bundleError(entry, [], base, new Error('esbuild produced no output'));
  const code = `${js.text}//# sourceMappingURL=data:application/json;base64,${absoluteSourceMap(map.text, base)}\n`;
  return {
    code,
    sha256: sha256Of(code),
    bytes: Buffer.byteLength(code),
    warnings: result.warnings.map((w) => formatMessage(w, base)),
  };
};

/**
 * Turns Node's source maps on in this thread (process-wide flag of the thread's environment), so
 * errors thrown in a bundle name the job's original files and lines. Must run before the bundle
 * is imported: Node reads a module's map when it loads it. Hazard: every `error.stack` then goes
 * through the maps, slower for jobs that create many errors.
 */
export const enableJobSourceMaps = (): void => {
  process.setSourceMapsEnabled(true);
};

/** The file a bundle with this sha256 lives in under `dir`. */
export const bundleFile = (dir: string, sha256: string): string =>
  join(resolve(dir), `${sha256}.mjs`);

/**
 * Writes a bundle to `dir` as `<sha256>.mjs` unless an intact copy is there (content-addressed:
 * a restarted worker reuses it). Written to a temporary name and renamed, so a concurrent
 * reader never sees half a file. Returns the file's path (what worker threads import).
 */
export const writeBundledJob = async (
  code: string,
  options: Pick<LoadBundleOptions, 'dir' | 'sha256'>,
): Promise<string> => {
  const sha = sha256Of(code);
  if (options.sha256 !== undefined && options.sha256 !== sha) {
    throw new EddyError(
      'EDDY_JOB_MODULE',
      `job bundle's sha256 is ${sha}, expected ${options.sha256}: the bundle was corrupted in transfer`,
      { domain: 'external', retriable: false },
    );
  }
  const file = bundleFile(options.dir, sha);
  const existing = await readFile(file, 'utf8').catch(() => undefined);
  if (existing !== undefined && sha256Of(existing) === sha) return file;
  await mkdir(dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    await writeFile(tmp, code);
    await rename(tmp, file);
  } catch (e) {
    await rm(tmp, { force: true });
    throw new EddyError(
      'EDDY_JOB_MODULE',
      `cannot write job bundle ${file}: ${(e as Error).message}`,
      {
        domain: 'external',
        retriable: false,
        cause: e,
      },
    );
  }
  return file;
};

/**
 * Writes a bundle (see {@link writeBundledJob}) and imports it as a job module, with `eddy`
 * resolving to the running eddy wherever `dir` is. The same code is imported once per thread.
 */
export const loadBundledJob = async (
  code: string,
  options: LoadBundleOptions,
): Promise<JobDefinition> => {
  const file = await writeBundledJob(code, options);
  if (options.sourceMaps !== false) enableJobSourceMaps();
  // importJob installs the `eddy` fallback (ensureEddyResolvable) and validates the export;
  // Node's module cache keys on the file's URL, so the same bundle evaluates once.
  return importJob(file);
};
