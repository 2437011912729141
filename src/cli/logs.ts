/**
 * `eddy logs <jobId> [-f] [--json]`: prints a job's structured log (`$EDDY_HOME/logs/<id>.log`,
 * written by job-log.ts), human-readable by default. The id (or a unique prefix) is resolved
 * through the registry as `eddy stop` does; a job whose registry entry was pruned is still
 * found by its log file. With `-f` it follows the file until the job's last event, until the
 * process that writes it is gone, or until Ctrl-C.
 */
import { existsSync, readdirSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { StringDecoder } from 'node:string_decoder';
import { isProcessAlive, JobRegistry } from '../control/registry.js';
import { EddyError } from '../core/errors.js';
import { FINAL_JOB_LOG_EVENTS, jobLogPath, jobLogsDir } from './job-log.js';

export interface LogsCommandOptions {
  /** Keep printing new lines until the job ends. */
  readonly follow?: boolean | undefined;
  /** Print the raw JSON lines. */
  readonly json?: boolean | undefined;
  /** Registry home; default `$EDDY_HOME` or `~/.eddy`. */
  readonly home?: string | undefined;
  /** Where output goes; default stdout. */
  readonly out?: ((text: string) => void) | undefined;
  /** How often `-f` looks for new lines (ms). */
  readonly pollMs?: number | undefined;
}

/** Prints the log of a job; resolves with the exit code. */
export const logsCommand = async (
  jobId: string,
  opts: LogsCommandOptions = {},
): Promise<number> => {
  const registry = new JobRegistry(opts.home);
  const id = resolveLogId(registry, jobId);
  const path = jobLogPath(registry.home, id);
  if (!existsSync(path)) {
    throw new EddyError(
      'EDDY_JOB_CONTROL',
      `job ${id} has no log at ${path} (its log could not be written, or it ran under an eddy without job logs)`,
      { domain: 'user' },
    );
  }
  if (!opts.out) {
    // `eddy logs <id> | head`: the reader went away; that is the end, not an error.
    process.stdout.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code !== 'EPIPE') throw e;
      process.exit(0);
    });
  }
  const out = opts.out ?? ((t: string) => void process.stdout.write(t));
  const print = (line: string) => out(`${opts.json ? line : formatLogLine(line)}\n`);
  await readLog(path, print, opts.follow === true, opts.pollMs ?? 100);
  return 0;
};

/**
 * The full id for `jobId`: through the registry, else (an entry pruned by `eddy list
 * --prune`) among the log files by the same rules: an exact id wins, else a unique prefix.
 */
const resolveLogId = (registry: JobRegistry, jobId: string): string => {
  try {
    return registry.resolveId(jobId);
  } catch (e) {
    const ids = logIds(registry.home);
    if (ids.includes(jobId)) return jobId;
    const matches = ids.filter((id) => id.startsWith(jobId));
    if (jobId.length > 0 && matches.length === 1) return matches[0]!;
    throw e;
  }
};

const logIds = (home: string): string[] => {
  try {
    return readdirSync(jobLogsDir(home))
      .filter((n) => n.endsWith('.log'))
      .map((n) => n.slice(0, -'.log'.length));
  } catch {
    return [];
  }
};

/**
 * Prints every complete line of the file; following, polls for more until a final event,
 * or until the writing process is gone (a crash writes no final event) and the file is read.
 */
const readLog = async (
  path: string,
  print: (line: string) => void,
  follow: boolean,
  pollMs: number,
): Promise<void> => {
  const file = await open(path, 'r');
  try {
    let position = 0;
    let partial = '';
    let ended = false;
    let writer: number | undefined;
    const buf = Buffer.alloc(64 * 1024);
    // A character may be cut between two reads.
    const decoder = new StringDecoder('utf8');
    for (;;) {
      const { bytesRead } = await file.read(buf, 0, buf.length, position);
      position += bytesRead;
      if (bytesRead > 0) {
        const lines = (partial + decoder.write(buf.subarray(0, bytesRead))).split('\n');
        partial = lines.pop()!;
        for (const line of lines) {
          if (line.length === 0) continue;
          const meta = lineMeta(line);
          writer ??= meta.pid;
          if (meta.event !== undefined && FINAL_JOB_LOG_EVENTS.has(meta.event)) ended = true;
          print(line);
        }
        if (bytesRead === buf.length) continue; // more to read now
      }
      if (!follow || ended) break;
      // Checked before the next read: all the gone process wrote is read after this.
      const gone = writer !== undefined && !isProcessAlive(writer);
      if (gone) follow = false;
      else await new Promise((r) => setTimeout(r, pollMs));
    }
    if (partial.length > 0) print(partial); // a last line cut short by a crash
  } finally {
    await file.close();
  }
};

const lineMeta = (line: string): { event?: string; pid?: number } => {
  try {
    const o = JSON.parse(line) as { event?: unknown; pid?: unknown };
    return {
      event: typeof o.event === 'string' ? o.event : undefined,
      pid: typeof o.pid === 'number' ? o.pid : undefined,
    };
  } catch {
    return {};
  }
};

/**
 * `2026-11-26T12:31:02.123Z INFO  checkpoint 3 completed: …`; the lines after the first of a
 * multi-line message are indented. A line that is not one of ours is printed as it is.
 */
export const formatLogLine = (line: string): string => {
  let o: { time?: unknown; level?: unknown; msg?: unknown };
  try {
    o = JSON.parse(line) as typeof o;
  } catch {
    return line;
  }
  if (o === null || typeof o !== 'object' || typeof o.msg !== 'string') return line;
  const level = String(o.level ?? '')
    .toUpperCase()
    .padEnd(5);
  return `${String(o.time ?? '')} ${level} ${o.msg.replaceAll('\n', '\n    ')}`;
};
