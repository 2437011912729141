/**
 * The byte-level wire format of the exchange. Every frame is self-describing bytes, so a
 * TCP transport can carry the same frames between processes and hosts later; nothing here
 * relies on structured clone of records.
 *
 * Frame layout (little endian):
 *   u8  type        1 records | 2 watermark | 3 barrier | 4 end of input | 5 credit | 6 status
 *                   | 7 timestamped records
 *   u32 channel id
 *   payload:
 *     records:   msgpack array of the records (msgpackr, record extension on)
 *     watermark: f64 timestamp
 *     barrier:   f64 checkpoint id, f64 timestamp, u8 savepoint
 *     end:       u8 stopped (1: the input was stopped, not exhausted; 0: its real end)
 *     credit:    u32 number of frames the receiver has consumed
 *     status:    u8 idle (1) or active (0)
 *     timestamped records: u32 n, n x f64 event times, then the records as for type 1
 *     key-grouped records (8): u32 n, n x u16 key groups, then the records as for type 1
 *     timestamped key-grouped records (9): u32 n, n x f64 event times, n x u16 key groups,
 *                then the records as for type 1
 *   Key groups (hash edges only) are below maxParallelism <= 32768, so u16 holds them.
 */
import { Packr } from 'msgpackr';
import type { StreamElement } from '../../core/elements.js';
import { END_OF_INPUT, STOPPED_INPUT } from '../../core/elements.js';
import { EddyError } from '../../core/errors.js';
import { type ChannelId, type CheckpointId, channelId } from '../../core/ids.js';

export const FrameType = {
  records: 1,
  watermark: 2,
  barrier: 3,
  end: 4,
  credit: 5,
  status: 6,
  timestampedRecords: 7,
  keyGroupedRecords: 8,
  timestampedKeyGroupedRecords: 9,
} as const;

const HEADER = 5;

/** A decoded frame: either a stream element for a channel, or credit returned for it. */
export type DecodedFrame =
  | { readonly channel: ChannelId; readonly element: StreamElement }
  | { readonly channel: ChannelId; readonly credit: number };

/**
 * One codec per thread. Hazard: msgpackr returns views into a buffer it reuses, so every
 * frame is copied into its own ArrayBuffer before it leaves the thread.
 */
export class WireCodec {
  private readonly packr = new Packr({ useRecords: true, moreTypes: true });

  encode(channel: ChannelId, element: StreamElement): Uint8Array {
    switch (element.kind) {
      case 'records': {
        const ts = element.timestamps;
        const kgs = element.keyGroups;
        if (kgs !== undefined) return this.encodeKeyGrouped(channel, element.records, ts, kgs);
        if (ts !== undefined) {
          const payload = this.packr.pack(element.records as unknown[]);
          const n = ts.length;
          const frame = header(FrameType.timestampedRecords, channel, 4 + 8 * n + payload.length);
          const v = view(frame);
          v.setUint32(HEADER, n, true);
          for (let i = 0; i < n; i++) v.setFloat64(HEADER + 4 + 8 * i, ts[i]!, true);
          frame.set(payload, HEADER + 4 + 8 * n);
          return frame;
        }
        const payload = this.packr.pack(element.records as unknown[]);
        const frame = header(FrameType.records, channel, payload.length);
        frame.set(payload, HEADER);
        return frame;
      }
      case 'watermark': {
        const frame = header(FrameType.watermark, channel, 8);
        view(frame).setFloat64(HEADER, element.timestamp, true);
        return frame;
      }
      case 'barrier': {
        const frame = header(FrameType.barrier, channel, 17);
        const v = view(frame);
        v.setFloat64(HEADER, element.checkpointId, true);
        v.setFloat64(HEADER + 8, element.timestamp, true);
        v.setUint8(HEADER + 16, element.savepoint ? 1 : 0);
        return frame;
      }
      case 'end': {
        const frame = header(FrameType.end, channel, 1);
        frame[HEADER] = element.stopped ? 1 : 0;
        return frame;
      }
      case 'status': {
        const frame = header(FrameType.status, channel, 1);
        frame[HEADER] = element.idle ? 1 : 0;
        return frame;
      }
    }
  }

