#!/usr/bin/env node
/**
 * The `eddy` command line. Each command's module (and so the engine) is imported only when
 * that command runs, so `eddy --help`, `eddy list` and `eddy inspect` start fast.
 */
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { Command, InvalidArgumentError as CommanderArgError, Option } from 'commander';
import { EddyError } from '../core/errors.js';

const commanderInt =
  (name: string, min = 1) =>
  (v: string) => {
    // As run.ts's parsePositiveInt, which is not imported here: it would load the engine.
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) {
      throw new CommanderArgError(`${name} must be an integer >= ${min}, got '${v}'`);
    }
    return n;
  };

/** eddy's version, from its package.json (two levels up from both src/cli and dist/cli). */
const packageVersion = (): string =>
  (
    JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
      version: string;
    }
  ).version;

export const buildProgram = (): Command => {
  const program = new Command('eddy')
    .description('eddy: a stateful stream-processing engine for TypeScript')
    .version(packageVersion(), '-V, --version', "print eddy's version")
    .showHelpAfterError()
    .exitOverride();
  program
    .command('run')
    .description('run a job locally until its bounded input ends or Ctrl-C (graceful stop)')
    .argument('<job>', 'job module (.ts or .js) whose default export is defineJob(...)')
    .argument('[jobArgs...]', "the job's own arguments, after --")
    .option(
      '-p, --parallelism <n>',
      'default parallelism of every operator',
      commanderInt('--parallelism'),
    )
    .option(
      '--max-parallelism <n>',
      'number of key groups (fixed once a job has state)',
      commanderInt('--max-parallelism'),
    )
    .option(
      '--workers <n>',
      'worker threads the subtasks share (default: the number of cores, at most the largest parallelism)',
      commanderInt('--workers'),
    )
    .option('--stats-file <file>', 'write run statistics (duration, records, peak RSS) as JSON')
    .option('--no-progress', 'no live progress line')
    .option(
      '--checkpoint-interval <ms>',
      'take a checkpoint every <ms> milliseconds',
      commanderInt('--checkpoint-interval'),
    )
    .option(
      '--state-dir <dir>',
      "root of this job's checkpoints/, savepoints/ and rescales/ (default $EDDY_HOME/jobs/<job name>, $EDDY_HOME defaulting to ~/.eddy)",
    )
    .option('--checkpoint-dir <dir>', 'where checkpoints go (default <state dir>/checkpoints)')
    .option(
      '--checkpoint-timeout <ms>',
      'decline a checkpoint not completed within <ms> milliseconds (default 600000)',
      commanderInt('--checkpoint-timeout'),
    )
    .addOption(
      new Option(
        '--checkpoint-mode <mode>',
        "how keyed state is checkpointed: 'full' (all of it each time) or 'incremental' (what changed since the previous checkpoint; savepoints stay full)",
      ).choices(['full', 'incremental']),
    )
    .addOption(
      new Option(
        '--state-backend <kind>',
        "where keyed state lives while the job runs: 'heap' (in memory, default) or 'disk' (a log-structured store on disk per keyed subtask in the local state dir; savepoints restore into either)",
      ).choices(['heap', 'disk']),
    )
    .option(
      '--local-state-dir <dir>',
      "working directory of the disk backend's stores, emptied when the job ends (default <state dir>/local)",
    )
    .option('--from-savepoint <path>', 'start from a savepoint or checkpoint directory')
    .option('--resume', 'continue from the latest completed checkpoint in the checkpoint dir')
    .option(
      '--allow-non-restored-state',
      'drop checkpointed state of operators (uids) this job no longer has',
    )
    .option(
      '--restart-attempts <n>',
      'restarts after failures (with checkpoints; 0 = none)',
      commanderInt('--restart-attempts', 0),
    )
    .option(
      '--ui-port <n>',
      'port of the REST API, /metrics and dashboard (default 8081, the next free one if taken; 0 = any free port)',
      commanderInt('--ui-port', 0),
    )
    .option(
      '--ui-host <host>',
      'address to serve them on (default 127.0.0.1; any other address needs a token)',
    )
    .option(
      '--ui-token <token>',
      'require Authorization: Bearer <token> on every API request (prefer EDDY_UI_TOKEN: arguments are visible to other users)',
    )
    .option('--no-ui', 'no REST API, /metrics or dashboard')
    .option(
      '--master <host:port>',
      'submit the job to an eddy cluster (eddy master) instead of running it here; this command follows it',
    )
    .option(
      '--reactive',
      "with --master: the job's parallelism follows the cluster's free task slots (up to its max parallelism)",
    )
    .option(
      '--detach',
      'with --master: submit, print the job id on stdout and exit; the job runs on (eddy stop --master stops it)',
    )
    .action(async (job: string, jobArgs: string[], o) => {
      if (o.master !== undefined) {
        const { submitCommand } = await import('./cluster.js');
        process.exitCode = await submitCommand(job, jobArgs, {
          master: o.master,
          parallelism: o.parallelism,
          maxParallelism: o.maxParallelism,
          checkpointInterval: o.checkpointInterval,
          checkpointDir: o.checkpointDir,
          stateDir: o.stateDir,
          checkpointTimeout: o.checkpointTimeout,
          checkpointMode: o.checkpointMode,
          stateBackend: o.stateBackend,
          localStateDir: o.localStateDir,
          fromSavepoint: o.fromSavepoint,
          resume: o.resume === true,
          allowNonRestoredState: o.allowNonRestoredState === true,
          restartAttempts: o.restartAttempts,
          reactive: o.reactive === true,
          detach: o.detach === true,
          progress: o.progress === false ? false : undefined,
        });
        return;
      }
      if (o.reactive || o.detach)
        throw new EddyError(
          'EDDY_INVALID_ARGUMENT',
          `--${o.reactive ? 'reactive' : 'detach'} needs --master <host:port>`,
          {
            domain: 'user',
          },
        );
      const [{ runCommand }, { runHooks }] = await Promise.all([
        import('./run.js'),
        import('./run-control.js'),
      ]);
      process.exitCode = await runCommand(job, jobArgs, {
        parallelism: o.parallelism ?? availableParallelism(),
        maxParallelism: o.maxParallelism,
        workers: o.workers,
        statsFile: o.statsFile,
        progress: o.progress === false ? false : undefined,
        checkpointInterval: o.checkpointInterval,
        checkpointDir: o.checkpointDir,
        stateDir: o.stateDir,
        checkpointTimeout: o.checkpointTimeout,
        checkpointMode: o.checkpointMode,
        stateBackend: o.stateBackend,
        localStateDir: o.localStateDir,
        fromSavepoint: o.fromSavepoint,
        resume: o.resume === true,
        allowNonRestoredState: o.allowNonRestoredState === true,
        restartAttempts: o.restartAttempts,
        ...runHooks(o.parallelism ?? availableParallelism(), {
          enabled: o.ui !== false,
          port: o.uiPort,
          host: o.uiHost,
          token: o.uiToken ?? process.env.EDDY_UI_TOKEN,
        }),
      });
    });
  program
    .command('inspect')
    .description('describe a checkpoint or savepoint; with --plan N, the reads of a restore at N')
    .argument('<checkpoint>', 'checkpoint or savepoint directory, or its _metadata file')
    .option(
      '--plan <n>',
      'plan a restore at parallelism <n>: reads per subtask',
      commanderInt('--plan'),
    )
    .option('--json', 'print the report as JSON')
    .option('--verify', 'also read every block and check its CRC')
    .option(
      '--master <host:port>',
      "<checkpoint> is a job id on this cluster: inspect the job's latest completed checkpoint",
    )
    .action(async (path: string, o) => {
      const { inspectCommand } = await import('./inspect.js');
      if (o.master !== undefined) {
        const { latestCheckpointOf } = await import('./cluster.js');
        path = await latestCheckpointOf(o.master, path);
      }
      process.exitCode = await inspectCommand(path, {
        plan: o.plan,
        json: o.json === true,
        verify: o.verify === true,
      });
    });
  addJobControlCommands(program);
  addClusterCommands(program);
  program
    .command('nexmark')
    .description('the Nexmark benchmark (docs/NEXMARK-QUERIES.md)')
    .command('generate')
    .description(
      'write Nexmark events 0..N-1 as JSON Lines: K files of contiguous event-id ranges, the same events the Nexmark source generates',
    )
    .requiredOption('--events <n>', 'number of events', commanderInt('--events', 0))
    .requiredOption('--out <dir>', 'directory for nexmark-<k>.jsonl')
    .option('--files <k>', 'number of files (default 1)', commanderInt('--files'))
    .option(
      '--events-per-second <n>',
      'events per second of event time (default 10000)',
      commanderInt('--events-per-second'),
    )
    .option(
      '--base-time <ms>',
      'event time of event 0, epoch ms (default 2026-01-01T00:00:00Z)',
      commanderInt('--base-time', 0),
    )
    .action(async (o) => {
      const { nexmarkGenerateCommand } = await import('./nexmark.js');
      process.exitCode = await nexmarkGenerateCommand(o);
    });
  return program;
};

