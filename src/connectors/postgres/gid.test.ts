import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EddyError } from '../../core/errors.js';
import { checkGidLength, formatGid, gidOwnerPrefix, MAX_GID_LENGTH, parseGid } from './gid.js';

describe('gids', () => {
  it('are eddy:<prefix>:<uid>:<subtask>:<checkpoint>', () => {
    const owner = gidOwnerPrefix('orders', 'pg-out');
    expect(owner).toBe('eddy:orders:pg-out:');
    expect(formatGid(owner, 3, 17)).toBe('eddy:orders:pg-out:3:17');
    expect(parseGid(owner, 'eddy:orders:pg-out:3:17')).toEqual({ subtask: 3, checkpointId: 17 });
  });

  it('percent-encode components, so a colon cannot make one sink own another’s gids', () => {
    const a = gidOwnerPrefix('a', 'b:0');
    const b = gidOwnerPrefix('a:b', '0');
    expect(a).toBe('eddy:a:b%3A0:');
    expect(b).toBe('eddy:a%3Ab:0:');
    expect(parseGid(a, formatGid(b, 1, 2))).toBeUndefined();
    expect(parseGid(b, formatGid(a, 1, 2))).toBeUndefined();
    expect(gidOwnerPrefix("it's ü", 'x')).toBe('eddy:it%27s%20%C3%BC:x:');
  });

  it('parse only gids of the owner with a numeric subtask and checkpoint', () => {
    const owner = gidOwnerPrefix('job', 'sink');
    expect(parseGid(owner, 'eddy:job:sink2:0:1')).toBeUndefined();
    expect(parseGid(owner, 'eddy:job:sink:0')).toBeUndefined();
    expect(parseGid(owner, 'eddy:job:sink:0:1:2')).toBeUndefined();
    expect(parseGid(owner, 'eddy:job:sink:01:1')).toBeUndefined();
    expect(parseGid(owner, 'eddy:job:sink:a:1')).toBeUndefined();
    expect(parseGid(owner, 'other')).toBeUndefined();
  });

  it('round-trip for any prefix, uid, subtask and checkpoint', () => {
    fc.assert(
      fc.property(
        fc.string({ minLength: 1, maxLength: 20 }),
        fc.string({ minLength: 1, maxLength: 20 }),
        fc.nat(10_000),
        fc.nat(Number.MAX_SAFE_INTEGER),
        fc.string({ minLength: 1, maxLength: 20 }),
        (prefix, uid, subtask, cp, otherUid) => {
          const owner = gidOwnerPrefix(prefix, uid);
          const gid = formatGid(owner, subtask, cp);
          expect(/^[A-Za-z0-9._%:-]+$/.test(gid)).toBe(true);
          expect(parseGid(owner, gid)).toEqual({ subtask, checkpointId: cp });
          if (otherUid !== uid) {
            expect(parseGid(gidOwnerPrefix(prefix, otherUid), gid)).toBeUndefined();
          }
        },
      ),
    );
  });

  it('refuse owners whose gids could exceed PostgreSQL’s 199 characters', () => {
    expect(() => checkGidLength(gidOwnerPrefix('job', 'sink'))).not.toThrow();
    const long = gidOwnerPrefix('x'.repeat(MAX_GID_LENGTH), 'sink');
    expect(() => checkGidLength(long)).toThrow(EddyError);
    expect(() => gidOwnerPrefix('', 'sink')).toThrow(EddyError);
  });
});
