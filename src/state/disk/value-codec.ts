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
 * until the next pack; write it (lmdb-js copies it) or copy it before packing again.
 */
export const packValue = (value: unknown): Uint8Array => packr.pack(value);

/** Decodes a value; copies binary values out of `bytes` (which lmdb may reuse). */
export const unpackValue = (bytes: Uint8Array): unknown => packr.unpack(bytes);
