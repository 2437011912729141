/**
 * Sessions per user in event time.
 *
 *   eddy run examples/sessions.ts -p 2 -- --input <dir> --output <dir> --gap-ms <ms>
 *     [--rate <events/s>]
 *
 * Reads JSONL events {"user": string, "ts": number} (ts: epoch milliseconds) from every file in
 * --input. Event time is `ts`; watermarks allow events to be out of order by up to 5000 ms
 * within a file (bounded out-of-orderness, tracked per file). Events of a user at most --gap-ms
 * apart belong to one session (an event-time session window per user: an event at t has the
 * window [t, t + gap), and windows that intersect or touch merge, as in Flink; an event that
 * arrives late but bridges two sessions merges them).
 *
 * Writes one line per session {"user", "start", "end", "count"}: start is the session's
 * first (smallest) event time, end its last (largest) event time + gap (the window's exclusive
 * end), count the number of its events. A session is written once the watermark passes its end;
 * at the end of bounded input, every pending session is written.
 */
import { parseArgs } from 'node:util';
import {
  type AggregateFunction,
  defineJob,
  EventTimeSessionWindows,
  FileSink,
  FileSource,
  type ProcessWindowFunction,
  WatermarkStrategy,
} from 'eddy';

export interface SessionEvent {
  user: string;
  ts: number;
}

export interface Session {
  user: string;
  start: number;
  end: number;
  count: number;
}

/** How far out of order events may be within one input file. */
export const OUT_OF_ORDERNESS_MS = 5000;

/** Counts a session's events; a bridging event merges two sessions, so counts add up. */
export const countEvents: AggregateFunction<SessionEvent, number, number> = {
  createAccumulator: () => 0,
  add: (_e, n) => n + 1,
  merge: (a, b) => a + b,
  getResult: (n) => n,
};

/**
 * The session of `user` once it fires: its window is [first event time, last event time + gap)
 * (windows [t, t + gap) merged), and the count from {@link countEvents}.
 */
export const toSession: ProcessWindowFunction<number, Session, string> = {
  process(user, ctx, counts, out) {
    out.collect({ user, start: ctx.window.start, end: ctx.window.end, count: counts[0]! });
  },
};

const positive = (flag: string, value: string | undefined, integer: boolean): number => {
  const n = Number(value);
  if (
    value === undefined ||
    value.trim() === '' ||
    !Number.isFinite(n) ||
    n <= 0 ||
    (integer && !Number.isSafeInteger(n))
  ) {
    throw new Error(
      `sessions: --${flag} must be a positive ${integer ? 'integer' : 'number'}, got '${value}'`,
    );
  }
  return n;
};

const USAGE = 'sessions needs -- --input <dir> --output <dir> --gap-ms <ms> [--rate <events/s>]';

export default defineJob({
  name: 'sessions',
  build(env, args) {
    const { values } = parseArgs({
      args: [...args],
      options: {
        input: { type: 'string' },
        output: { type: 'string' },
        'gap-ms': { type: 'string' },
        rate: { type: 'string' },
      },
    });
    if (!values.input || !values.output || values['gap-ms'] === undefined) {
      throw new Error(USAGE);
    }
    const gapMs = positive('gap-ms', values['gap-ms'], true);
    const rate = values.rate === undefined ? undefined : positive('rate', values.rate, false);
    env
      .fromSource(FileSource.jsonl<SessionEvent>({ path: values.input, ratePerSecond: rate }), {
        uid: 'events',
        watermarks: WatermarkStrategy.forBoundedOutOfOrderness<SessionEvent>(
          OUT_OF_ORDERNESS_MS,
        ).withTimestampAssigner((e) => e.ts),
      })
      .keyBy((e) => e.user)
      .window(EventTimeSessionWindows.withGap(gapMs))
      .aggregate(countEvents, toSession, { uid: 'sessions', name: 'sessions' })
      .sinkTo(FileSink.jsonl<Session>({ path: values.output }), { uid: 'out' });
  },
});
