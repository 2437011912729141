import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EddyError } from '../../core/errors.js';
import {
  chunk,
  dedupeLastByKey,
  effectiveBatchSize,
  insertSql,
  MAX_BIND_PARAMETERS,
  parseTableName,
  quoteIdent,
  quoteLiteral,
  quoteTable,
  upsertSql,
  validateColumns,
} from './sql.js';

const codeOf = (f: () => unknown): string | undefined => {
  try {
    f();
  } catch (e) {
    return e instanceof EddyError ? e.code : 'not an EddyError';
  }
  return undefined;
};

describe('quoting', () => {
  it('quotes identifiers exactly, doubling embedded quotes', () => {
    expect(quoteIdent('events')).toBe('"events"');
    expect(quoteIdent('Mixed Case')).toBe('"Mixed Case"');
    expect(quoteIdent('a"b')).toBe('"a""b"');
    expect(quoteIdent('x; DROP TABLE t; --')).toBe('"x; DROP TABLE t; --"');
    expect(codeOf(() => quoteIdent(''))).toBe('EDDY_INVALID_ARGUMENT');
    expect(codeOf(() => quoteIdent('a\0b'))).toBe('EDDY_INVALID_ARGUMENT');
  });

  it('quotes literals by doubling single quotes', () => {
    expect(quoteLiteral("it's")).toBe("'it''s'");
    expect(quoteLiteral('eddy:a:b:0:1')).toBe("'eddy:a:b:0:1'");
  });

  it('an identifier round-trips through quoting for any string', () => {
    fc.assert(
      fc.property(
        fc.string({ minLength: 1 }).filter((s) => !s.includes('\0')),
        (s) => {
          const q = quoteIdent(s);
          expect(q.startsWith('"') && q.endsWith('"')).toBe(true);
          expect(q.slice(1, -1).replaceAll('""', '"')).toBe(s);
          // No lone quote inside: the identifier cannot end early.
          expect(/(^|[^"])"([^"]|$)/.test(q.slice(1, -1).replaceAll('""', ''))).toBe(false);
        },
      ),
    );
  });
});

describe('parseTableName / quoteTable', () => {
  it('splits schema-qualified names on dots outside quotes', () => {
    expect(parseTableName('events')).toEqual(['events']);
    expect(parseTableName('analytics.events')).toEqual(['analytics', 'events']);
    expect(parseTableName('"my.schema"."T"')).toEqual(['my.schema', 'T']);
    expect(parseTableName('"a""b".c')).toEqual(['a"b', 'c']);
    expect(parseTableName('db.s.t')).toEqual(['db', 's', 't']);
    expect(quoteTable('analytics.Events')).toBe('"analytics"."Events"');
    expect(quoteTable('"my.schema".events')).toBe('"my.schema"."events"');
  });

  it('refuses malformed names', () => {
    for (const bad of ['', '.t', 't.', 'a..b', '"unterminated', '"a"b', 'a"b', 'a.b.c.d']) {
      expect(
        codeOf(() => parseTableName(bad)),
        bad,
      ).toBe('EDDY_INVALID_ARGUMENT');
    }
  });
});

describe('statements', () => {
  const shape = { table: 'public.events', columns: ['id', 'User Name', 'v'] };

  it('builds a parameterized multi-row INSERT', () => {
    expect(insertSql(shape, 2)).toBe(
      'INSERT INTO "public"."events" ("id", "User Name", "v") VALUES ($1, $2, $3), ($4, $5, $6)',
    );
  });

  it('builds an upsert updating every non-key column from EXCLUDED', () => {
    expect(upsertSql(shape, ['id'], 1)).toBe(
      'INSERT INTO "public"."events" ("id", "User Name", "v") VALUES ($1, $2, $3) ' +
        'ON CONFLICT ("id") DO UPDATE SET "User Name" = EXCLUDED."User Name", "v" = EXCLUDED."v"',
    );
  });

  it('an upsert whose key is every column does nothing on conflict', () => {
    expect(upsertSql({ table: 't', columns: ['a', 'b'] }, ['b', 'a'], 1)).toBe(
      'INSERT INTO "t" ("a", "b") VALUES ($1, $2) ON CONFLICT ("b", "a") DO NOTHING',
    );
  });

  it('uses exactly rows × columns parameters, numbered in order', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 50 }), fc.integer({ min: 1, max: 8 }), (rows, cols) => {
        const columns = Array.from({ length: cols }, (_, i) => `c${i}`);
        const sql = insertSql({ table: 't', columns }, rows);
        const params = [...sql.matchAll(/\$(\d+)/g)].map((m) => Number(m[1]));
        expect(params).toEqual(Array.from({ length: rows * cols }, (_, i) => i + 1));
      }),
    );
  });

  it('validates columns and keys', () => {
    expect(codeOf(() => validateColumns([]))).toBe('EDDY_INVALID_ARGUMENT');
    expect(codeOf(() => validateColumns(['a', 'a']))).toBe('EDDY_INVALID_ARGUMENT');
    expect(codeOf(() => validateColumns(['a', 'b'], ['c']))).toBe('EDDY_INVALID_ARGUMENT');
    expect(codeOf(() => validateColumns(['a', 'b'], []))).toBe('EDDY_INVALID_ARGUMENT');
    expect(codeOf(() => validateColumns(['a', 'b'], ['a', 'a']))).toBe('EDDY_INVALID_ARGUMENT');
    expect(codeOf(() => validateColumns(['a', 'b'], ['b']))).toBeUndefined();
  });
});

