/**
 * State bytes per key group (the skew), one colour per subtask that owns the groups today.
 * The bytes come from the latest completed checkpoint (see JobView: a restore plan at
 * maxParallelism gives every key group alone); without them, bytes per subtask.
 */
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import { bytes } from '../format.js';
import { PALETTE } from './RateChart.js';
import { useWidth } from './useWidth.js';

export interface SkewData {
  /** Bytes of each key group 0..maxParallelism-1 (undefined: only per subtask is known). */
  readonly perKeyGroup?: readonly number[];
  /** The owning subtasks today: their ranges and bytes. */
  readonly subtasks: ReadonlyArray<{
    index: number;
    range: readonly [number, number];
    bytes: number;
  }>;
  /** Where the per-key-group bytes come from, e.g. "checkpoint 12". */
  readonly source?: string;
  /** What per-subtask bars mean (without per-key-group bytes). */
  readonly note?: string;
}

export const KeyGroupChart = ({ skew }: { skew: SkewData | undefined }) => {
  const box = useRef<HTMLDivElement>(null);
  const width = useWidth(box);
  const key = JSON.stringify(skew);
  const empty =
    !skew ||
    (skew.perKeyGroup
      ? skew.perKeyGroup.every((b) => b === 0)
      : skew.subtasks.every((s) => s.bytes === 0));

  useEffect(() => {
    if (!box.current || width === 0 || !skew || empty) return;
    const perGroup = skew.perKeyGroup;
    const xs = perGroup ? perGroup.map((_, i) => i) : skew.subtasks.map((s) => s.index);
    // One series per owning subtask: null outside its range, so each bar takes its colour.
    const series = skew.subtasks.map((s, i) =>
      xs.map((x) =>
        perGroup
          ? x >= s.range[0] && x <= s.range[1]
            ? (perGroup[x] ?? 0)
            : null
          : x === s.index
            ? skew.subtasks[i]!.bytes
            : null,
      ),
    );
    const bars = uPlot.paths.bars!({ size: [0.85, 40], align: 0 });
    const u = new uPlot(
      {
        width,
        height: 200,
        padding: [8, 16, 0, 0],
        cursor: { drag: { x: false, y: false } },
        legend: { show: false },
        scales: {
          x: {
            time: false,
            range: (_u, min, max) => [min - 0.5, max + 0.5],
          },
          y: { range: (_u, _min, max) => [0, Math.max(1, max * 1.1)] },
        },
        axes: [
          {
            stroke: '#5b6472',
            grid: { show: false },
            ticks: { stroke: '#dfe3e8' },
            label: perGroup ? 'key group' : 'subtask',
            // Key groups and subtasks are whole numbers.
            incrs: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024],
            values: (_u, vals) => vals.map((v) => (Number.isInteger(v) ? String(v) : '')),
            labelSize: 18,
            labelFont: '12px system-ui, sans-serif',
          },
          {
            stroke: '#5b6472',
            size: 64,
            grid: { stroke: '#eef0f3' },
            values: (_u, vals) => vals.map((v) => bytes(v)),
          },
        ],
        series: [
          {},
          ...skew.subtasks.map((s, i) => ({
            label: `subtask ${s.index}`,
            fill: PALETTE[i % PALETTE.length],
            stroke: PALETTE[i % PALETTE.length],
            width: 0,
            paths: bars,
            points: { show: false },
          })),
        ],
      },
      [xs, ...series],
      box.current,
    );
    return () => u.destroy();
  }, [key, width]);

  return (
    <div>
      <div ref={box} class="chart" data-testid="keygroup-chart">
        {empty && (
          <p class="empty">
            {skew ? 'No state yet.' : 'Waiting for the first completed checkpoint…'}
          </p>
        )}
      </div>
      {skew && !empty && (
        <p class="caption">
          {skew.perKeyGroup
            ? `${skew.perKeyGroup.length} key groups, bytes from ${skew.source ?? 'the latest checkpoint'}; colours: owning subtask`
            : (skew.note ?? 'Per subtask')}
        </p>
      )}
    </div>
  );
};
