/**
 * Rolling word counts over generated sentences: flatMap, keyBy and reduce.
 *
 *   eddy run examples/word-count.ts -p 2 -- --output <dir> [--lines <n>] [--rate <lines/s>]
 *
 * Writes {"word", "count"} for every word occurrence (the count so far for that word).
 * The sentences are a pure function of their index, so every run sees the same input.
 */
import { parseArgs } from 'node:util';
import { defineJob, FileSink, GeneratorSource, hashToUnit } from 'eddy';

const WORDS = [
  'stream',
  'state',
  'key',
  'group',
  'barrier',
  'window',
  'timer',
  'sink',
  'source',
  'eddy',
];

export const sentence = (i: number): string =>
  Array.from(
    { length: 3 + (i % 5) },
    (_, k) => WORDS[Math.floor(hashToUnit(i * 8 + k, 7) * WORDS.length)],
  ).join(' ');

export default defineJob({
  name: 'word-count',
  build(env, args) {
    const { values } = parseArgs({
      args: [...args],
      options: { output: { type: 'string' }, lines: { type: 'string' }, rate: { type: 'string' } },
    });
    if (!values.output) throw new Error('word-count needs -- --output <dir> [--lines <n>]');
    const lines = Number(values.lines ?? 10_000);
    const ratePerSecond = values.rate === undefined ? undefined : Number(values.rate);
    env
      .fromSource(GeneratorSource.of({ count: lines, generate: sentence, ratePerSecond }), {
        uid: 'sentences',
      })
      .flatMap<{ word: string; count: number }>((line, out) => {
        for (const word of line.split(' ')) out.collect({ word, count: 1 });
      })
      .keyBy('word')
      .reduce((a, b) => ({ word: a.word, count: a.count + b.count }), { uid: 'counts' })
      .sinkTo(FileSink.jsonl({ path: values.output }), { uid: 'out' });
  },
});
