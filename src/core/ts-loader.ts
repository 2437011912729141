/**
 * The TypeScript loader (tsx) on demand: eddy itself runs as compiled JavaScript, and tsx is
 * loaded — in the main thread and in each worker thread — only when a `.ts` job module is
 * imported. A job written in plain JavaScript never loads it.
 */

/** Set (per thread) by whoever registered tsx already, e.g. eddy's own dev mode. */
const REGISTERED = Symbol.for('eddy.tsLoaderRegistered');

/** Whether importing `module` (a path or file: URL) needs the TypeScript loader. */
export const needsTypeScriptLoader = (module: string): boolean =>
  /\.(?:[cm]?ts|tsx)$/i.test(module.split(/[?#]/, 1)[0] ?? module);

let loading: Promise<void> | undefined;

/** Registers tsx in this thread once; later calls (and a thread that has it already) are free. */
export const ensureTypeScriptLoader = (): Promise<void> => {
  const g = globalThis as Record<symbol, unknown>;
  if (g[REGISTERED]) return Promise.resolve();
  // Both hooks, as the tsx command does: a .ts job in a CommonJS package (`npm init -y`) is
  // compiled to CommonJS and needs tsx's require hook.
  loading ??= Promise.all([import('tsx/esm/api'), import('tsx/cjs/api')]).then(([esm, cjs]) => {
    esm.register();
    cjs.register();
    g[REGISTERED] = true;
  });
  return loading;
};
