import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { BadRecordError, EddyError } from '../core/errors.js';
import type { Source, SourceReader } from '../runtime/io.js';
import type { ReaderEvent } from '../runtime/protocol.js';
import { SourceCoordinators } from '../runtime/source-coordinators.js';
import { FILE_SPLITS_STATE, FileSource, type FileSplitState } from './file-source.js';
import {
  createTestContext,
  dealContiguous,
  drainSource,
  FakeClock,
  openSourceReader,
  pollAll,
  pollBatches,
  type TestConnectorContext,
} from './testing.js';

const root = mkdtempSync(join(tmpdir(), 'eddy-file-source-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

let dirCounter = 0;
const newDir = (): string => {
  const dir = join(root, `d${dirCounter++}`);
  mkdirSync(dir);
  return dir;
};

interface Rec {
  f: number;
  i: number;
  s?: string;
}

/** Writes `counts.length` JSONL files (f0.jsonl, ...) with `counts[k]` records each. */
const writeJsonlFiles = (counts: readonly number[]): { dir: string; records: Rec[] } => {
  const dir = newDir();
  const records: Rec[] = [];
  counts.forEach((n, f) => {
    const lines: string[] = [];
    for (let i = 0; i < n; i++) {
      const r: Rec = { f, i, s: i % 3 === 0 ? 'ünïcødé €' : 'x' };
      records.push(r);
      lines.push(JSON.stringify(r));
      if (i % 4 === 1) lines.push(''); // empty lines are skipped
    }
    writeFileSync(join(dir, `f${String(f).padStart(2, '0')}.jsonl`), lines.join('\n'));
  });
  return { dir, records };
};

const key = (r: Rec) => `${r.f}:${r.i}`;
const sortedKeys = (rs: readonly Rec[]) => rs.map(key).sort();
const fileName = (f: number) => `f${String(f).padStart(2, '0')}.jsonl`;
/** Records grouped by file, each group in emission order. */
const byFile = (rs: readonly Rec[]): Map<number, Rec[]> => {
  const m = new Map<number, Rec[]>();
  for (const r of [...rs].sort((a, b) => a.f - b.f)) {
    if (!m.has(r.f)) m.set(r.f, []);
  }
  for (const r of rs) m.get(r.f)!.push(r);
  return m;
};

/** Opens subtask `ctx.subtask`'s reader with the split enumerator running, as the runtime does. */
const openReader = <T>(
  source: ReturnType<typeof FileSource.jsonl<T>>,
  ctx: TestConnectorContext,
): Promise<SourceReader<T>> => openSourceReader(source, ctx);

describe('FileSource.jsonl', () => {
  it('emits every record of every file exactly once and counts bytes', async () => {
    const { dir, records } = writeJsonlFiles([5, 0, 17, 3]);
    writeFileSync(join(dir, '.hidden.jsonl'), '{"hidden":true}\n');
    writeFileSync(join(dir, '_SUCCESS'), 'not json');
    mkdirSync(join(dir, 'sub'));
    writeFileSync(join(dir, 'sub', 'nested.jsonl'), '{"nested":true}\n');
    const ctx = createTestContext();
    const out = await drainSource(FileSource.jsonl<Rec>({ path: dir, chunkBytes: 16 }), ctx, 4);
    expect(sortedKeys(out)).toEqual(sortedKeys(records));
    // Adapted for interleaved reading: this asserted `out` equal to `records`, i.e. files one
    // after the other. Files are now read round robin, so only each file's own lines keep
    // their order (the interleaving itself is tested under 'FileSource interleaved splits').
    expect(byFile(out)).toEqual(byFile(records));
    const bytes = [0, 1, 2, 3].reduce(
      (sum, f) => sum + readFileSync(join(dir, `f0${f}.jsonl`)).length,
      0,
    );
    expect(ctx.counters.get('bytesRead')).toBe(bytes);
  });

  it('reads files matched by a glob, or a single file', async () => {
    const { dir, records } = writeJsonlFiles([2, 3]);
    writeFileSync(join(dir, 'other.txt'), 'not json\n');
    const viaGlob = await drainSource(
      FileSource.jsonl<Rec>({ path: join(dir, '*.jsonl') }),
      createTestContext(),
    );
    expect(viaGlob).toEqual(records);
    const single = await drainSource(
      FileSource.jsonl<Rec>({ path: join(dir, 'f01.jsonl') }),
      createTestContext(),
    );
    expect(single).toEqual(records.filter((r) => r.f === 1));
  });

  it('fails with a BadRecordError naming the file and line', async () => {
    const dir = newDir();
    writeFileSync(join(dir, 'a.jsonl'), '{"a":1}\n\n{"a":\n{"a":3}\n');
    const error = await drainSource(FileSource.jsonl({ path: dir }), createTestContext()).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(BadRecordError);
    const bad = error as BadRecordError;
    expect(bad.origin).toEqual({ file: join(dir, 'a.jsonl'), line: 3 });
    expect(bad.message).toContain(`${join(dir, 'a.jsonl')} at line 3`);
    expect(bad.message).toMatch(/invalid JSON/);
  });

  it('dead-letters bad lines, counts them and continues', async () => {
    const dir = newDir();
    const dlq = join(root, `dlq${dirCounter++}`, 'nested');
    writeFileSync(join(dir, 'a.jsonl'), '{"a":1}\nnot json\n{"a":2}\r\n{oops}');
    const ctx = createTestContext({ subtaskIndex: 0, parallelism: 1 });
    const out = await drainSource(
      FileSource.jsonl({ path: dir, badRecords: { deadLetterDir: dlq } }),
      ctx,
    );
    expect(out).toEqual([{ a: 1 }, { a: 2 }]);
    expect(ctx.counters.get('deadLetters')).toBe(2);
    const letters = readFileSync(join(dlq, 'dead-letters-0.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(letters).toMatchObject([
      { file: join(dir, 'a.jsonl'), line: 2, raw: 'not json' },
      { file: join(dir, 'a.jsonl'), line: 4, raw: '{oops}' },
    ]);
    expect(letters[0].error).toMatch(/invalid JSON/);
  });

  it('reports a missing path or an empty glob as EDDY_SOURCE_IO naming it', async () => {
    const missing = join(root, 'does-not-exist');
    for (const path of [missing, join(missing, '*.jsonl')]) {
      const error = await drainSource(FileSource.jsonl({ path }), createTestContext()).catch(
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(EddyError);
      expect((error as EddyError).code).toBe('EDDY_SOURCE_IO');
      expect((error as EddyError).message).toContain(missing);
    }
  });

  it('ends with "end" once the stop signal fires', async () => {
    const { dir } = writeJsonlFiles([100]);
    const ctx = createTestContext();
    const reader = await openReader(FileSource.jsonl<Rec>({ path: dir }), ctx);
    const out: Rec[] = [];
    expect(await reader.poll((r) => out.push(r), 10)).toBe('more');
    ctx.stop();
    expect(await reader.poll((r) => out.push(r), 10)).toBe('end');
    expect(await reader.poll((r) => out.push(r), 10)).toBe('end');
    expect(out).toHaveLength(10);
    await reader.close();
  });

  it('reads at ratePerSecond / parallelism per subtask (fake clock)', async () => {
    const { dir } = writeJsonlFiles([400, 400]);
    const clock = new FakeClock();
    const ctx = createTestContext({ subtaskIndex: 0, parallelism: 2 });
    const reader = await openReader(
      FileSource.jsonl<Rec>({ path: dir, ratePerSecond: 200, clock }),
      ctx,
    );
    const out = await pollAll(reader, 50);
    await reader.close();
    expect(out).toHaveLength(400);
    // 100 records/s for this subtask with a burst of 10 records: 390 records of waiting.
    expect(clock.now()).toBeGreaterThanOrEqual(3900);
    expect(clock.now()).toBeLessThanOrEqual(4000);
  });

  it('divides the total rate over the files, not the subtasks: 3 files at p=8 (fake clock)', async () => {
    const { dir } = writeJsonlFiles([600, 600, 600]);
    const total = 300;
    let rateSum = 0;
    let read = 0;
    for (let i = 0; i < 8; i++) {
      const clock = new FakeClock();
      const ctx = createTestContext({ subtaskIndex: i, parallelism: 8 });
      const reader = await openReader(
        FileSource.jsonl<Rec>({ path: dir, ratePerSecond: total, clock }),
        ctx,
      );
      const out = await pollAll(reader, 50);
      await reader.close();
      read += out.length;
      if (i >= 3) {
        // No file: nothing to read, no share of the rate taken, no waiting.
        expect(out).toHaveLength(0);
        expect(clock.now()).toBe(0);
        continue;
      }
      // One file of three: 100 records/s (burst of 2), so 600 records take ~5.98 s.
      expect(out).toHaveLength(600);
      const rate = (out.length - 2) / (clock.now() / 1000);
      expect(rate).toBeGreaterThan(100 * 0.98);
      expect(rate).toBeLessThan(100 * 1.02);
      rateSum += rate;
    }
    expect(read).toBe(1800);
    // The readers together read at the total rate, within 2%.
    expect(rateSum).toBeGreaterThan(total * 0.98);
    expect(rateSum).toBeLessThan(total * 1.02);
  });

  it('a reader with two of three files takes two thirds of the total rate (fake clock)', async () => {
    const { dir } = writeJsonlFiles([300, 300, 300]);
    const clock = new FakeClock();
    const ctx = createTestContext({ subtaskIndex: 0, parallelism: 2 });
    const reader = await openReader(
      FileSource.jsonl<Rec>({ path: dir, ratePerSecond: 300, clock }),
      ctx,
    );
    const out = await pollAll(reader, 50);
    await reader.close();
    // Files 0 and 2, read in turns at 200/s together (burst of 4): ~2.98 s.
    expect(out).toHaveLength(600);
    expect(clock.now()).toBeGreaterThan(2900);
    expect(clock.now()).toBeLessThan(3100);
  });

  it('validates options', () => {
    expect(() => FileSource.jsonl({ path: '' })).toThrow(/path/);
    expect(() => FileSource.jsonl({ path: 'x', ratePerSecond: 0 })).toThrow(/ratePerSecond/);
    expect(() => FileSource.jsonl({ path: 'x', chunkBytes: 0.5 })).toThrow(/chunkBytes/);
    expect(() => FileSource.jsonl({ path: 'x', badRecords: { deadLetterDir: '' } })).toThrow(
      /badRecords/,
    );
  });
});

describe('FileSource splits and positions', () => {
  it('assigns every file to exactly one subtask (file index % parallelism)', async () => {
    const { dir, records } = writeJsonlFiles([1, 2, 3, 4, 5, 6, 7]);
    for (let p = 1; p <= 5; p++) {
      const owners = new Map<string, number>();
      const all: Rec[] = [];
      for (let i = 0; i < p; i++) {
        const ctx = createTestContext({ subtaskIndex: i, parallelism: p });
        const reader = await openReader(FileSource.jsonl<Rec>({ path: dir }), ctx);
        reader.snapshotState(1);
        for (const s of ctx.operatorState.elements<FileSplitState>(FILE_SPLITS_STATE)) {
          expect(owners.has(s.file)).toBe(false);
          owners.set(s.file, i);
          expect(Number(s.file.slice(1, 3)) % p).toBe(i);
        }
        all.push(...(await pollAll(reader)));
        await reader.close();
      }
      expect(owners.size).toBe(7);
      expect(sortedKeys(all)).toEqual(sortedKeys(records));
    }
  });

  it('snapshot mid-read + restore at another parallelism reads everything exactly once', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 0, max: 25 }), { minLength: 1, maxLength: 6 }),
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 1, max: 5 }),
        fc.array(fc.integer({ min: 0, max: 8 }), { minLength: 4, maxLength: 4 }),
        fc.integer({ min: 1, max: 7 }),
        fc.integer({ min: 8, max: 64 }),
        async (counts, pOld, pNew, pollsBefore, batch, chunkBytes) => {
          const { dir, records } = writeJsonlFiles(counts);
          const source = FileSource.jsonl<Rec>({ path: dir, chunkBytes });
          const emitted: Rec[] = [];
          const elements: FileSplitState[] = [];
          for (let i = 0; i < pOld; i++) {
            const ctx = createTestContext({ subtaskIndex: i, parallelism: pOld });
            const reader = await openReader(source, ctx);
            emitted.push(...(await pollAll(reader, batch, pollsBefore[i] ?? 0)));
            reader.snapshotState(1);
            await reader.close();
            elements.push(...ctx.operatorState.elements<FileSplitState>(FILE_SPLITS_STATE));
          }
          expect(elements.map((e) => e.file).sort()).toEqual(
            counts.map((_, f) => `f${String(f).padStart(2, '0')}.jsonl`),
          );
          const dealt = dealContiguous(elements, pNew);
          for (let i = 0; i < pNew; i++) {
            const ctx = createTestContext({
              subtaskIndex: i,
              parallelism: pNew,
              restoredState: { [FILE_SPLITS_STATE]: dealt[i]! },
            });
            const reader = await openReader(source, ctx);
            emitted.push(...(await pollAll(reader, batch)));
            reader.snapshotState(2);
            await reader.close();
            const after = ctx.operatorState.elements<FileSplitState>(FILE_SPLITS_STATE);
            expect(after.every((s) => s.finished)).toBe(true);
          }
          expect(sortedKeys(emitted)).toEqual(sortedKeys(records));
        },
      ),
      { numRuns: 60 },
    );
  });

  it('records finished splits with their final position', async () => {
    const { dir } = writeJsonlFiles([3]);
    const ctx = createTestContext();
    const reader = await openReader(FileSource.jsonl<Rec>({ path: dir }), ctx);
    await pollAll(reader);
    reader.snapshotState(1);
    await reader.close();
    const size = readFileSync(join(dir, 'f00.jsonl')).length;
    expect(ctx.operatorState.elements(FILE_SPLITS_STATE)).toEqual([
      { file: 'f00.jsonl', offset: size, line: 4, finished: true, of: 1 },
    ]);
  });

  it('rejects a restored element that is not a file position', async () => {
    const { dir } = writeJsonlFiles([1]);
    const ctx = createTestContext({ restoredState: { [FILE_SPLITS_STATE]: [{ file: 3 }] } });
    const error = await openReader(FileSource.jsonl({ path: dir }), ctx).catch((e: unknown) => e);
    expect((error as EddyError).code).toBe('EDDY_STATE');
  });

  it('fails clearly when a restored position lies past the end of a shrunk file', async () => {
    const { dir } = writeJsonlFiles([1]);
    const split: FileSplitState = { file: 'f00.jsonl', offset: 10_000, line: 50, finished: false };
    const ctx = createTestContext({ restoredState: { [FILE_SPLITS_STATE]: [split] } });
    const reader = await openReader(FileSource.jsonl({ path: dir }), ctx);
    const error = await reader.poll(() => {}, 10).catch((e: unknown) => e);
    expect((error as EddyError).code).toBe('EDDY_SOURCE_IO');
    expect((error as EddyError).message).toContain(join(dir, 'f00.jsonl'));
    await reader.close();
  });
});

