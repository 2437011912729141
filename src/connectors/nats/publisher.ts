/**
 * Publishes windows of messages to JetStream with one reply subscription instead of one
 * request (and one promise, one timer) per message: each message carries its `Nats-Msg-Id`
 * and a reply subject `<inbox>.<window>.<index>`; the PubAcks are counted as they come, and a
 * window resolves once all are in or its timeout passes. Messages left unanswered or refused
 * are reported per index, for the caller to retry with the same ids (the stream drops the
 * ones it stored already).
 */
import type { Msg, NatsConnection, Subscription } from '@nats-io/transport-node';
import { natsTransport } from './libs.js';

/** What became of one message of a window. */
export type PubResult =
  | { readonly ok: true; readonly duplicate: boolean }
  | { readonly ok: false; readonly error: PublishFailure };

/** Why a publish failed: no answer in time, nobody listening (503), or the stream's refusal. */
export interface PublishFailure {
  readonly kind: 'timeout' | 'no-responders' | 'refused';
  readonly message: string;
}

/** One message of a window. */
export interface OutgoingMessage {
  readonly subject: string;
  readonly data: Uint8Array;
  readonly msgId: string;
}

interface Window {
  readonly token: number;
  readonly results: (PubResult | undefined)[];
  answered: number;
  readonly done: () => void;
}

const utf8 = new TextDecoder();
const TIMEOUT: PubResult = { ok: false, error: { kind: 'timeout', message: 'no PubAck in time' } };

export class WindowPublisher {
  private readonly inbox: string;
  private readonly sub: Subscription;
  private token = 0;
  private current: Window | undefined;

  constructor(private readonly nc: NatsConnection) {
    this.inbox = natsTransport.get().createInbox();
    this.sub = nc.subscribe(`${this.inbox}.>`, { callback: (_err, msg) => this.onAck(msg) });
  }

  /**
   * Publishes `messages` and resolves with one result per message once every PubAck came or
   * `timeoutMs` passed (unanswered ones are timeouts). One window at a time.
   */
  publish(messages: readonly OutgoingMessage[], timeoutMs: number): Promise<PubResult[]> {
    const token = ++this.token;
    return new Promise<PubResult[]>((resolve) => {
      const results: (PubResult | undefined)[] = new Array(messages.length).fill(undefined);
      let timer: ReturnType<typeof setTimeout> | undefined;
      const finish = () => {
        if (timer !== undefined) clearTimeout(timer);
        if (this.current?.token === token) this.current = undefined;
        resolve(results.map((r) => r ?? TIMEOUT));
      };
      this.current = { token, results, answered: 0, done: finish };
      if (messages.length === 0) {
        finish();
        return;
      }
      timer = setTimeout(finish, timeoutMs);
      try {
        for (let k = 0; k < messages.length; k++) {
          const m = messages[k]!;
          const h = natsTransport.get().headers();
          h.set('Nats-Msg-Id', m.msgId);
          this.nc.publish(m.subject, m.data, { reply: `${this.inbox}.${token}.${k}`, headers: h });
        }
      } catch (e) {
        // A closed connection: everything not answered fails now.
        const message = e instanceof Error ? e.message : String(e);
        for (let k = 0; k < results.length; k++) {
          results[k] ??= { ok: false, error: { kind: 'timeout', message } };
        }
        finish();
      }
    });
  }

  private onAck(msg: Msg): void {
    const w = this.current;
    if (w === undefined) return;
    // `<inbox>.<token>.<index>`: acks of an earlier (timed out) window are stale.
    const rest = msg.subject.slice(this.inbox.length + 1);
    const dot = rest.indexOf('.');
    if (Number(rest.slice(0, dot)) !== w.token) return;
    const k = Number(rest.slice(dot + 1));
    if (!(k >= 0 && k < w.results.length) || w.results[k] !== undefined) return;
    w.results[k] = decodeAck(msg);
    if (++w.answered === w.results.length) w.done();
  }

  close(): void {
    this.sub.unsubscribe();
    this.current?.done();
  }
}

/** A PubAck (`{ stream, seq, duplicate? }`), a JetStream error, or a 503 status. */
const decodeAck = (msg: Msg): PubResult => {
  const status = msg.headers?.code ?? 0;
  if (status === 503) {
    return {
      ok: false,
      error: {
        kind: 'no-responders',
        message: 'no responders (no stream captures the subject, or JetStream is not ready)',
      },
    };
  }
  if (status >= 400) {
    return {
      ok: false,
      error: {
        kind: 'timeout',
        message: `status ${status} ${msg.headers?.description ?? ''}`.trim(),
      },
    };
  }
  try {
    const ack = JSON.parse(utf8.decode(msg.data)) as {
      error?: { code?: number; description?: string };
      duplicate?: boolean;
    };
    if (ack.error !== undefined) {
      return {
        ok: false,
        error: {
          kind: 'refused',
          message: `${ack.error.description ?? 'error'} (${ack.error.code ?? '?'})`,
        },
      };
    }
    return { ok: true, duplicate: ack.duplicate === true };
  } catch {
    return { ok: false, error: { kind: 'timeout', message: 'undecodable PubAck' } };
  }
};
