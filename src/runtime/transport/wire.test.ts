import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { StreamElement } from '../../core/elements.js';
import { channelId, checkpointId } from '../../core/ids.js';
import { WireCodec } from './wire.js';

// msgpack has no negative zero: -0 travels as 0 (documented in docs/ARCHITECTURE.md).
const double = fc.double({ noNaN: true }).filter((d) => !Object.is(d, -0));

const record = fc.record({
  user: fc.string(),
  amount: fc.oneof(fc.integer(), double),
  tags: fc.array(fc.string(), { maxLength: 3 }),
  nested: fc.option(
    fc.record({ a: fc.boolean(), b: fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }) }),
  ),
});

const element: fc.Arbitrary<StreamElement> = fc.oneof(
  fc.array(record, { maxLength: 50 }).map((records) => ({ kind: 'records' as const, records })),
  fc.array(fc.tuple(record, double), { maxLength: 50 }).map((rs) => ({
    kind: 'records' as const,
    records: rs.map(([r]) => r),
    timestamps: rs.map(([, t]) => t),
  })),
  fc.array(fc.tuple(record, fc.integer({ min: 0, max: 32767 })), { maxLength: 50 }).map((rs) => ({
    kind: 'records' as const,
    records: rs.map(([r]) => r),
    keyGroups: rs.map(([, kg]) => kg),
  })),
  fc
    .array(fc.tuple(record, double, fc.integer({ min: 0, max: 32767 })), { maxLength: 50 })
    .map((rs) => ({
      kind: 'records' as const,
      records: rs.map(([r]) => r),
      timestamps: rs.map(([, t]) => t),
      keyGroups: rs.map(([, , kg]) => kg),
    })),
  double.map((timestamp) => ({ kind: 'watermark' as const, timestamp })),
  fc.record({ id: fc.nat(), ts: fc.nat(), sp: fc.boolean() }).map(({ id, ts, sp }) => ({
    kind: 'barrier' as const,
    checkpointId: checkpointId(id),
    timestamp: ts,
    savepoint: sp,
  })),
  fc.boolean().map((stopped) => ({ kind: 'end' as const, stopped })),
  fc.boolean().map((idle) => ({ kind: 'status' as const, idle })),
);

describe('wire format', () => {
  it('round-trips every stream element between independent codecs (sender and receiver threads)', () => {
    const sender = new WireCodec();
    const receiver = new WireCodec();
    fc.assert(
      fc.property(fc.nat({ max: 2 ** 32 - 1 }), element, (ch, el) => {
        const frame = sender.encode(channelId(ch), el);
        // Each frame must own its bytes: it is transferred to another thread.
        expect(frame.byteOffset).toBe(0);
        expect(frame.buffer.byteLength).toBe(frame.byteLength);
        const decoded = receiver.decode(frame);
        expect(decoded).toEqual({ channel: ch, element: el });
      }),
    );
  });

  it('round-trips credit frames', () => {
    const c = new WireCodec();
    expect(c.decode(c.encodeCredit(channelId(7), 3))).toEqual({ channel: 7, credit: 3 });
  });

  it('rejects a truncated or unknown frame with a wire-format error', () => {
    const c = new WireCodec();
    expect(() => c.decode(new Uint8Array(3))).toThrow(/shorter than its header/);
    const bad = c.encode(channelId(1), { kind: 'end', stopped: false });
    bad[0] = 99;
    expect(() => c.decode(bad)).toThrow(expect.objectContaining({ code: 'EDDY_WIRE_FORMAT' }));
  });
});
