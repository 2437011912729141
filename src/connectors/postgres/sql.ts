/**
 * Pure SQL building for the PostgreSQL sink: identifier and literal quoting, multi-row
 * INSERT and upsert statements, batch sizing and in-batch de-duplication. No I/O here.
 */
import { InvalidArgumentError } from '../../core/errors.js';

/**
 * PostgreSQL's limit on bind parameters in one statement (a 16-bit count in the wire
 * protocol's Bind message); a batch of more would fail with "bind message has N parameter
 * formats but 0 parameters".
 */
export const MAX_BIND_PARAMETERS = 65_535;

/**
 * Quotes one identifier exactly as given: case is kept and any character is allowed
 * (embedded double quotes are doubled). So `'Events'` names the table `"Events"`, which is
 * not the `events` that an unquoted `CREATE TABLE Events` creates.
 *
 * @example
 * quoteIdent('user id'); // '"user id"'
 */
export const quoteIdent = (name: string): string => {
  if (name.length === 0) throw new InvalidArgumentError('PostgreSQL sink: an empty identifier');
  if (name.includes('\0')) {
    throw new InvalidArgumentError(`PostgreSQL sink: identifier ${JSON.stringify(name)} holds NUL`);
  }
  return `"${name.replaceAll('"', '""')}"`;
};

/**
 * Quotes a string literal for statements that take no bind parameters (`PREPARE
 * TRANSACTION`, `COMMIT PREPARED`). Doubling single quotes is enough with
 * `standard_conforming_strings` on (the default since 9.1); the E'' form is avoided.
 */
export const quoteLiteral = (value: string): string => {
  if (value.includes('\0')) throw new InvalidArgumentError('PostgreSQL sink: a literal holds NUL');
  return `'${value.replaceAll("'", "''")}'`;
};

/**
 * Splits a possibly schema-qualified table name into its parts. A part is taken literally;
 * a part in double quotes may hold dots (`"my.schema".events`, `""` for a quote).
 *
 * @example
 * parseTableName('analytics.events'); // ['analytics', 'events']
 * parseTableName('"a.b"."T"');        // ['a.b', 'T']
 */
