import { describe, expect, it } from 'vitest';
import { renderRescaleChart } from './rescale-chart.js';

const strategies = (eddy: number) => ({
  floor: { parMs: eddy / 2, readAmplification: 1, extrapolated: false },
  'floor+restore': { parMs: eddy / 1.5, readAmplification: 1, extrapolated: false },
  eddy: { parMs: eddy, readAmplification: 1, extrapolated: false },
  'eddy-eager': { parMs: eddy * 1.5, readAmplification: 1, extrapolated: false },
  'read-all': { parMs: eddy * 3, readAmplification: 3, extrapolated: false },
  'per-key': { parMs: eddy * 40, readAmplification: 2.8, extrapolated: true },
});

describe('rescale chart', () => {
  it('draws one bar per strategy and case, one panel per key count', () => {
    const svg = renderRescaleChart(
      [
        { keys: 1_000_000, from: 2, to: 3, strategies: strategies(120) },
        { keys: 1_000_000, from: 4, to: 1, strategies: strategies(300) },
        { keys: 10_000_000, from: 2, to: 3, strategies: strategies(1300) },
      ],
      { date: '2026-01-01T00:00:00Z', machine: 'test <machine> & co' },
    );
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
    expect(svg.match(/<title>/g)).toHaveLength(18);
    expect(svg).toContain('1M keys');
    expect(svg).toContain('10M keys');
    expect(svg).toContain('2 → 3');
    expect(svg).toContain('test &lt;machine&gt; &amp; co');
    expect(svg).toContain('52 s*'); // per-key at 10M, extrapolated
    expect(svg).not.toMatch(/NaN|Infinity/);
  });
});