describe('FileSource.csv', () => {
  const writeCsv = (content: string): string => {
    const dir = newDir();
    writeFileSync(join(dir, 'data.csv'), content);
    return dir;
  };

  it('decodes rows by header, with quoting and a parse mapping', async () => {
    const dir = writeCsv('id,name,score\n1,"Smith, J.",3.5\r\n2,"say ""hi""",4\n');
    const out = await drainSource(
      FileSource.csv({
        path: dir,
        parse: (r) => ({ id: Number(r.id), name: r.name, score: Number(r.score) }),
      }),
      createTestContext(),
    );
    expect(out).toEqual([
      { id: 1, name: 'Smith, J.', score: 3.5 },
      { id: 2, name: 'say "hi"', score: 4 },
    ]);
  });

  it('uses given columns and a custom delimiter', async () => {
    const dir = writeCsv('1;a\n2;"b;c"\n');
    const out = await drainSource(
      FileSource.csv({ path: dir, columns: ['n', 's'], delimiter: ';' }),
      createTestContext(),
    );
    expect(out).toEqual([
      { n: '1', s: 'a' },
      { n: '2', s: 'b;c' },
    ]);
  });

  it('fails on a row with the wrong field count, naming file and line', async () => {
    const dir = writeCsv('a,b\n1,2\n\n3\n');
    const error = await drainSource(FileSource.csv({ path: dir }), createTestContext()).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(BadRecordError);
    expect((error as BadRecordError).origin).toEqual({ file: join(dir, 'data.csv'), line: 4 });
    expect((error as Error).message).toMatch(/expected 2 fields, found 1/);
  });

  it('dead-letters an unterminated quote and continues', async () => {
    const dir = writeCsv('a,b\n1,"open\n2,3\n');
    const dlq = join(root, `dlq${dirCounter++}`);
    const ctx = createTestContext();
    const out = await drainSource(
      FileSource.csv({ path: dir, badRecords: { deadLetterDir: dlq } }),
      ctx,
    );
    expect(out).toEqual([{ a: '2', b: '3' }]);
    const letter = JSON.parse(readFileSync(join(dlq, 'dead-letters-0.jsonl'), 'utf8'));
    expect(letter).toMatchObject({ line: 2, raw: '1,"open' });
    expect(letter.error).toMatch(/embedded newlines are not supported/);
  });

  it('re-reads the header when resuming mid-file', async () => {
    const rows = Array.from({ length: 20 }, (_, i) => `${i},v${i}`);
    const dir = writeCsv(`id,v\n${rows.join('\n')}\n`);
    const source = FileSource.csv({ path: dir, chunkBytes: 8 });
    const ctx1 = createTestContext();
    const r1 = await openReader(source, ctx1);
    const first = await pollAll(r1, 3, 2);
    r1.snapshotState(1);
    await r1.close();
    const [split] = ctx1.operatorState.elements<FileSplitState>(FILE_SPLITS_STATE);
    expect(split!.offset).toBeGreaterThan(0);
    const ctx2 = createTestContext({
      restoredState: { [FILE_SPLITS_STATE]: ctx1.operatorState.elements(FILE_SPLITS_STATE) },
    });
    const rest = await drainSource(source, ctx2, 3);
    expect([...first, ...rest]).toEqual(rows.map((_, i) => ({ id: String(i), v: `v${i}` })));
  });

  it('treats an empty file as no rows and rejects a bad header even in dead-letter mode', async () => {
    expect(await drainSource(FileSource.csv({ path: writeCsv('') }), createTestContext())).toEqual(
      [],
    );
    const dir = writeCsv('a,a\n1,2\n');
    const source = FileSource.csv({ path: dir, badRecords: { deadLetterDir: join(root, 'x') } });
    const error = await drainSource(source, createTestContext()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BadRecordError);
    expect((error as Error).message).toMatch(/line 1: invalid header: duplicate column name/);
  });
});

