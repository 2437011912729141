/**
 * Fetches one subject of a stream into a bounded buffer, in the background, for the source
 * reader to emit from synchronously.
 *
 * How: an ephemeral pull consumer (memory storage, no acks, `filter_subject` = the subject:
 * nats-server 2.9 takes one filter per consumer) delivering from `cursor + 1`, where `cursor`
 * is the stream sequence of the last message taken into the buffer; batches of `batch`
 * messages are fetched while the buffer has room. This is the client's "ordered consumer" made
 * explicit, because the position must be ours exactly: any doubt — a gap in the delivery
 * sequence (messages lost in flight, e.g. across a reconnect), a consumer lost in a server
 * restart or removed for inactivity, a failed fetch — drops the consumer and creates a new one
 * at `cursor + 1`. So a message is buffered at most once and none is skipped.
 *
 * Resources: the consumer is deleted on close and when a bounded read ends; a consumer left
 * behind by a crash is removed by the server after {@link INACTIVE_THRESHOLD_MS}.
 */
import { setTimeout as delay } from 'node:timers/promises';
import type {
  Consumer,
  ConsumerMessages,
  JetStreamClient,
  JetStreamManager,
  JsMsg,
} from '@nats-io/jetstream';
import type { EddyError } from '../../core/errors.js';
import type { Counter } from '../../runtime/io.js';
import { backoffMs, type Outage } from './connection.js';
import { configError, ioError, isConsumerNotFound, isStreamNotFound } from './errors.js';
import { natsJetStream, natsTransport } from './libs.js';
import { boundedStep } from './positions.js';

/** A consumer nobody pulls from for this long is removed by the server (crash cleanup). */
export const INACTIVE_THRESHOLD_MS = 60_000;

/** A fetch that ends empty sooner than this is followed by a pause of this long. */
const MIN_EMPTY_FETCH_MS = 100;

/**
 * A fetch still open this long after its expiry, with no message for this long either, is
 * over: it is stopped, and the next fetch goes to a new consumer. Why: a pull request the server drops without
 * telling the client (nats-server 2.9 expires a request that is still being served, e.g.
 * 1000 messages delivered slowly on a loaded machine, without the 408 status that ends the
 * fetch) is noticed by the client only after two missed idle heartbeats, i.e. `expiresMs`
 * later; all that time the subject reads nothing.
 */
export const STALE_FETCH_GRACE_MS = 1000;

/** What the fetchers of one reader share: its connection and callbacks. */
export interface FetcherHost {
  readonly jsm: JetStreamManager;
  readonly js: JetStreamClient;
  readonly stream: string;
  readonly server: string;
  readonly outage: Outage;
  /** Messages per fetch; the buffer holds at most this many. */
  readonly batch: number;
  /** How long one fetch waits for messages before it is renewed (ms, at least 1000). */
  readonly expiresMs: number;
  /** Description of the consumers (for operators looking at the server). */
  readonly description: string;
  /** Counts consumers created (more than one per subject: recreated after a loss or gap). */
  readonly consumersCreated: Counter;
  /** Counts fetches stopped as stale (see {@link STALE_FETCH_GRACE_MS}). */
  readonly staleFetches: Counter;
  /** Messages arrived into an empty buffer, a bounded read ended, or a failure. */
  wakeup(): void;
  /** A failure the reader must throw from its next poll. */
  fail(error: EddyError): void;
}

export class SubjectFetcher {
  private buffer: JsMsg[] = [];
  private head = 0;
  /** Stream sequence of the last message taken into the buffer. */
  private cursor: number;
  /** Delivery sequence of the consumer's last message (0: none yet from this consumer). */
  private dseq = 0;
  /** Messages received by the current fetch (for {@link watchExpiry}). */
  private fetchReceived = 0;
  /** The current fetch was stopped as stale by {@link watchExpiry}. */
  private fetchStale = false;
  private consumer: Consumer | undefined;
  private consumerName: string | undefined;
  private fetching: ConsumerMessages | undefined;
  /** Bounded: everything up to `end` is in the buffer (or was emitted). */
  private exhausted = false;
  private closed = false;
  private readonly stopping = new AbortController();
  private resume: (() => void) | undefined;
  private running: Promise<void> = Promise.resolve();

