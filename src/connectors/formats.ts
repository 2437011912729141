/**
 * Line formats for file sources: each input line decodes to one record on its own, so a
 * position is just a byte offset and a line number. Decoders throw for a bad line; the source
 * turns that into a BadRecordError (or a dead letter) naming the file and line.
 */
import { InvalidArgumentError } from '../core/errors.js';

/**
 * A line could not be decoded; `message` is the reason shown to the user.
 *
 * @example
 * throw new RecordDecodeError('expected 3 fields, found 2');
 */
export class RecordDecodeError extends Error {
  constructor(reason: string, options?: { cause?: unknown }) {
    super(reason, options);
    this.name = 'RecordDecodeError';
  }
}

/** Decodes one line; throws (preferably a RecordDecodeError) for a bad line. */
export type LineDecoder<T> = (line: string) => T;

/** How a file source turns lines into records. */
export interface LineFormat<T> {
  readonly name: string;
  /** True when each file's first non-empty line is a header, handed to `decoder`. */
  readonly hasHeader: boolean;
  /**
   * True when decoded records may hold substrings of the line (so lines must not be slices
   * of a shared chunk string, which those substrings would keep alive).
   */
  readonly keepsLineSubstrings: boolean;
  /**
   * The decoder for one file. Throws a RecordDecodeError when the header itself is invalid
   * (then the whole file is unreadable).
   */
  decoder(header: string | undefined): LineDecoder<T>;
}

/**
 * The human-readable reason for a decoder failure.
 *
 * @example
 * decodeFailureReason(new SyntaxError('Unexpected end of JSON input')); // 'invalid JSON: ...'
 */
export const decodeFailureReason = (e: unknown): string => {
  if (e instanceof SyntaxError) return `invalid JSON: ${e.message}`;
  if (e instanceof Error) return e.message;
  return String(e);
};

/**
 * JSON Lines: each non-empty line is one JSON value, decoded with `JSON.parse` (no validation
 * of its shape: `T` is what the caller asserts).
 *
 * @example
 * const decode = jsonlFormat<{ id: number }>().decoder(undefined);
 * decode('{"id":1}'); // { id: 1 }
 */
export const jsonlFormat = <T>(): LineFormat<T> => ({
  name: 'jsonl',
  hasHeader: false,
  keepsLineSubstrings: false, // JSON.parse copies the strings it returns
  // JSON.parse itself, not a wrapper: this runs once per record on the hot path.
  decoder: () => JSON.parse as LineDecoder<T>,
});

/** How CSV lines become records. */
export interface CsvOptions<T> {
  /** Column names; when given, the files have no header line. */
  columns?: readonly string[];
  /** One character separating fields; default `,`. */
  delimiter?: string;
  /**
   * Maps a row to the record type (e.g. converts numbers). If it throws, the line is a bad
   * record with the thrown message as reason, so validation belongs here.
   */
  parse?: (row: Record<string, string>) => T;
}

const QUOTE = 34;

const unterminated = (column: number) =>
  new RecordDecodeError(
    `unterminated quoted field starting at character ${column} ` +
      '(a quoted field must end on the same line: embedded newlines are not supported)',
  );

/**
 * Splits one CSV line into fields (RFC 4180 quoting: a field starting with `"` is quoted,
 * `""` inside it is a quote, delimiters inside quotes are literal). A `"` inside an unquoted
 * field is kept literally. Throws a RecordDecodeError for an unterminated quote or text after
 * a closing quote. Line-oriented: quoted fields cannot contain line breaks.
 *
 * @example
 * splitCsvLine('a,"b,c","say ""hi"""'); // ['a', 'b,c', 'say "hi"']
 */
