import { spawnSync } from 'node:child_process';
import { appendFileSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { JobRegistry } from '../control/registry.js';
import { jobLogPath, jobLogsDir } from './job-log.js';
import { formatLogLine, logsCommand } from './logs.js';

const home = () => mkdtempSync(join(tmpdir(), 'eddy-logs-'));

const line = (event: string, msg: string, extra: object = {}, pid = process.pid) =>
  `${JSON.stringify({ level: 'info', time: '2026-01-02T03:04:05.678Z', pid, jobId: 'j', event, ...extra, msg })}\n`;

const writeLog = (h: string, id: string, text: string) => {
  mkdirSync(jobLogsDir(h), { recursive: true });
  writeFileSync(jobLogPath(h, id), text);
};

const collect = () => {
  let text = '';
  const out = (t: string) => {
    text += t;
  };
  return { out, text: () => text };
};

/** The pid of a process that has ended. */
const deadPid = () => spawnSync(process.execPath, ['-e', '']).pid!;

describe('formatLogLine', () => {
  it('prints time, level and the human line; indents further lines; passes others through', () => {
    expect(formatLogLine(line('checkpoint', 'checkpoint 1 completed').trim())).toBe(
      '2026-01-02T03:04:05.678Z INFO  checkpoint 1 completed',
    );
    expect(
      formatLogLine(JSON.stringify({ level: 'warn', time: 't', msg: 'job failed: x\nrestarting' })),
    ).toBe('t WARN  job failed: x\n    restarting');
    expect(formatLogLine('not json')).toBe('not json');
    expect(formatLogLine('{"no":"msg"}')).toBe('{"no":"msg"}');
  });
});

describe('logsCommand', () => {
  it('prints a job found by a unique prefix of its log file (no registry entry), human or raw', async () => {
    const h = home();
    const text = line('job-start', 'started') + line('job-end', 'finished in 1 s');
    writeLog(h, 'abc-123', text);
    writeLog(h, 'abd-456', line('job-start', 'other'));
    const human = collect();
    expect(await logsCommand('abc', { home: h, out: human.out })).toBe(0);
    expect(human.text()).toBe(
      '2026-01-02T03:04:05.678Z INFO  started\n2026-01-02T03:04:05.678Z INFO  finished in 1 s\n',
    );
    const raw = collect();
    await logsCommand('abc-123', { home: h, out: raw.out, json: true });
    expect(raw.text()).toBe(text);
  });

  it('resolves through the registry first, as eddy stop does', async () => {
    const h = home();
    new JobRegistry(h).register({
      id: 'reg-1',
      name: 'n',
      pid: process.pid,
      status: 'finished',
      parallelism: 1,
      startedAt: new Date().toISOString(),
      socket: join(h, 'none.sock'),
    });
    writeLog(h, 'reg-1', line('job-start', 'hello'));
    const o = collect();
    await logsCommand('reg', { home: h, out: o.out, json: true });
    expect(o.text()).toContain('"hello"');
  });

  it('refuses an unknown or ambiguous id, and a job without a log file', async () => {
    const h = home();
    writeLog(h, 'abc-1', line('job-start', 'a'));
    writeLog(h, 'abc-2', line('job-start', 'b'));
    await expect(logsCommand('zzz', { home: h, out: () => {} })).rejects.toThrow(
      /no job with id 'zzz'/,
    );
    await expect(logsCommand('abc', { home: h, out: () => {} })).rejects.toThrow(/no job with id/);
    new JobRegistry(h).register({
      id: 'nolog',
      name: 'n',
      pid: process.pid,
      status: 'finished',
      parallelism: 1,
      startedAt: new Date().toISOString(),
      socket: join(h, 'none.sock'),
    });
    await expect(logsCommand('nolog', { home: h, out: () => {} })).rejects.toThrow(
      /job nolog has no log at .*nolog\.log/,
    );
  });

  it('-f prints lines as they are written and returns at the final event', async () => {
    const h = home();
    writeLog(h, 'live', line('job-start', 'started'));
    const o = collect();
    let done = false;
    const following = logsCommand('live', { home: h, out: o.out, follow: true, pollMs: 5 }).then(
      (code) => {
        done = true;
        return code;
      },
    );
    await until(() => o.text().includes('started'));
    // Half a line: printed only once it is whole.
    const chk = line('checkpoint', 'checkpoint 1 completed');
    appendFileSync(jobLogPath(h, 'live'), chk.slice(0, 20));
    await new Promise((r) => setTimeout(r, 30));
    expect(o.text()).not.toContain('checkpoint 1');
    appendFileSync(jobLogPath(h, 'live'), chk.slice(20));
    await until(() => o.text().includes('checkpoint 1 completed'));
    expect(done).toBe(false);
    appendFileSync(jobLogPath(h, 'live'), line('job-failed', 'job failed: boom'));
    expect(await following).toBe(0);
    expect(o.text().split('\n').filter(Boolean)).toHaveLength(3);
  });

  it('-f returns once the writing process is gone, even without a final event (a crash)', async () => {
    const h = home();
    writeLog(h, 'crashed', line('job-start', 'started', {}, deadPid()));
    const o = collect();
    expect(await logsCommand('crashed', { home: h, out: o.out, follow: true, pollMs: 5 })).toBe(0);
    expect(o.text()).toContain('started');
  });
});

const until = async (cond: () => boolean) => {
  for (const end = Date.now() + 10_000; !cond(); ) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
};
