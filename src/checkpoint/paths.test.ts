import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  checkpointDirName,
  fileInDir,
  isContainedRelativePath,
  isSharedFileRef,
  keyedStateFileName,
  parseCheckpointDirName,
  parseSharedFileCheckpointId,
  SHARED_DIR,
  safeFileComponent,
  sharedFileName,
  sharedFileRef,
  sharedKeyedFileName,
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

  it('name shared files so that their checkpoint id parses back, uid and subtask whatever they are', () => {
    fc.assert(
      fc.property(
        fc.string({ maxLength: 120 }),
        fc.nat(9999),
        fc.nat(999_999_999_999_999),
        (uid, subtask, id) => {
          const name = sharedKeyedFileName(uid, subtask, id);
          expect(name).toMatch(/^[A-Za-z0-9_%~-]+-\d+-\d+-[0-9a-f]{8}\.keyed$/);
          expect(parseSharedFileCheckpointId(name)).toBe(id);
          expect(isSharedFileRef(sharedFileRef(name))).toBe(true);
          expect(sharedFileName(sharedFileRef(name))).toBe(name);
        },
      ),
    );
    // Two attempts at the same checkpoint id never share a name (the random tag).
    const names = new Set(Array.from({ length: 50 }, () => sharedKeyedFileName('op', 1, 7)));
    expect(names.size).toBe(50);
    for (const other of [
      'op-1.keyed',
      'op-1-7-0badf00.keyed',
      'op-1-7-0BADF00D.keyed',
      'op-1-7-0badf00d.keyed.tmp',
      'op-1-7-0badf00dd.keyed',
      'op-1-1234567890123456-0badf00d.keyed',
      '_metadata',
    ]) {
      expect(parseSharedFileCheckpointId(other), other).toBeUndefined();
    }
    expect(parseSharedFileCheckpointId('op-1-7-0badf00d.keyed')).toBe(7);
  });

  it('accept as shared file references exactly ../blocks/<plain name>', () => {
    expect(sharedFileRef('a.keyed')).toBe(`../${SHARED_DIR}/a.keyed`);
    expect(fileInDir('/base/chk-3', sharedFileRef('a.keyed'))).toBe('/base/blocks/a.keyed');
    for (const bad of [
      '',
      'a.keyed',
      'blocks/a.keyed',
      '../blocks/',
      '../blocks/../x',
      '../blocks/./x',
      '../blocks/a/b',
      '../blocks//x',
      '../other/x',
      '../../blocks/x',
      '/base/blocks/x',
      '..\\shared\\x',
      '../blocks/a\\..\\b',
      '../blocks/a\0',
      '../blocksx/a',
    ]) {
      expect(isSharedFileRef(bad), bad).toBe(false);
    }
  });
});
