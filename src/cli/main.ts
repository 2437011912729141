/** The `eddy` command line. */
import { availableParallelism } from 'node:os';
import { Command, InvalidArgumentError as CommanderArgError } from 'commander';
import { EddyError } from '../core/errors.js';
import { parsePositiveInt, runCommand } from './run.js';

const commanderInt = (name: string) => (v: string) => {
  try {
    return parsePositiveInt(name)(v);
  } catch (e) {
    throw new CommanderArgError((e as Error).message);
  }
};

export const buildProgram = (): Command => {
  const program = new Command('eddy')
    .description('eddy: a stateful stream-processing engine for TypeScript')
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
    .option('--stats-file <file>', 'write run statistics (duration, records, peak RSS) as JSON')
    .option('--no-progress', 'no live progress line')
    .action(async (job: string, jobArgs: string[], o) => {
      process.exitCode = await runCommand(job, jobArgs, {
        parallelism: o.parallelism ?? availableParallelism(),
        maxParallelism: o.maxParallelism,
        statsFile: o.statsFile,
        progress: o.progress === false ? false : undefined,
      });
    });
  return program;
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
    const code = e instanceof EddyError ? e.code : 'EDDY_INTERNAL';
    process.stderr.write(`eddy: error [${code}]: ${e instanceof Error ? e.message : String(e)}\n`);
    if (process.env.EDDY_DEBUG && e instanceof Error) process.stderr.write(`${e.stack}\n`);
    process.exitCode = 1;
  }
};

await main();
