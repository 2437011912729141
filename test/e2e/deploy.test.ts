/**
 * The deployment files under deploy/ against the real CLI: the Kubernetes manifests parse and
 * are consistent with each other (probes on the --health-port given, the Service on the
 * master's --port, the HPA on the workers Deployment, claims on the PVC); every container runs
 * the image's entrypoint with a subcommand and flags that `eddy <subcommand> --help` lists; the
 * Dockerfile runs a file the build produces and npm scripts that exist; and the master and
 * worker commands of the manifests, run as local processes (127.0.0.1, free ports, a temp dir
 * for the shared volume), become ready and form a cluster that runs the submit Job's command.
 * Docker and Kubernetes are not needed: the image itself is not built here.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, posix, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { committedParts, ROOT, tempDir } from './helpers.js';

const K8S = join(ROOT, 'deploy', 'k8s');
const DOCKERFILE = join(ROOT, 'deploy', 'Dockerfile');
/** What the image's entrypoint runs (relative to the package root), built by scripts/build.mjs. */
const CLI = join(ROOT, 'dist', 'cli', 'main.js');
const SUBCOMMANDS = ['master', 'worker', 'run', 'cluster'];

// ---- the manifests, loosely typed: only the fields the checks read ----

interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { fieldRef?: { fieldPath: string } };
}
interface Probe {
  httpGet?: { path: string; port: number | string };
}
interface Container {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  env?: EnvVar[];
  ports?: { name?: string; containerPort: number }[];
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  resources?: { requests?: { cpu?: string; memory?: string } };
  volumeMounts?: { name: string; mountPath: string }[];
}
interface PodSpec {
  containers: Container[];
  volumes?: {
    name: string;
    persistentVolumeClaim?: { claimName: string };
    configMap?: { name: string };
  }[];
}
interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string> };
  // biome-ignore lint/suspicious/noExplicitAny: manifests are checked field by field below
  spec?: any;
  file: string;
}

/** Every .yaml under deploy/k8s, recursively (submit/ too), relative to it. */
const yamlFiles = (dir = K8S): string[] =>
  readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return yamlFiles(p);
    return /\.ya?ml$/.test(e.name) ? [relative(K8S, p)] : [];
  });

const parseFile = (file: string): unknown[] => {
  const docs = parseAllDocuments(readFileSync(join(K8S, file), 'utf8'));
  if (!Array.isArray(docs)) return [];
  for (const d of docs) {
    if (d.errors.length > 0) throw new Error(`${file}: ${d.errors.map((e) => e.message)}`);
  }
  return docs.map((d) => d.toJS()).filter((d) => d !== null);
};

const isKustomization = (file: string) => posix.basename(file) === 'kustomization.yaml';

const manifests = (): Manifest[] =>
  yamlFiles()
    .filter((f) => !isKustomization(f))
    .flatMap((file) => parseFile(file).map((d) => ({ ...(d as Manifest), file })));

const podSpec = (m: Manifest): PodSpec | undefined =>
  m.kind === 'Deployment' || m.kind === 'Job' ? m.spec?.template?.spec : undefined;

const containers = (all: Manifest[]) =>
  all.flatMap((m) => (podSpec(m)?.containers ?? []).map((c) => ({ m, c })));

// ---- the CLI's options, from its own --help ----

interface CliOption {
  takesValue: boolean;
}

const helpCache = new Map<string, string>();
/** `node dist/cli/main.js <sub...> --help`, as the image's entrypoint would print it. */
const help = (sub: string[]): string => {
  const key = sub.join(' ');
  let text = helpCache.get(key);
  if (text === undefined) {
    const r = spawnSync(process.execPath, [CLI, ...sub, '--help'], { encoding: 'utf8' });
    if (r.status !== 0) {
      throw new Error(`\`eddy ${key} --help\` exited ${r.status}: ${r.stderr || r.stdout}`);
    }
    text = r.stdout;
    // For an unknown command commander prints the top-level help instead.
    if (!text.includes(`Usage: eddy ${key} `)) {
      throw new Error(`the CLI has no \`eddy ${key}\` command; its help:\n${text}`);
    }
    helpCache.set(key, text);
  }
  return text;
};

