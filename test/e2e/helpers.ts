/** Helpers for end-to-end runs of the real CLI in a child process. */
import { type ChildProcess, spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const ROOT = new URL('../..', import.meta.url).pathname;
export const EDDY = join(ROOT, 'bin', 'eddy.mjs');

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export const tempDir = (prefix = 'eddy-e2e-') => mkdtempSync(join(tmpdir(), prefix));

/**
 * The EDDY_HOME of runs given no env: one per test file, so job state (under
 * `$EDDY_HOME/jobs/<name>/`) is never shared with another test file running at the same time.
 */
const fileHome = tempDir('eddy-home-');

/** Runs `eddy <args>`; `onStart` may signal the child (e.g. SIGINT for a graceful stop). */
export const eddy = (
  args: string[],
  onStart?: (child: import('node:child_process').ChildProcess) => void,
  env?: NodeJS.ProcessEnv,
  cwd: string = ROOT,
) =>
  new Promise<RunResult>((resolve, reject) => {
    const child = spawn(process.execPath, [EDDY, ...args], {
      cwd,
      env: env ?? { ...process.env, EDDY_HOME: fileHome },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
    onStart?.(child);
  });

/** All lines of the visible part files in `dir`. */
export const readParts = (dir: string): string[] =>
  readdirSync(dir)
    .filter((f) => f.startsWith('part-'))
    .sort()
    .flatMap((f) =>
      readFileSync(join(dir, f), 'utf8')
        .split('\n')
        .filter((l) => l.length > 0),
    );

export const sorted = (lines: string[]) => [...lines].sort();

/** Polls `done` every 20 ms until it holds; fails naming `what` after `timeoutMs`. */
export const waitUntil = async (done: () => boolean, what: string, timeoutMs = 60_000) => {
  for (const deadline = Date.now() + timeoutMs; !done(); ) {
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
};

/** Committed part files in `dir` (none while it does not exist). */
export const committedParts = (dir: string): string[] => (existsSync(dir) ? readParts(dir) : []);

/** True once a sink subtask has written output to `dir` (visible or still in progress). */
export const hasWrittenOutput = (dir: string): boolean =>
  existsSync(dir) &&
  readdirSync(dir).some((f) => /part-/.test(f) && statSync(join(dir, f)).size > 0);

export interface SumEvent {
  user: string;
  amount: number;
}

/** Writes events into files `events-<i>.jsonl`, one JSON line each; returns the directory. */
export const writeEventFiles = (files: readonly object[][], dir = tempDir()): string => {
  mkdirSync(dir, { recursive: true });
  files.forEach((events, i) => {
    writeFileSync(
      join(dir, `events-${String(i).padStart(3, '0')}.jsonl`),
      events.map((e) => `${JSON.stringify(e)}\n`).join(''),
    );
  });
  return dir;
};

/** The reference: files in name order, one running sum per user, one line per event. */
export const referenceSums = (files: SumEvent[][]): string[] => {
  const sums = new Map<string, number>();
  const out: string[] = [];
  for (const events of files) {
    for (const e of events) {
      const total = (sums.get(e.user) ?? 0) + e.amount;
      sums.set(e.user, total);
      out.push(JSON.stringify({ user: e.user, total }));
    }
  }
  return out;
};

/**
 * Polls `eddy list` (in the EDDY_HOME of `env`) until a job is running; returns its id. Throws
 * if none shows up within 10 s.
 */
export const runningJobId = async (env: NodeJS.ProcessEnv): Promise<string> => {
  for (let i = 0; i < 200; i++) {
    await new Promise((r) => setTimeout(r, 50));
    const list = JSON.parse((await eddy(['list', '--json'], undefined, env)).stdout) as {
      id: string;
      status: string;
    }[];
    const id = list.find((j) => j.status === 'running')?.id;
    if (id) return id;
  }
  throw new Error('the job never showed up as running in `eddy list`');
};

/**
 * Starts `eddy run <module> -p 2 --checkpoint-interval 100 [extra] -- out` in `cwd`; resolves
 * once its first checkpoint completed, with the running job's id.
 */
export const startCheckpointingJob = async (
  module: string,
  cwd: string,
  env: NodeJS.ProcessEnv,
  extra: string[] = [],
) => {
  const child = spawn(
    process.execPath,
    [EDDY, 'run', module, '-p', '2', '--checkpoint-interval', '100', ...extra, '--', 'out'],
    { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stderr = '';
  const exited = new Promise<number | null>((r) => child.on('exit', r));
  const checkpointed = new Promise<void>((resolve, reject) => {
    child.stderr!.on('data', (d) => {
      stderr += d;
      if (/checkpoint \d+ completed/.test(stderr)) resolve();
    });
    child.on('exit', () => reject(new Error(`eddy run exited early:\n${stderr}`)));
  });
  await checkpointed;
  return { child, exited, stderr: () => stderr, id: await runningJobId(env) };
};

/** Ctrl-C: the job stops and `eddy run` exits 0. */
export const stopGracefully = async (child: ChildProcess, exited: Promise<number | null>) => {
  child.kill('SIGINT');
  if ((await exited) !== 0) throw new Error('eddy run did not exit 0 after Ctrl-C');
};
