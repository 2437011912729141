/**
 * Consistent metrics across workers. Each worker counts its own subtasks, and samples taken
 * on separate timers disagree: a 1:1 job could show more records written by its sinks than
 * read by its sources. A sample here is two rounds: every worker's sink counts first, then
 * every worker's other counts, so each record a sink counted was read before the sources'
 * counts were taken (written <= read, whatever the threads' timing).
 */
import type { SubtaskMetricsReport } from './metrics.js';

type Reports = readonly SubtaskMetricsReport[];

export class MetricsSampler {
  private round = 0;
  private phase: 'idle' | 'sinks' | 'others' = 'idle';
  private pending = new Set<number>();
  private readonly sinks = new Map<number, Reports>();
  private readonly others = new Map<number, Reports>();

  constructor(
    /** Workers to ask: those whose subtasks have not all finished (they would not answer). */
    private readonly live: () => readonly number[],
    private readonly ask: (worker: number, round: number) => void,
    /** Final reports of finished workers, used as they are. */
    private readonly finalReports: () => ReadonlyMap<number, Reports>,
    private readonly deliver: (reports: SubtaskMetricsReport[]) => void,
  ) {}

  /** Starts a sample unless one is still in progress (a slow worker delays, never stacks). */
  tick(): void {
    if (this.phase !== 'idle') return;
    this.sinks.clear();
    this.others.clear();
    this.startPhase('sinks');
  }

  /** A worker's answer; answers to older rounds are ignored. */
  onReports(worker: number, round: number, reports: Reports): void {
    if (round !== this.round || !this.pending.delete(worker)) return;
    (this.phase === 'sinks' ? this.sinks : this.others).set(worker, reports);
    this.advance();
  }

  /** A worker finished (or will not answer): stop waiting for it. */
  forget(worker: number): void {
    if (this.pending.delete(worker)) this.advance();
  }

  private startPhase(phase: 'sinks' | 'others'): void {
    this.phase = phase;
    this.round++;
    this.pending = new Set(this.live());
    for (const w of this.pending) this.ask(w, this.round);
    this.advance();
  }

  private advance(): void {
    if (this.pending.size > 0) return;
    if (this.phase === 'sinks') {
      this.startPhase('others');
      return;
    }
    this.phase = 'idle';
    const out: SubtaskMetricsReport[] = [];
    for (const [w, reports] of this.finalReports()) {
      if (!this.others.has(w)) out.push(...reports);
    }
    for (const [w, reports] of this.others) {
      const sinkSide = this.sinks.get(w);
      for (const r of reports) {
        if (r.kind !== 'sink') out.push(r);
        else
          out.push(
            sinkSide?.find((s) => s.nodeId === r.nodeId && s.subtaskIndex === r.subtaskIndex) ?? r,
          );
      }
    }
    this.deliver(out);
  }
}