/** The options `eddy <sub> --help` lists: `-p, --parallelism <n>` gives -p and --parallelism. */
const cliOptions = (sub: string[]): Map<string, CliOption> => {
  const options = new Map<string, CliOption>();
  for (const line of help(sub).split('\n')) {
    const m = /^\s+((?:-{1,2}[\w-]+(?:, )?)+)(\s+[<[])?/.exec(line);
    if (!m) continue;
    for (const flag of m[1]!.split(', '))
      options.set(flag.trim(), { takesValue: m[2] !== undefined });
  }
  return options;
};

interface Invocation {
  /** `['master']`, or `['cluster', 'status']`. */
  sub: string[];
  flags: Map<string, string | true>;
  positionals: string[];
  /** After `--`: the job's own arguments. */
  jobArgs: string[];
}

/** Parses a container's args as the CLI would, failing on an option its --help does not list. */
const parseInvocation = (args: string[]): Invocation => {
  const sub = args[0] === 'cluster' ? args.slice(0, 2) : args.slice(0, 1);
  const options = cliOptions(sub);
  const inv: Invocation = { sub, flags: new Map(), positionals: [], jobArgs: [] };
  for (let i = sub.length; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') {
      inv.jobArgs = args.slice(i + 1);
      break;
    }
    if (!a.startsWith('-')) {
      inv.positionals.push(a);
      continue;
    }
    const [flag, inline] = a.split(/=(.*)/s) as [string, string | undefined];
    const option = options.get(flag);
    if (!option) throw new Error(`\`eddy ${sub.join(' ')} --help\` does not list ${flag}`);
    if (!option.takesValue) inv.flags.set(flag, true);
    else if (inline !== undefined) inv.flags.set(flag, inline);
    else {
      const v = args[++i];
      if (v === undefined) throw new Error(`${flag} has no value`);
      inv.flags.set(flag, v);
    }
  }
  return inv;
};

const flag = (inv: Invocation, name: string): string => {
  const v = inv.flags.get(name);
  if (typeof v !== 'string') throw new Error(`eddy ${inv.sub.join(' ')} is given no ${name}`);
  return v;
};

/** A probe's or Service's port: a number, or the name of one of the container's ports. */
const resolvePort = (c: Container, port: number | string): number => {
  if (typeof port === 'number') return port;
  const named = c.ports?.find((p) => p.name === port);
  if (!named) throw new Error(`container ${c.name} has no port named ${port}`);
  return named.containerPort;
};

/** The one container whose subcommand is `sub`, with its Deployment or Job. */
const roleOf = (all: Manifest[], sub: string) => {
  const found = containers(all).filter(({ c }) => c.args?.[0] === sub);
  expect(found, `containers running \`eddy ${sub}\``).toHaveLength(1);
  const { m, c } = found[0]!;
  return { m, c, inv: parseInvocation(c.args!) };
};

