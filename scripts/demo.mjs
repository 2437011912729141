#!/usr/bin/env node
// The demo: generates sample events (once), runs examples/keyed-sum.ts on the embedded
// default (local worker threads, no server) and shows some of its output.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const dir = join(root, '.eddy', 'demo');
const input = join(dir, 'input');
const output = join(dir, 'output');
const events = 200_000;
const users = 1_000;
const files = 4;

// The marker is hidden: the file source skips names starting with '.'.
if (!existsSync(join(input, '.complete'))) {
  rmSync(input, { recursive: true, force: true });
  mkdirSync(input, { recursive: true });
  // A small xorshift PRNG keeps the sample identical on every machine.
  let s = 0x9e3779b9;
  const next = () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 2 ** 32;
  };
  for (let f = 0; f < files; f++) {
    let text = '';
    for (let i = 0; i < events / files; i++) {
      text += `{"user":"user-${Math.floor(next() * users)}","amount":${1 + Math.floor(next() * 100)}}\n`;
    }
    writeFileSync(join(input, `events-${f}.jsonl`), text);
  }
  writeFileSync(join(input, '.complete'), '');
}
rmSync(output, { recursive: true, force: true });

const parallelism = String(Math.min(availableParallelism(), 4));
console.log(`eddy demo: keyed-sum over ${events.toLocaleString()} events, parallelism ${parallelism}`);
const run = spawnSync(
  process.execPath,
  [join(root, 'bin', 'eddy.mjs'), 'run', join(root, 'examples', 'keyed-sum.ts'), '-p', parallelism, '--', '--input', input, '--output', output],
  { stdio: 'inherit' },
);
if (run.status !== 0) process.exit(run.status ?? 1);

const parts = readdirSync(output).filter((f) => f.startsWith('part-')).sort();
const lines = parts.flatMap((f) => readFileSync(join(output, f), 'utf8').split('\n').filter(Boolean));
const finals = new Map();
for (const l of lines) {
  const { user, total } = JSON.parse(l);
  finals.set(user, Math.max(finals.get(user) ?? 0, total));
}
const top = [...finals.entries()].sort((a, b) => b[1] - a[1]).slice(0, 5);
console.log(`${lines.length.toLocaleString()} output lines in ${parts.length} part files under ${output}`);
console.log('top users by total:');
for (const [user, total] of top) console.log(`  ${user.padEnd(10)} ${total}`);
