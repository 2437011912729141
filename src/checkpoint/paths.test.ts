import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  checkpointDirName,
  isContainedRelativePath,
  keyedStateFileName,
  parseCheckpointDirName,
  safeFileComponent,
} from './paths.js';

describe('paths', () => {
  it('parse what they build, and nothing else', () => {
    fc.assert(
      fc.property(fc.nat(), (id) => {
        expect(parseCheckpointDirName(checkpointDirName(id))).toBe(id);
      }),
    );
    for (const name of ['chk-', 'chk-01', 'chk-1a', 'chk--1', 'xchk-1', 'chk-99999999999999999']) {
      expect(parseCheckpointDirName(name)).toBeUndefined();
    }
  });

  it('make names file-safe and keep distinct names distinct', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 30 }), fc.string({ maxLength: 30 }), (a, b) => {
        const sa = safeFileComponent(a);
        expect(sa).toMatch(/^[A-Za-z0-9_%-]+$/);
        if (a !== b) expect(sa).not.toBe(safeFileComponent(b));
      }),
    );
    expect(keyedStateFileName('../etc/x', 3)).toBe('%002e%002e%002fetc%002fx-3.keyed');
    expect(safeFileComponent('u'.repeat(500)).length).toBeLessThanOrEqual(100);
  });

  it('accept only relative paths that stay inside the directory', () => {
    for (const ok of ['a.keyed', 'sub/a.keyed', '%2e'])
      expect(isContainedRelativePath(ok)).toBe(true);
    for (const bad of ['', '/etc/passwd', '../x', 'a/../../x', 'a//b', './a', 'a\\b', 'a\0b']) {
      expect(isContainedRelativePath(bad)).toBe(false);
    }
  });
});
