/**
 * `import … from 'eddy'` in a job file anywhere: when the job's own folder has no eddy
 * installed (a job in /tmp, or next to a global eddy), the specifier resolves to the eddy that
 * runs the job. A job folder that has eddy installed keeps its own resolution, which under
 * `npx eddy` is this same copy.
 *
 * Hazard: two copies of eddy in one process would each have their own classes (errors,
 * sources), so the fallback must point at this very module graph: `index.js` beside this
 * file's layer folder (`index.ts` when running from sources, where tsx maps it).
 */
import { createRequire, register } from 'node:module';
import { fileURLToPath } from 'node:url';

const fromSources = import.meta.url.endsWith('.ts');
/** The running eddy's public entry point. */
export const runningEddyUrl = new URL(fromSources ? '../index.ts' : '../index.js', import.meta.url)
  .href;

/**
 * ES module resolution hook, run on Node's loader thread: only a failed bare `eddy` (or
 * `eddy/…` subpath that the running eddy exports: none besides package.json) falls back.
 */
const ESM_HOOK = `
let eddy;
export async function initialize(data) { eddy = data.eddy; }
export async function resolve(specifier, context, next) {
  try {
    return await next(specifier, context);
  } catch (e) {
    if (specifier === 'eddy' && e && e.code === 'ERR_MODULE_NOT_FOUND') {
      // Through the rest of the chain, so a TypeScript loader registered earlier (eddy run
      // from its sources) sees the URL too.
      return next(eddy, context);
    }
    throw e;
  }
}
`;

interface ModuleInternals {
  _resolveFilename(request: string, parent: unknown, isMain: boolean, options?: unknown): string;
}

const INSTALLED = Symbol.for('eddy.resolveFallbackInstalled');

/**
 * Whether `eddy` resolves from `module`'s folder on its own (a job in a project with eddy
 * installed, or inside eddy's checkout): then no fallback is needed. Registering the hook
 * costs a loader thread start (~50 ms) in every thread that imports the job.
 */
const resolvesOnItsOwn = (module: string): boolean => {
  try {
    createRequire(module).resolve('eddy');
    return true;
  } catch {
    return false;
  }
};

/**
 * Installs the fallback in this thread, once, unless `eddy` resolves from `module`'s folder
 * anyway: the ESM hook (for `.mjs`, `.mts`, and `.js`/`.ts`
 * in a `"type": "module"` folder) and a CommonJS resolver wrapper (for a `.ts` or `.js` job
 * compiled or loaded as CommonJS, e.g. in a folder without package.json). Worker threads call
 * it too: loader hooks and the CommonJS resolver are per thread.
 */
export const ensureEddyResolvable = (module: string): void => {
  const g = globalThis as Record<symbol, unknown>;
  if (g[INSTALLED] || resolvesOnItsOwn(module)) return;
  g[INSTALLED] = true;
  register(`data:text/javascript,${encodeURIComponent(ESM_HOOK)}`, {
    data: { eddy: runningEddyUrl },
  });
  const Module = createRequire(import.meta.url)('node:module') as ModuleInternals;
  const original = Module._resolveFilename;
  const eddyPath = fileURLToPath(runningEddyUrl);
  Module._resolveFilename = function (this: unknown, request, parent, isMain, options) {
    try {
      return original.call(this, request, parent, isMain, options);
    } catch (e) {
      if (request === 'eddy' && (e as { code?: string }).code === 'MODULE_NOT_FOUND') {
        return eddyPath;
      }
      throw e;
    }
  };
};
