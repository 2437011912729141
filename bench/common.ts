/**
 * Helpers shared by the benchmarks: child processes, medians, tables, machine info.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { arch, availableParallelism, cpus, platform, release, tmpdir, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { type CheckpointMetadata, decodeMetadata } from '../src/checkpoint/index.js';

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const EDDY = join(REPO, 'bin', 'eddy.mjs');

export const MiB = 1024 * 1024;

/** A benchmark failure reported as a message (no stack trace), exit code 1. */
export class BenchFailure extends Error {}

/** A bench's entry point: a BenchFailure prints its message and exits 1. */
export const benchMain =
  (name: string, run: (argv: string[]) => Promise<number>) =>
  async (argv: string[]): Promise<number> => {
    try {
      return await run(argv);
    } catch (e) {
      if (e instanceof BenchFailure) {
        console.error(`\n${name} bench FAILED: ${e.message}`);
        return 1;
      }
      throw e;
    }
  };

type BenchOptions = NonNullable<Parameters<typeof parseArgs>[0]>['options'];

/**
 * Parses a bench's flags (plus --help). Returns the values, or the exit code when the bench
 * should stop: 0 after printing the help, 2 after a usage error.
 */
export const parseBenchArgs = (
  argv: string[],
  options: BenchOptions,
  help: string,
): Record<string, string | boolean | undefined> | number => {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: { ...options, help: { type: 'boolean', short: 'h' } },
      strict: true,
    }) as { values: Record<string, string | boolean | undefined> });
  } catch (e) {
    console.error(`${(e as Error).message}\n\n${help}`);
    return 2;
  }
  if (values.help) {
    console.log(help);
    return 0;
  }
  return values;
};

/** Parses a `--name` option as a positive integer (`seed` may be 0); `_` separators allowed. */
export const positiveInt = (name: string, value: string | undefined, fallback: number): number => {
  if (value === undefined) return fallback;
  const n = Number(value.replaceAll('_', ''));
  if (!Number.isSafeInteger(n) || n < (name === 'seed' ? 0 : 1)) {
    throw new BenchFailure(`--${name} must be a positive integer, got '${value}'`);
  }
  return n;
};

export const median = (xs: readonly number[]): number => {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

export const fmtInt = (n: number) => Math.round(n).toLocaleString('en-US');
export const fmtSec = (ms: number) => (ms / 1000).toFixed(2);
export const fmtRatio = (r: number) => `${r.toFixed(2)}x`;

/** A plain-text table: first column left-aligned, the others right-aligned. */
export const table = (header: string[], rows: string[][]): string => {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
};

export interface MachineInfo {
  readonly cpuModel: string;
  readonly cpuCount: number;
  readonly availableParallelism: number;
  readonly totalMemoryBytes: number;
  readonly node: string;
  readonly platform: string;
}

export const machine = (): MachineInfo => {
  const cpu = cpus();
  return {
    cpuModel: cpu[0]?.model.trim() ?? 'unknown',
    cpuCount: cpu.length,
    availableParallelism: availableParallelism(),
    totalMemoryBytes: totalmem(),
    node: process.version,
    platform: `${platform()} ${release()} ${arch()}`,
  };
};

export const describeMachine = (host: MachineInfo): string =>
  `${host.cpuModel}, ${host.cpuCount} cores (available parallelism ${host.availableParallelism}), ` +
  `${(host.totalMemoryBytes / 1024 ** 3).toFixed(1)} GiB RAM, node ${host.node}, ${host.platform}`;

export interface ChildResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly wallMs: number;
  /** True when the child was killed for running longer than `timeoutMs`. */
  readonly timedOut: boolean;
  /**
   * CPU time (user + system, all threads) of the child, when asked for with `cpu` and GNU
   * time is installed. Less sensitive than wall time to other load on a shared machine.
   */
  readonly cpuMs?: number | undefined;
}

export interface RunChildOptions {
  /** Kill the child (SIGKILL) after this long. */
  readonly timeoutMs?: number;
  /** Measure the child's CPU time (see {@link ChildResult.cpuMs}) with /usr/bin/time. */
  readonly cpu?: boolean;
}

