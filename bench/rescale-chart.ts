/**
 * The rescale benchmark's chart: a hand-written SVG (no dependencies). One panel per key count,
 * one group of bars per case, one bar per strategy (parallel estimate: the slowest new subtask),
 * on a log scale so the rejected strategies and the floor fit on one axis. Each bar is labelled
 * with its time and read amplification.
 */

interface ChartCase {
  readonly keys: number;
  readonly from: number;
  readonly to: number;
  readonly strategies: Record<
    string,
    { readonly parMs: number; readonly readAmplification: number; readonly extrapolated: boolean }
  >;
  readonly endToEnd?: { readonly engineRestoreMs: number; readonly failure?: string };
}

const SERIES = [
  { id: 'floor', label: 'floor: read needed bytes once + decode', color: '#9e9e9e' },
  { id: 'floor+restore', label: 'floor + restore into the state backend', color: '#c7c7c7' },
  { id: 'eddy', label: 'eddy: key-group range reads, decoded on first access', color: '#1f77b4' },
  { id: 'eddy-eager', label: 'eddy, all decoded + restored up front', color: '#aec7e8' },
  { id: 'read-all', label: 'rejected: every subtask reads all, filters by key', color: '#d62728' },
  { id: 'per-key', label: 'rejected: per-key index, one read per key', color: '#ff7f0e' },
] as const;

const esc = (s: string) =>
  s.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');

const fmtMs = (ms: number) =>
  ms >= 10_000
    ? `${(ms / 1000).toFixed(0)} s`
    : ms >= 1000
      ? `${(ms / 1000).toFixed(1)} s`
      : ms >= 10
        ? `${ms.toFixed(0)} ms`
        : `${ms.toFixed(1)} ms`;

const fmtKeys = (n: number) => (n >= 1e6 ? `${n / 1e6}M` : n >= 1e3 ? `${n / 1e3}k` : String(n));

export const renderRescaleChart = (
  cases: readonly ChartCase[],
  info: { date: string; machine: string },
): string => {
  const keyCounts = [...new Set(cases.map((c) => c.keys))];
  const barW = 34;
  const gap = 34;
  const left = 70;
  const panelH = 300;
  const top = 135;
  const maxCases = Math.max(...keyCounts.map((k) => cases.filter((c) => c.keys === k).length));
  const groupW = SERIES.length * barW + gap;
  const width = Math.max(900, left + maxCases * groupW + 40);
  const height = top + keyCounts.length * (panelH + 70) + 20;
  const all = cases
    .flatMap((c) => SERIES.map((s) => c.strategies[s.id]?.parMs ?? 0))
    .filter((x) => x > 0);
  const lo = 10 ** Math.floor(Math.log10(Math.min(...all)));
  const hi = 10 ** Math.ceil(Math.log10(Math.max(...all)));
  const y = (ms: number, y0: number) =>
    y0 + panelH - (Math.log10(Math.max(ms, lo) / lo) / Math.log10(hi / lo)) * panelH;
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${left}" y="22" font-size="15" font-weight="bold">eddy rescale: restore pause per strategy (slowest new subtask, log scale)</text>`,
    `<text x="${left}" y="40" fill="#555">${esc(info.date)} — ${esc(info.machine)}</text>`,
    `<text x="${left}" y="55" fill="#555">above each bar: time (* = extrapolated from a key sample); below: read amplification = bytes read ÷ bytes the new subtasks need</text>`,
  );
  SERIES.forEach((s, i) => {
    const x = left + (i % 2) * 330;
    const yy = 72 + Math.floor(i / 2) * 16;
    out.push(
      `<rect x="${x}" y="${yy - 9}" width="10" height="10" fill="${s.color}"/>`,
      `<text x="${x + 15}" y="${yy}">${esc(s.label)}</text>`,
    );
  });
  keyCounts.forEach((keys, p) => {
    const y0 = top + p * (panelH + 70);
    out.push(
      `<text x="${left}" y="${y0 - 6}" font-size="13" font-weight="bold">${fmtKeys(keys)} keys</text>`,
    );
    for (let d = lo; d <= hi; d *= 10) {
      const yy = y(d, y0);
      out.push(
        `<line x1="${left}" x2="${width - 20}" y1="${yy}" y2="${yy}" stroke="#ddd"/>`,
        `<text x="${left - 6}" y="${yy + 4}" text-anchor="end" fill="#555">${fmtMs(d)}</text>`,
      );
    }
    cases
      .filter((c) => c.keys === keys)
      .forEach((c, g) => {
        const gx = left + 10 + g * groupW;
        SERIES.forEach((s, i) => {
          const r = c.strategies[s.id];
          if (!r) return;
          const x = gx + i * barW;
          const yy = y(r.parMs, y0);
          out.push(
            `<rect x="${x}" y="${yy}" width="${barW - 3}" height="${y0 + panelH - yy}" fill="${s.color}"><title>${esc(`${s.id} ${c.from}->${c.to}: ${r.parMs.toFixed(1)} ms, read amplification ${r.readAmplification.toFixed(2)}`)}</title></rect>`,
            `<text x="${x + barW / 2 - 1}" y="${yy - 4}" text-anchor="middle" font-size="9">${fmtMs(r.parMs)}${r.extrapolated ? '*' : ''}</text>`,
            `<text x="${x + barW / 2 - 1}" y="${y0 + panelH + 12}" text-anchor="middle" font-size="9" fill="#555">${r.readAmplification.toFixed(r.readAmplification >= 10 ? 0 : 1)}x</text>`,
          );
        });
        out.push(
          `<text x="${gx + (SERIES.length * barW) / 2}" y="${y0 + panelH + 28}" text-anchor="middle" font-size="12">${c.from} → ${c.to}</text>`,
        );
      });
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
};