  /**
   * `position`: the last sequence emitted (the read starts after it); `end`: the inclusive
   * bound of a bounded read (undefined: unbounded).
   */
  constructor(
    private readonly host: FetcherHost,
    readonly subject: string,
    position: number,
    readonly end: number | undefined,
  ) {
    this.cursor = position;
    if (end !== undefined && position >= end) this.exhausted = true;
  }

  /** Messages buffered and not taken yet. */
  get buffered(): number {
    return this.buffer.length - this.head;
  }

  /** Bounded and everything up to the bound was taken: the split is finished. */
  get done(): boolean {
    return this.exhausted && this.buffered === 0;
  }

  /** The next buffered message, or undefined. Synchronous: the reader's hot path. */
  take(): JsMsg | undefined {
    if (this.head === this.buffer.length) return undefined;
    const m = this.buffer[this.head]!;
    this.buffer[this.head++] = undefined as unknown as JsMsg; // let it be collected
    if (this.head === this.buffer.length) {
      this.buffer = [];
      this.head = 0;
    }
    return m;
  }

  /** The reader took messages: let the pump fetch more once half the buffer is free. */
  taken(): void {
    if (this.resume !== undefined && this.buffered <= this.host.batch / 2) {
      const r = this.resume;
      this.resume = undefined;
      r();
    }
  }

  start(): void {
    this.running = this.run().catch((e: unknown) => {
      if (!this.closed) this.host.fail(e as EddyError);
    });
  }

  /** Stops fetching at once (synchronous): no more messages are buffered. */
  stop(): void {
    this.closed = true;
    this.stopping.abort();
    this.resume?.();
    this.fetching?.stop();
  }

  /**
   * Stops and deletes the consumer. While the server is away nothing is awaited (a request in
   * flight would only time out): the caller closes the connection, which fails such requests,
   * then awaits {@link settled}; the server removes the consumer after its inactivity threshold.
   */
  async close(): Promise<void> {
    this.stop();
    if (this.host.outage.active) return;
    await this.running;
    await this.dropConsumer();
  }

  /** Resolves when the background fetching has stopped (after {@link stop}). */
  settled(): Promise<void> {
    return this.running;
  }

  private async run(): Promise<void> {
    let attempt = 0;
    while (!this.closed && !this.exhausted) {
      if (this.buffered >= this.host.batch) {
        await new Promise<void>((r) => {
          this.resume = r;
        });
        continue;
      }
      try {
        const started = performance.now();
        const got = await this.fetchOnce();
        attempt = 0;
        // A fetch ends empty normally only when it expires: one that ends empty at once (a
        // status the client ends quietly on) must not turn this loop into a busy one.
        if (got === 0 && performance.now() - started < MIN_EMPTY_FETCH_MS)
          await this.pause(MIN_EMPTY_FETCH_MS);
      } catch (e) {
        if (this.closed) return;
        this.fetching = undefined;
        if (isStreamNotFound(e)) throw this.streamGone(e);
        await this.dropConsumer();
        // A consumer removed by the server (inactivity, restart) is no outage: recreate it.
        if (!isConsumerNotFound(e)) this.host.outage.fail();
        if (this.host.outage.exceeded) throw this.outageError(e);
        await this.pause(backoffMs(attempt++));
      }
    }
    if (this.exhausted) await this.dropConsumer();
  }

  /** Waits `ms`, or less if stopped. */
  private pause(ms: number): Promise<void> {
    return delay(ms, undefined, { signal: this.stopping.signal }).catch(() => undefined);
  }

  /**
   * One fetch into the buffer (creating the consumer first if needed); returns how many
   * messages came.
   */
  private async fetchOnce(): Promise<number> {
    const consumer = this.consumer ?? (await this.createConsumer());
    // Stopped while the consumer was being created: close() deletes it after `running`.
    if (this.closed) return 0;
    const want = this.host.batch - this.buffered;
    const messages = await consumer.fetch({ max_messages: want, expires: this.host.expiresMs });
    this.fetching = messages;
    if (this.closed) messages.stop();
    let got: number;
    this.fetchReceived = 0;
    this.fetchStale = false;
    const unwatch = this.watchExpiry(messages);
    try {
      got = await this.receive(messages);
    } finally {
      unwatch();
    }
    this.fetching = undefined;
    // A consumer whose request the server dropped served nothing to the next fetch either
    // (nats-server 2.9.10, measured): start a new one after the last message buffered.
    if (this.fetchStale && !this.closed) await this.dropConsumer();
    if (this.closed || this.exhausted) {
      if (this.exhausted) this.host.wakeup();
      return got;
    }
    // Bounded, and nothing came: the messages up to the bound may have been deleted.
    if (got === 0 && this.end !== undefined && this.consumer !== undefined) {
      const info = await this.consumer.info();
      if (info.num_pending === 0) {
        this.exhausted = true;
        this.host.wakeup();
      }
    }
    return got;
  }

