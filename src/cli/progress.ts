/**
 * Live progress on a TTY and the final summary's counts. "Read" is records emitted by the
 * sources, "written" is records taken in by the sinks.
 */

export { addTotals, type Totals, totals, ZERO_TOTALS } from '../runtime/metrics.js';

import type { Totals } from '../runtime/metrics.js';

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

/** `1 dead letter`, `2 dead letters`. */
export const plural = (n: number, word: string): string =>
  `${fmt(n)} ${word}${Math.round(n) === 1 ? '' : 's'}`;

/** What one progress line shows. */
export interface ProgressState {
  readonly jobName: string;
  readonly jobId: string;
  /** Records read by sources and written by sinks per second, since the last line. */
  readonly readRate: number;
  readonly writeRate: number;
  /** Over the whole run (all rescales and restarts). */
  readonly totals: Totals;
  readonly lastCheckpoint?: { readonly id: number; readonly ageMs: number } | undefined;
}

/**
 * One progress line, e.g. `keyed-sum [1a2b3c4d]: read 2,000 rec/s, written 1,000 rec/s |
 * total read 4,000, written 2,000 | checkpoint 3 (2 s ago)`.
 */
export const formatProgress = (s: ProgressState): string => {
  const dl = s.totals.deadLetters > 0 ? `, ${plural(s.totals.deadLetters, 'dead letter')}` : '';
  const cp = s.lastCheckpoint
    ? `checkpoint ${s.lastCheckpoint.id} (${formatAge(s.lastCheckpoint.ageMs)} ago)`
    : 'no checkpoint yet';
  return `${s.jobName} [${s.jobId.slice(0, 8)}]: read ${fmt(s.readRate)} rec/s, written ${fmt(s.writeRate)} rec/s | total read ${fmt(s.totals.recordsIn)}, written ${fmt(s.totals.recordsOut)}${dl} | ${cp}`;
};

const formatAge = (ms: number): string => {
  const s = Math.max(0, Math.floor(ms / 1000));
  return s < 60
    ? `${s} s`
    : s < 3600
      ? `${Math.floor(s / 60)} min ${s % 60} s`
      : `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
};

export class ProgressLine {
  private last: { at: number; t: Totals } | undefined;
  private lastLine = '';
  private checkpoint: { id: number; at: number } | undefined;

  constructor(
    private readonly stream: NodeJS.WriteStream,
    private readonly jobName: string,
    private readonly jobId: string,
  ) {}

  /** A checkpoint (or savepoint) completed now. */
  checkpointCompleted(id: number): void {
    this.checkpoint = { id, at: performance.now() };
  }

  /** Totals over the whole run so far. */
  update(t: Totals): void {
    const now = performance.now();
    const prev = this.last;
    this.last = { at: now, t };
    if (!prev) return;
    const secs = (now - prev.at) / 1000;
    if (secs <= 0) return;
    const line = formatProgress({
      jobName: this.jobName,
      jobId: this.jobId,
      readRate: Math.max(0, (t.recordsIn - prev.t.recordsIn) / secs),
      writeRate: Math.max(0, (t.recordsOut - prev.t.recordsOut) / secs),
      totals: t,
      lastCheckpoint: this.checkpoint && {
        id: this.checkpoint.id,
        ageMs: now - this.checkpoint.at,
      },
    });
    this.stream.write(`\r${line.padEnd(this.lastLine.length)}`);
    this.lastLine = line;
  }

  clear(): void {
    if (this.lastLine) this.stream.write(`\r${' '.repeat(this.lastLine.length)}\r`);
    this.lastLine = '';
  }
}

export { fmt as formatCount };