describe('deploy/k8s manifests', () => {
  const files = yamlFiles();
  let all: Manifest[] = [];
  beforeAll(() => {
    all = manifests();
  });

  it('parse as YAML; every object has apiVersion, kind and metadata.name', () => {
    expect(files.length).toBeGreaterThan(5);
    for (const file of files.filter((f) => !isKustomization(f))) {
      const docs = parseFile(file);
      expect(docs.length, file).toBeGreaterThan(0);
      for (const d of docs as Manifest[]) {
        expect(typeof d.apiVersion, `${file}: apiVersion`).toBe('string');
        expect(typeof d.kind, `${file}: kind`).toBe('string');
        expect(typeof d.metadata?.name, `${file}: metadata.name`).toBe('string');
        expect(d.metadata.name, `${file}: metadata.name`).toMatch(
          /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/,
        );
        expect(
          (d as { metadata: { namespace?: string } }).metadata.namespace,
          file,
        ).toBeUndefined();
      }
    }
    const kinds = all.map((m) => m.kind).sort();
    for (const kind of [
      'Deployment',
      'HorizontalPodAutoscaler',
      'PersistentVolumeClaim',
      'Service',
    ]) {
      expect(kinds).toContain(kind);
    }
  });

  it('kustomization.yaml lists every manifest beside it, and only existing files', () => {
    const [k] = parseFile('kustomization.yaml') as {
      kind: string;
      resources: string[];
      images?: { name: string }[];
    }[];
    expect(k!.kind).toBe('Kustomization');
    const beside = files.filter((f) => !f.includes('/') && !isKustomization(f)).sort();
    expect([...k!.resources].sort()).toEqual(beside);
    // The image it rewrites is the one the containers name.
    const images = new Set(containers(all).map(({ c }) => c.image.split(':')[0]));
    expect([...images]).toEqual(k!.images?.map((i) => i.name));
  });

  it("every container runs the image's entrypoint with a subcommand and flags `--help` lists", () => {
    const found = containers(all);
    expect(found.length).toBeGreaterThanOrEqual(3);
    for (const { m, c } of found) {
      const where = `${m.file}: container ${c.name}`;
      expect(c.command, `${where} must not override the entrypoint`).toBeUndefined();
      expect(SUBCOMMANDS, where).toContain(c.args?.[0]);
      // parseInvocation throws naming any flag the subcommand's --help does not list.
      const inv = parseInvocation(c.args!);
      // $(VAR) is expanded by Kubernetes only from the container's env.
      const defined = new Set((c.env ?? []).map((e) => e.name));
      for (const a of c.args!) {
        for (const [, name] of a.matchAll(/\$\((\w+)\)/g)) expect(defined, where).toContain(name);
      }
      expect(inv.sub.length, where).toBeGreaterThan(0);
    }
  });

  it('the master: one replica, Recreate, listening on 0.0.0.0, probes on its --health-port', () => {
    const { m, c, inv } = roleOf(all, 'master');
    expect(m.kind).toBe('Deployment');
    expect(m.spec.replicas).toBe(1);
    expect(m.spec.strategy?.type).toBe('Recreate');
    expect(flag(inv, '--host')).toBe('0.0.0.0');
    const health = Number(flag(inv, '--health-port'));
    expect(resolvePort(c, c.readinessProbe!.httpGet!.port)).toBe(health);
    expect(resolvePort(c, c.livenessProbe!.httpGet!.port)).toBe(health);
    expect(c.readinessProbe!.httpGet!.path).toBe('/readyz');
    expect(c.livenessProbe!.httpGet!.path).toBe('/healthz');
    expect(c.ports?.map((p) => p.containerPort)).toContain(Number(flag(inv, '--port')));
  });

  it("the Service routes to the master pod's --port, at the address the others use", () => {
    const master = roleOf(all, 'master');
    const services = all.filter((m) => m.kind === 'Service');
    expect(services).toHaveLength(1);
    const svc = services[0]!;
    expect(svc.spec.type ?? 'ClusterIP').toBe('ClusterIP');
    // The selector picks the master's pods (and, with the workers' labels, not theirs).
    const labels = master.m.spec.template.metadata.labels as Record<string, string>;
    for (const [k, v] of Object.entries(svc.spec.selector as Record<string, string>)) {
      expect(labels[k], `label ${k}`).toBe(v);
    }
    const workerLabels = roleOf(all, 'worker').m.spec.template.metadata.labels;
    expect(
      Object.entries(svc.spec.selector as Record<string, string>).every(
        ([k, v]) => workerLabels[k] === v,
      ),
    ).toBe(false);
    const ports = svc.spec.ports as { port: number; targetPort: number | string }[];
    const clusterPort = Number(flag(master.inv, '--port'));
    const cluster = ports.find((p) => resolvePort(master.c, p.targetPort) === clusterPort);
    expect(cluster, 'a Service port targeting the master --port').toBeDefined();
    // Workers and the submitting client name the Service and its port.
    for (const sub of ['worker', 'run']) {
      expect(flag(roleOf(all, sub).inv, '--master')).toBe(`${svc.metadata.name}:${cluster!.port}`);
    }
  });

  it('the workers: pod IP and name from the downward API, probes on their --health-port', () => {
    const { m, c, inv } = roleOf(all, 'worker');
    expect(m.kind).toBe('Deployment');
    expect(Number(flag(inv, '--slots'))).toBeGreaterThan(0);
    const env = new Map((c.env ?? []).map((e) => [e.name, e.valueFrom?.fieldRef?.fieldPath]));
    const fromEnv = (v: string) => env.get(/^\$\((\w+)\)$/.exec(v)?.[1] ?? '');
    expect(fromEnv(flag(inv, '--host'))).toBe('status.podIP');
    expect(fromEnv(flag(inv, '--id'))).toBe('metadata.name');
    const health = Number(flag(inv, '--health-port'));
    expect(resolvePort(c, c.readinessProbe!.httpGet!.port)).toBe(health);
    expect(resolvePort(c, c.livenessProbe!.httpGet!.port)).toBe(health);
    expect(c.readinessProbe!.httpGet!.path).toBe('/readyz');
    expect(c.livenessProbe!.httpGet!.path).toBe('/healthz');
  });

  it('the HPA scales the workers Deployment, whose containers request CPU', () => {
    const worker = roleOf(all, 'worker');
    const hpas = all.filter((m) => m.kind === 'HorizontalPodAutoscaler');
    expect(hpas).toHaveLength(1);
    const hpa = hpas[0]!;
    expect(hpa.apiVersion).toBe('autoscaling/v2');
    expect(hpa.spec.scaleTargetRef).toEqual({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      name: worker.m.metadata.name,
    });
    expect(hpa.spec.minReplicas).toBeGreaterThanOrEqual(1);
    expect(hpa.spec.maxReplicas).toBeGreaterThanOrEqual(hpa.spec.minReplicas);
    expect(
      hpa.spec.metrics.map((x: { resource?: { name: string } }) => x.resource?.name),
    ).toContain('cpu');
    // Utilization is measured against the request: without one the HPA cannot scale.
    for (const c of worker.m.spec.template.spec.containers as Container[]) {
      expect(c.resources?.requests?.cpu, c.name).toBeDefined();
    }
  });

  it('Deployment selectors match their pod labels', () => {
    for (const m of all.filter((x) => x.kind === 'Deployment')) {
      const labels = m.spec.template.metadata.labels as Record<string, string>;
      for (const [k, v] of Object.entries(m.spec.selector.matchLabels as Record<string, string>)) {
        expect(labels[k], `${m.file}: ${k}`).toBe(v);
      }
    }
  });

  it('the shared volume: one ReadWriteMany PVC, mounted at the same path by master and workers, holding their paths', () => {
    const pvcs = all.filter((m) => m.kind === 'PersistentVolumeClaim');
    expect(pvcs).toHaveLength(1);
    const pvc = pvcs[0]!;
    expect(pvc.spec.accessModes).toEqual(['ReadWriteMany']);
    // Every claim names the PVC; every mount names a volume of its pod.
    for (const m of all) {
      const spec = podSpec(m);
      if (!spec) continue;
      const volumes = new Set((spec.volumes ?? []).map((v) => v.name));
      for (const v of spec.volumes ?? []) {
        if (v.persistentVolumeClaim) {
          expect(v.persistentVolumeClaim.claimName, m.file).toBe(pvc.metadata.name);
        }
      }
      for (const c of spec.containers) {
        for (const mount of c.volumeMounts ?? []) expect(volumes, m.file).toContain(mount.name);
      }
    }
    const sharedMount = (role: ReturnType<typeof roleOf>) => {
      const claim = (podSpec(role.m)!.volumes ?? []).find(
        (v) => v.persistentVolumeClaim?.claimName === pvc.metadata.name,
      );
      expect(claim, `${role.m.file} mounts ${pvc.metadata.name}`).toBeDefined();
      return role.c.volumeMounts!.find((x) => x.name === claim!.name)!.mountPath;
    };
    const master = roleOf(all, 'master');
    const path = sharedMount(master);
    expect(sharedMount(roleOf(all, 'worker'))).toBe(path);
    expect(flag(master.inv, '--ha-dir').startsWith(`${path}/`)).toBe(true);
    // The job's checkpoints are written by workers and committed by the master: shared.
    const run = roleOf(all, 'run');
    expect(flag(run.inv, '--checkpoint-dir').startsWith(`${path}/`)).toBe(true);
  });

  it("the submitting client: a Job run once, with the job's file from a ConfigMap", () => {
    const { m, c, inv } = roleOf(all, 'run');
    expect(m.kind).toBe('Job');
    expect(m.spec.backoffLimit).toBe(0);
    expect(m.spec.template.spec.restartPolicy).toBe('Never');
    const jobFile = inv.positionals[0]!;
    const mount = c.volumeMounts!.find((x) => jobFile.startsWith(`${x.mountPath}/`));
    const volume = podSpec(m)!.volumes!.find((v) => v.name === mount?.name);
    expect(volume?.configMap?.name, `the volume holding ${jobFile}`).toBeDefined();
    expect(inv.flags.get('--reactive')).toBe(true);
    expect(Number(flag(inv, '--checkpoint-interval'))).toBeGreaterThan(0);
  });
});

