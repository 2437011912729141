/**
 * Wires a running `eddy run` into job control (registry + control socket), so `eddy list`,
 * `eddy savepoint` and `eddy stop` in other shells can reach it. Filled in once the control
 * layer lands; until then runs are not registered.
 */
import type { RunCommandOptions } from './run.js';

export const runHooks = (): Pick<RunCommandOptions, 'onStarted' | 'onEnded'> => ({});
