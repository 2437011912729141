/**
 * Parses the lines `eddy run` prints on stderr for completed (and failed) checkpoints, e.g.
 *
 *   checkpoint 3 completed: 12.4 MiB in 812 ms (sync 15.1 ms, async 700 ms) → /path/chk-3
 *
 * Tolerant of small format changes: fields are found by their labels (`in`, `sync`, `async`)
 * in any order, byte units B/KiB/MiB/GiB (and kB/MB/GB as powers of 1000), durations in
 * µs/us/ms/s, thousands separators, ANSI colour codes and a missing `→ dir`.
 */

export interface CheckpointLine {
  readonly kind: 'checkpoint' | 'savepoint';
  readonly id: number;
  /** Bytes as printed (rounded by the printer, e.g. to 0.1 MiB). */
  readonly bytes: number;
  /** From trigger to completion; undefined if the line has no `in <duration>`. */
  readonly totalMs: number | undefined;
  /** Longest synchronous part over all subtasks. */
  readonly syncMs: number;
  /** Longest asynchronous part (writing files). */
  readonly asyncMs: number;
  readonly dir: string | undefined;
}

export interface CheckpointFailure {
  readonly kind: 'checkpoint' | 'savepoint';
  readonly id: number;
  readonly line: string;
}

const BYTE_UNITS: Record<string, number> = {
  b: 1,
  byte: 1,
  bytes: 1,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
  tib: 1024 ** 4,
  kb: 1000,
  mb: 1000 ** 2,
  gb: 1000 ** 3,
  tb: 1000 ** 4,
};

const TIME_UNITS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  μs: 1e-3,
  ms: 1,
  s: 1000,
  sec: 1000,
  secs: 1000,
  min: 60_000,
};

// biome-ignore lint/suspicious/noControlCharactersInRegex: strips ANSI escape sequences
const ANSI = /\u001b\[[0-9;]*[A-Za-z]/g;
const NUM = String.raw`(\d[\d,_]*(?:\.\d+)?)`;
const HEAD = /\b(checkpoint|savepoint)\s+#?(\d+)\s+completed\b:?/i;
const BYTES = new RegExp(String.raw`${NUM}\s*(bytes|byte|[KMGT]i?B|B)\b`, 'i');
const TOTAL = new RegExp(String.raw`\bin\s+${NUM}\s*(ns|us|µs|μs|ms|secs|sec|min|s)\b`, 'i');
const SYNC = new RegExp(
  String.raw`(?<![A-Za-z])sync(?:hronous)?\s*:?\s*${NUM}\s*(ns|us|µs|μs|ms|secs|sec|min|s)\b`,
  'i',
);
const ASYNC = new RegExp(
  String.raw`\basync(?:hronous)?\s*:?\s*${NUM}\s*(ns|us|µs|μs|ms|secs|sec|min|s)\b`,
  'i',
);
const DIR = /(?:→|->)\s*(\S.*?)\s*$/;
const FAILED =
  /\b(checkpoint|savepoint)\s+#?(\d+)\s+(failed|declined|aborted|expired|timed out)\b/i;

const num = (s: string): number => Number(s.replace(/[,_]/g, ''));

const duration = (m: RegExpExecArray | null): number | undefined => {
  if (m === null) return undefined;
  const unit = TIME_UNITS[m[2]!.toLowerCase()] ?? TIME_UNITS[m[2]!];
  return unit === undefined ? undefined : num(m[1]!) * unit;
};

/** One completed-checkpoint line, or undefined if `line` is not one. */
export const parseCheckpointLine = (line: string): CheckpointLine | undefined => {
  const text = line.replace(ANSI, '').trim();
  const head = HEAD.exec(text);
  if (head === null) return undefined;
  const rest = text.slice(head.index + head[0].length);
  const dirMatch = DIR.exec(rest);
  const body = dirMatch === null ? rest : rest.slice(0, dirMatch.index);
  const b = BYTES.exec(body);
  const syncMs = duration(SYNC.exec(body));
  const asyncMs = duration(ASYNC.exec(body));
  if (b === null || syncMs === undefined || asyncMs === undefined) return undefined;
  const unit = BYTE_UNITS[b[2]!.toLowerCase()];
  if (unit === undefined) return undefined;
  return {
    kind: head[1]!.toLowerCase() as 'checkpoint' | 'savepoint',
    id: Number(head[2]),
    bytes: Math.round(num(b[1]!) * unit),
    totalMs: duration(TOTAL.exec(body)),
    syncMs,
    asyncMs,
    dir: dirMatch?.[1],
  };
};

/** A failed/declined/aborted checkpoint line, or undefined. */
export const parseCheckpointFailure = (line: string): CheckpointFailure | undefined => {
  const text = line.replace(ANSI, '').trim();
  const m = FAILED.exec(text);
  if (m === null) return undefined;
  return { kind: m[1]!.toLowerCase() as 'checkpoint' | 'savepoint', id: Number(m[2]), line: text };
};

/** All completed checkpoints (not savepoints) and failures in a run's stderr. */
export const parseCheckpointLog = (
  stderr: string,
): { completed: CheckpointLine[]; failed: CheckpointFailure[] } => {
  const completed: CheckpointLine[] = [];
  const failed: CheckpointFailure[] = [];
  for (const line of stderr.split(/\r?\n/)) {
    const c = parseCheckpointLine(line);
    if (c !== undefined) {
      if (c.kind === 'checkpoint') completed.push(c);
      continue;
    }
    const f = parseCheckpointFailure(line);
    if (f !== undefined && f.kind === 'checkpoint') failed.push(f);
  }
  return { completed, failed };
};