// ---- the Dockerfile ----

/** Instructions of a Dockerfile: continuation lines joined, comments dropped. */
const dockerInstructions = (text: string): { op: string; rest: string }[] =>
  text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => {
      const [, op, rest] = /^(\S+)\s*(.*)$/.exec(l)!;
      return { op: op!.toUpperCase(), rest: rest! };
    });

describe('deploy/Dockerfile', () => {
  const steps = dockerInstructions(readFileSync(DOCKERFILE, 'utf8'));
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
    scripts: Record<string, string>;
    bin: Record<string, string>;
  };
  const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, unknown>;
  };
  /** The instructions of the last stage (the image that runs). */
  const finalStage = steps.slice(steps.map((s) => s.op).lastIndexOf('FROM'));

  it("ENTRYPOINT runs node on the package's eddy bin, which the build produces", () => {
    const entry = finalStage.filter((s) => s.op === 'ENTRYPOINT');
    expect(entry).toHaveLength(1);
    const argv = JSON.parse(entry[0]!.rest) as string[];
    const script = argv.find((a) => a.endsWith('.js'));
    expect(argv[argv.indexOf(script!) - 1]).toBe('node');
    const workdir = finalStage.filter((s) => s.op === 'WORKDIR').at(-1)!.rest;
    expect(script!.startsWith(`${workdir}/`)).toBe(true);
    const rel = posix.relative(workdir, script!);
    expect(rel).toBe(posix.normalize(pkg.bin.eddy!));
    // It exists after `npm run build` (test/global-setup.ts ran scripts/build.mjs).
    expect(existsSync(join(ROOT, rel))).toBe(true);
    // The final stage copies dist/ (and package.json, which the CLI reads its version from).
    const copied = finalStage.filter((s) => s.op === 'COPY').map((s) => s.rest);
    expect(copied.some((c) => /\/dist\s+\.\/dist$/.test(c))).toBe(true);
    expect(copied.some((c) => /package\.json\s+\.\/package\.json$/.test(c))).toBe(true);
    // A non-root user, numeric so that Kubernetes' runAsNonRoot can verify it.
    const user = finalStage.filter((s) => s.op === 'USER').at(-1)?.rest;
    expect(user).toMatch(/^[1-9]\d*(:\d+)?$/);
    expect(finalStage[0]!.rest).toMatch(/^node:20-bookworm-slim\b/);
  });

  it('its npm steps name scripts of package.json and packages of the lockfile', () => {
    const npm = steps
      .filter((s) => s.op === 'RUN')
      .flatMap((s) => s.rest.split(/&&|;/))
      .map((c) => c.trim().split(/\s+/))
      .filter((w) => w[0] === 'npm');
    const verbs = npm.map((w) => w[1]);
    expect(verbs).toEqual(expect.arrayContaining(['ci', 'run', 'prune']));
    for (const w of npm) {
      const operands = w.slice(2).filter((x) => !x.startsWith('-'));
      if (w[1] === 'run') expect(Object.keys(pkg.scripts)).toContain(operands[0]);
      if (w[1] === 'rebuild') {
        for (const p of operands) expect(Object.keys(lock.packages)).toContain(`node_modules/${p}`);
      }
      if (w[1] === 'prune') expect(w).toContain('--omit=dev');
    }
  });

  it('copies from the context only paths that exist and that its ignore file keeps', () => {
    const ignored = readFileSync(join(ROOT, 'deploy', 'Dockerfile.dockerignore'), 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '' && !l.startsWith('#') && !l.startsWith('!'));
    const sources = steps
      .filter((s) => s.op === 'COPY' && !s.rest.startsWith('--from'))
      .flatMap((s) => s.rest.split(/\s+/).slice(0, -1));
    for (const src of sources) {
      expect(existsSync(join(ROOT, src)), src).toBe(true);
      expect(ignored, `${src} is excluded by Dockerfile.dockerignore`).not.toContain(
        src.split('/')[0],
      );
    }
    // What scripts/build.mjs reads: tsc's configs and inputs, the dashboard's sources.
    const tsconfig = JSON.parse(readFileSync(join(ROOT, 'tsconfig.build.json'), 'utf8')) as {
      extends: string;
      include: string[];
    };
    const needed = [
      'package.json',
      'package-lock.json',
      'scripts',
      'ui',
      'tsconfig.build.json',
      posix.normalize(tsconfig.extends),
      ...tsconfig.include,
    ];
    for (const n of needed) expect(sources, `the build needs ${n}`).toContain(n);
    // npm ci resolves the file: dependencies of package.json: their package.json must be there.
    for (const [name, spec] of Object.entries(
      (
        JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
          devDependencies: Record<string, string>;
        }
      ).devDependencies,
    )) {
      if (spec.startsWith('file:')) {
        expect(sources, name).toContain(posix.join(spec.slice('file:'.length), 'package.json'));
      }
    }
  });
});

