// Running eddy from its TypeScript sources (tests, EDDY_DEV=1): registers tsx for eddy itself,
// makes `import 'eddy'` in a job resolve to the same sources (the `eddy-source` export
// condition), so job and engine share one copy of every class, and marks the loader as
// registered for core/ts-loader.ts. Used by bin/eddy.mjs and runtime/worker-boot.mjs.
import { register as registerHooks } from 'node:module';

export const registerSourceMode = async () => {
  const [esm, cjs] = await Promise.all([import('tsx/esm/api'), import('tsx/cjs/api')]);
  esm.register();
  // A .ts job in a folder without package.json (or a CommonJS one) is compiled to CommonJS.
  cjs.register();
  registerHooks(
    `data:text/javascript,${encodeURIComponent(
      "export const resolve = (s, c, next) => next(s, { ...c, conditions: [...c.conditions, 'eddy-source'] });",
    )}`,
  );
  globalThis[Symbol.for('eddy.tsLoaderRegistered')] = true;
};
