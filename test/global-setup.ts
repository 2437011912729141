/**
 * Builds dist/ before the tests when src/ changed since the last build: the end-to-end tests
 * run the CLI as users get it (bin/eddy.mjs runs the compiled dist/), so they never test stale
 * code. In-process tests import the sources directly.
 */
import { execFileSync } from 'node:child_process';

export default function setup() {
  execFileSync(
    process.execPath,
    [new URL('../scripts/build.mjs', import.meta.url).pathname, '--if-stale'],
    {
      stdio: 'inherit',
    },
  );
}
