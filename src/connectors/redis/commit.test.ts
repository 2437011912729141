import { describe, expect, it } from 'vitest';
import { ChunkBuilder, isCommitted } from './commit.js';
import { classifyFailure, serverName } from './connection.js';

const reply = (message: string) => Object.assign(new Error(message), { name: 'ReplyError' });

describe('commit marker', () => {
  it('skips chunks at or below the marker, in (checkpoint, chunk) order', () => {
    expect(isCommitted(null, 1, 0)).toBe(false);
    expect(isCommitted('7:2', 7, 0)).toBe(true);
    expect(isCommitted('7:2', 7, 2)).toBe(true);
    expect(isCommitted('7:2', 7, 3)).toBe(false);
    expect(isCommitted('7:2', 6, 9)).toBe(true);
    expect(isCommitted('7:2', 8, 0)).toBe(false);
    expect(isCommitted('10:0', 9, 5)).toBe(true); // numeric, not string order
    expect(isCommitted('garbage', 1, 0)).toBe(false);
  });
});

describe('ChunkBuilder', () => {
  it('seals chunks by entries and numbers them per checkpoint', () => {
    const b = new ChunkBuilder(2, 1 << 20);
    b.add('a', ['data', '1'], 5);
    b.add('b', ['data', '2'], 5);
    b.add('a', ['data', '3', 'x', 'y'], 7);
    expect(b.size).toBe(3);
    const chunks = b.take(4);
    expect(chunks.map((c) => [c.checkpointId, c.chunk, c.count])).toEqual([
      [4, 0, 2],
      [4, 1, 1],
    ]);
    expect(chunks[0]!.streams).toEqual(['a', 'b']);
    expect(chunks[0]!.entries).toEqual([1, 2, 'data', '1', 2, 2, 'data', '2']);
    expect(chunks[1]!.streams).toEqual(['a']);
    expect(chunks[1]!.entries).toEqual([1, 4, 'data', '3', 'x', 'y']);
    expect(b.size).toBe(0);
    expect(b.take(5)).toEqual([]);
  });

  it('seals by bytes, and continues numbering from firstChunk', () => {
    const b = new ChunkBuilder(1000, 10);
    for (let i = 0; i < 5; i++) b.add('s', ['data', 'abcd'], 8);
    const chunks = b.take(0, 7);
    expect(chunks.map((c) => [c.chunk, c.count])).toEqual([
      [7, 2],
      [8, 2],
      [9, 1],
    ]);
  });

  it('clear drops what was added', () => {
    const b = new ChunkBuilder(1, 10);
    b.add('s', ['data', '1'], 5);
    b.add('s', ['data', '2'], 5);
    b.clear();
    expect(b.size).toBe(0);
    expect(b.take(1)).toEqual([]);
  });
});

describe('redis failures', () => {
  it('classifies refusals, transient states and connection errors', () => {
    expect(classifyFailure(reply('WRONGTYPE Operation against a key'))).toBe('refused');
    expect(classifyFailure(reply('WRONGPASS invalid username-password pair'))).toBe('refused');
    expect(classifyFailure(reply('NOAUTH Authentication required.'))).toBe('refused');
    expect(classifyFailure(reply('NOPERM this user has no permissions'))).toBe('refused');
    expect(classifyFailure(reply('LOADING Redis is loading the dataset in memory'))).toBe(
      'transient',
    );
    expect(classifyFailure(reply('BUSY Redis is busy running a script'))).toBe('transient');
    expect(classifyFailure(reply('ERR syntax error'))).toBe('failed');
    expect(classifyFailure(reply("ERR unknown command 'XREAD', with args"))).toBe('refused');
    expect(classifyFailure(new Error('connect ECONNREFUSED 127.0.0.1:1'))).toBe('transient');
    expect(classifyFailure(new Error('Connection is closed.'))).toBe('transient');
  });

  it('names the server without its password', () => {
    expect(serverName('redis://:secret@127.0.0.1:6379/2')).toBe('redis://127.0.0.1:6379/2');
    expect(serverName('redis://u:p@h:1')).toBe('redis://h:1');
    expect(serverName('nonsense')).toBe('(invalid Redis URL)');
  });
});
