/**
 * Values of the on-disk backend's store: msgpack, configured as the checkpoint format's block
 * codec (checkpoint/block-codec.ts: records on, no shared structures, `moreTypes`,
 * `copyBuffers`), so every value a checkpoint accepts round-trips through the store with the
 * same fidelity (a `Map` stays a `Map`; -0 decodes as 0; class instances come back as plain
 * objects). Declared here, not imported: the state layer does not import the checkpoint layer.
 */
import { Packr } from 'msgpackr';

const packr = new Packr({ moreTypes: true, copyBuffers: true });

/**
 * Encodes a value. Hazard: the result is a view into msgpackr's shared output buffer, valid
 * until the next pack; write it (the store copies it) or copy it before packing again.
 */
export const packValue = (value: unknown): Uint8Array => packr.pack(value);

const view = new DataView(new ArrayBuffer(8));

/**
 * Decodes a value; copies binary values out of `bytes` (which the store may reuse). Hot path: a
 * lone number, boolean or null (the common value of a sum or a count) is decoded here, as
 * msgpackr writes and reads it (0x40–0x7f are record references, never integers); anything
 * else by msgpackr. Tested against Packr.
 */
export const unpackValue = (bytes: Uint8Array): unknown => unpackValueAt(bytes, 0, bytes.length);

/** {@link unpackValue} of `bytes[start, end)`, without a view for the common small values. */
export const unpackValueAt = (bytes: Uint8Array, start: number, end: number): unknown => {
  const n = end - start;
  const t = bytes[start]!;
  if (n === 1) {
    if (t < 0x40) return t;
    if (t >= 0xe0) return t - 0x100;
    if (t === 0xc0) return null;
    if (t === 0xc2) return false;
    if (t === 0xc3) return true;
  } else if (n === 9 && t === 0xcb) {
    for (let i = 0; i < 8; i++) view.setUint8(i, bytes[start + 1 + i]!);
    return view.getFloat64(0);
  } else if (n === 2) {
    if (t === 0xcc) return bytes[start + 1]!;
    if (t === 0xd0) return (bytes[start + 1]! << 24) >> 24;
  } else if (n === 3) {
    if (t === 0xcd) return (bytes[start + 1]! << 8) | bytes[start + 2]!;
    if (t === 0xd1) return (((bytes[start + 1]! << 8) | bytes[start + 2]!) << 16) >> 16;
  } else if (n === 5 && (t === 0xce || t === 0xd2)) {
    const x =
      (bytes[start + 1]! << 24) |
      (bytes[start + 2]! << 16) |
      (bytes[start + 3]! << 8) |
      bytes[start + 4]!;
    return t === 0xce ? x >>> 0 : x;
  }
  return packr.unpack(bytes.subarray(start, end));
};