  /** Frame type 8 or 9: records with their key groups (and event times, if any). */
  private encodeKeyGrouped(
    channel: ChannelId,
    records: readonly unknown[],
    ts: readonly number[] | undefined,
    kgs: readonly number[],
  ): Uint8Array {
    const payload = this.packr.pack(records as unknown[]);
    const n = kgs.length;
    const timeBytes = ts === undefined ? 0 : 8 * n;
    const type =
      ts === undefined ? FrameType.keyGroupedRecords : FrameType.timestampedKeyGroupedRecords;
    const frame = header(type, channel, 4 + timeBytes + 2 * n + payload.length);
    const v = view(frame);
    v.setUint32(HEADER, n, true);
    let at = HEADER + 4;
    if (ts !== undefined) {
      for (let i = 0; i < n; i++, at += 8) v.setFloat64(at, ts[i]!, true);
    }
    for (let i = 0; i < n; i++, at += 2) v.setUint16(at, kgs[i]!, true);
    frame.set(payload, at);
    return frame;
  }

  encodeCredit(channel: ChannelId, credit: number): Uint8Array {
    const frame = header(FrameType.credit, channel, 4);
    view(frame).setUint32(HEADER, credit, true);
    return frame;
  }

  decode(frame: Uint8Array): DecodedFrame {
    if (frame.length < HEADER)
      throw wireError(`frame of ${frame.length} bytes is shorter than its header`);
    const v = view(frame);
    const type = v.getUint8(0);
    const channel = channelId(v.getUint32(1, true));
    switch (type) {
      case FrameType.records: {
        const records = this.packr.unpack(frame.subarray(HEADER)) as unknown[];
        if (!Array.isArray(records))
          throw wireError(`records frame on channel ${channel} is not an array`);
        return { channel, element: { kind: 'records', records } };
      }
      case FrameType.timestampedRecords: {
        const n = v.getUint32(HEADER, true);
        const timestamps: number[] = new Array(n);
        for (let i = 0; i < n; i++) timestamps[i] = v.getFloat64(HEADER + 4 + 8 * i, true);
        const records = this.packr.unpack(frame.subarray(HEADER + 4 + 8 * n)) as unknown[];
        if (!Array.isArray(records) || records.length !== n)
          throw wireError(`timestamped records frame on channel ${channel} is malformed`);
        return { channel, element: { kind: 'records', records, timestamps } };
      }
      case FrameType.keyGroupedRecords:
      case FrameType.timestampedKeyGroupedRecords: {
        const n = v.getUint32(HEADER, true);
        let at = HEADER + 4;
        let timestamps: number[] | undefined;
        if (type === FrameType.timestampedKeyGroupedRecords) {
          timestamps = new Array(n);
          for (let i = 0; i < n; i++, at += 8) timestamps[i] = v.getFloat64(at, true);
        }
        const keyGroups: number[] = new Array(n);
        for (let i = 0; i < n; i++, at += 2) keyGroups[i] = v.getUint16(at, true);
        const records = this.packr.unpack(frame.subarray(at)) as unknown[];
        if (!Array.isArray(records) || records.length !== n)
          throw wireError(`key-grouped records frame on channel ${channel} is malformed`);
        const element =
          timestamps === undefined
            ? { kind: 'records' as const, records, keyGroups }
            : { kind: 'records' as const, records, timestamps, keyGroups };
        return { channel, element };
      }
      case FrameType.watermark:
        return { channel, element: { kind: 'watermark', timestamp: v.getFloat64(HEADER, true) } };
      case FrameType.barrier:
        return {
          channel,
          element: {
            kind: 'barrier',
            checkpointId: v.getFloat64(HEADER, true) as CheckpointId,
            timestamp: v.getFloat64(HEADER + 8, true),
            savepoint: v.getUint8(HEADER + 16) === 1,
          },
        };
      case FrameType.end:
        return { channel, element: v.getUint8(HEADER) === 1 ? STOPPED_INPUT : END_OF_INPUT };
      case FrameType.credit:
        return { channel, credit: v.getUint32(HEADER, true) };
      case FrameType.status:
        return { channel, element: { kind: 'status', idle: v.getUint8(HEADER) === 1 } };
      default:
        throw wireError(`unknown frame type ${type} on channel ${channel}`);
    }
  }
}

const header = (type: number, channel: ChannelId, payloadLength: number): Uint8Array => {
  const frame = new Uint8Array(HEADER + payloadLength);
  frame[0] = type;
  view(frame).setUint32(1, channel, true);
  return frame;
};

const view = (a: Uint8Array) => new DataView(a.buffer, a.byteOffset, a.byteLength);

const wireError = (message: string) =>
  new EddyError('EDDY_WIRE_FORMAT', `wire format: ${message}`, { domain: 'internal' });