/** `eddy master | worker | cluster status`: a cluster of processes (docs/DEPLOY.md). */
const addClusterCommands = (program: Command) => {
  program
    .command('master')
    .description(
      'run a cluster master: worker processes register their task slots, clients submit jobs',
    )
    .requiredOption('--port <n>', 'port for workers and clients', commanderInt('--port', 0))
    .option('--host <host>', 'address to listen on (default 127.0.0.1; 0.0.0.0 for all)')
    .option('--ha-dir <dir>', 'record submitted jobs here; a master restarted on it resumes them')
    .option(
      '--heartbeat-timeout <ms>',
      'a worker silent this long is lost (default 5000)',
      commanderInt('--heartbeat-timeout'),
    )
    .option(
      '--slot-timeout <ms>',
      'how long a job waits for free task slots before it fails (default 60000)',
      commanderInt('--slot-timeout'),
    )
    .option(
      '--health-port <n>',
      'serve GET /healthz and /readyz on this port',
      commanderInt('--health-port', 0),
    )
    .action(async (o) => {
      const { masterCommand } = await import('./cluster.js');
      process.exitCode = await masterCommand(o);
    });
  program
    .command('worker')
    .description('run a worker process offering task slots to a cluster master')
    .requiredOption('--master <host:port>', 'the master to register with')
    .option(
      '--slots <n>',
      'task slots (worker threads) to offer (default 1)',
      commanderInt('--slots'),
    )
    .option(
      '--host <host>',
      'the address other workers reach this one at (default 127.0.0.1); data connections listen there',
    )
    .option('--id <id>', 'worker id in status and logs (default host:pid)')
    .option(
      '--heartbeat-timeout <ms>',
      'the master silent this long is lost (default 5000)',
      commanderInt('--heartbeat-timeout'),
    )
    .option(
      '--health-port <n>',
      'serve GET /healthz and /readyz on this port',
      commanderInt('--health-port', 0),
    )
    .action(async (o) => {
      const { workerCommand } = await import('./cluster.js');
      process.exitCode = await workerCommand({ ...o, slots: o.slots ?? 1 });
    });
  program
    .command('cluster')
    .description('inspect a cluster')
    .command('status')
    .description("a cluster's workers (slots, free slots) and jobs (status, parallelism, rescales)")
    .requiredOption('--master <host:port>', 'the master')
    .option('--json', 'print the status as JSON')
    .option('--worker <id>', 'exit 1 unless this worker is registered (a readiness check)')
    .action(async (o) => {
      const { clusterStatusCommand } = await import('./cluster.js');
      process.exitCode = await clusterStatusCommand(o);
    });
};

