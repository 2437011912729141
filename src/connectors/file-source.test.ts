import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { BadRecordError, EddyError } from '../core/errors.js';
import type { SourceReader } from '../runtime/io.js';
import { FILE_SPLITS_STATE, FileSource, type FileSplitState } from './file-source.js';
import {
  createTestContext,
  dealContiguous,
  drainSource,
  FakeClock,
  pollAll,
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

const openReader = async <T>(
  source: ReturnType<typeof FileSource.jsonl<T>>,
  ctx: TestConnectorContext,
): Promise<SourceReader<T>> => {
  const reader = source.createReader(ctx);
  await reader.open();
  return reader;
};

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
    expect(out).toEqual(records); // one subtask reads files in sorted order, lines in order
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
      { file: 'f00.jsonl', offset: size, line: 4, finished: true },
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
