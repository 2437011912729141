#!/usr/bin/env node
/**
 * The hand-written baseline for the sessions benchmark: the same event-time sessions as
 * `examples/sessions.ts`, computed the way a user would stream them without a framework, in
 * one thread, with the same semantics as the engine:
 *
 * - input files (sorted, skipping `.x`/`_x` names) read interleaved, round robin, one 1 MiB
 *   chunk of one file per turn, split on '\n', JSON.parse per line;
 * - per file a watermark (largest timestamp seen - 5000 - 1), combined by the minimum over the
 *   unfinished files (a file not started yet holds it back);
 * - per user its open sessions (usually one): an event joins every session whose window
 *   [first, last + gap) intersects [ts, ts + gap) — closed on both ends, as Flink's (and
 *   eddy's) `TimeWindow.intersects`, so windows that touch merge — merging them (a bridging
 *   event);
 * - a min-heap of session ends; after each chunk every session whose end - 1 <= watermark is
 *   written and forgotten (stale heap entries of merged or extended sessions are skipped); at
 *   the end of the input, all the rest;
 * - one JSON line {"user", "start", "end", "count"} per session into `<outputDir>/part-0`
 *   through a ~256 KiB string buffer.
 *
 *   node bench/baselines/handwritten-sessions.mjs <inputDir> <outputDir> <statsFile> <gapMs>
 */
import {
  closeSync,
  mkdirSync,
  openSync,
  readdirSync,
  readSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { StringDecoder } from 'node:string_decoder';

const started = performance.now();
const [inputDir, outputDir, statsFile, gapArg] = process.argv.slice(2);
const gap = Number(gapArg);
if (!inputDir || !outputDir || !statsFile || !(Number.isSafeInteger(gap) && gap > 0)) {
  console.error('usage: handwritten-sessions.mjs <inputDir> <outputDir> <statsFile> <gapMs>');
  process.exit(2);
}

const OUT_OF_ORDERNESS = 5000;
const FLUSH_CHARS = 256 * 1024;
const CHUNK = 1 << 20;

mkdirSync(outputDir, { recursive: true });
const out = openSync(join(outputDir, 'part-0'), 'w');
let buffer = '';
let recordsIn = 0;
let recordsOut = 0;

/** user -> open sessions: { user, first, last, count, alive } */
const open = new Map();

// Min-heap of [end, session] as two parallel arrays.
const heapEnd = [];
const heapSession = [];
const heapPush = (end, s) => {
  let i = heapEnd.length;
  heapEnd.push(end);
  heapSession.push(s);
  while (i > 0) {
    const p = (i - 1) >> 1;
    if (heapEnd[p] <= end) break;
    heapEnd[i] = heapEnd[p];
    heapSession[i] = heapSession[p];
    i = p;
  }
  heapEnd[i] = end;
  heapSession[i] = s;
};
const heapPop = () => {
  const top = heapSession[0];
  const lastEnd = heapEnd.pop();
  const lastSession = heapSession.pop();
  const n = heapEnd.length;
  if (n > 0) {
    let i = 0;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= n) break;
      if (c + 1 < n && heapEnd[c + 1] < heapEnd[c]) c++;
      if (heapEnd[c] >= lastEnd) break;
      heapEnd[i] = heapEnd[c];
      heapSession[i] = heapSession[c];
      i = c;
    }
    heapEnd[i] = lastEnd;
    heapSession[i] = lastSession;
  }
  return top;
};

const emit = (s) => {
  buffer += `${JSON.stringify({ user: s.user, start: s.first, end: s.last + gap, count: s.count })}\n`;
  recordsOut++;
  if (buffer.length >= FLUSH_CHARS) {
    writeSync(out, buffer);
    buffer = '';
  }
};

const add = (user, ts) => {
  let sessions = open.get(user);
  if (sessions === undefined) {
    sessions = [];
    open.set(user, sessions);
  }
  let into;
  /** `into`'s end as its newest heap entry has it. */
  let end = 0;
  for (let i = 0; i < sessions.length; i++) {
    const s = sessions[i];
    if (ts <= s.last + gap && s.first <= ts + gap) {
      if (into === undefined) {
        into = s;
        end = s.last + gap;
      } else {
        // A bridging event: merge s into the first intersecting session.
        into.first = Math.min(into.first, s.first);
        into.last = Math.max(into.last, s.last);
        into.count += s.count;
        s.alive = false;
        sessions.splice(i--, 1);
      }
    }
  }
  if (into === undefined) {
    const s = { user, first: ts, last: ts, count: 1, alive: true };
    sessions.push(s);
    heapPush(ts + gap, s);
    return;
  }
  into.first = Math.min(into.first, ts);
  into.last = Math.max(into.last, ts);
  into.count++;
  if (into.last + gap !== end) heapPush(into.last + gap, into);
};

/** Writes every session whose end - 1 <= watermark. */
const fire = (watermark) => {
  while (heapEnd.length > 0 && heapEnd[0] - 1 <= watermark) {
    const end = heapEnd[0];
    const s = heapPop();
    if (!s.alive || s.last + gap !== end) continue; // merged or extended since
    s.alive = false;
    emit(s);
    const sessions = open.get(s.user);
    if (sessions.length === 1) open.delete(s.user);
    else sessions.splice(sessions.indexOf(s), 1);
  }
};

const names = readdirSync(inputDir, { withFileTypes: true })
  .filter((d) => d.isFile() && !d.name.startsWith('.') && !d.name.startsWith('_'))
  .map((d) => d.name)
  .sort();
const files = names.map((name) => ({
  fd: openSync(join(inputDir, name), 'r'),
  decoder: new StringDecoder('utf8'),
  rest: '',
  maxTs: Number.NEGATIVE_INFINITY,
  finished: false,
}));

const handle = (f, line) => {
  if (line.length === 0) return;
  const e = JSON.parse(line);
  recordsIn++;
  if (e.ts > f.maxTs) f.maxTs = e.ts;
  add(e.user, e.ts);
};

const watermark = () => {
  let w = Number.POSITIVE_INFINITY;
  for (const f of files) {
    if (!f.finished && f.maxTs - OUT_OF_ORDERNESS - 1 < w) w = f.maxTs - OUT_OF_ORDERNESS - 1;
  }
  return w;
};

const chunk = Buffer.allocUnsafe(CHUNK);
let unfinished = files.length;
while (unfinished > 0) {
  for (const f of files) {
    if (f.finished) continue;
    const n = readSync(f.fd, chunk, 0, CHUNK, null);
    if (n === 0) {
      handle(f, f.rest + f.decoder.end());
      f.rest = '';
      f.finished = true;
      closeSync(f.fd);
      unfinished--;
    } else {
      const text = f.rest + f.decoder.write(chunk.subarray(0, n));
      let start = 0;
      for (;;) {
        const end = text.indexOf('\n', start);
        if (end === -1) break;
        handle(f, text.slice(start, end));
        start = end + 1;
      }
      f.rest = text.slice(start);
    }
    fire(watermark());
  }
}
fire(Number.POSITIVE_INFINITY);
if (buffer.length > 0) writeSync(out, buffer);
closeSync(out);

const stats = {
  durationMs: performance.now() - started,
  recordsIn,
  recordsOut,
  maxRssBytes: process.resourceUsage().maxRSS * 1024,
  parallelism: 1,
};
writeFileSync(statsFile, `${JSON.stringify(stats)}\n`);
