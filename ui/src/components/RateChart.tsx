/**
 * Records per second per operator over the last minutes (uPlot). The samples are the dashboard's
 * own polls of the job, kept in `RateHistory`; the chart is rebuilt only when the operators
 * change and otherwise just handed new data.
 */
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import { rate } from '../format.js';
import { useWidth } from './useWidth.js';

/** One aligned series per operator; `t` in seconds (uPlot's time unit). */
export interface RateHistory {
  readonly t: number[];
  readonly series: Map<string, Array<number | null>>;
  readonly names: Map<string, string>;
}

export const WINDOW_SECONDS = 300;

export const PALETTE = [
  '#2f6fdf',
  '#e07b1a',
  '#1a9e6b',
  '#b8459b',
  '#7a5cd6',
  '#c43c3c',
  '#3aa0b8',
];

/** Appends a sample (operator uid → records/s) and forgets what is older than the window. */
export const addSample = (
  h: RateHistory,
  at: number,
  rates: Map<string, number>,
  names: Map<string, string>,
) => {
  for (const [uid, name] of names) h.names.set(uid, name);
  for (const uid of rates.keys()) {
    if (!h.series.has(uid))
      h.series.set(
        uid,
        h.t.map(() => null),
      );
  }
  h.t.push(at);
  for (const [uid, values] of h.series) values.push(rates.get(uid) ?? null);
  while (h.t.length > 0 && h.t[0]! < at - WINDOW_SECONDS) {
    h.t.shift();
    for (const values of h.series.values()) values.shift();
  }
};

export const RateChart = ({ history, version }: { history: RateHistory; version: number }) => {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const width = useWidth(box);
  const uids = [...history.series.keys()];
  const key = uids.join('\n');

  useEffect(() => {
    if (!box.current || width === 0 || uids.length === 0) return;
    const opts: uPlot.Options = {
      width,
      height: 200,
      padding: [8, 28, 0, 0],
      cursor: { drag: { x: false, y: false } },
      legend: { live: false },
      scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, Math.max(10, max * 1.1)] } },
      axes: [
        {
          stroke: '#5b6472',
          grid: { stroke: '#eef0f3' },
          ticks: { stroke: '#dfe3e8' },
          space: 70,
          // Whole seconds at least; labelled as wall-clock time.
          incrs: [1, 2, 5, 10, 15, 30, 60, 120, 300],
          values: (_u, vals) =>
            vals.map((v) => new Date(v * 1000).toLocaleTimeString('en-GB', { hour12: false })),
        },
        {
          stroke: '#5b6472',
          size: 64,
          grid: { stroke: '#eef0f3' },
          ticks: { stroke: '#dfe3e8' },
          values: (_u, vals) => vals.map((v) => rate(v)),
        },
      ],
      series: [
        {},
        ...uids.map((uid, i) => ({
          label: history.names.get(uid) ?? uid,
          stroke: PALETTE[i % PALETTE.length],
          width: 2,
          spanGaps: false,
          value: (_u: uPlot, v: number | null) => (v === null ? '—' : rate(v)),
        })),
      ],
    };
    const u = new uPlot(opts, data(history, uids), box.current);
    plot.current = u;
    return () => {
      u.destroy();
      plot.current = null;
    };
  }, [key, width]);

  useEffect(() => {
    plot.current?.setData(data(history, uids));
  }, [version]);

  return (
    <div ref={box} class="chart" data-testid="rate-chart" data-samples={history.t.length}>
      {uids.length === 0 && <p class="empty">Waiting for the first sample…</p>}
    </div>
  );
};

const data = (h: RateHistory, uids: string[]): uPlot.AlignedData => [
  h.t,
  ...uids.map((uid) => h.series.get(uid) ?? []),
];