export const parseTableName = (table: string): string[] => {
  const parts: string[] = [];
  let i = 0;
  const bad = (why: string) =>
    new InvalidArgumentError(`PostgreSQL sink: table name ${JSON.stringify(table)} ${why}`);
  while (i <= table.length) {
    let part = '';
    if (table[i] === '"') {
      i++;
      for (;;) {
        if (i >= table.length) throw bad('has an unterminated quote');
        if (table[i] === '"') {
          if (table[i + 1] === '"') {
            part += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        part += table[i++];
      }
      if (i < table.length && table[i] !== '.') throw bad('has text after a closing quote');
    } else {
      const dot = table.indexOf('.', i);
      const end = dot === -1 ? table.length : dot;
      part = table.slice(i, end);
      if (part.includes('"')) throw bad('has a quote inside an unquoted part');
      i = end;
    }
    if (part === '') throw bad('has an empty part');
    parts.push(part);
    if (i >= table.length) break;
    i++; // the dot
    if (i >= table.length) throw bad('ends with a dot');
  }
  if (parts.length === 0 || parts.length > 3) throw bad('needs 1 to 3 dot-separated parts');
  return parts;
};

/** `schema.table` as a quoted SQL name. */
export const quoteTable = (table: string): string =>
  parseTableName(table).map(quoteIdent).join('.');

/** Rows per statement: `requested`, lowered so that rows × columns fits the bind limit. */
export const effectiveBatchSize = (requested: number, columns: number): number => {
  if (!Number.isInteger(requested) || requested < 1) {
    throw new InvalidArgumentError(
      `PostgreSQL sink: batchSize must be a positive integer, got ${requested}`,
    );
  }
  return Math.max(1, Math.min(requested, Math.floor(MAX_BIND_PARAMETERS / columns)));
};

/** What an INSERT statement is built from; names unquoted (quoted by the builders). */
export interface InsertShape {
  readonly table: string;
  readonly columns: readonly string[];
}

/** `($1, $2), ($3, $4), …` for `rows` rows of `columns` values. */
const valuesList = (rows: number, columns: number): string => {
  const tuples: string[] = new Array(rows);
  let n = 1;
  for (let r = 0; r < rows; r++) {
    const ps: string[] = new Array(columns);
    for (let c = 0; c < columns; c++) ps[c] = `$${n++}`;
    tuples[r] = `(${ps.join(', ')})`;
  }
  return tuples.join(', ');
};

/**
 * A parameterized multi-row INSERT of `rows` rows.
 *
 * @example
 * insertSql({ table: 'events', columns: ['id', 'v'] }, 2);
 * // 'INSERT INTO "events" ("id", "v") VALUES ($1, $2), ($3, $4)'
 */
export const insertSql = (shape: InsertShape, rows: number): string =>
  `INSERT INTO ${quoteTable(shape.table)} (${shape.columns.map(quoteIdent).join(', ')}) ` +
  `VALUES ${valuesList(rows, shape.columns.length)}`;

/**
 * A multi-row upsert: INSERT … ON CONFLICT (key) DO UPDATE SET every non-key column to the
 * new row's value (`EXCLUDED`); DO NOTHING when every column is part of the key. The key
 * must match a unique index or constraint of the table, or PostgreSQL refuses (42P10).
 */
export const upsertSql = (shape: InsertShape, key: readonly string[], rows: number): string => {
  const keySet = new Set(key);
  const updates = shape.columns
    .filter((c) => !keySet.has(c))
    .map((c) => `${quoteIdent(c)} = EXCLUDED.${quoteIdent(c)}`);
  const action = updates.length === 0 ? 'DO NOTHING' : `DO UPDATE SET ${updates.join(', ')}`;
  return `${insertSql(shape, rows)} ON CONFLICT (${key.map(quoteIdent).join(', ')}) ${action}`;
};

/** Checks column and key lists: non-empty, no duplicates, key columns among the columns. */
export const validateColumns = (columns: readonly string[], key?: readonly string[]): void => {
  if (columns.length === 0) throw new InvalidArgumentError('PostgreSQL sink: columns is empty');
  const seen = new Set<string>();
  for (const c of columns) {
    quoteIdent(c);
    if (seen.has(c)) throw new InvalidArgumentError(`PostgreSQL sink: column '${c}' given twice`);
    seen.add(c);
  }
  if (key === undefined) return;
  if (key.length === 0) throw new InvalidArgumentError('PostgreSQL sink: upsert key is empty');
  const keySeen = new Set<string>();
  for (const k of key) {
    if (!seen.has(k)) {
      throw new InvalidArgumentError(
        `PostgreSQL sink: key column '${k}' is not one of the columns (${columns.join(', ')})`,
      );
    }
    if (keySeen.has(k)) throw new InvalidArgumentError(`PostgreSQL sink: key column '${k}' twice`);
    keySeen.add(k);
  }
};

/**
 * A string that is equal for two values exactly when they are the same key value (type
 * included): 1 and '1' differ, two Dates of one instant are equal, Buffers by content.
 * Hazard: PostgreSQL compares after casting to the column type, so values of mixed JS types
 * that cast to one key (1 and '1' into an integer column) are not merged here and make the
 * upsert fail with "cannot affect row a second time"; give keys one type.
 */
const keyPart = (v: unknown): string => {
  if (v === null || v === undefined) return 'n';
  switch (typeof v) {
    case 'string':
      return `s${v}`;
    case 'number':
      return `d${v}`;
    case 'bigint':
      return `b${v}`;
    case 'boolean':
      return v ? 't' : 'f';
    default:
      if (v instanceof Date) return `D${v.getTime()}`;
      if (Buffer.isBuffer(v)) return `B${v.toString('hex')}`;
      return `j${JSON.stringify(v)}`;
  }
};

/**
 * Keeps, for each key, only the last row with it, in the order of those last rows.
 * PostgreSQL refuses a multi-row INSERT … ON CONFLICT DO UPDATE that touches one row twice
 * ("ON CONFLICT DO UPDATE command cannot affect row a second time"); keeping the last row of
 * a key is what applying the rows one by one would have left. Rows with a NULL key value
 * never conflict, so they are all kept.
 *
 * @example
 * dedupeLastByKey([[1, 'a'], [2, 'b'], [1, 'c']], [0]); // [[2, 'b'], [1, 'c']]
 */
export const dedupeLastByKey = (
  rows: readonly (readonly unknown[])[],
  keyIndexes: readonly number[],
): (readonly unknown[])[] => {
  const last = new Map<string, number>();
  const keep: boolean[] = new Array(rows.length).fill(true);
  for (let r = 0; r < rows.length; r++) {
    const row = rows[r]!;
    let id = '';
    let hasNull = false;
    for (const k of keyIndexes) {
      const v = row[k];
      if (v === null || v === undefined) hasNull = true;
      const part = keyPart(v);
      id += `${part.length}:${part}`;
    }
    if (hasNull) continue;
    const previous = last.get(id);
    if (previous !== undefined) keep[previous] = false;
    last.set(id, r);
  }
  return rows.filter((_, r) => keep[r]);
};

/** Splits `rows` into consecutive chunks of at most `size`. */
export const chunk = <R>(rows: readonly R[], size: number): R[][] => {
  const out: R[][] = [];
  for (let i = 0; i < rows.length; i += size) out.push(rows.slice(i, i + size));
  return out;
};
