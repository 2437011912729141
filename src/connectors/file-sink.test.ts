import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { EddyError } from '../core/errors.js';
import type { SinkWriter } from '../runtime/io.js';
import { FileSink, type FileSinkOptions } from './file-sink.js';
import { FileSource } from './file-source.js';
import { createTestContext, drainSource, type TestConnectorContext } from './testing.js';

const root = mkdtempSync(join(tmpdir(), 'eddy-file-sink-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

let counter = 0;
/** A fresh, not yet existing output directory (the sink creates it). */
const outDir = () => join(root, `out${counter++}`, 'nested');

const openWriter = async <T>(
  options: FileSinkOptions,
  ctx: TestConnectorContext = createTestContext(),
): Promise<SinkWriter<T>> => {
  const writer = FileSink.jsonl<T>(options).createWriter(ctx);
  await writer.open();
  return writer;
};

const records = (n: number) => Array.from({ length: n }, (_, i) => ({ i, name: `rec-${i}-ü` }));
const jsonl = (rs: readonly unknown[]) => rs.map((r) => `${JSON.stringify(r)}\n`).join('');
const visibleParts = (dir: string) => readdirSync(dir).filter((n) => n.startsWith('part-'));

describe('FileSink.jsonl', () => {
  it('writes hidden in-progress files until finish, then complete part files', async () => {
    const dir = outDir();
    const ctx = createTestContext({ subtaskIndex: 3, parallelism: 4 });
    const writer = await openWriter<unknown>({ path: dir, bufferBytes: 64 }, ctx);
    const rs = records(50);
    for (const r of rs) writer.write(r);
    await writer.flush();
    expect(readdirSync(dir)).toEqual(['.part-3-0.jsonl.inprogress']);
    await writer.finish();
    expect(readdirSync(dir)).toEqual(['part-3-0.jsonl']);
    expect(readFileSync(join(dir, 'part-3-0.jsonl'), 'utf8')).toBe(jsonl(rs));
    expect(ctx.counters.get('bytesWritten')).toBe(Buffer.byteLength(jsonl(rs)));
  });

  it('rolls into several complete parts whose concatenation is the output', async () => {
    const dir = outDir();
    const writer = await openWriter<unknown>({ path: dir, rollBytes: 300 });
    const rs = records(100);
    for (const r of rs) writer.write(r);
    await writer.finish();
    const parts = visibleParts(dir).sort(
      (a, b) => Number(a.split('-')[2]!.split('.')[0]) - Number(b.split('-')[2]!.split('.')[0]),
    );
    expect(parts.length).toBeGreaterThan(3);
    expect(readdirSync(dir).filter((n) => n.startsWith('.'))).toEqual([]);
    const contents = parts.map((p) => readFileSync(join(dir, p), 'utf8'));
    for (const c of contents) expect(c.endsWith('\n')).toBe(true); // whole records only
    expect(contents.join('')).toBe(jsonl(rs));
  });

  it('abort deletes the in-progress file and leaves no part file', async () => {
    const dir = outDir();
    const writer = await openWriter<unknown>({ path: dir, bufferBytes: 10 });
    for (const r of records(20)) writer.write(r);
    expect(readdirSync(dir)).toHaveLength(1);
    await writer.abort();
    expect(readdirSync(dir)).toEqual([]);
  });

  it('writes nothing for a subtask without records', async () => {
    const dir = outDir();
    const writer = await openWriter<unknown>({ path: dir });
    await writer.finish();
    expect(readdirSync(dir)).toEqual([]);
  });

  it('never overwrites parts of an earlier run', async () => {
    const dir = outDir();
    const first = await openWriter<unknown>({ path: dir });
    first.write({ run: 1 });
    await first.finish();
    const second = await openWriter<unknown>({ path: dir });
    second.write({ run: 2 });
    await second.finish();
    expect(readFileSync(join(dir, 'part-0-0.jsonl'), 'utf8')).toBe('{"run":1}\n');
    expect(readFileSync(join(dir, 'part-0-1.jsonl'), 'utf8')).toBe('{"run":2}\n');
  });

  it('output reads back through FileSource without picking up in-progress files', async () => {
    const dir = outDir();
    const done = await openWriter<unknown>({ path: dir });
    const rs = records(30);
    for (const r of rs) done.write(r);
    await done.finish();
    const pending = await openWriter<unknown>(
      { path: dir, bufferBytes: 1 },
      createTestContext({ subtaskIndex: 1, parallelism: 2 }),
    );
    pending.write({ pending: true });
    const back = await drainSource(FileSource.jsonl({ path: dir }), createTestContext());
    expect(back).toEqual(rs);
    await pending.abort();
  });

  it('names the sink and subtask for records JSON cannot encode', async () => {
    const ctx = createTestContext({ subtaskIndex: 1, parallelism: 2, operatorName: 'totals' });
    const writer = await openWriter<unknown>({ path: outDir() }, ctx);
    expect(() => writer.write({ n: 1n })).toThrow(/file sink .*'totals'.*2\/2.*BigInt/);
    expect(() => writer.write(undefined)).toThrow(/undefined has no JSON form/);
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    const error = (() => {
      try {
        writer.write(circular);
      } catch (e) {
        return e as EddyError;
      }
    })();
    expect(error?.code).toBe('EDDY_SINK_IO');
    await writer.abort();
  });

  it('reports IO failures as EDDY_SINK_IO naming the path', async () => {
    const blocker = join(root, `file${counter++}`);
    writeFileSync(blocker, 'a file, not a directory');
    const writer = FileSink.jsonl({ path: join(blocker, 'out') }).createWriter(createTestContext());
    const error = await writer.open().catch((e: unknown) => e);
    expect((error as EddyError).code).toBe('EDDY_SINK_IO');
    expect((error as EddyError).message).toContain(blocker);
  });

  it('rejects writes after finish and invalid options', async () => {
    const writer = await openWriter<unknown>({ path: outDir() });
    await writer.finish();
    expect(() => writer.write({})).toThrow(/write after finish/);
    expect(() => FileSink.jsonl({ path: '' })).toThrow(/path/);
    expect(() => FileSink.jsonl({ path: 'x', rollBytes: 0 })).toThrow(/rollBytes/);
  });
});
