import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../core/errors.js';
import {
  csvFormat,
  decodeFailureReason,
  jsonlFormat,
  RecordDecodeError,
  splitCsvLine,
} from './formats.js';

const reasonOf = (f: () => unknown): string => {
  try {
    f();
  } catch (e) {
    return decodeFailureReason(e);
  }
  throw new Error('expected a decode failure');
};

/** RFC 4180 encoding of one field, quoting only when needed (or always, when asked). */
const encodeField = (s: string, delimiter: string, always: boolean) =>
  always || s.includes('"') || s.includes(delimiter) ? `"${s.replaceAll('"', '""')}"` : s;

describe('splitCsvLine', () => {
  it('splits plain, quoted and escaped fields', () => {
    expect(splitCsvLine('a,b,c')).toEqual(['a', 'b', 'c']);
    expect(splitCsvLine('a,"b,c","say ""hi"""')).toEqual(['a', 'b,c', 'say "hi"']);
    expect(splitCsvLine('"",x,')).toEqual(['', 'x', '']);
    expect(splitCsvLine(',"q"')).toEqual(['', 'q']);
    expect(splitCsvLine('""""')).toEqual(['"']);
  });

  it('keeps a quote inside an unquoted field literally', () => {
    expect(splitCsvLine('5" screen,x')).toEqual(['5" screen', 'x']);
  });

  it('uses a custom delimiter', () => {
    expect(splitCsvLine('a;"b;c";d,e', ';')).toEqual(['a', 'b;c', 'd,e']);
    expect(splitCsvLine('a\t"b\tc"', '\t')).toEqual(['a', 'b\tc']);
  });

  it('rejects an unterminated quote, saying embedded newlines are unsupported', () => {
    const reason = reasonOf(() => splitCsvLine('a,"open'));
    expect(reason).toMatch(/unterminated quoted field starting at character 3/);
    expect(reason).toMatch(/embedded newlines are not supported/);
  });

  it('rejects text after a closing quote', () => {
    expect(reasonOf(() => splitCsvLine('"a"b,c'))).toMatch(
      /unexpected "b" after the closing quote/,
    );
  });

  it('round-trips any fields through RFC 4180 encoding', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.string().map((s) => s.replace(/[\r\n]/g, '')),
          { minLength: 1, maxLength: 8 },
        ),
        fc.constantFrom(',', ';', '\t', '|'),
        fc.boolean(),
        (fields, delimiter, always) => {
          const line = fields.map((f) => encodeField(f, delimiter, always)).join(delimiter);
          expect(splitCsvLine(line, delimiter)).toEqual(fields);
        },
      ),
    );
  });
});

describe('csvFormat', () => {
  it('decodes rows by header names', () => {
    const decode = csvFormat().decoder('id,"full name"');
    expect(decode('1,"Smith, J."')).toEqual({ id: '1', 'full name': 'Smith, J.' });
  });

  it('uses given columns (no header) and a custom delimiter', () => {
    const format = csvFormat({ columns: ['a', 'b'], delimiter: ';' });
    expect(format.hasHeader).toBe(false);
    expect(format.decoder(undefined)('1;2')).toEqual({ a: '1', b: '2' });
  });

  it('maps rows with parse', () => {
    const decode = csvFormat({ parse: (r) => ({ id: Number(r.id), ok: r.ok === 'y' }) }).decoder(
      'id,ok',
    );
    expect(decode('7,y')).toEqual({ id: 7, ok: true });
  });

  it('rejects a row with the wrong number of fields', () => {
    const decode = csvFormat().decoder('a,b,c');
    expect(reasonOf(() => decode('1,2'))).toBe('expected 3 fields, found 2');
    expect(reasonOf(() => decode('1,2,3,4'))).toBe('expected 3 fields, found 4');
  });

  it('turns a throwing parse into a bad record reason', () => {
    const decode = csvFormat({
      parse: (r) => {
        if (Number.isNaN(Number(r.n))) throw new Error(`n is not a number: ${r.n}`);
        return Number(r.n);
      },
    }).decoder('n');
    expect(() => decode('x')).toThrow(RecordDecodeError);
    expect(reasonOf(() => decode('x'))).toBe('parse mapping threw: n is not a number: x');
  });

  it('rejects duplicate and __proto__ column names in a header', () => {
    expect(() => csvFormat().decoder('a,b,a')).toThrow(/duplicate column name "a"/);
    expect(() => csvFormat().decoder('__proto__')).toThrow(/__proto__/);
  });

  it('validates options eagerly', () => {
    expect(() => csvFormat({ delimiter: ';;' })).toThrow(InvalidArgumentError);
    expect(() => csvFormat({ delimiter: '"' })).toThrow(InvalidArgumentError);
    expect(() => csvFormat({ columns: [] })).toThrow(InvalidArgumentError);
    expect(() => csvFormat({ columns: ['a', 'a'] })).toThrow(InvalidArgumentError);
  });
});

describe('jsonlFormat', () => {
  it('decodes a JSON value per line and explains invalid JSON', () => {
    const decode = jsonlFormat<{ a: number }>().decoder(undefined);
    expect(decode('{"a":1}')).toEqual({ a: 1 });
    expect(reasonOf(() => decode('{"a":'))).toMatch(/^invalid JSON: /);
  });
});