export const splitCsvLine = (line: string, delimiter = ','): string[] => {
  // Fast path: without quotes, splitting is all there is to do.
  if (line.indexOf('"') === -1) return line.split(delimiter);
  const fields: string[] = [];
  const n = line.length;
  let i = 0;
  for (;;) {
    if (line.charCodeAt(i) !== QUOTE) {
      const d = line.indexOf(delimiter, i);
      if (d === -1) {
        fields.push(line.slice(i));
        return fields;
      }
      fields.push(line.slice(i, d));
      i = d + 1;
      continue;
    }
    const [value, after] = readQuoted(line, i);
    fields.push(value);
    if (after === n) return fields;
    if (line[after] !== delimiter) {
      throw new RecordDecodeError(
        `unexpected ${JSON.stringify(line[after])} after the closing quote at character ${after + 1}`,
      );
    }
    i = after + 1;
  }
};

/** Reads the quoted field opening at `open`; returns its value and the index after it. */
const readQuoted = (line: string, open: number): [string, number] => {
  let value = '';
  let j = open + 1;
  for (;;) {
    const q = line.indexOf('"', j);
    if (q === -1) throw unterminated(open + 1);
    value += line.slice(j, q);
    if (line.charCodeAt(q + 1) !== QUOTE) return [value, q + 1];
    value += '"';
    j = q + 2;
  }
};

const validateDelimiter = (delimiter: string): void => {
  if (delimiter.length !== 1 || delimiter === '"' || delimiter === '\n' || delimiter === '\r') {
    throw new InvalidArgumentError(
      `CSV delimiter must be one character other than a quote or a line break, got ${JSON.stringify(delimiter)}`,
    );
  }
};

/** Rejects column names a row object cannot hold faithfully. */
const validateColumns = (columns: readonly string[]): void => {
  const seen = new Set<string>();
  for (const c of columns) {
    // Assigning `row.__proto__` would change the row's prototype instead of adding a field.
    if (c === '__proto__') throw new RecordDecodeError('column name "__proto__" is not allowed');
    if (seen.has(c)) throw new RecordDecodeError(`duplicate column name ${JSON.stringify(c)}`);
    seen.add(c);
  }
};

/**
 * CSV, one record per line: the header line (or `options.columns`) names the fields; each row
 * becomes a `Record<string, string>`, mapped by `options.parse` when given. A row with the
 * wrong number of fields is a bad record.
 *
 * @example
 * const decode = csvFormat({ parse: (r) => ({ id: Number(r.id) }) }).decoder('id,name');
 * decode('7,"Smith, J."'); // { id: 7 }
 */
export const csvFormat = <T = Record<string, string>>(
  options: CsvOptions<T> = {},
): LineFormat<T> => {
  const delimiter = options.delimiter ?? ',';
  validateDelimiter(delimiter);
  const given = options.columns;
  if (given !== undefined) {
    if (given.length === 0) throw new InvalidArgumentError('CSV columns must not be empty');
    try {
      validateColumns(given);
    } catch (e) {
      throw new InvalidArgumentError(`invalid CSV columns: ${(e as Error).message}`);
    }
  }
  return {
    name: 'csv',
    hasHeader: given === undefined,
    keepsLineSubstrings: true, // fields are slices of the line
    decoder: (header) => {
      const columns = given ?? splitCsvLine(header ?? '', delimiter);
      validateColumns(columns);
      return csvRowDecoder(columns, delimiter, options.parse);
    },
  };
};

const csvRowDecoder = <T>(
  columns: readonly string[],
  delimiter: string,
  parse: ((row: Record<string, string>) => T) | undefined,
): LineDecoder<T> => {
  const width = columns.length;
  return (line) => {
    const fields = splitCsvLine(line, delimiter);
    if (fields.length !== width) {
      throw new RecordDecodeError(`expected ${width} fields, found ${fields.length}`);
    }
    const row: Record<string, string> = {};
    for (let i = 0; i < width; i++) row[columns[i]!] = fields[i]!;
    if (parse === undefined) return row as T;
    try {
      return parse(row);
    } catch (e) {
      const reason = e instanceof Error ? e.message : String(e);
      throw new RecordDecodeError(`parse mapping threw: ${reason}`, { cause: e });
    }
  };
};
