/** Live progress on a TTY: records in (from sources) and out (into sinks) per second. */
import type { SubtaskMetricsReport } from '../runtime/metrics.js';

export interface Totals {
  readonly recordsIn: number;
  readonly recordsOut: number;
  readonly deadLetters: number;
}

export const totals = (reports: readonly SubtaskMetricsReport[]): Totals => {
  let recordsIn = 0;
  let recordsOut = 0;
  let deadLetters = 0;
  for (const r of reports) {
    if (r.kind === 'source') recordsIn += r.values.recordsOut ?? 0;
    if (r.kind === 'sink') recordsOut += r.values.recordsIn ?? 0;
    deadLetters += r.values.deadLetters ?? 0;
  }
  return { recordsIn, recordsOut, deadLetters };
};

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

export class ProgressLine {
  private last: { at: number; t: Totals } | undefined;
  private lastLine = '';

  constructor(
    private readonly stream: NodeJS.WriteStream,
    private readonly jobName: string,
  ) {}

  update(reports: readonly SubtaskMetricsReport[]): void {
    const now = performance.now();
    const t = totals(reports);
    const prev = this.last;
    this.last = { at: now, t };
    if (!prev) return;
    const secs = (now - prev.at) / 1000;
    if (secs <= 0) return;
    const inRate = (t.recordsIn - prev.t.recordsIn) / secs;
    const outRate = (t.recordsOut - prev.t.recordsOut) / secs;
    const dl = t.deadLetters > 0 ? `  dead letters ${fmt(t.deadLetters)}` : '';
    const line = `${this.jobName}: in ${fmt(inRate)} rec/s  out ${fmt(outRate)} rec/s  (total in ${fmt(t.recordsIn)}, out ${fmt(t.recordsOut)})${dl}`;
    this.stream.write(`\r${line.padEnd(this.lastLine.length)}`);
    this.lastLine = line;
  }

  clear(): void {
    if (this.lastLine) this.stream.write(`\r${' '.repeat(this.lastLine.length)}\r`);
    this.lastLine = '';
  }
}

export { fmt as formatCount };