describe('FileSource interleaved splits', () => {
  it('reads files round robin, one batch of one file per poll', async () => {
    const { dir, records } = writeJsonlFiles([7, 7, 7]);
    const ctx = createTestContext();
    const reader = await openReader(FileSource.jsonl<Rec>({ path: dir }), ctx);
    const batches = await pollBatches(reader, 3);
    await reader.close();
    const emitted = batches.filter((b) => b.records.length > 0);
    // f0 0-2, f1 0-2, f2 0-2, f0 3-5, ..., then the last record of each file.
    expect(emitted.map((b) => b.records.map(key))).toEqual([
      ['0:0', '0:1', '0:2'],
      ['1:0', '1:1', '1:2'],
      ['2:0', '2:1', '2:2'],
      ['0:3', '0:4', '0:5'],
      ['1:3', '1:4', '1:5'],
      ['2:3', '2:4', '2:5'],
      ['0:6'],
      ['1:6'],
      ['2:6'],
    ]);
    expect(sortedKeys(emitted.flatMap((b) => b.records))).toEqual(sortedKeys(records));
  });

  it('without event time reads one file after another, one split open at a time', async () => {
    const { dir, records } = writeJsonlFiles([7, 7, 7]);
    const ctx = createTestContext({ watermarked: false });
    const reader = await openReader(FileSource.jsonl<Rec>({ path: dir }), ctx);
    const batches = await pollBatches(reader, 3);
    await reader.close();
    const emitted = batches.filter((b) => b.records.length > 0).flatMap((b) => b.records);
    // Every record of f0, then of f1, then of f2, each in line order.
    expect(emitted.map(key)).toEqual(records.map(key));
    expect(ctx.splits.finished).toEqual([0, 1, 2]);
  });

  it('follows the round-robin model exactly: each poll takes min(batch, left) of the next file', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 0, max: 30 }), { minLength: 1, maxLength: 5 }),
        fc.integer({ min: 1, max: 6 }),
        async (counts, batch) => {
          const { dir } = writeJsonlFiles(counts);
          const ctx = createTestContext();
          const reader = await openReader(FileSource.jsonl<Rec>({ path: dir }), ctx);
          const batches = await pollBatches(reader, batch);
          await reader.close();
          // The model: visit unfinished files in order, cyclically, `batch` records at a time.
          // A last line without `\n` is complete only once end of file is seen, which takes
          // a visit of its own (writeJsonlFiles ends a file with `\n` only when its last
          // record is followed by an empty line, i.e. when (n - 1) % 4 === 1).
          const expected: string[][] = [];
          const next = counts.map(() => 0);
          while (next.some((n, f) => n < counts[f]!)) {
            counts.forEach((n, f) => {
              if (next[f]! >= n) return;
              const lastHeld = (n - 1) % 4 !== 1 && next[f]! < n - 1;
              const take = Math.min(batch, n - next[f]! - (lastHeld ? 1 : 0));
              expected.push(Array.from({ length: take }, (_, k) => `${f}:${next[f]! + k}`));
              next[f]! += take;
            });
          }
          const got = batches.filter((b) => b.records.length > 0);
          expect(got.map((b) => b.records.map(key))).toEqual(expected);
          for (const b of got) {
            expect(new Set(b.splits)).toEqual(
              new Set([ctx.splits.ids.indexOf(fileName(b.records[0]!.f))]),
            );
          }
        },
      ),
      { numRuns: 40 },
    );
  });

  it('with any chunk size, a poll emits from one file, with its handle, in line order', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 0, max: 30 }), { minLength: 1, maxLength: 5 }),
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 8, max: 200 }),
        async (counts, batch, chunkBytes) => {
          const { dir, records } = writeJsonlFiles(counts);
          const ctx = createTestContext();
          const reader = await openReader(FileSource.jsonl<Rec>({ path: dir, chunkBytes }), ctx);
          const batches = await pollBatches(reader, batch);
          await reader.close();
          for (const b of batches) {
            if (b.records.length === 0) continue;
            const f = b.records[0]!.f;
            expect(b.records.every((r) => r.f === f)).toBe(true);
            expect(b.splits.every((h) => ctx.splits.ids[h!] === fileName(f))).toBe(true);
          }
          expect(byFile(batches.flatMap((b) => b.records))).toEqual(byFile(records));
          expect([...ctx.splits.finished].sort()).toEqual(counts.map((_, h) => h));
        },
      ),
      { numRuns: 40 },
    );
  });

  it('passes each split handle with its records and finishes every split exactly once', async () => {
    const { dir, records } = writeJsonlFiles([5, 0, 12, 3]);
    const ctx = createTestContext();
    const reader = await openReader(FileSource.jsonl<Rec>({ path: dir, chunkBytes: 32 }), ctx);
    expect(ctx.splits.ids).toEqual([0, 1, 2, 3].map(fileName)); // all declared before any poll
    expect(ctx.splits.finished).toEqual([]);
    const seen: Rec[] = [];
    for (;;) {
      const result = await reader.poll((r, split) => {
        expect(split).toBeDefined();
        expect(ctx.splits.ids[split!]).toBe(fileName(r.f));
        expect(ctx.splits.isOpen(split!)).toBe(true); // never a record after its finish
        seen.push(r);
      }, 4);
      if (result === 'end') break;
    }
    await reader.close();
    expect(sortedKeys(seen)).toEqual(sortedKeys(records));
    // RecordingSplits throws on a second finish, so each handle appears once.
    expect([...ctx.splits.finished].sort()).toEqual([0, 1, 2, 3]);
    // Each split is finished after its last record: the empty file first.
    expect(ctx.splits.finished[0]).toBe(1);
  });

  it('declares restored finished splits and finishes them at once', async () => {
    const { dir, records } = writeJsonlFiles([3, 4]);
    const size0 = readFileSync(join(dir, fileName(0))).length;
    const restored: FileSplitState[] = [
      { file: fileName(0), offset: size0, line: 3, finished: true },
      { file: fileName(1), offset: 0, line: 0, finished: false },
    ];
    const ctx = createTestContext({ restoredState: { [FILE_SPLITS_STATE]: restored } });
    const reader = await openReader(FileSource.jsonl<Rec>({ path: dir }), ctx);
    expect(ctx.splits.calls).toEqual([`add ${fileName(0)}`, `add ${fileName(1)}`, 'finish 0']);
    const batches = await pollBatches(reader);
    await reader.close();
    expect(batches.flatMap((b) => b.records)).toEqual(records.filter((r) => r.f === 1));
    expect(batches.flatMap((b) => b.splits).every((h) => h === 1)).toBe(true);
    expect(ctx.splits.calls.at(-1)).toBe('finish 1');
  });

  it('snapshot mid-way through several files at once, restore at any parallelism: each line once', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 0, max: 40 }), { minLength: 2, maxLength: 6 }),
        fc.integer({ min: 1, max: 3 }),
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 1, max: 5 }),
        fc.integer({ min: 8, max: 80 }),
        fc.array(fc.tuple(fc.nat(12), fc.nat(12)), { minLength: 3, maxLength: 3 }),
        async (counts, pOld, pNew, batch, chunkBytes, plan) => {
          const { dir, records } = writeJsonlFiles(counts);
          const source = FileSource.jsonl<Rec>({ path: dir, chunkBytes });
          const committed: Rec[] = [];
          const elements: FileSplitState[] = [];
          for (let i = 0; i < pOld; i++) {
            // Poll `snapAt` times, snapshot, poll `lost` more, then "fail": what was emitted
            // after the snapshot is lost, as in a restart from that checkpoint.
            const [snapAt, lost] = plan[i]!;
            const ctx = createTestContext({ subtaskIndex: i, parallelism: pOld });
            const reader = await openReader(source, ctx);
            committed.push(...(await pollAll(reader, batch, snapAt)));
            reader.snapshotState(1);
            await pollAll(reader, batch, lost);
            await reader.close();
            elements.push(...ctx.operatorState.elements<FileSplitState>(FILE_SPLITS_STATE));
          }
          expect(elements.map((e) => e.file).sort()).toEqual(counts.map((_, f) => fileName(f)));
          const dealt = dealContiguous(elements, pNew);
          for (let i = 0; i < pNew; i++) {
            const ctx = createTestContext({
              subtaskIndex: i,
              parallelism: pNew,
              restoredState: { [FILE_SPLITS_STATE]: dealt[i]! },
            });
            committed.push(...(await drainSource(source, ctx, batch)));
            expect([...ctx.splits.finished].sort()).toEqual(ctx.splits.ids.map((_, h) => h));
          }
          const keys = committed.map(key);
          expect(new Set(keys).size).toBe(keys.length); // nothing twice
          expect(sortedKeys(committed)).toEqual(sortedKeys(records)); // nothing skipped
          expect(byFile(committed)).toEqual(byFile(records)); // each file in line order
        },
      ),
      { numRuns: 60 },
    );
  });

  it('records the position of every open file in a snapshot', async () => {
    const { dir } = writeJsonlFiles([10, 10, 10]);
    const ctx = createTestContext();
    const reader = await openReader(FileSource.jsonl<Rec>({ path: dir }), ctx);
    const first = await pollAll(reader, 4, 3); // 4 records of each file
    expect(first.map(key)).toEqual([0, 1, 2].flatMap((f) => [0, 1, 2, 3].map((i) => `${f}:${i}`)));
    reader.snapshotState(1);
    await reader.close();
    const positions = ctx.operatorState.elements<FileSplitState>(FILE_SPLITS_STATE);
    // Line 4 of the writer is record 2 (an empty line follows record 1): 5 lines consumed.
    for (const [f, p] of positions.entries()) {
      const text = readFileSync(join(dir, fileName(f)), 'utf8');
      const lines = text.split('\n');
      expect(p).toMatchObject({ file: fileName(f), line: 5, finished: false });
      expect(p.offset).toBe(Buffer.byteLength(`${lines.slice(0, 5).join('\n')}\n`));
    }
  });

  it('names the right file and line for bad records of interleaved files', async () => {
    const dir = newDir();
    writeFileSync(join(dir, 'a.jsonl'), '{"a":1}\n{"a":2}\nbad a\n{"a":4}\n');
    writeFileSync(join(dir, 'b.jsonl'), '{"b":1}\nbad b\n{"b":3}\n{"b":4}\n');
    const dlq = join(root, `dlq${dirCounter++}`);
    const ctx = createTestContext();
    const out = await drainSource(
      FileSource.jsonl({ path: dir, badRecords: { deadLetterDir: dlq } }),
      ctx,
      1,
    );
    expect(out).toEqual([{ a: 1 }, { b: 1 }, { a: 2 }, { b: 3 }, { a: 4 }, { b: 4 }]);
    const letters = readFileSync(join(dlq, 'dead-letters-0.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(letters).toMatchObject([
      { file: join(dir, 'b.jsonl'), line: 2, raw: 'bad b' },
      { file: join(dir, 'a.jsonl'), line: 3, raw: 'bad a' },
    ]);
    const error = await drainSource(FileSource.jsonl({ path: dir }), createTestContext(), 1).catch(
      (e: unknown) => e,
    );
    expect((error as BadRecordError).origin).toEqual({ file: join(dir, 'b.jsonl'), line: 2 });
  });

  it('decodes interleaved CSV files each with its own header, also when resumed mid-file', async () => {
    const dir = newDir();
    const rowsA = Array.from({ length: 9 }, (_, i) => `${i},a${i}`);
    const rowsB = Array.from({ length: 9 }, (_, i) => `b${i},${i}`);
    writeFileSync(join(dir, 'a.csv'), `id,v\n${rowsA.join('\n')}\n`);
    writeFileSync(join(dir, 'b.csv'), `v,id\n${rowsB.join('\n')}\n`);
    const source = FileSource.csv({ path: dir, chunkBytes: 16 });
    const ctx1 = createTestContext();
    const r1 = await openReader(source, ctx1);
    const first = await pollAll(r1, 2, 4);
    r1.snapshotState(1);
    await r1.close();
    const positions = ctx1.operatorState.elements<FileSplitState>(FILE_SPLITS_STATE);
    expect(positions.every((p) => p.offset > 0 && !p.finished)).toBe(true);
    const ctx2 = createTestContext({ restoredState: { [FILE_SPLITS_STATE]: positions } });
    const rest = await drainSource(source, ctx2, 2);
    const all = [...first, ...rest];
    const expected = [
      ...rowsA.map((_, i) => ({ id: String(i), v: `a${i}` })),
      ...rowsB.map((_, i) => ({ id: String(i), v: `b${i}` })),
    ];
    const asText = (r: { id?: string; v?: string }) => `${r.id}=${r.v}`;
    expect(all.map(asText).sort()).toEqual(expected.map(asText).sort());
  });

  it('closes every open file on close()', async () => {
    const fds = () => readdirSync('/proc/self/fd').length;
    if (!existsSync('/proc/self/fd')) return;
    const { dir } = writeJsonlFiles([20, 20, 20, 20]);
    const before = fds();
    const reader = await openReader(FileSource.jsonl<Rec>({ path: dir }), createTestContext());
    await pollAll(reader, 2, 4); // every file visited once, all still open
    expect(fds()).toBeGreaterThanOrEqual(before + 4);
    await reader.close();
    expect(fds()).toBeLessThanOrEqual(before);
  });
});

