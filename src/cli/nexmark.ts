/**
 * `eddy nexmark generate --events N --out DIR [--files K]`: writes the Nexmark events 0..N-1
 * (the same the Nexmark source generates) as JSON Lines, one object per line with `type` and
 * the Nexmark field names, into K files `nexmark-<k>.jsonl` of contiguous event-id ranges
 * [floor(k*N/K), floor((k+1)*N/K)). Within a file events are in `dateTime` order. Writes
 * are buffered (about 1 MiB per write); a file appears under its name only when complete.
 */
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  renameSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { nexmarkConfig, nexmarkEvent } from '../connectors/nexmark/generator.js';
import { EddyError } from '../core/errors.js';

/** Options of {@link nexmarkGenerateCommand} (from the command line). */
export interface NexmarkGenerateOptions {
  events: number;
  out: string;
  files?: number;
  eventsPerSecond?: number;
  baseTime?: number;
}

const FLUSH_CHARS = 1 << 20;

/** The name of file `k` of the generated data set. */
export const nexmarkFileName = (k: number): string => `nexmark-${String(k).padStart(4, '0')}.jsonl`;

const writeRange = (path: string, from: number, to: number, generate: (id: number) => unknown) => {
  const partial = `${path}.inprogress`;
  const fd = openSync(partial, 'w');
  try {
    let buffer = '';
    for (let id = from; id < to; id++) {
      buffer += `${JSON.stringify(generate(id))}\n`;
      if (buffer.length >= FLUSH_CHARS) {
        writeSync(fd, buffer);
        buffer = '';
      }
    }
    if (buffer.length > 0) writeSync(fd, buffer);
  } finally {
    closeSync(fd);
  }
  renameSync(partial, path);
};

/** Writes the files; prints one summary line. Returns the exit code. */
export const nexmarkGenerateCommand = async (o: NexmarkGenerateOptions): Promise<number> => {
  const files = o.files ?? 1;
  const config = nexmarkConfig({
    ...(o.eventsPerSecond === undefined ? {} : { eventsPerSecond: o.eventsPerSecond }),
    ...(o.baseTime === undefined ? {} : { baseTime: o.baseTime }),
  });
  if (existsSync(o.out) && readdirSync(o.out).some((f) => f.startsWith('nexmark-'))) {
    throw new EddyError(
      'EDDY_INVALID_ARGUMENT',
      `nexmark generate: ${o.out} already holds nexmark-*.jsonl files: give an empty or new directory`,
      { domain: 'user' },
    );
  }
  mkdirSync(o.out, { recursive: true });
  const started = Date.now();
  for (let k = 0; k < files; k++) {
    const from = Math.floor((k * o.events) / files);
    const to = Math.floor(((k + 1) * o.events) / files);
    writeRange(join(o.out, nexmarkFileName(k)), from, to, (id) => nexmarkEvent(id, config));
  }
  const seconds = (Date.now() - started) / 1000;
  process.stdout.write(
    `generated ${o.events} Nexmark events into ${files} file(s) in ${o.out} (${seconds.toFixed(1)} s)\n`,
  );
  return 0;
};
