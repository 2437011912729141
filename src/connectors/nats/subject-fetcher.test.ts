/**
 * SubjectFetcher against a scripted JetStream client (no server): how it renews fetches.
 * The real server's side is in source.test.ts; here the client misbehaves on purpose.
 */
import { setTimeout as delay } from 'node:timers/promises';
import type { ConsumerMessages, JsMsg } from '@nats-io/jetstream';
import { beforeAll, describe, expect, it } from 'vitest';
import { Outage } from './connection.js';
import { natsJetStream, natsTransport } from './libs.js';
import { type FetcherHost, STALE_FETCH_GRACE_MS, SubjectFetcher } from './subject-fetcher.js';

/** One fetch's messages, as the client yields them; `stop()` ends the iteration. */
class ScriptedFetch implements AsyncIterable<JsMsg> {
  private readonly queue: JsMsg[] = [];
  private stopped = false;
  private wake: (() => void) | undefined;

  /** `hangs`: after the messages the fetch neither ends nor fails (until stopped). */
  constructor(
    messages: JsMsg[],
    private readonly hangs: boolean,
  ) {
    this.queue.push(...messages);
  }

  stop(): void {
    this.stopped = true;
    this.wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<JsMsg> {
    for (;;) {
      const m = this.queue.shift();
      if (m !== undefined) {
        yield m;
        continue;
      }
      if (this.stopped || !this.hangs) return;
      await new Promise<void>((r) => {
        this.wake = r;
      });
    }
  }
}

const msg = (seq: number, dseq: number): JsMsg =>
  ({
    seq,
    subject: 's.a',
    data: new Uint8Array(),
    info: { deliverySequence: dseq, pending: 100 },
  }) as unknown as JsMsg;

const counter = () => {
  const c = {
    n: 0,
    inc: (k = 1) => {
      c.n += k;
    },
  };
  return c;
};

/** A host whose consumer serves `fetches` in turn (then fetches that end empty at once). */
const scriptedHost = (expiresMs: number, fetches: ScriptedFetch[]) => {
  const consumersAdded = counter();
  const starts: number[] = [];
  const fetchCalls = counter();
  const consumer = {
    fetch: async () => {
      fetchCalls.inc();
      await delay(1);
      return (fetches.shift() ?? new ScriptedFetch([], false)) as unknown as ConsumerMessages;
    },
    info: async () => ({ num_pending: 1 }),
  };
  const host = {
    jsm: {
      consumers: {
        add: async (_stream: string, config: { opt_start_seq: number }) => {
          starts.push(config.opt_start_seq);
          consumersAdded.inc();
          return { name: `c${consumersAdded.n}` };
        },
        delete: async () => true,
      },
    },
    js: { consumers: { getConsumerFromInfo: () => consumer } },
    stream: 'S',
    server: 'nats://scripted',
    outage: new Outage(60_000),
    batch: 1000,
    expiresMs,
    description: 'test',
    consumersCreated: counter(),
    staleFetches: counter(),
    wakeup: () => {},
    fail: (e: unknown) => {
      throw e;
    },
  };
  return {
    host: host as unknown as FetcherHost,
    stale: host.staleFetches,
    consumersAdded,
    starts,
    fetchCalls,
  };
};

/** Polls `ok` every 10 ms; false once `ms` passed (a bound, not a pause). */
const eventually = async (ok: () => boolean, ms: number): Promise<boolean> => {
  const deadline = performance.now() + ms;
  while (!ok()) {
    if (performance.now() > deadline) return false;
    await delay(10);
  }
  return true;
};

describe('SubjectFetcher', () => {
  beforeAll(async () => {
    await Promise.all([natsJetStream.load(), natsTransport.load()]);
  });

  // The e2e hang (test/e2e/connectors.test.ts on a loaded machine): a pull request expired by
  // nats-server while it was still being served ends without a status, and the client noticed
  // only after two missed heartbeats (expiresMs later). The fetcher must renew it itself.
  it('renews a fetch that outlives its expiry without ending (no 408 came)', async () => {
    const expiresMs = 200;
    const { host, stale, consumersAdded, starts, fetchCalls } = scriptedHost(expiresMs, [
      new ScriptedFetch([msg(1, 1), msg(2, 2), msg(3, 3)], true),
      // The next consumer's (its delivery sequence starts over).
      new ScriptedFetch([msg(4, 1), msg(5, 2)], false),
    ]);
    const f = new SubjectFetcher(host, 's.a', 0, undefined);
    f.start();
    try {
      const bound = 5 * (expiresMs + 2 * STALE_FETCH_GRACE_MS);
      const renewed = await eventually(() => f.buffered === 5, bound);
      expect(
        renewed,
        `buffered ${f.buffered} after ${bound} ms: the hung fetch was not renewed`,
      ).toBe(true);
      expect(stale.n).toBe(1);
      // Renewed on a new consumer, starting after the last message buffered.
      expect(consumersAdded.n).toBe(2);
      expect(starts).toEqual([1, 4]);
      expect(fetchCalls.n).toBeGreaterThanOrEqual(2);
      expect([1, 2, 3, 4, 5].map(() => f.take()?.seq)).toEqual([1, 2, 3, 4, 5]);
    } finally {
      await f.close();
    }
  });
});
