/**
 * A client library loaded on first use. `import … from 'eddy'` loads every connector module,
 * in the main thread and in every worker thread; importing the NATS, Redis and PostgreSQL
 * clients there too cost ~115 ms per thread for jobs that use none of them. A connector
 * awaits `load()` where it first connects (always async) and may then use `get()` in
 * synchronous code that only runs after that.
 */
import { EddyError } from '../core/errors.js';

export interface LazyModule<M> {
  load(): Promise<M>;
  /** The module once `load()` resolved; throws before (a connector bug). */
  get(): M;
  /** The module if loaded, else undefined (e.g. `instanceof` checks on errors). */
  loaded(): M | undefined;
}

export const lazyModule = <M>(name: string, importer: () => Promise<M>): LazyModule<M> => {
  let module: M | undefined;
  let loading: Promise<M> | undefined;
  return {
    load: () =>
      (loading ??= importer().then((m) => {
        module = m;
        return m;
      })),
    get: () => {
      if (module === undefined) {
        throw new EddyError('EDDY_INTERNAL', `${name} used before it was loaded`);
      }
      return module;
    },
    loaded: () => module,
  };
};