describe('FileSource on the split enumerator', () => {
  /** Runs the file source's enumerator alone, recording what it sends each reader. */
  const runEnumerator = async (
    path: string,
    parallelism: number,
    restored: { isRestored: boolean; restoredState?: unknown } = { isRestored: false },
  ) => {
    const sent: Array<{ subtask: number; event: ReaderEvent }> = [];
    const coordinators = new SourceCoordinators(
      [
        {
          uid: 'src',
          source: FileSource.jsonl({ path }) as Source<unknown>,
          parallelism,
          ...restored,
        },
      ],
      (_uid, subtask, event) => sent.push({ subtask, event }),
    );
    return { coordinators, sent };
  };
  const at0 = (file: string, of?: number): FileSplitState =>
    of === undefined
      ? { file, offset: 0, line: 0, finished: false }
      : { file, offset: 0, line: 0, finished: false, of };

  it('lists the files once in the master and assigns file k to reader k % p', async () => {
    const { dir } = writeJsonlFiles([1, 1, 1, 1, 1]);
    const { coordinators, sent } = await runEnumerator(dir, 2);
    await coordinators.start();
    expect(sent).toEqual([
      { subtask: 0, event: { kind: 'splits', splits: [0, 2, 4].map((f) => at0(fileName(f), 5)) } },
      { subtask: 0, event: { kind: 'noMoreSplits' } },
      { subtask: 1, event: { kind: 'splits', splits: [1, 3].map((f) => at0(fileName(f), 5)) } },
      { subtask: 1, event: { kind: 'noMoreSplits' } },
    ]);
    expect(coordinators.snapshot(1)).toEqual({ src: { unassigned: [], splits: 5 } });
    await coordinators.close();
  });

  it('restored: assigns only the files its state lists as unassigned, the same way', async () => {
    const { dir } = writeJsonlFiles([1, 1, 1]);
    // A checkpoint from before enumerators: the readers keep their splits, nothing is new.
    const old = await runEnumerator(dir, 2, { isRestored: true });
    await old.coordinators.start();
    expect(old.sent.map((s) => [s.subtask, s.event.kind])).toEqual([
      [0, 'noMoreSplits'],
      [1, 'noMoreSplits'],
    ]);
    expect(old.coordinators.snapshot(2)).toEqual({ src: { unassigned: [] } });
    await old.coordinators.close();

    const unassigned = { unassigned: [fileName(2), fileName(0), fileName(1)] };
    const some = await runEnumerator(dir, 2, { isRestored: true, restoredState: unassigned });
    await some.coordinators.start();
    expect(some.sent.filter((s) => s.event.kind === 'splits')).toEqual([
      { subtask: 0, event: { kind: 'splits', splits: [at0(fileName(2)), at0(fileName(1))] } },
      { subtask: 1, event: { kind: 'splits', splits: [at0(fileName(0))] } },
    ]);
    await some.coordinators.close();

    const bad = await runEnumerator(dir, 1, { isRestored: true, restoredState: { unassigned: 3 } });
    const error = (await bad.coordinators.start().catch((e: unknown) => e)) as EddyError;
    expect(error.code).toBe('EDDY_STATE');
    expect(error.message).toMatch(/uid src.*not a file list/);
    await bad.coordinators.close();
  });

  it('names the source when the enumerator cannot list the input', async () => {
    const glob = join(root, 'nothing-here', '*.jsonl');
    const { coordinators } = await runEnumerator(glob, 1);
    const error = (await coordinators.start().catch((e: unknown) => e)) as EddyError;
    expect(error.code).toBe('EDDY_SOURCE_IO');
    expect(error.message).toContain("source 'file-source' (uid src)");
    expect(error.message).toContain(glob);
    await coordinators.close();
  });

  it('a reader lists nothing itself: it polls idle until splits are assigned, and ends only after noMoreSplits', async () => {
    const { dir, records } = writeJsonlFiles([4, 6]);
    const ctx = createTestContext();
    const reader = FileSource.jsonl<Rec>({ path: dir }).createReader(ctx);
    await reader.open();
    const out: Rec[] = [];
    const emit = (r: Rec) => void out.push(r);
    expect(await reader.poll(emit, 100)).toBe('idle');
    expect(ctx.splits.ids).toEqual([]);
    reader.addSplits!([at0(fileName(1))]);
    expect(ctx.splits.calls).toEqual([`add ${fileName(1)}`]);
    let result = await reader.poll(emit, 100);
    while (result === 'more') result = await reader.poll(emit, 100);
    expect(result).toBe('idle'); // its split is done, but more may come
    expect(out).toEqual(records.filter((r) => r.f === 1));
    expect(ctx.splits.calls).toEqual([`add ${fileName(1)}`, 'finish 0']);
    // A split assigned later, e.g. discovered by the enumerator, is read the same way.
    reader.addSplits!([at0(fileName(0))]);
    reader.notifyNoMoreSplits!();
    result = await reader.poll(emit, 100);
    while (result === 'more') result = await reader.poll(emit, 100);
    expect(result).toBe('end');
    expect(sortedKeys(out)).toEqual(sortedKeys(records));
    expect(ctx.splits.calls).toEqual([
      `add ${fileName(1)}`,
      'finish 0',
      `add ${fileName(0)}`,
      'finish 1',
    ]);
    await reader.close();
  });

  it('ends at once with no splits and no more to come, or when stopped while waiting', async () => {
    const { dir } = writeJsonlFiles([1]);
    const ctx = createTestContext();
    const reader = FileSource.jsonl<Rec>({ path: dir }).createReader(ctx);
    await reader.open();
    reader.notifyNoMoreSplits!();
    expect(await reader.poll(() => {}, 10)).toBe('end');
    await reader.close();

    const waiting = createTestContext();
    const idle = FileSource.jsonl<Rec>({ path: dir }).createReader(waiting);
    await idle.open();
    expect(await idle.poll(() => {}, 10)).toBe('idle');
    waiting.stop();
    expect(await idle.poll(() => {}, 10)).toBe('end');
    await idle.close();
  });

  it('snapshots an assigned split like a restored one, resuming mid-file from either', async () => {
    const { dir, records } = writeJsonlFiles([10]);
    const source = FileSource.jsonl<Rec>({ path: dir, chunkBytes: 16 });
    const ctx1 = createTestContext();
    const r1 = await openReader(source, ctx1);
    const first = await pollAll(r1, 3, 2);
    r1.snapshotState(1);
    await r1.close();
    const [position] = ctx1.operatorState.elements<FileSplitState>(FILE_SPLITS_STATE);
    expect(position).toMatchObject({ file: fileName(0), finished: false });
    // The enumerator may hand out a position mid-file too: the reader resumes from it.
    const ctx2 = createTestContext();
    const r2 = source.createReader(ctx2);
    await r2.open();
    r2.addSplits!([position]);
    r2.notifyNoMoreSplits!();
    const rest = await pollAll(r2, 3);
    await r2.close();
    expect([...first, ...rest]).toEqual(records);
  });

  it('rejects an assigned split that is not a file position, or one it already has', async () => {
    const { dir } = writeJsonlFiles([1]);
    const reader = FileSource.jsonl<Rec>({ path: dir }).createReader(createTestContext());
    await reader.open();
    const error = caught(() => reader.addSplits!([{ file: 'x' }]));
    expect(error.code).toBe('EDDY_STATE');
    expect(error.message).toMatch(/assigned split is not a file position/);
    reader.addSplits!([at0(fileName(0))]);
    expect(caught(() => reader.addSplits!([at0(fileName(0))])).message).toMatch(/twice/);
    await reader.close();
  });

  it('p readers with one shared enumerator read every file exactly once (the runtime path)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 0, max: 12 }), { minLength: 0, maxLength: 7 }),
        fc.integer({ min: 1, max: 5 }),
        fc.integer({ min: 1, max: 6 }),
        async (counts, p, batch) => {
          const { dir, records } = writeJsonlFiles(counts);
          const source = FileSource.jsonl<Rec>({ path: dir });
          const ctxs = Array.from({ length: p }, (_, i) =>
            createTestContext({ subtaskIndex: i, parallelism: p }),
          );
          const readers = ctxs.map((ctx) => source.createReader(ctx));
          const inbox: ReaderEvent[][] = ctxs.map(() => []);
          const coordinators = new SourceCoordinators(
            [{ uid: 'src', source: source as Source<unknown>, parallelism: p, isRestored: false }],
            (_uid, subtask, event) => inbox[subtask]!.push(event),
          );
          for (const r of readers) await r.open();
          await coordinators.start();
          const out: Rec[] = [];
          for (const [i, reader] of readers.entries()) {
            for (const e of inbox[i]!) {
              if (e.kind === 'splits') reader.addSplits!(e.splits);
              else if (e.kind === 'noMoreSplits') reader.notifyNoMoreSplits!();
            }
            out.push(...(await pollAll(reader, batch)));
            await reader.close();
            // File k went to reader k % p.
            expect(ctxs[i]!.splits.ids).toEqual(
              counts.map((_, k) => fileName(k)).filter((_, k) => k % p === i),
            );
          }
          await coordinators.close();
          expect(sortedKeys(out)).toEqual(sortedKeys(records));
        },
      ),
      { numRuns: 30 },
    );
  });
});

const caught = (f: () => unknown): EddyError => {
  try {
    f();
  } catch (e) {
    return e as EddyError;
  }
  throw new Error('expected a throw');
};