  /**
   * Stops `messages` once it is stale: {@link STALE_FETCH_GRACE_MS} past the fetch's expiry
   * with no message for that long. Stopping ends the iteration
   * normally; the consumer is then replaced by one starting after the last message buffered
   * (a message of the old request still in flight is dropped with it): nothing is skipped.
   * Returns the cancel function.
   */
  private watchExpiry(messages: ConsumerMessages): () => void {
    let seen = this.fetchReceived;
    const check = () => {
      if (this.fetchReceived !== seen) {
        seen = this.fetchReceived;
        timer = setTimeout(check, STALE_FETCH_GRACE_MS);
        return;
      }
      this.host.staleFetches.inc();
      this.fetchStale = true;
      messages.stop();
    };
    let timer = setTimeout(check, this.host.expiresMs + STALE_FETCH_GRACE_MS);
    return () => clearTimeout(timer);
  }

  /** Takes the messages of one fetch into the buffer; returns how many came. */
  private async receive(messages: ConsumerMessages): Promise<number> {
    let got = 0;
    for await (const m of messages) {
      if (m.info.deliverySequence !== this.dseq + 1) {
        // A message was lost in flight: start over after the last one buffered.
        await this.dropConsumer();
        break;
      }
      this.dseq = m.info.deliverySequence;
      this.host.outage.ok();
      got++;
      this.fetchReceived++;
      if (this.end !== undefined) {
        const step = boundedStep(m.seq, this.end, m.info.pending);
        if (step === 'beyond') {
          this.exhausted = true;
          break;
        }
        if (step === 'emit-last') this.exhausted = true;
      }
      this.push(m);
      if (this.exhausted) break;
    }
    return got;
  }

  private push(m: JsMsg): void {
    this.cursor = m.seq;
    this.buffer.push(m);
    if (this.buffered === 1) this.host.wakeup();
  }

  private async createConsumer(): Promise<Consumer> {
    const { jsm, js, stream } = this.host;
    const info = await jsm.consumers.add(stream, {
      description: this.host.description,
      filter_subject: this.subject,
      deliver_policy: natsJetStream.get().DeliverPolicy.StartSequence,
      opt_start_seq: this.cursor + 1,
      ack_policy: natsJetStream.get().AckPolicy.None,
      mem_storage: true,
      num_replicas: 1,
      inactive_threshold: natsTransport.get().nanos(INACTIVE_THRESHOLD_MS),
    });
    this.host.outage.ok();
    this.host.consumersCreated.inc();
    this.consumer = js.consumers.getConsumerFromInfo(info);
    this.consumerName = info.name;
    this.dseq = 0;
    return this.consumer;
  }

  /** Forgets the consumer and deletes it on the server, unless the server is away. */
  private async dropConsumer(): Promise<void> {
    const name = this.consumerName;
    this.consumer = undefined;
    this.consumerName = undefined;
    this.dseq = 0;
    if (name === undefined || this.host.outage.active) return;
    try {
      await this.host.jsm.consumers.delete(this.host.stream, name);
    } catch {
      // Gone already, or the server went away: the inactivity threshold removes it.
    }
  }

  private streamGone(e: unknown): EddyError {
    return configError(
      'source',
      this.host.server,
      `has no stream '${this.host.stream}' any more (reading subject '${this.subject}')`,
      'recreate the stream or fix the `stream` option',
      e,
    );
  }

  private outageError(e: unknown): EddyError {
    const { outage, server, stream } = this.host;
    return ioError(
      'source',
      server,
      `cannot read subject '${this.subject}' of stream '${stream}' for ${Math.round(outage.elapsedMs)} ms (maxOutageMs ${outage.maxMs})`,
      e,
    );
  }
}
