/**
 * Bytes of one block: msgpack, self-contained. Pure; no I/O.
 *
 * Record extension: ON, but without shared structures and not sequential, so every record
 * definition a block uses is inline in that block and each block decodes on its own, in any
 * order, with any decoder instance (tested). Records stay on because with them off msgpackr
 * decodes every msgpack map as a plain object: a user's `Map` value (e.g. a ValueState holding
 * a Map) would silently come back as an object with string keys. With records on, objects
 * travel as records and `Map`s as msgpack maps, and both come back as what they were.
 *
 * Fidelity hazards (msgpackr): -0 decodes as 0; class instances come back as plain objects;
 * functions and symbols are not state and are not supported.
 */

import { crc32 } from 'node:zlib';
import { Packr } from 'msgpackr';

// copyBuffers: binary values must not be views into the (large) read buffer, or one tiny
// restored Uint8Array would keep a whole coalesced read alive.
const packr = new Packr({ moreTypes: true, copyBuffers: true });

/**
 * Encodes one block. Hazard: the result may be a view into msgpackr's shared output buffer;
 * copy or write it before it is kept anywhere.
 */
export const packBlock = (value: unknown): Uint8Array => packr.pack(value);

/** Decodes one block; throws (msgpackr's error) when the bytes are not one msgpack value. */
export const unpackBlock = (bytes: Uint8Array): unknown => packr.unpack(bytes);

/** CRC-32 (IEEE, as zlib/gzip) of `bytes`, unsigned. */
export const blockCrc = (bytes: Uint8Array): number => crc32(bytes) >>> 0;
