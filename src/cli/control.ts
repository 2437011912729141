/**
 * `eddy savepoint` and `eddy stop`: find a running job in the local registry and send it a
 * request over its control socket. Human messages go to stderr; the savepoint path goes to
 * stdout as the last line, so `$(eddy stop <id> --savepoint)` captures exactly the path.
 */
import { resolve } from 'node:path';
import { sendControl } from '../control/client.js';
import { JobRegistry } from '../control/registry.js';
import { EddyError } from '../core/errors.js';

export interface ControlCommandIo {
  /** Registry home; default `$EDDY_HOME` or `~/.eddy`. */
  readonly home?: string | undefined;
  readonly out?: ((text: string) => void) | undefined;
  readonly err?: ((text: string) => void) | undefined;
}

/** `eddy savepoint <jobId> [--dir <dir>]`; resolves with the exit code. */
export const savepointCommand = async (
  jobId: string,
  opts: { dir?: string | undefined },
  io: ControlCommandIo = {},
): Promise<number> => {
  const { job, label } = await runningJob(jobId, io.home);
  writer(io.err, process.stderr)(`taking a savepoint of ${label}\n`);
  const { path } = await sendControl(
    job.socket,
    { op: 'savepoint', dir: absolute(opts.dir) },
    { job: label },
  );
  writer(io.out, process.stdout)(`${path}\n`);
  return 0;
};

/**
 * `eddy stop <jobId> [--savepoint] [--dir <dir>] [--drain]`; resolves with the exit code.
 * Without `--drain` (Flink's `stop`) the sources stop where they are and windows and timers
 * stay in state for a restore; with it (`stop --drain`) the input ends: every window and
 * timer fires and `finish` runs before the final snapshot.
 */
export const stopCommand = async (
  jobId: string,
  opts: { savepoint?: boolean | undefined; dir?: string | undefined; drain?: boolean | undefined },
  io: ControlCommandIo = {},
): Promise<number> => {
  if (opts.dir !== undefined && !opts.savepoint) {
    throw new EddyError('EDDY_JOB_CONTROL', '--dir needs --savepoint', { domain: 'user' });
  }
  const drain = opts.drain === true;
  const { job, label } = await runningJob(jobId, io.home);
  const err = writer(io.err, process.stderr);
  const how = drain
    ? 'ending its input and firing every window and timer'
    : 'its sources stop where they are';
  err(
    `stopping ${label} (${how}): waiting for it to drain${opts.savepoint ? ' and write its savepoint' : ''}\n`,
  );
  const { path } = await sendControl(
    job.socket,
    { op: 'stop', savepoint: opts.savepoint === true, dir: absolute(opts.dir), drain },
    { job: label },
  );
  if (opts.savepoint) {
    if (path === undefined) {
      throw new EddyError('EDDY_JOB_CONTROL', `${label} stopped but reported no savepoint`);
    }
    writer(io.out, process.stdout)(`${path}\n`);
  } else {
    err(`stopped ${label}\n`);
  }
  return 0;
};

const runningJob = async (jobId: string, home: string | undefined) => {
  const job = await new JobRegistry(home).get(jobId);
  const label = `job ${job.id} (${job.name})`;
  if (job.status === 'crashed') {
    throw new EddyError(
      'EDDY_JOB_CONTROL',
      `${label} is not reachable (probably crashed): its process or control socket is gone`,
      { domain: 'external' },
    );
  }
  if (job.status !== 'running' && job.status !== 'stopping') {
    const when = job.endedAt ? ` at ${job.endedAt}` : '';
    throw new EddyError('EDDY_JOB_CONTROL', `${label} is not running: it ${job.status}${when}`, {
      domain: 'user',
    });
  }
  return { job, label };
};

/** The job runs in another working directory: a relative --dir means relative to ours. */
const absolute = (dir: string | undefined) => (dir === undefined ? undefined : resolve(dir));

const writer =
  (fn: ((text: string) => void) | undefined, stream: NodeJS.WriteStream) => (text: string) =>
    fn ? fn(text) : void stream.write(text);

/**
 * `eddy rescale <jobId> [N] [--operator uid=N ...]`: stop with a savepoint (never draining:
 * windows and timers move to the new parallelism in state), restart from it at the new
 * parallelism; prints the pause and the bytes read. The job checks the request first (uids,
 * each operator's maxParallelism) and refuses it, or answers that nothing would change,
 * without stopping.
 */
export const rescaleCommand = async (
  jobId: string,
  parallelism: number | undefined,
  operators: Readonly<Record<string, number>>,
  io: ControlCommandIo = {},
): Promise<number> => {
  if (parallelism === undefined && Object.keys(operators).length === 0) {
    throw new EddyError('EDDY_JOB_CONTROL', 'rescale needs a parallelism or --operator uid=N', {
      domain: 'user',
    });
  }
  const { job, label } = await runningJob(jobId, io.home);
  writer(io.err, process.stderr)(`rescaling ${label}\n`);
  const answer = await sendControl(
    job.socket,
    { op: 'rescale', parallelism, operators },
    { job: label },
  );
  if ('unchanged' in answer) {
    // The job checked the request and found nothing to change: it was not stopped.
    writer(
      io.out,
      process.stdout,
    )(
      `nothing to rescale: ${label} already runs at that parallelism (${answer.unchanged.operators}); it was left running as it was\n`,
    );
    return 0;
  }
  const { report } = answer;
  const ops = Object.entries(report.operators)
    .map(([uid, n]) => ` ${uid}=${n}`)
    .join('');
  writer(
    io.out,
    process.stdout,
  )(
    `rescaled ${report.fromParallelism} -> ${report.toParallelism}${ops ? ` (operators:${ops})` : ''}: pause ${report.pauseMs.toFixed(0)} ms (new threads started beforehand in ${report.prepareMs.toFixed(0)} ms while the job ran), restored ${report.keyGroups} key groups, ${report.bytesRead} bytes read${report.bytesDeferred ? ` (${report.bytesDeferred} more on first use)` : ''} in ${report.restoreMs.toFixed(0)} ms, via ${report.savepoint}\n`,
  );
  return 0;
};