describe('batch sizing', () => {
  it('keeps rows × columns within the bind parameter limit', () => {
    expect(effectiveBatchSize(500, 3)).toBe(500);
    expect(effectiveBatchSize(100_000, 3)).toBe(Math.floor(MAX_BIND_PARAMETERS / 3));
    expect(effectiveBatchSize(500, 70_000)).toBe(1);
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 1e6 }), fc.integer({ min: 1, max: 2000 }), (b, c) => {
        const n = effectiveBatchSize(b, c);
        expect(n).toBeGreaterThanOrEqual(1);
        expect(n).toBeLessThanOrEqual(b);
        expect(n * c <= MAX_BIND_PARAMETERS || n === 1).toBe(true);
      }),
    );
    for (const bad of [0, -1, 1.5, Number.NaN]) {
      expect(codeOf(() => effectiveBatchSize(bad, 2))).toBe('EDDY_INVALID_ARGUMENT');
    }
  });

  it('chunks rows in order', () => {
    expect(chunk([1, 2, 3, 4, 5], 2)).toEqual([[1, 2], [3, 4], [5]]);
    expect(chunk([], 3)).toEqual([]);
  });
});

describe('dedupeLastByKey', () => {
  it('keeps the last row of each key, in the order of those last rows', () => {
    const rows = [
      [1, 'a'],
      [2, 'b'],
      [1, 'c'],
      [3, 'd'],
      [2, 'e'],
    ];
    expect(dedupeLastByKey(rows, [0])).toEqual([
      [1, 'c'],
      [3, 'd'],
      [2, 'e'],
    ]);
  });

  it('compares composite keys by type and value', () => {
    const d1 = new Date(1000);
    const d2 = new Date(1000);
    const rows = [
      [1, 'x', 'first'],
      ['1', 'x', 'string key, kept'],
      [d1, 'x', 'date'],
      [d2, 'x', 'same date, wins'],
      [Buffer.from('ab'), 'x', 'buf'],
      [Buffer.from('ab'), 'x', 'same buf, wins'],
      [1, 'x', 'last'],
      // Separators cannot be forged: ('1:', 'x') differs from ('1', ':x').
      ['a:', 'b', 'p'],
      ['a', ':b', 'q'],
    ];
    expect(dedupeLastByKey(rows, [0, 1]).map((r) => r[2])).toEqual([
      'string key, kept',
      'same date, wins',
      'same buf, wins',
      'last',
      'p',
      'q',
    ]);
  });

  it('keeps every row with a NULL key value (NULLs never conflict)', () => {
    const rows = [
      [null, 1],
      [null, 2],
      [undefined, 3],
    ];
    expect(dedupeLastByKey(rows, [0])).toHaveLength(3);
  });

  it('equals applying the rows one by one to a map', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 5 }), fc.integer()), { maxLength: 40 }),
        (rows) => {
          const applied = new Map<number, number>();
          for (const [k, v] of rows) applied.set(k, v);
          const out = dedupeLastByKey(rows, [0]);
          expect(new Map(out.map((r) => [r[0] as number, r[1] as number]))).toEqual(applied);
          expect(out).toHaveLength(applied.size);
        },
      ),
    );
  });
});
