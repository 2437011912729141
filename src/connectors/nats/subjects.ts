/**
 * NATS subject matching (pure): tokens separated by `.`, `*` matches exactly one token, `>`
 * (last token only) matches one or more. Used to resolve a source's `subjects` option against
 * the subjects a stream holds.
 */

/** Whether `subject` contains a wildcard token (`*` or `>`). */
export const isWildcard = (subject: string): boolean =>
  subject.split('.').some((t) => t === '*' || t === '>');

/**
 * Whether the concrete or wildcard `subject` is a valid NATS subject: non-empty tokens, no
 * whitespace, `>` only as the last token. Returns the reason it is not, or undefined.
 */
export const subjectProblem = (subject: string): string | undefined => {
  if (subject === '') return 'it is empty';
  if (/\s/.test(subject)) return 'it contains whitespace';
  const tokens = subject.split('.');
  if (tokens.some((t) => t === ''))
    return "it has an empty token (a leading, trailing or double '.')";
  const gt = tokens.indexOf('>');
  if (gt !== -1 && gt !== tokens.length - 1) return "'>' may only be the last token";
  if (tokens.some((t) => t !== '*' && t !== '>' && (t.includes('*') || t.includes('>')))) {
    return "'*' and '>' must be whole tokens";
  }
  return undefined;
};

/**
 * Whether `pattern` (possibly with wildcards) matches the subject `subject`. When `subject`
 * has wildcards itself, it matches if every subject it can match is matched by `pattern`
 * (pattern covers subject).
 *
 * @example
 * subjectMatches('orders.*', 'orders.eu'); // true
 * subjectMatches('orders.>', 'orders.eu.paid'); // true
 * subjectMatches('orders.*', 'orders.eu.paid'); // false
 */
export const subjectMatches = (pattern: string, subject: string): boolean => {
  const p = pattern.split('.');
  const s = subject.split('.');
  for (let i = 0; i < p.length; i++) {
    const pt = p[i]!;
    if (pt === '>') return s.length > i;
    const st = s[i];
    if (st === undefined) return false;
    if (st === '>') return false; // a `>` in subject covers more than a single-token pattern
    if (pt !== '*' && pt !== st) return false;
    if (pt !== '*' && st === '*') return false;
  }
  return s.length === p.length;
};

/** What {@link resolveSubjects} works from: a stream's configured and present subjects. */
export interface StreamSubjects {
  /** The stream's configured subjects (`config.subjects`; may contain wildcards). */
  readonly configured: readonly string[];
  /** The concrete subjects that hold messages now (stream info with a subjects filter). */
  readonly present: readonly string[];
}

/** Why {@link resolveSubjects} found nothing to read, for the caller's error message. */
export type ResolveProblem =
  | { kind: 'outside'; subject: string }
  | { kind: 'none'; requested: readonly string[] | undefined };

/**
 * The concrete subjects a source reads, sorted (so split `i` goes to the same reader on every
 * start): each requested wildcard pattern contributes the present subjects it matches; each
 * requested concrete subject is taken as it is (it may have no messages yet) if the stream's
 * configured subjects cover it. Without `requested`: every present subject, plus the
 * stream's concrete configured subjects (which may not hold messages yet).
 *
 * Hazard: a wildcard only resolves to subjects that hold messages when the job starts;
 * subjects first published later are not read (no periodic discovery yet).
 */
export const resolveSubjects = (
  requested: readonly string[] | undefined,
  stream: StreamSubjects,
): { subjects: string[] } | { problem: ResolveProblem } => {
  const out = new Set<string>();
  if (requested === undefined) {
    for (const s of stream.present) out.add(s);
    for (const s of stream.configured) if (!isWildcard(s)) out.add(s);
  } else {
    for (const r of requested) {
      if (isWildcard(r)) {
        for (const s of stream.present) if (subjectMatches(r, s)) out.add(s);
      } else if (stream.configured.some((c) => subjectMatches(c, r))) {
        out.add(r);
      } else {
        return { problem: { kind: 'outside', subject: r } };
      }
    }
  }
  if (out.size === 0) return { problem: { kind: 'none', requested } };
  return { subjects: [...out].sort() };
};
