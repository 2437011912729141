/**
 * A real browser for the dashboard tests: Debian's `chromium` driven by playwright-core.
 * `findChromium` installs the package with apt-get when it is missing (as root: the test machine
 * needs no manual step); otherwise it fails with the exact command to run.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BrowserContext, chromium } from 'playwright-core';

const CANDIDATES = ['/usr/bin/chromium', '/usr/bin/chromium-browser'];
const INSTALL = 'apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium';

/** Flags for a quiet, reproducible headless run (no network chatter, no GPU, no sandbox as root). */
export const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

const found = () => {
  const env = process.env.EDDY_CHROMIUM;
  if (env) {
    if (!existsSync(env)) throw new Error(`EDDY_CHROMIUM=${env} does not exist`);
    return env;
  }
  return CANDIDATES.find((p) => existsSync(p));
};

/**
 * The chromium executable; installs Debian's `chromium` package when none is found.
 * @throws naming the command to run when it is missing and cannot be installed here.
 */
export const findChromium = (): string => {
  const have = found();
  if (have) return have;
  const why = (detail: string) =>
    new Error(
      `chromium is not installed (looked for ${CANDIDATES.join(', ')}) and ${detail}. ` +
        `Install it with: sudo sh -c '${INSTALL}' (or set EDDY_CHROMIUM to a chromium binary)`,
    );
  if (process.platform !== 'linux' || !existsSync('/usr/bin/apt-get'))
    throw why('this is not a Debian-like system with apt-get');
  if (process.getuid?.() !== 0) throw why('the tests do not run as root, so cannot install it');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  try {
    execFileSync('apt-get', ['update'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    execFileSync('apt-get', ['install', '-y', '--no-install-recommends', 'chromium'], {
      env,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
  } catch (e) {
    const stderr = (e as { stderr?: Buffer }).stderr?.toString().trim();
    throw why(`installing it failed: ${stderr || String(e)}`);
  }
  const now = found();
  if (!now) throw why('apt-get installed no chromium binary');
  return now;
};

export interface Browser {
  readonly context: BrowserContext;
  close(): Promise<void>;
}

/** A headless chromium with a fresh user-data directory and a 1280×800 viewport. */
export const launchBrowser = async (): Promise<Browser> => {
  const executablePath = findChromium();
  const userDataDir = mkdtempSync(join(tmpdir(), 'eddy-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath,
    headless: true,
    args: CHROMIUM_FLAGS,
    viewport: { width: 1280, height: 800 },
    deviceScaleFactor: 1,
  });
  return {
    context,
    close: async () => {
      await context.close().catch(() => {});
      rmSync(userDataDir, { recursive: true, force: true });
    },
  };
};