// ---- the manifests' commands, run as local processes ----

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });

interface Proc {
  name: string;
  child: ChildProcess;
  output: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const started: Proc[] = [];

const startCli = (name: string, args: string[], home: string): Proc => {
  const child = spawn(process.execPath, [CLI, ...args], {
    cwd: home,
    env: { ...process.env, EDDY_HOME: home },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => {
    out += d;
  });
  child.stderr!.on('data', (d) => {
    out += d;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
    child.on('exit', (code, signal) => r({ code, signal })),
  );
  const proc = { name, child, output: () => out, exited };
  started.push(proc);
  return proc;
};

/** Polls `check` until it returns true; fails naming `what` and the processes' output. */
const waitFor = async (check: () => Promise<boolean>, what: string, timeoutMs = 30_000) => {
  const deadline = Date.now() + timeoutMs;
  while (!(await check().catch(() => false))) {
    const dead = started.find((p) => p.child.exitCode !== null || p.child.signalCode !== null);
    if (dead || Date.now() > deadline) {
      const logs = started.map((p) => `--- ${p.name}:\n${p.output()}`).join('\n');
      throw new Error(
        `${dead ? `${dead.name} exited` : `timed out after ${timeoutMs} ms`} waiting for ${what}\n${logs}`,
      );
    }
    await new Promise((r) => setTimeout(r, 50));
  }
};

/** The process's exit, or a failure with every process's output after `timeoutMs`. */
const exitOf = async (proc: Proc, timeoutMs: number) => {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const logs = started.map((p) => `--- ${p.name}:\n${p.output()}`).join('\n');
      reject(new Error(`${proc.name} did not exit within ${timeoutMs} ms\n${logs}`));
    }, timeoutMs);
  });
  try {
    return await Promise.race([proc.exited, timeout]);
  } finally {
    clearTimeout(timer);
  }
};