/** GNU time, which reports a child's CPU time; Node has no getrusage(RUSAGE_CHILDREN). */
const GNU_TIME = '/usr/bin/time';

/** Reads what `GNU_TIME -f '%U %S' -o file` wrote: user + system seconds, in ms. */
const readCpuMs = (file: string): number | undefined => {
  try {
    const [user, sys] = readFileSync(file, 'utf8').trim().split('\n').at(-1)!.split(' ');
    const ms = (Number(user) + Number(sys)) * 1000;
    return Number.isFinite(ms) ? ms : undefined;
  } catch {
    return undefined;
  }
};

/** Runs `node <args>` in the repository root, collecting its output. */
export const runChild = (args: string[], opts: RunChildOptions = {}): Promise<ChildResult> =>
  new Promise((resolvePromise, reject) => {
    // Killing on timeout would kill GNU time, not the node process under it.
    if (opts.cpu && opts.timeoutMs !== undefined) {
      throw new BenchFailure('runChild: `cpu` and `timeoutMs` cannot be combined');
    }
    const timeDir =
      opts.cpu && existsSync(GNU_TIME)
        ? mkdtempSync(join(tmpdir(), 'eddy-bench-time-'))
        : undefined;
    const timeFile = timeDir === undefined ? undefined : join(timeDir, 'time');
    const [command, argv] =
      timeFile === undefined
        ? [process.execPath, args]
        : [GNU_TIME, ['-f', '%U %S', '-o', timeFile, process.execPath, ...args]];
    const started = performance.now();
    const child = spawn(command, argv, {
      cwd: REPO,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    const timer =
      opts.timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            timedOut = true;
            child.kill('SIGKILL');
          }, opts.timeoutMs);
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const cpuMs = timeFile === undefined ? undefined : readCpuMs(timeFile);
      if (timeDir !== undefined) rmSync(timeDir, { recursive: true, force: true });
      resolvePromise({
        cpuMs,
        code,
        signal,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        wallMs: performance.now() - started,
        timedOut,
      });
    });
  });

/** What a run writes to its stats file (`eddy run --stats-file`, the hand-written baselines). */
export interface RunStats {
  readonly durationMs: number;
  readonly recordsIn: number;
  readonly maxRssBytes: number;
}

/** Reads and checks a run's stats file; `config` names the run in errors. */
export const readRunStats = (file: string, config: string): RunStats & Record<string, unknown> => {
  let stats: Record<string, unknown>;
  try {
    stats = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new BenchFailure(`${config}: cannot read stats file ${file}: ${(e as Error).message}`);
  }
  for (const key of ['durationMs', 'recordsIn', 'maxRssBytes']) {
    if (typeof stats[key] !== 'number' || !Number.isFinite(stats[key])) {
      throw new BenchFailure(
        `${config}: stats file lacks a numeric '${key}': ${JSON.stringify(stats)}`,
      );
    }
  }
  return stats as RunStats & Record<string, unknown>;
};

/**
 * Watches a checkpoint directory while a run goes on: eddy keeps only its last few
 * checkpoints, so every new `chk-<n>/_metadata` is read as soon as it appears (every 100 ms)
 * and handed to `onMetadata`; `stop()` reads once more and returns how many were read.
 */
export const watchCheckpoints = (
  dir: string,
  onMetadata: (meta: CheckpointMetadata) => void,
): { stop(): number } => {
  const seen = new Set<string>();
  const scan = () => {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      return;
    }
    for (const name of names) {
      if (!/^chk-\d+$/.test(name) || seen.has(name)) continue;
      const path = join(dir, name);
      let meta: CheckpointMetadata;
      try {
        meta = decodeMetadata(readFileSync(join(path, '_metadata')), path);
      } catch {
        continue; // not complete yet (no _metadata), or already deleted
      }
      seen.add(name);
      onMetadata(meta);
    }
  };
  const timer = setInterval(scan, 100);
  return {
    stop: () => {
      clearInterval(timer);
      scan();
      return seen.size;
    },
  };
};
