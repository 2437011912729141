/**
 * The `_metadata` envelope: a fixed little-endian header, then the metadata as UTF-8 JSON.
 *
 *   bytes 0..8    magic "EDDYCKPT"
 *   bytes 8..12   u32 format version
 *   bytes 12..16  u32 CRC-32 over bytes 8..12 (the version) followed by the body
 *   bytes 16..20  u32 body length
 *   bytes 20..    body: JSON of CheckpointMetadata
 *
 * The header layout never changes between format versions, so any eddy can tell "corrupt" from
 * "written by another version". The CRC covers the version too: a bit flip there must read as
 * corruption, not as a misleading "restore it with another eddy". Pure; no I/O.
 */
import { basename, dirname } from 'node:path';
import { crc32 } from 'node:zlib';
import { EddyError } from '../core/errors.js';
import { corruptError, hex32 } from './errors.js';
import { validateMetadata } from './metadata-validate.js';
import { METADATA_FILE } from './paths.js';
import { type CheckpointMetadata, READABLE_FORMAT_VERSIONS } from './types.js';

const MAGIC = Buffer.from('EDDYCKPT', 'latin1');
const HEADER = 20;

const envelopeCrc = (header: Uint8Array, body: Uint8Array): number =>
  crc32(body, crc32(header.subarray(8, 12))) >>> 0;

/** Encodes metadata with its own `formatVersion` in the header (tests write other versions). */
export const encodeMetadata = (m: CheckpointMetadata): Buffer => {
  const body = Buffer.from(JSON.stringify(m), 'utf8');
  const out = Buffer.alloc(HEADER + body.length);
  MAGIC.copy(out, 0);
  out.writeUInt32LE(m.formatVersion >>> 0, 8);
  out.writeUInt32LE(body.length, 16);
  body.copy(out, HEADER);
  out.writeUInt32LE(envelopeCrc(out, body), 12);
  return out;
};

/**
 * Decodes and validates `_metadata` bytes. `pathForErrors` names the file in every error.
 * @throws EddyError `EDDY_CHECKPOINT_CORRUPT` (bad magic, truncated, CRC mismatch, malformed
 *   JSON or fields); `EDDY_CHECKPOINT_INCOMPATIBLE` when an intact file has a format version
 *   this eddy does not read.
 */
export const decodeMetadata = (buf: Uint8Array, pathForErrors: string): CheckpointMetadata => {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  const fail = (what: string) => corruptError(pathForErrors, what);
  if (b.length < HEADER) throw fail(`truncated: ${b.length} bytes, the header alone has ${HEADER}`);
  if (!b.subarray(0, 8).equals(MAGIC)) throw fail('it is not eddy checkpoint metadata (bad magic)');
  const version = b.readUInt32LE(8);
  const length = b.readUInt32LE(16);
  if (length !== b.length - HEADER) {
    throw fail(
      `truncated or padded: header says ${length} body bytes, file has ${b.length - HEADER}`,
    );
  }
  const body = b.subarray(HEADER);
  const expected = b.readUInt32LE(12);
  const actual = envelopeCrc(b, body);
  if (actual !== expected) {
    const hint = READABLE_FORMAT_VERSIONS.includes(version)
      ? ''
      : ` (header claims format version ${version})`;
    throw fail(`CRC-32 mismatch: expected ${hex32(expected)}, got ${hex32(actual)}${hint}`);
  }
  if (!READABLE_FORMAT_VERSIONS.includes(version)) throw incompatible(pathForErrors, version);
  const m = validateMetadata(parseJson(body, pathForErrors), pathForErrors);
  if (m.formatVersion !== version) {
    throw fail(`header says format version ${version}, body says ${m.formatVersion}`);
  }
  return m;
};

const parseJson = (body: Buffer, path: string): unknown => {
  try {
    return JSON.parse(body.toString('utf8'));
  } catch (e) {
    throw corruptError(path, `its body is not JSON (${(e as Error).message})`, e);
  }
};

const incompatible = (path: string, version: number): EddyError => {
  const dir = basename(path) === METADATA_FILE ? basename(dirname(path)) : basename(path);
  const noun = dir.startsWith('chk-') ? 'checkpoint' : 'savepoint';
  return new EddyError(
    'EDDY_CHECKPOINT_INCOMPATIBLE',
    `${noun} ${path} has format version ${version}; this eddy reads versions ` +
      `${READABLE_FORMAT_VERSIONS.join(' and ')}: restore it with the eddy version that wrote it`,
    { domain: 'user' },
  );
};