/** `eddy list | savepoint | stop`: reach running jobs through the registry in $EDDY_HOME. */
const addJobControlCommands = (program: Command) => {
  program
    .command('list')
    .description('list the jobs registered in $EDDY_HOME (default ~/.eddy)')
    .option('--json', 'print all fields of every job as a JSON array')
    .option('--prune', 'first remove the records of jobs no longer running (state stays)')
    .option('--master <host:port>', "list a cluster's jobs instead")
    .action(async (o) => {
      if (o.master !== undefined) {
        const { clusterListCommand } = await import('./cluster.js');
        process.exitCode = await clusterListCommand(o.master, o.json === true);
        return;
      }
      const { listCommand } = await import('./list.js');
      process.exitCode = await listCommand({ json: o.json === true, prune: o.prune === true });
    });
  program
    .command('logs')
    .description(
      "print a job's log ($EDDY_HOME/logs/<job id>.log: start, checkpoints, restarts, rescales, end), also after it ended",
    )
    .argument('<jobId>', 'job id or a unique prefix of it (see eddy list)')
    .option('-f, --follow', 'keep printing new lines until the job ends (or Ctrl-C)')
    .option('--json', 'print the raw JSON lines')
    .action(async (jobId: string, o) => {
      const { logsCommand } = await import('./logs.js');
      process.exitCode = await logsCommand(jobId, {
        follow: o.follow === true,
        json: o.json === true,
      });
    });
  program
    .command('savepoint')
    .description('take a savepoint of a running job; prints its path as the last line')
    .argument('<jobId>', 'job id or a unique prefix of it (see eddy list)')
    .option('--dir <dir>', 'directory for the savepoint (default: chosen by the job)')
    .option('--master <host:port>', 'the job runs on this cluster')
    .action(async (jobId: string, o) => {
      if (o.master !== undefined) {
        const { clusterControlCommand } = await import('./cluster.js');
        process.exitCode = await clusterControlCommand(o.master, {
          kind: 'savepoint',
          jobId,
          dir: o.dir,
        });
        return;
      }
      const { savepointCommand } = await import('./control.js');
      process.exitCode = await savepointCommand(jobId, { dir: o.dir });
    });
  program
    .command('stop')
    .description(
      'stop a running job gracefully, waiting until it has drained; windows and timers stay in state unless --drain',
    )
    .argument('<jobId>', 'job id or a unique prefix of it (see eddy list)')
    .option('--savepoint', 'write a final savepoint; prints its path as the last line')
    .option('--dir <dir>', 'directory for the savepoint (default: chosen by the job)')
    .option(
      '--drain',
      'end the input first: fire every window and timer and run finish (as at the end of input)',
    )
    .option('--master <host:port>', 'the job runs on this cluster')
    .action(async (jobId: string, o) => {
      if (o.master !== undefined) {
        const { clusterControlCommand } = await import('./cluster.js');
        process.exitCode = await clusterControlCommand(o.master, {
          kind: 'stop',
          jobId,
          savepoint: o.savepoint === true,
          dir: o.dir,
          drain: o.drain === true,
        });
        return;
      }
      const { stopCommand } = await import('./control.js');
      process.exitCode = await stopCommand(jobId, {
        savepoint: o.savepoint === true,
        dir: o.dir,
        drain: o.drain === true,
      });
    });
  program
    .command('rescale')
    .description(
      'change the parallelism of a running job: stop with a savepoint, restart from it at the new parallelism',
    )
    .argument('<jobId>', 'job id or a unique prefix of it (see eddy list)')
    .argument(
      '[parallelism]',
      'new default parallelism of every operator',
      commanderInt('parallelism'),
    )
    .option('--operator <uid=N...>', 'new parallelism of one operator (repeatable)')
    .option(
      '--master <host:port>',
      'the job runs on this cluster (one parallelism for all operators)',
    )
    .action(async (jobId: string, parallelism: number | undefined, o) => {
      if (o.master !== undefined) {
        if (parallelism === undefined || o.operator)
          throw new EddyError(
            'EDDY_INVALID_ARGUMENT',
            'rescale --master takes a parallelism (no --operator)',
            {
              domain: 'user',
            },
          );
        const { clusterControlCommand } = await import('./cluster.js');
        process.exitCode = await clusterControlCommand(o.master, {
          kind: 'rescale',
          jobId,
          parallelism,
        });
        return;
      }
      const { rescaleCommand } = await import('./control.js');
      process.exitCode = await rescaleCommand(
        jobId,
        parallelism,
        parseOperatorParallelism(o.operator ?? []),
      );
    });
};

