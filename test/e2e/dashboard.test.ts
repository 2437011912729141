/**
 * The web dashboard in a real browser (Debian's chromium via playwright-core): a keyed-sum job
 * started with `--ui-port 0`; the dashboard shows its operators and a non-zero rate; the
 * rescale panel's plan equals `eddy inspect --plan 3 --json` of the checkpoint it names;
 * Rescale moves the job to p=3, it goes on, and its output is exact. Screenshots of the main
 * views go to a temp directory, or to docs/screenshots/ with EDDY_UPDATE_SCREENSHOTS=1 (so a
 * test run leaves the checkout clean).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Browser, launchBrowser } from '../browser/chromium.js';
import {
  EDDY,
  eddy,
  ROOT,
  readParts,
  referenceSums,
  type SumEvent,
  sorted,
  tempDir,
  waitUntil,
  writeEventFiles,
} from './helpers.js';

const SHOTS =
  process.env.EDDY_UPDATE_SCREENSHOTS === '1'
    ? join(ROOT, 'docs/screenshots')
    : tempDir('eddy-screenshots-');

// 28,000 events at 2,000/s: the job runs ~14 s, long enough to load the page, plan and rescale
// while it runs (the rate only slows it down, so a loaded machine makes it longer, not shorter).
// One file per source subtask: both read at full share to the end.
const data: SumEvent[][] = Array.from({ length: 2 }, (_, f) =>
  Array.from({ length: 14_000 }, (_, i) => ({
    user: `f${f}-u${(i * 7) % 61}`,
    amount: (i % 13) + 1,
  })),
);

interface Job {
  child: ChildProcess;
  stderr: () => string;
  exited: Promise<number | null>;
}

const startJob = (
  env: NodeJS.ProcessEnv,
  input: string,
  output: string,
  extra: string[] = [],
): Job => {
  const args = ['run', 'examples/keyed-sum.ts', '-p', '2', '--ui-port', '0', ...extra];
  args.push('--checkpoint-interval', '200', '--checkpoint-dir', join(tempDir(), 'chk'));
  args.push('--', '--input', input, '--output', output, '--rate', '2000');
  const child = spawn(process.execPath, [EDDY, ...args], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d) => {
    stderr += d;
  });
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  return { child, stderr: () => stderr, exited };
};

/** The running job's dashboard URL from `eddy list --json`. */
const dashboardUrl = async (env: NodeJS.ProcessEnv, job: Job): Promise<string> => {
  for (const deadline = Date.now() + 30_000; Date.now() < deadline; ) {
    const r = await eddy(['list', '--json'], undefined, env);
    const jobs = JSON.parse(r.stdout || '[]') as { status: string; url?: string }[];
    const url = jobs.find((j) => j.status === 'running' && j.url)?.url;
    if (url) return url;
    if (job.child.exitCode !== null) throw new Error(`the job ended early:\n${job.stderr()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no running job with a url in \`eddy list --json\`:\n${job.stderr()}`);
};

// Code run in the page is passed as strings: the test's type check has no DOM types.
const inPage = <T>(page: Page, expression: string) => page.evaluate(expression) as Promise<T>;
const waitIn = (page: Page, expression: string, timeout = 30_000) =>
  page.waitForFunction(expression, undefined, { timeout });
const countIs = (page: Page, selector: string, n: number) =>
  waitIn(page, `document.querySelectorAll(${JSON.stringify(selector)}).length === ${n}`);
const samplesAtLeast = (n: number) =>
  `Number(document.querySelector('[data-testid=rate-chart]')?.dataset.samples) >= ${n}`;
const samples = (page: Page) =>
  inPage<number>(
    page,
    `Number(document.querySelector('[data-testid=rate-chart]').dataset.samples)`,
  );
const rateOf = (uid: string) =>
  `Number(document.querySelector('[data-testid=graph-node][data-uid=${uid}]')?.dataset.rate) > 0`;

/** The plan rows the panel shows for `uid`, as the test compares them. */
const shownPlan = (page: Page, uid: string) =>
  inPage<unknown[]>(
    page,
    `[...document.querySelectorAll('[data-testid=plan-operator][data-uid="${uid}"] [data-testid=plan-row]')].map((r) => ({
      index: Number(r.dataset.subtask),
      range: r.dataset.range,
      bytes: Number(r.dataset.bytes),
      reads: JSON.parse(r.dataset.reads),
      from: [...r.querySelectorAll('.chip')].map((c) => /^#(\\d+)/.exec(c.textContent)?.[1]),
    }))`,
  );

interface InspectOp {
  uid: string;
  keyedStateBytes: number;
  plan: {
    parallelism: number;
    subtasks: {
      index: number;
      keyGroupRange: [number, number];
      bytes: number;
      reads: { file: string; offset: number; length: number; keyGroups: [number, number] }[];
    }[];
  };
}

/**
 * Copies the checkpoint the panel planned on (it may be retired by newer checkpoints any
 * moment: then the panel is asked for a fresh plan) and runs the real `eddy inspect` on it.
 */
const planAndInspect = async (page: Page, env: NodeJS.ProcessEnv) => {
  for (let attempt = 0; attempt < 10; attempt++) {
    const code = page.getByTestId('plan-checkpoint');
    await code.waitFor();
    const path = (await code.getAttribute('data-path'))!;
    expect(path).toMatch(/chk-\d+$/);
    const shown = await shownPlan(page, 'running-sum');
    const copy = join(tempDir('eddy-plan-'), 'chk');
    try {
      cpSync(path, copy, { recursive: true });
    } catch {
      // Retired between the plan and the copy: plan again on the newer checkpoint.
      await page.getByRole('button', { name: 'Refresh plan' }).click();
      await waitIn(
        page,
        `document.querySelector('[data-testid=plan-checkpoint]')?.dataset.path !== ${JSON.stringify(path)}`,
      );
      continue;
    }
    const r = await eddy(['inspect', '--plan', '3', '--json', copy], undefined, env);
    expect(r.code, r.stderr).toBe(0);
    rmSync(copy, { recursive: true, force: true });
    const report = JSON.parse(r.stdout) as { operators: InspectOp[] };
    return { shown, report };
  }
  throw new Error('every planned checkpoint was retired before it could be copied');
};

/** A screenshot of the page as it was when a test failed, named in the output. */
const keepFailure = async (page: Page | undefined, name: string) => {
  if (!page) return;
  const path = join(tempDir('eddy-dashboard-'), `${name}-failure.png`);
  await page.screenshot({ path }).catch(() => {});
  console.error(`the page when the test failed: ${path}`);
};

describe('web dashboard (chromium)', () => {
  let browser: Browser | undefined;
  beforeAll(async () => {
    mkdirSync(SHOTS, { recursive: true });
    // Installs Debian's chromium first when it is missing (minutes, once).
    browser = await launchBrowser();
  }, 600_000);
  afterAll(async () => {
    await browser?.close();
  });

  it('shows a running job, plans a rescale like `eddy inspect --plan`, rescales it live; output exact', async () => {
    const env = { ...process.env, EDDY_HOME: tempDir('eddy-home-') };
    const input = writeEventFiles(data);
    const output = join(tempDir(), 'out');
    const job = startJob(env, input, output);
    let page: Page | undefined;
    try {
      const url = await dashboardUrl(env, job);
      page = await browser!.context.newPage();
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      await page.goto(url);

      // The graph: its three operators at p=2, and records flowing.
      await page.locator('[data-testid=graph-node][data-uid=running-sum]').waitFor();
      const nodes = await inPage(
        page,
        `[...document.querySelectorAll('[data-testid=graph-node]')].map((e) => [e.dataset.uid, e.dataset.parallelism])`,
      );
      expect(nodes).toEqual([
        ['events', '2'],
        ['running-sum', '2'],
        ['totals', '2'],
      ]);
      await waitIn(page, rateOf('events'));
      await countIs(page, '[data-testid=subtask-row]', 2);
      // A completed checkpoint (in the history) before planning on it.
      await page.getByTestId('checkpoint-row').first().waitFor();
      await waitUntil(() => /checkpoint \d+ completed/.test(job.stderr()), 'a checkpoint');
      await page.getByTestId('rate-chart').locator('canvas').waitFor();
      await page.getByTestId('keygroup-chart').locator('canvas').waitFor();
      await waitIn(page, samplesAtLeast(3));
      await page.screenshot({ path: join(SHOTS, 'dashboard.png') });

      // The rescale panel: the plan for p=3 is the planner's on the checkpoint it names.
      await page.getByTestId('rescale-button').click();
      await page.getByTestId('rescale-input').fill('3');
      await page.locator('[data-testid=plan-operator][data-uid=running-sum]').waitFor();
      await page.locator('[data-testid=rescale-confirm]:not([disabled])').waitFor();
      const { shown, report } = await planAndInspect(page, env);
      const planned = report.operators.find((o) => o.uid === 'running-sum')!;
      expect(planned.plan.parallelism).toBe(3);
      expect(planned.keyedStateBytes).toBeGreaterThan(0);
      expect(shown).toEqual(
        planned.plan.subtasks.map((s) => ({
          index: s.index,
          range: `${s.keyGroupRange[0]}-${s.keyGroupRange[1]}`,
          bytes: s.bytes,
          reads: s.reads.map((r) => [r.file, r.offset, r.length, r.keyGroups[0], r.keyGroups[1]]),
          // Each read is labelled with the old subtask whose file it reads.
          from: s.reads.map((r) => /running-sum-(\d+)\.keyed$/.exec(r.file)?.[1]),
        })),
      );
      // Only the keyed operator is shown in detail.
      await countIs(page, '[data-testid=plan-operator]', 1);
      await page.getByTestId('rescale-panel').screenshot({ path: join(SHOTS, 'rescale-plan.png') });

      // Rescale: the measured pause, then the job goes on at p=3.
      await page.getByTestId('rescale-confirm').click();
      const result = page.getByTestId('rescale-result');
      await result.waitFor({ timeout: 60_000 });
      expect(await result.textContent()).toMatch(/Rescaled 2 → 3: pause \d+(\.\d)? (ms|s)/);
      expect(Number(await result.getAttribute('data-pause'))).toBeGreaterThan(0);
      await page.screenshot({ path: join(SHOTS, 'rescale-result.png') });
      await page.getByTestId('rescale-close').click();
      await waitIn(
        page,
        `[...document.querySelectorAll('[data-testid=graph-node]')].every((n) => n.dataset.parallelism === '3')`,
      );
      await countIs(page, '[data-testid=subtask-row]', 3);
      expect(await page.getByTestId('job-parallelism').textContent()).toBe('parallelism 3');
      // New subtasks (their counters start at 0) that process records: the job continues.
      await waitIn(page, rateOf('running-sum'));
      await page.getByTestId('last-rescale').waitFor();
      // A few samples at the new parallelism, for the chart in the screenshot.
      await waitIn(page, samplesAtLeast((await samples(page)) + 3));
      await page.screenshot({ path: join(SHOTS, 'after-rescale.png') });
      await page
        .getByTestId('checkpoints-card')
        .screenshot({ path: join(SHOTS, 'checkpoints.png') });
      expect(errors).toEqual([]);

      expect(await job.exited, job.stderr()).toBe(0);
      expect(sorted(readParts(output))).toEqual(sorted(referenceSums(data)));
    } catch (e) {
      await keepFailure(page, 'rescale');
      throw e;
    } finally {
      if (job.child.exitCode === null) job.child.kill('SIGKILL');
    }
  }, 120_000);

  it('asks once for the token of a job started with --ui-token; Savepoint and Stop', async () => {
    const env = { ...process.env, EDDY_HOME: tempDir('eddy-home-') };
    const input = writeEventFiles(data);
    const job = startJob(env, input, join(tempDir(), 'out'), ['--ui-token', 's3cret']);
    let page: Page | undefined;
    try {
      const url = await dashboardUrl(env, job);
      page = await browser!.context.newPage();
      await page.goto(url);
      const prompt = page.getByTestId('token-prompt');
      await prompt.waitFor();
      await page.screenshot({ path: join(SHOTS, 'token.png') });
      await page.getByTestId('token-input').fill('wrong');
      await page.getByTestId('token-input').press('Enter');
      // Refused: asked again, saying so.
      await page.getByText('That token was refused.').waitFor();
      await page.getByTestId('token-input').fill('s3cret');
      await page.getByTestId('token-input').press('Enter');
      await page.locator('[data-testid=graph-node][data-uid=running-sum]').waitFor();
      await prompt.waitFor({ state: 'detached' });
      // Right after its start a job refuses savepoints (409) though listed as running: wait
      // until it has taken a checkpoint.
      await page.getByTestId('checkpoint-row').first().waitFor();

      await page.getByTestId('savepoint-button').click();
      const notice = page.getByTestId('notice-text');
      await page.getByText('Savepoint written to').waitFor();
      const path = /Savepoint written to (\S+)/.exec((await notice.textContent()) ?? '')?.[1];
      expect(path && existsSync(join(path, '_metadata')), `savepoint ${path}`).toBe(true);

      await page.getByTestId('stop-button').click();
      await page.getByRole('button', { name: 'Stop with savepoint' }).click();
      await page.getByText('Job stopped; savepoint at').waitFor();
      expect(await job.exited, job.stderr()).toBe(0);
    } catch (e) {
      await keepFailure(page, 'token');
      throw e;
    } finally {
      if (job.child.exitCode === null) job.child.kill('SIGKILL');
    }
  }, 60_000);
});
