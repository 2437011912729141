import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { LineReader, readFirstLine } from './line-reader.js';

const dir = mkdtempSync(join(tmpdir(), 'eddy-line-reader-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let fileCounter = 0;
const writeTemp = (content: string | Buffer): string => {
  const path = join(dir, `f${fileCounter++}.txt`);
  writeFileSync(path, content);
  return path;
};

interface ReadLine {
  text: string;
  line: number;
  /** Position after the line: where a resumed reader starts. */
  offset: number;
}

const readAll = async (path: string, chunkBytes: number, offset = 0, line = 0, share = false) => {
  const r = await LineReader.open(path, { chunkBytes, offset, line, shareChunkStrings: share });
  const out: ReadLine[] = [];
  for (;;) {
    const text = r.next();
    if (text !== null) {
      out.push({ text, line: r.line, offset: r.offset });
      continue;
    }
    if (r.eof) break;
    await r.fill();
  }
  const end = { offset: r.offset, line: r.line, bytesRead: r.bytesRead };
  await r.close();
  return { lines: out, end };
};

// Line content: any well-formed text without line breaks. U+FEFF is left out because a
// leading one on the first line is (deliberately) read as a byte order mark.
const lineContent = fc
  .oneof(fc.string({ unit: 'grapheme', maxLength: 12 }), fc.string({ maxLength: 40 }))
  .map((s) => s.replace(/[\r\n\uFEFF]/g, ''));

const fileSpec = fc.record({
  lines: fc.array(fc.oneof(lineContent, fc.constant('')), { maxLength: 30 }),
  crlf: fc.array(fc.boolean(), { minLength: 30, maxLength: 30 }),
  finalNewline: fc.boolean(),
  chunk: fc.integer({ min: 1, max: 64 }),
  share: fc.boolean(),
});

const buildFile = (spec: { lines: string[]; crlf: boolean[]; finalNewline: boolean }) =>
  spec.lines
    .map((l, i) => {
      const last = i === spec.lines.length - 1;
      const sep = spec.crlf[i] ? '\r\n' : '\n';
      return last && !spec.finalNewline ? l : l + sep;
    })
    .join('');

const expectedLines = (lines: string[]) =>
  lines.map((text, i) => ({ text, line: i + 1 })).filter((l) => l.text !== '');

describe('LineReader', () => {
  it('yields the non-empty lines with 1-based numbers for any content and chunk size', async () => {
    await fc.assert(
      fc.asyncProperty(fileSpec, async (spec) => {
        const content = buildFile(spec);
        const path = writeTemp(content);
        const { lines, end } = await readAll(path, spec.chunk, 0, 0, spec.share);
        expect(lines.map(({ text, line }) => ({ text, line }))).toEqual(expectedLines(spec.lines));
        expect(end.offset).toBe(Buffer.byteLength(content));
        expect(end.bytesRead).toBe(Buffer.byteLength(content));
      }),
      { numRuns: 150 },
    );
  });

  it('resumes exactly from any recorded (offset, line)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fileSpec,
        fc.nat(),
        fc.integer({ min: 1, max: 64 }),
        async (spec, pick, chunk2) => {
          const path = writeTemp(buildFile(spec));
          const { lines } = await readAll(path, spec.chunk, 0, 0, spec.share);
          const starts = [{ offset: 0, line: 0 }, ...lines];
          const from = starts[pick % starts.length]!;
          const resumed = await readAll(path, chunk2, from.offset, from.line, !spec.share);
          const k = starts.indexOf(from);
          expect(resumed.lines).toEqual(lines.slice(k));
        },
      ),
      { numRuns: 150 },
    );
  });

  it('shared chunk strings: mixed ASCII and non-ASCII chunks decode the same', async () => {
    const lines = ['plain ascii line', 'ünïcødé', 'x'.repeat(40), '€', 'tail'];
    const path = writeTemp(lines.join('\n'));
    for (const chunk of [4, 16, 64, 1 << 20]) {
      expect((await readAll(path, chunk, 0, 0, true)).lines.map((l) => l.text)).toEqual(lines);
    }
  });

  it('reads a line much longer than the chunk by growing the buffer', async () => {
    const long = 'x'.repeat(10_000);
    const path = writeTemp(`a\n${long}\nb`);
    const { lines } = await readAll(path, 7);
    expect(lines.map((l) => l.text)).toEqual(['a', long, 'b']);
  });

  it('decodes multibyte characters split across chunk boundaries', async () => {
    const text = '€😀ä漢字'.repeat(5);
    const path = writeTemp(`${text}\r\n${text}`);
    for (const chunk of [1, 2, 3, 5, 1024]) {
      for (const share of [false, true]) {
        const { lines } = await readAll(path, chunk, 0, 0, share);
        expect(lines.map((l) => l.text)).toEqual([text, text]);
      }
    }
  });

  it('skips a UTF-8 byte order mark at the start of the file only', async () => {
    const bom = Buffer.from([0xef, 0xbb, 0xbf]);
    const path = writeTemp(Buffer.concat([bom, Buffer.from('id,name\n1,a\n')]));
    for (const chunk of [1, 2, 1024]) {
      const { lines } = await readAll(path, chunk, 0, 0, true);
      expect(lines.map((l) => l.text)).toEqual(['id,name', '1,a']);
      expect(lines[0]!.offset).toBe(11);
    }
    const onlyBom = writeTemp(bom);
    expect((await readAll(onlyBom, 1)).lines).toEqual([]);
  });

  it('counts empty and CR-only lines without returning them', async () => {
    const path = writeTemp('\n\r\n\na\n\n\r');
    const { lines, end } = await readAll(path, 3, 0, 0, true);
    expect(lines).toEqual([{ text: 'a', line: 4, offset: 6 }]);
    expect(end).toMatchObject({ line: 6, offset: 8 });
  });

  it('rejects a position past the end of the file', async () => {
    const path = writeTemp('abc\n');
    await expect(LineReader.open(path, { offset: 5 })).rejects.toThrow(/past the end/);
  });

  it('readFirstLine returns the first non-empty line and its number', async () => {
    expect(await readFirstLine(writeTemp('\n\nid;x\n1;2\n'), 2)).toEqual({ text: 'id;x', line: 3 });
    expect(await readFirstLine(writeTemp('\n\n'))).toBeUndefined();
  });
});