/**
 * `--operator uid=N` (repeatable). Each malformed form gets its own message naming the bad
 * value; thrown as an EddyError so that `main` prints it (commander's errors thrown from an
 * action are not printed). Whether the uid exists is checked by the running job.
 */
const parseOperatorParallelism = (specs: string[]): Record<string, number> => {
  const out: Record<string, number> = {};
  const bad = (message: string) =>
    new EddyError('EDDY_INVALID_ARGUMENT', message, { domain: 'user' });
  for (const spec of specs) {
    const at = spec.lastIndexOf('=');
    if (at < 0) {
      throw bad(
        `--operator '${spec}' is not uid=N: give the operator's uid and its new parallelism, e.g. --operator ${spec || 'counts'}=3`,
      );
    }
    const uid = spec.slice(0, at);
    const value = spec.slice(at + 1);
    if (uid.length === 0) {
      throw bad(
        `--operator '${spec}' has no uid before '=': expected uid=N, e.g. --operator counts${spec}`,
      );
    }
    const n = Number(value);
    if (!/^[0-9]+$/.test(value) || !Number.isSafeInteger(n) || n < 1) {
      throw bad(
        `--operator '${spec}': the parallelism of operator '${uid}' must be an integer >= 1, got '${value}'`,
      );
    }
    if (out[uid] !== undefined) {
      throw bad(`--operator gives operator '${uid}' twice (${out[uid]} and ${n}): give it once`);
    }
    out[uid] = n;
  }
  return out;
};

const main = async () => {
  try {
    await buildProgram().parseAsync(process.argv);
  } catch (e) {
    if (
      e &&
      typeof e === 'object' &&
      'exitCode' in e &&
      'code' in e &&
      String(e.code).startsWith('commander.')
    ) {
      process.exitCode = (e as { exitCode: number }).exitCode;
      return;
    }
    const { formatError } = await import('./error-report.js');
    process.stderr.write(formatError(e, Boolean(process.env.EDDY_DEBUG)));
    process.exitCode = 1;
  }
};

await main();
