/** examples/word-count.ts: exact rolling counts at several parallelisms (threads, real CLI). */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { sentence } from '../../examples/word-count.js';
import { eddy, readParts, sorted, tempDir } from './helpers.js';

describe('examples/word-count.ts', () => {
  it('emits every (word, running count) exactly once at p=1, 2 and 3', async () => {
    const lines = 3000;
    const counts = new Map<string, number>();
    const expected: string[] = [];
    for (let i = 0; i < lines; i++) {
      for (const word of sentence(i).split(' ')) {
        const count = (counts.get(word) ?? 0) + 1;
        counts.set(word, count);
        expected.push(JSON.stringify({ word, count }));
      }
    }
    for (const p of [1, 2, 3]) {
      const output = join(tempDir(), 'out');
      const r = await eddy([
        'run',
        'examples/word-count.ts',
        '-p',
        String(p),
        '--',
        '--output',
        output,
        '--lines',
        String(lines),
      ]);
      expect(r.code, r.stderr).toBe(0);
      expect(sorted(readParts(output))).toEqual(sorted(expected));
    }
  });
});
