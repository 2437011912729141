/** Number, byte, time and colour formatting shared by the views. */

const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

export const bytes = (n: number | null | undefined): string => {
  if (n === undefined || n === null || !Number.isFinite(n)) return '—';
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v.toFixed(0) : v.toFixed(v < 10 ? 2 : 1)} ${units[i]}`;
};

const grouped = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
export const count = (n: number | undefined): string =>
  n === undefined || !Number.isFinite(n) ? '—' : grouped.format(n);

export const rate = (n: number | undefined): string =>
  n === undefined || !Number.isFinite(n)
    ? '—'
    : n >= 10_000
      ? `${(n / 1000).toFixed(1)}k/s`
      : `${n.toFixed(n < 10 && n !== 0 ? 1 : 0)}/s`;

export const ms = (n: number | null | undefined): string =>
  n === undefined || n === null || !Number.isFinite(n)
    ? '—'
    : n >= 10_000
      ? `${(n / 1000).toFixed(1)} s`
      : `${n.toFixed(n < 10 ? 1 : 0)} ms`;

export const percent = (f: number | undefined): string =>
  f === undefined || !Number.isFinite(f) ? '—' : `${Math.round(f * 100)}%`;

const toDate = (t: string | number | undefined): Date | undefined => {
  if (t === undefined || t === null) return undefined;
  const d = new Date(t);
  return Number.isNaN(d.getTime()) ? undefined : d;
};

export const clock = (t: string | number | undefined): string => {
  const d = toDate(t);
  return d ? d.toLocaleTimeString('en-GB', { hour12: false }) : '—';
};

/** Watermarks before the first one are null or a huge negative sentinel: "none". */
export const watermark = (w: number | null | undefined): string => {
  if (w === null || w === undefined || !Number.isFinite(w) || w <= -1e12) return 'none';
  // Event times in ms since the epoch read as dates; small values (test clocks) stay numbers.
  return w > 1e11 ? new Date(w).toISOString().slice(11, 23) : count(w);
};

export const since = (t: string | number | undefined, now = Date.now()): string => {
  const d = toDate(t);
  if (!d) return '—';
  let s = Math.max(0, Math.round((now - d.getTime()) / 1000));
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  return h > 0 ? `${h}h ${m}m` : m > 0 ? `${m}m ${s}s` : `${s}s`;
};

export const range = (r: readonly [number, number] | null | undefined): string =>
  r ? `${r[0]}–${r[1]}` : '—';

/** Backpressure 0–1 as a colour from calm green over amber to red. */
export const pressureColour = (f: number): string => {
  const x = Math.min(1, Math.max(0, Number.isFinite(f) ? f : 0));
  const hue = 140 - 140 * x;
  return `hsl(${hue.toFixed(0)} 62% ${(92 - 22 * x).toFixed(0)}%)`;
};

export const pressureStroke = (f: number): string => {
  const x = Math.min(1, Math.max(0, Number.isFinite(f) ? f : 0));
  return `hsl(${(140 - 140 * x).toFixed(0)} 55% 38%)`;
};

/** A long path keeps its end (the checkpoint's own name): `…/checkpoints/chk-12`. */
export const tailOf = (path: string, max = 44): string =>
  path.length <= max ? path : `…${path.slice(path.length - max + 1)}`;