const httpStatus = async (port: number, path: string) =>
  (await fetch(`http://127.0.0.1:${port}${path}`)).status;

/** Some object in `json` (at any depth) that names `id` and has a slots field equal to `slots`. */
const listsWorker = (json: unknown, id: string, slots: number): boolean => {
  if (Array.isArray(json)) return json.some((x) => listsWorker(x, id, slots));
  if (json === null || typeof json !== 'object') return false;
  const entries = Object.entries(json);
  const here =
    entries.some(([, v]) => v === id) &&
    entries.some(([k, v]) => /slots/i.test(k) && !/free|used|busy/i.test(k) && v === slots);
  return here || entries.some(([, v]) => listsWorker(v, id, slots));
};

describe("the manifests' master and worker commands, run as local processes", () => {
  const dir = tempDir('eddy-deploy-');
  let master: ReturnType<typeof roleOf>;
  let worker: ReturnType<typeof roleOf>;
  let submit: ReturnType<typeof roleOf>;
  let shared = '';
  let clusterPort = 0;

  /**
   * The container's args for this host: 127.0.0.1 and free ports for the pod addresses and
   * the container ports, a temp dir for the shared volume, the downward API's values.
   */
  const localArgs = (c: Container, ports: Record<string, number>, env: Record<string, string>) =>
    c.args!.map((a, i, args) => {
      const prev = args[i - 1];
      if (prev !== undefined && prev in ports) return String(ports[prev]);
      if (prev === '--host' && a === '0.0.0.0') return '127.0.0.1';
      if (prev === '--master') return `127.0.0.1:${clusterPort}`;
      return a
        .replace(/\$\((\w+)\)/g, (_, name: string) => env[name] ?? `$(${name})`)
        .replace(shared, join(dir, 'shared'));
    });

  beforeAll(async () => {
    const all = manifests();
    master = roleOf(all, 'master');
    worker = roleOf(all, 'worker');
    submit = roleOf(all, 'run');
    const claim = podSpec(master.m)!.volumes!.find((v) => v.persistentVolumeClaim)!.name;
    shared = master.c.volumeMounts!.find((m) => m.name === claim)!.mountPath;
    clusterPort = await freePort();
  });

  afterAll(() => {
    for (const p of started) {
      if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
    }
  });

  it('become ready: /readyz 200 on the master and on every worker replica, `cluster status` lists the workers and their slots', async () => {
    const masterHealth = await freePort();
    startCli(
      'master',
      localArgs(master.c, { '--port': clusterPort, '--health-port': masterHealth }, {}),
      tempDir('eddy-home-'),
    );
    await waitFor(
      async () => (await httpStatus(masterHealth, '/healthz')) === 200,
      'master /healthz',
    );
    await waitFor(
      async () => (await httpStatus(masterHealth, '/readyz')) === 200,
      'master /readyz',
    );
    // As many workers as the Deployment's replicas, each with its pod's name.
    const ids: string[] = [];
    for (let r = 0; r < worker.m.spec.replicas; r++) {
      const id = `eddy-worker-5d9c7b-w${r}`;
      const health = await freePort();
      ids.push(id);
      startCli(
        id,
        localArgs(worker.c, { '--health-port': health }, { POD_IP: '127.0.0.1', POD_NAME: id }),
        tempDir('eddy-home-'),
      );
      await waitFor(async () => (await httpStatus(health, '/healthz')) === 200, `${id} /healthz`);
      await waitFor(async () => (await httpStatus(health, '/readyz')) === 200, `${id} /readyz`);
    }
    const slots = Number(flag(worker.inv, '--slots'));
    const status = spawnSync(
      process.execPath,
      [CLI, 'cluster', 'status', '--master', `127.0.0.1:${clusterPort}`, '--json'],
      { encoding: 'utf8' },
    );
    expect(status.status, status.stderr).toBe(0);
    const json = JSON.parse(status.stdout) as unknown;
    for (const id of ids) {
      expect(
        listsWorker(json, id, slots),
        `${id} in cluster status --json:\n${status.stdout}`,
      ).toBe(true);
    }
  });

  it("run the submit Job's command against them (a short bounded word-count)", async () => {
    const out = join(dir, 'shared', 'output');
    const args = localArgs(submit.c, {}, {}).map((a) =>
      a === submit.inv.positionals[0] ? join(ROOT, 'examples', 'word-count.ts') : a,
    );
    const client = startCli(
      'eddy run',
      [...args.slice(0, args.indexOf('--') + 1), '--output', out, '--lines', '300'],
      tempDir('eddy-home-'),
    );
    try {
      const { code } = await exitOf(client, 45_000);
      expect(code, client.output()).toBe(0);
      if (args.includes('--detach')) {
        // Detached: the client printed the job id and left; the job runs on the cluster.
        const jobId = client.output().match(/[0-9a-f]{8}-[0-9a-f-]{27}/)?.[0];
        expect(jobId, client.output()).toBeDefined();
        for (const deadline = Date.now() + 45_000; ; ) {
          const status = JSON.parse(
            spawnSync(
              process.execPath,
              [CLI, 'cluster', 'status', '--master', `127.0.0.1:${clusterPort}`, '--json'],
              {
                encoding: 'utf8',
              },
            ).stdout,
          ) as { jobs: { id: string; status: string; error?: string }[] };
          const job = status.jobs.find((j) => j.id === jobId);
          if (
            job &&
            job.status !== 'running' &&
            job.status !== 'waiting' &&
            job.status !== 'rescaling'
          ) {
            expect(job.status, job.error).toBe('finished');
            break;
          }
          if (Date.now() > deadline)
            throw new Error(`job ${jobId} did not finish: ${JSON.stringify(job)}`);
          await new Promise((r) => setTimeout(r, 200));
        }
      }
    } finally {
      // Not the next test's business: that one stops the master and the workers.
      if (client.child.exitCode === null && client.child.signalCode === null) {
        client.child.kill('SIGKILL');
        await client.exited;
      }
    }
    // 300 sentences of 3 to 7 words: one count per word occurrence.
    expect(committedParts(out).length).toBeGreaterThanOrEqual(900);
  });

  it('stop on SIGTERM (what Kubernetes sends a pod it deletes)', async () => {
    const running = started.filter((p) => p.child.exitCode === null && p.child.signalCode === null);
    expect(running.length).toBeGreaterThan(0);
    for (const p of running) p.child.kill('SIGTERM');
    // Exit 0: Kubernetes reports a container that exits non-zero after SIGTERM as failed.
    for (const p of running) expect((await exitOf(p, 20_000)).code, p.output()).toBe(0);
  });
});
