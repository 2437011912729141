/**
 * Shape validation of decoded `_metadata` JSON. The CRC proves the bytes are what was written,
 * not that the writer was right (or that a hand-edited savepoint is sane); restore planning
 * indexes arrays by these numbers, so every number is checked here once. Pure.
 */
import type { EddyError } from '../core/errors.js';
import { corruptError } from './errors.js';
import { isContainedRelativePath } from './paths.js';
import type { CheckpointMetadata } from './types.js';

type Obj = Record<string, unknown>;

const MODES = new Set(['split', 'union', 'broadcast']);

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
  c.int(m.formatVersion, 'formatVersion', 0);
  c.str(m.jobName, 'jobName');
  c.str(m.jobId, 'jobId');
  c.int(m.checkpointId, 'checkpointId', 0);
  if (typeof m.savepoint !== 'boolean') throw c.fail('savepoint', 'must be a boolean');
  if (typeof m.timestamp !== 'number' || !Number.isFinite(m.timestamp)) {
    throw c.fail('timestamp', 'must be a finite number');
  }
  const uids = new Set<string>();
  c.arr(m.operators, 'operators').forEach((op, i) => {
    const uid = checkOperator(c, op, `operators[${i}]`);
    if (uids.has(uid)) throw c.fail(`operators[${i}].uid`, `'${uid}' appears twice`);
    uids.add(uid);
  });
  return m as unknown as CheckpointMetadata;
};

const checkOperator = (c: Checker, raw: unknown, at: string): string => {
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
    if (s.keyed !== undefined) checkKeyed(c, s.keyed, `${sat}.keyed`, maxP);
    if (s.operatorState !== undefined)
      checkOperatorState(c, s.operatorState, `${sat}.operatorState`);
  });
  return uid;
};

const checkKeyed = (c: Checker, raw: unknown, at: string, maxP: number): void => {
  const h = c.obj(raw, at);
  c.relFile(h.file, `${at}.file`);
  const bytes = c.int(h.bytes, `${at}.bytes`, 0);
  const range = c.arr(h.keyGroupRange, `${at}.keyGroupRange`);
  if (range.length !== 2) throw c.fail(`${at}.keyGroupRange`, 'must be [start, end]');
  const start = c.int(range[0], `${at}.keyGroupRange[0]`, 0, maxP - 1);
  const end = c.int(range[1], `${at}.keyGroupRange[1]`, start, maxP - 1);
  let nextKeyGroup = start;
  let nextOffset = 0;
  c.arr(h.blocks, `${at}.blocks`).forEach((b, k) => {
    const bat = `${at}.blocks[${k}]`;
    const keyGroup = c.int(c.obj(b, bat).keyGroup, `${bat}.keyGroup`, nextKeyGroup, end);
    nextOffset = checkBlock(c, b, bat, nextOffset, bytes);
    nextKeyGroup = keyGroup + 1;
  });
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
