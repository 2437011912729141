/**
 * Shape validation of decoded `_metadata` JSON. The CRC proves the bytes are what was written,
 * not that the writer was right (or that a hand-edited savepoint is sane); restore planning
 * indexes arrays by these numbers, so every number is checked here once. Pure.
 */
import type { EddyError } from '../core/errors.js';
import { corruptError } from './errors.js';
import { isContainedRelativePath, isSharedFileRef } from './paths.js';
import type { CheckpointMetadata } from './types.js';

type Obj = Record<string, unknown>;

const MODES = new Set(['split', 'union', 'broadcast']);

/** The first format version with incremental keyed handles. */
const INCREMENTAL_SINCE = 2;

/** Thrown (as EddyError CORRUPT) with the JSON path of the offending field. */
class Checker {
  constructor(private readonly file: string) {}

  fail(at: string, problem: string): EddyError {
    return corruptError(this.file, `metadata field ${at} ${problem}`);
  }

  obj(v: unknown, at: string): Obj {
    if (typeof v !== 'object' || v === null || Array.isArray(v))
      throw this.fail(at, 'must be an object');
    return v as Obj;
  }

  arr(v: unknown, at: string): unknown[] {
    if (!Array.isArray(v)) throw this.fail(at, 'must be an array');
    return v;
  }

  str(v: unknown, at: string): string {
    if (typeof v !== 'string') throw this.fail(at, 'must be a string');
    return v;
  }

  int(v: unknown, at: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
    if (!Number.isSafeInteger(v) || (v as number) < min || (v as number) > max) {
      throw this.fail(at, `must be an integer in [${min}, ${max}], got ${JSON.stringify(v)}`);
    }
    return v as number;
  }

  /** A non-negative safe integer. */
  nat(v: unknown, at: string): number {
    return this.int(v, at, 0);
  }

  relFile(v: unknown, at: string): string {
    const f = this.str(v, at);
    if (!isContainedRelativePath(f))
      throw this.fail(at, `'${f}' is not a relative path inside the checkpoint`);
    return f;
  }
}

/**
 * Checks that `raw` (parsed `_metadata` JSON) is a well-formed {@link CheckpointMetadata}.
 * @throws EddyError `EDDY_CHECKPOINT_CORRUPT` naming `file` and the offending field.
 */
export const validateMetadata = (raw: unknown, file: string): CheckpointMetadata => {
  const c = new Checker(file);
  const m = c.obj(raw, '(root)');
  const version = c.int(m.formatVersion, 'formatVersion', 0);
  c.str(m.jobName, 'jobName');
  c.str(m.jobId, 'jobId');
  c.int(m.checkpointId, 'checkpointId', 0);
  if (typeof m.savepoint !== 'boolean') throw c.fail('savepoint', 'must be a boolean');
  if (typeof m.timestamp !== 'number' || !Number.isFinite(m.timestamp)) {
    throw c.fail('timestamp', 'must be a finite number');
  }
  const uids = new Set<string>();
  c.arr(m.operators, 'operators').forEach((op, i) => {
    const uid = checkOperator(c, op, `operators[${i}]`, version);
    if (uids.has(uid)) throw c.fail(`operators[${i}].uid`, `'${uid}' appears twice`);
    uids.add(uid);
  });
  return m as unknown as CheckpointMetadata;
};

const checkOperator = (c: Checker, raw: unknown, at: string, version: number): string => {
  const op = c.obj(raw, at);
  const uid = c.str(op.uid, `${at}.uid`);
  c.str(op.name, `${at}.name`);
  const p = c.int(op.parallelism, `${at}.parallelism`, 1);
  const maxP = c.int(op.maxParallelism, `${at}.maxParallelism`, p);
  const seen = new Set<number>();
  c.arr(op.subtasks, `${at}.subtasks`).forEach((st, j) => {
    const sat = `${at}.subtasks[${j}]`;
    const s = c.obj(st, sat);
    const index = c.int(s.index, `${sat}.index`, 0, p - 1);
    if (seen.has(index)) throw c.fail(`${sat}.index`, `${index} appears twice`);
    seen.add(index);
    if (s.keyed !== undefined) checkKeyed(c, s.keyed, `${sat}.keyed`, maxP, version);
    if (s.operatorState !== undefined)
      checkOperatorState(c, s.operatorState, `${sat}.operatorState`);
  });
  return uid;
};

/** A full handle (one file in the checkpoint) or an incremental one (`type: 'incremental'`). */
const checkKeyed = (c: Checker, raw: unknown, at: string, maxP: number, version: number) => {
  const h = c.obj(raw, at);
  if (h.type === undefined) checkFullKeyed(c, h, at, maxP);
  else if (h.type === 'incremental' && version < INCREMENTAL_SINCE) {
    throw c.fail(
      `${at}.type`,
      `'incremental' needs format version 2, the metadata says ${version}`,
    );
  } else if (h.type === 'incremental') checkIncrementalKeyed(c, h, at, maxP);
  else throw c.fail(`${at}.type`, `must be 'incremental' or absent, got ${JSON.stringify(h.type)}`);
};

