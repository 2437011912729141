/** `eddy list`: the jobs in the local registry, as a table or as JSON. */

import { SOCKET_ID_CHARS } from '../control/paths.js';
import { JobRegistry } from '../control/registry.js';
import type { ListedJob } from '../control/types.js';

export interface ListCommandOptions {
  readonly json?: boolean | undefined;
  /**
   * First remove the records of jobs that are no longer running (finished, stopped, failed,
   * crashed). Their state under `$EDDY_HOME/jobs/<name>/` stays: `--resume` and savepoints
   * still need it.
   */
  readonly prune?: boolean | undefined;
  /** Registry home; default `$EDDY_HOME` or `~/.eddy`. */
  readonly home?: string | undefined;
  /** Where output goes; default stdout. */
  readonly write?: ((text: string) => void) | undefined;
}

/** Prints the registered jobs; resolves with the exit code. */
export const listCommand = async (opts: ListCommandOptions = {}): Promise<number> => {
  const write = opts.write ?? ((t: string) => process.stdout.write(t));
  const registry = new JobRegistry(opts.home);
  if (opts.prune) {
    const removed = await registry.prune({ olderThanMs: 0 });
    process.stderr.write(
      `removed the records of ${removed.length} job(s) no longer running (their checkpoints and savepoints stay)\n`,
    );
  }
  const jobs = await registry.list();
  if (opts.json) {
    write(`${JSON.stringify(jobs, null, 2)}\n`);
  } else if (jobs.length === 0) {
    write(`no jobs in ${registry.dir}\n`);
  } else {
    write(formatJobTable(jobs));
  }
  return 0;
};

/** ID (first 12 chars, as used for sockets and enough to address a job), NAME, STATUS, ... */
export const formatJobTable = (jobs: readonly ListedJob[]): string => {
  const rows = [
    ['ID', 'NAME', 'STATUS', 'PARALLELISM', 'STARTED', 'URL'],
    ...jobs.map((j) => [
      j.id.slice(0, SOCKET_ID_CHARS),
      j.name,
      j.status,
      String(j.parallelism),
      j.startedAt.replace(/\.\d+Z$/, 'Z'),
      j.url ?? '-',
    ]),
  ];
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows
    .map((r) =>
      r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]!))).join('  '),
    )
    .join('\n')
    .concat('\n');
};
