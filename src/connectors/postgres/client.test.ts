import pg from 'pg';
import { beforeAll, describe, expect, it } from 'vitest';
import { describeServer, isConnectionError, loadPostgresClient, pgError } from './client.js';

// The classification knows pg's errors once pg is loaded, as it always is after a connect.
beforeAll(() => loadPostgresClient());

const where = { who: 'PostgreSQL append sink (test)', server: '127.0.0.1:5432/db' };
const dbError = (code: string, message = 'boom') => {
  const e = new pg.DatabaseError(message, 0, 'error');
  e.code = code;
  return e;
};

describe('PostgreSQL error classification', () => {
  it('refusals are EDDY_CONNECTOR_CONFIG (not retriable) with the fix', () => {
    for (const code of ['28P01', '3D000', '42P01', '42703', '42501', '42P10', '55000']) {
      const e = pgError(where, 'writing rows', dbError(code), 'Fix it');
      expect(e.code, code).toBe('EDDY_CONNECTOR_CONFIG');
      expect(e.retriable).toBe(false);
      expect(e.message).toContain('127.0.0.1:5432/db');
      expect(e.message).toContain(`SQLSTATE ${code}`);
      expect(e.message).toContain('Fix it');
    }
  });

  it('refused rows are EDDY_SINK_IO, user domain, not retriable', () => {
    for (const code of ['22P02', '23502', '23505']) {
      const e = pgError(where, 'writing rows', dbError(code));
      expect([e.code, e.domain, e.retriable], code).toEqual(['EDDY_SINK_IO', 'user', false]);
    }
  });

  it('lost connections and transient server states are retriable EDDY_SINK_IO', () => {
    const transient = [
      dbError('57P01'),
      dbError('08006'),
      dbError('40001'),
      dbError('53300'),
      Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' }),
      new Error('Connection terminated unexpectedly'),
    ];
    for (const cause of transient) {
      const e = pgError(where, 'writing rows', cause);
      expect([e.code, e.retriable], String(cause)).toEqual(['EDDY_SINK_IO', true]);
    }
    expect(isConnectionError(dbError('57P01'))).toBe(true);
    expect(isConnectionError(new Error('Connection terminated unexpectedly'))).toBe(true);
    expect(isConnectionError(dbError('23505'))).toBe(false);
  });

  it('describes the server without the password', () => {
    expect(describeServer('postgres://u:secret@db.example:6543/app')).toBe('db.example:6543/app');
    expect(describeServer('postgresql://u@host/x')).toBe('host:5432/x');
    expect(describeServer('not a url')).toBe('(unparsable URL)');
  });
});