const checkFullKeyed = (c: Checker, h: Obj, at: string, maxP: number): void => {
  c.relFile(h.file, `${at}.file`);
  const bytes = c.int(h.bytes, `${at}.bytes`, 0);
  const [start, end] = checkRange(c, h.keyGroupRange, `${at}.keyGroupRange`, maxP);
  let nextKeyGroup = start;
  let nextOffset = 0;
  c.arr(h.blocks, `${at}.blocks`).forEach((b, k) => {
    const bat = `${at}.blocks[${k}]`;
    const keyGroup = c.int(c.obj(b, bat).keyGroup, `${bat}.keyGroup`, nextKeyGroup, end);
    nextOffset = checkBlock(c, b, bat, nextOffset, bytes);
    nextKeyGroup = keyGroup + 1;
  });
};

/**
 * An incremental handle. Its `files` are the only paths metadata may point outside its own
 * directory with, and only as `../blocks/<plain name>`: retention deletes shared files by these
 * names, and a restore reads them, so anything else (`../blocks/../x`, `../other/x`, absolute
 * paths) is refused here. Block offsets are not checked against file sizes (a shared file's size
 * is not in the metadata); checkDataFiles does that against the files on disk.
 */
const checkIncrementalKeyed = (c: Checker, h: Obj, at: string, maxP: number): void => {
  const [start, end] = checkRange(c, h.keyGroupRange, `${at}.keyGroupRange`, maxP);
  // Empty `files` is fine only with no chains (a subtask without keyed state): every block
  // must index one of them.
  const files = c.arr(h.files, `${at}.files`);
  const seen = new Set<string>();
  files.forEach((f, i) => {
    const ref = c.str(f, `${at}.files[${i}]`);
    if (!isSharedFileRef(ref)) {
      throw c.fail(
        `${at}.files[${i}]`,
        `'${ref}' is not a shared file reference (../blocks/<name>)`,
      );
    }
    if (seen.has(ref)) throw c.fail(`${at}.files[${i}]`, `'${ref}' appears twice`);
    seen.add(ref);
  });
  c.nat(h.bytes, `${at}.bytes`);
  let nextKeyGroup = start;
  c.arr(h.chains, `${at}.chains`).forEach((raw, k) => {
    const cat = `${at}.chains[${k}]`;
    const chain = c.obj(raw, cat);
    nextKeyGroup = c.int(chain.keyGroup, `${cat}.keyGroup`, nextKeyGroup, end) + 1;
    c.nat(chain.entries, `${cat}.entries`);
    const blocks = c.arr(chain.blocks, `${cat}.blocks`);
    if (blocks.length === 0) throw c.fail(`${cat}.blocks`, 'must hold at least the base block');
    blocks.forEach((b, j) => checkChainBlock(c, b, `${cat}.blocks[${j}]`, files.length));
  });
};

const checkChainBlock = (c: Checker, raw: unknown, at: string, files: number): void => {
  const b = c.obj(raw, at);
  if (files === 0) throw c.fail(`${at}.file`, "must index the handle's files, which are none");
  c.int(b.file, `${at}.file`, 0, files - 1);
  c.nat(b.offset, `${at}.offset`);
  c.nat(b.length, `${at}.length`);
  c.int(b.crc32, `${at}.crc32`, 0, 0xffffffff);
  c.nat(b.records, `${at}.records`);
};

/** `[start, end]` inside `[0, maxP - 1]` with start <= end. */
const checkRange = (c: Checker, raw: unknown, at: string, maxP: number): [number, number] => {
  const range = c.arr(raw, at);
  if (range.length !== 2) throw c.fail(at, 'must be [start, end]');
  const start = c.int(range[0], `${at}[0]`, 0, maxP - 1);
  return [start, c.int(range[1], `${at}[1]`, start, maxP - 1)];
};

const checkOperatorState = (c: Checker, raw: unknown, at: string): void => {
  const h = c.obj(raw, at);
  c.relFile(h.file, `${at}.file`);
  const bytes = c.int(h.bytes, `${at}.bytes`, 0);
  const names = new Set<string>();
  c.arr(h.states, `${at}.states`).forEach((st, i) => {
    const sat = `${at}.states[${i}]`;
    const s = c.obj(st, sat);
    const name = c.str(s.name, `${sat}.name`);
    if (names.has(name)) throw c.fail(`${sat}.name`, `'${name}' appears twice`);
    names.add(name);
    if (typeof s.mode !== 'string' || !MODES.has(s.mode)) {
      throw c.fail(`${sat}.mode`, 'must be split, union or broadcast');
    }
    c.arr(s.elements, `${sat}.elements`).forEach((b, k) => {
      checkBlock(c, b, `${sat}.elements[${k}]`, 0, bytes);
    });
  });
};

/** Checks one block lies in `[minOffset, fileBytes)`; returns its end offset. */
const checkBlock = (c: Checker, raw: unknown, at: string, minOffset: number, fileBytes: number) => {
  const b = c.obj(raw, at);
  const offset = c.int(b.offset, `${at}.offset`, minOffset, fileBytes);
  const length = c.int(b.length, `${at}.length`, 1, fileBytes - offset);
  c.int(b.crc32, `${at}.crc32`, 0, 0xffffffff);
  return offset + length;
};
