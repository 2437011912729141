import { describe, expect, it } from 'vitest';
import { EddyError } from '../../core/errors.js';
import { PostgresSink } from './index.js';

const base = {
  url: 'postgres://u:p@127.0.0.1:5432/db',
  table: 'events',
  columns: ['id', 'v'],
  toRow: (r: { id: number; v: string }) => [r.id, r.v],
};

const codeOf = (f: () => unknown): string | undefined => {
  try {
    f();
  } catch (e) {
    return e instanceof EddyError ? e.code : 'not an EddyError';
  }
  return undefined;
};

describe('PostgresSink options (checked when the job is built)', () => {
  it('accepts valid options and names the operators', () => {
    expect(PostgresSink.append(base).defaultName).toBe('postgres-append');
    expect(PostgresSink.upsert({ ...base, key: ['id'] }).defaultName).toBe('postgres-upsert');
  });

  it('refuses invalid ones with EDDY_INVALID_ARGUMENT', () => {
    const bad: Array<() => unknown> = [
      () => PostgresSink.append({ ...base, url: '' }),
      () => PostgresSink.append({ ...base, table: 'a..b' }),
      () => PostgresSink.append({ ...base, columns: [] }),
      () => PostgresSink.append({ ...base, columns: ['id', 'id'] }),
      () => PostgresSink.append({ ...base, batchSize: 0 }),
      () => PostgresSink.append({ ...base, maxOutageMs: -1 }),
      () => PostgresSink.append({ ...base, transactionPrefix: '' }),
      () => PostgresSink.upsert({ ...base, key: [] }),
      () => PostgresSink.upsert({ ...base, key: ['nope'] }),
      () => PostgresSink.upsert({ ...base } as never),
    ];
    for (const f of bad) expect(codeOf(f), f.toString()).toBe('EDDY_INVALID_ARGUMENT');
  });
});
