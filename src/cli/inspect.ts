/**
 * `eddy inspect <checkpoint|savepoint> [--plan N] [--json] [--verify]`: what a checkpoint holds
 * (operators, subtasks, key-group ranges, bytes, how state spreads over the key groups, the
 * heaviest key groups, whether keyed state is full or incremental and how long its chains are)
 * and, with `--plan N`, exactly which byte ranges every subtask would read if the job restarted
 * from it at parallelism N (the restore planner, checkpoint/restore-plan.ts). Keyed handles are
 * seen as chains (checkpoint/chains.ts), so a key group's bytes are its base + deltas.
 */
import { chainBytes, chainsOf, stateBytesOf } from '../checkpoint/chains.js';
import {
  type CheckpointMetadata,
  checkDataFiles,
  loadMetadata,
  type OperatorStateEntry,
  resolveRestorePath,
  type VerifyReport,
  verifyCheckpoint,
} from '../checkpoint/index.js';
import {
  type FileRead,
  type KeyedFileRead,
  type KeyedStateSummary,
  type OperatorRestorePlan,
  type PlannedOperatorState,
  planRestore,
  summarizeKeyedState,
} from '../checkpoint/restore-plan.js';
import { computeKeyGroupRange } from '../keygroups/index.js';
import type { RedistributionMode } from '../state/types.js';

export interface InspectOptions {
  /** Also plan a restore at this parallelism (every operator). */
  readonly plan?: number | undefined;
  /** Also read every block and check its CRC (slow for big checkpoints). */
  readonly verify?: boolean | undefined;
}

export interface InspectCommandOptions extends InspectOptions {
  readonly json?: boolean | undefined;
  /** Where output goes; default stdout. */
  readonly write?: ((text: string) => void) | undefined;
}

export interface InspectedSubtask {
  readonly index: number;
  readonly keyGroupRange: readonly [number, number];
  /** Keyed state bytes: what restoring the subtask's key groups reads (base + deltas). */
  readonly bytes: number;
  /** Non-empty key groups. */
  readonly keyGroups: number;
  /** Blocks of its key groups' chains (= key groups for a full handle). */
  readonly blocks: number;
  /** Keyed bytes this checkpoint wrote for it (its handle's `bytes`; = `bytes` when full). */
  readonly bytesWritten: number;
  readonly operatorStateBytes: number;
}

export interface InspectedOperatorState {
  readonly name: string;
  readonly mode: RedistributionMode;
  /** Elements over all subtasks. */
  readonly elements: number;
  readonly bytes: number;
}

export interface InspectPlan {
  readonly parallelism: number;
  readonly subtasks: ReadonlyArray<{
    readonly index: number;
    readonly keyGroupRange: readonly [number, number];
    readonly bytes: number;
    /** Blocks it reads (base + deltas). */
    readonly blocks: number;
    readonly reads: readonly KeyedFileRead[];
  }>;
  /** Per new subtask, the operator list state elements it receives and where they are. */
  readonly operatorState: ReadonlyArray<{
    readonly index: number;
    readonly states: readonly PlannedOperatorState[];
  }>;
  /** Operator state files each new subtask reads whole today (see restore-plan.ts). */
  readonly operatorStateReads: readonly FileRead[];
  readonly bytesRead: number;
  /** Blocks read over all new subtasks (base + deltas). */
  readonly blocksRead: number;
  readonly bytesNeeded: number;
  readonly readAmplification: number;
  readonly movedKeyGroups: number;
  readonly movedBytes: number;
}

export interface InspectedOperator {
  readonly uid: string;
  readonly name: string;
  readonly parallelism: number;
  readonly maxParallelism: number;
  /** Whether the checkpoint has keyed state handles (possibly empty) for the operator. */
  readonly keyed: boolean;
  /**
   * Full or incremental, the files (`../blocks/<name>` for incremental blocks), blocks, the
   * longest chain, bytes written by this checkpoint vs bytes referenced.
   */
  readonly keyedState: KeyedStateSummary;
  /** Bytes of all key groups' chains: what a restore reads (= `keyedState.bytesReferenced`). */
  readonly keyedStateBytes: number;
  /** Key groups with state. */
  readonly keyGroups: number;
  readonly operatorStateBytes: number;
  readonly subtasks: readonly InspectedSubtask[];
  readonly operatorState: readonly InspectedOperatorState[];
  /** The 5 largest key groups (bytes of their chains), largest first. */
  readonly heaviestKeyGroups: ReadonlyArray<{ readonly keyGroup: number; readonly bytes: number }>;
  readonly plan?: InspectPlan;
}

/** The `--json` output. */
export interface InspectReport extends Omit<CheckpointMetadata, 'operators'> {
  /** The checkpoint directory (absolute). */
  readonly path: string;
  readonly operators: readonly InspectedOperator[];
  /** With `--verify`: what was read and checked. */
  readonly verified?: VerifyReport;
}

const HEAVIEST = 5;

/**
 * Loads the checkpoint or savepoint at `path` (its directory or its `_metadata`), checks its
 * data files exist with the recorded sizes (with `verify`, reads and checks every block) and
 * describes it.
 * @throws EddyError of the checkpoint layer: `EDDY_INVALID_ARGUMENT` (no such path, not a
 *   completed checkpoint), `EDDY_CHECKPOINT_CORRUPT`, `EDDY_CHECKPOINT_INCOMPATIBLE`,
 *   `EDDY_CHECKPOINT_IO`; the planner's `EDDY_INVALID_PARALLELISM` for a bad `plan`.
 */
export const inspectCheckpoint = async (
  path: string,
  options: InspectOptions = {},
): Promise<{ report: InspectReport; metadata: CheckpointMetadata }> => {
  const dir = await resolveRestorePath(path);
  const metadata = await loadMetadata(dir);
  const verified = options.verify
    ? await verifyCheckpoint(dir, metadata)
    : await checkDataFiles(dir, metadata).then(() => undefined);
  const report = describeCheckpoint(dir, metadata, options.plan);
  return { report: verified ? { ...report, verified } : report, metadata };
};

/** The report of `metadata` (pure). */
export const describeCheckpoint = (
  path: string,
  metadata: CheckpointMetadata,
  /** One parallelism for every operator, or one per uid (operators not in it keep theirs). */
  planParallelism?: number | ReadonlyMap<string, number>,
): InspectReport => {
  const plans = planParallelism === undefined ? undefined : planRestore(metadata, planParallelism);
  return {
    path,
    formatVersion: metadata.formatVersion,
    jobName: metadata.jobName,
    jobId: metadata.jobId,
    checkpointId: metadata.checkpointId,
    savepoint: metadata.savepoint,
    timestamp: metadata.timestamp,
    operators: metadata.operators.map((entry, i) => describeOperator(entry, plans?.operators[i])),
  };
};

const describeOperator = (
  entry: OperatorStateEntry,
  plan: OperatorRestorePlan | undefined,
): InspectedOperator => {
  const byIndex = new Map(entry.subtasks.map((s) => [s.index, s]));
  const subtasks = Array.from({ length: entry.parallelism }, (_, index): InspectedSubtask => {
    const s = byIndex.get(index);
    const range = s?.keyed?.keyGroupRange ?? rangeOf(entry, index);
    const chains = s?.keyed ? chainsOf(s.keyed).chains : [];
    return {
      index,
      keyGroupRange: [range[0], range[1]],
      bytes: s?.keyed ? stateBytesOf(s.keyed) : 0,
      keyGroups: chains.length,
      blocks: sum(chains.map((c) => c.blocks.length)),
      bytesWritten: s?.keyed?.bytes ?? 0,
      operatorStateBytes: sum(elementLengths(s?.operatorState?.states ?? [])),
    };
  });
  const perKeyGroup = keyGroupBytes(entry);
  const heaviest = [...perKeyGroup.entries()]
    .sort((a, b) => b[1] - a[1] || a[0] - b[0])
    .slice(0, HEAVIEST)
    .map(([keyGroup, bytes]) => ({ keyGroup, bytes }));
  const operator: InspectedOperator = {
    uid: entry.uid,
    name: entry.name,
    parallelism: entry.parallelism,
    maxParallelism: entry.maxParallelism,
    keyed: entry.subtasks.some((s) => s.keyed !== undefined),
    keyedState: summarizeKeyedState(entry),
    keyedStateBytes: sum([...perKeyGroup.values()]),
    keyGroups: perKeyGroup.size,
    operatorStateBytes: sum(subtasks.map((s) => s.operatorStateBytes)),
    subtasks,
    operatorState: operatorStates(entry),
    heaviestKeyGroups: heaviest,
  };
  return plan ? { ...operator, plan: planOf(plan) } : operator;
};

const planOf = (plan: OperatorRestorePlan): InspectPlan => ({
  parallelism: plan.newParallelism,
  subtasks: plan.subtasks.map((s) => ({
    index: s.index,
    keyGroupRange: s.keyGroupRange,
    bytes: s.bytes,
    blocks: s.blocks,
    reads: s.reads,
  })),
  operatorState: plan.subtasks.some((s) => s.operatorState.length > 0)
    ? plan.subtasks.map((s) => ({ index: s.index, states: s.operatorState }))
    : [],
  operatorStateReads: plan.subtasks[0]?.operatorStateReads ?? [],
  bytesRead: plan.bytesRead,
  blocksRead: sum(plan.subtasks.map((s) => s.blocks)),
  bytesNeeded: plan.bytesNeeded,
  readAmplification: plan.readAmplification,
  movedKeyGroups: plan.movedKeyGroups,
  movedBytes: plan.movedBytes,
});

const rangeOf = (entry: OperatorStateEntry, index: number): readonly [number, number] => {
  const r = computeKeyGroupRange(entry.maxParallelism, entry.parallelism, index);
  return [r.start, r.end];
};

/** Chain bytes (base + deltas) per non-empty key group. */
const keyGroupBytes = (entry: OperatorStateEntry): Map<number, number> => {
  const out = new Map<number, number>();
  for (const s of entry.subtasks) {
    if (!s.keyed) continue;
    for (const c of chainsOf(s.keyed).chains) {
      out.set(c.keyGroup, (out.get(c.keyGroup) ?? 0) + chainBytes(c));
    }
  }
  return out;
};

const operatorStates = (entry: OperatorStateEntry): InspectedOperatorState[] => {
  const byName = new Map<string, { mode: RedistributionMode; elements: number; bytes: number }>();
  const ordered = [...entry.subtasks].sort((a, b) => a.index - b.index);
  for (const s of ordered) {
    for (const st of s.operatorState?.states ?? []) {
      const seen = byName.get(st.name) ?? { mode: st.mode, elements: 0, bytes: 0 };
      seen.elements += st.elements.length;
      seen.bytes += sum(st.elements.map((e) => e.length));
      byName.set(st.name, seen);
    }
  }
  return [...byName].map(([name, s]) => ({ name, ...s }));
};

const elementLengths = (
  states: ReadonlyArray<{ readonly elements: ReadonlyArray<{ readonly length: number }> }>,
): number[] => states.flatMap((s) => s.elements.map((e) => e.length));

/** Prints the report (a human summary, or JSON); resolves with the exit code. */
export const inspectCommand = async (
  path: string,
  opts: InspectCommandOptions = {},
): Promise<number> => {
  const write = opts.write ?? ((t: string) => process.stdout.write(t));
  const { report, metadata } = await inspectCheckpoint(path, opts);
  write(opts.json ? `${JSON.stringify(report, null, 2)}\n` : formatInspectReport(report, metadata));
  return 0;
};

// --- the human-readable report ----------------------------------------------------------------

const CHART_BUCKETS = 40;
const BARS = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'] as const;
const MAX_READS_SHOWN = 8;

/** The human-readable report; `metadata` gives the bytes of every key group for the chart. */
export const formatInspectReport = (
  report: InspectReport,
  metadata: CheckpointMetadata,
): string => {
  const keyed = sum(report.operators.map((o) => o.keyedStateBytes));
  const opState = sum(report.operators.map((o) => o.operatorStateBytes));
  const lines = [
    `${report.savepoint ? 'savepoint' : 'checkpoint'} ${report.checkpointId} of job '${report.jobName}' (id ${report.jobId})`,
    `  path      ${report.path}`,
    `  taken     ${new Date(report.timestamp).toISOString()}`,
    `  format    version ${report.formatVersion}`,
    `  state     ${formatBytes(keyed)} keyed, ${formatBytes(opState)} operator state, ` +
      `${count(report.operators.length, 'operator')}`,
  ];
  if (report.verified) {
    const v = report.verified;
    lines.push(
      `  verified  ${count(v.files, 'file')}, ${count(v.blocks, 'block')}, ${formatBytes(v.bytes)}: every CRC matches`,
    );
  }
  report.operators.forEach((op, i) => {
    lines.push('', ...formatOperator(op, metadata.operators[i]));
  });
  return `${lines.join('\n')}\n`;
};

const formatOperator = (op: InspectedOperator, entry: OperatorStateEntry | undefined): string[] => {
  const lines = [
    `operator '${op.name}' (uid ${op.uid}): parallelism ${op.parallelism}, maxParallelism ${op.maxParallelism}`,
    ...keyedHeadline(op),
  ];
  const hasOpState = op.operatorState.length > 0;
  const chained = isChained(op);
  if (op.keyed || hasOpState) {
    const keyedCols = (cells: string[]) => (op.keyed ? cells : []);
    const chainCols = (cells: string[]) => (chained ? cells : []);
    const opCols = (cells: string[]) => (hasOpState ? cells : []);
    lines.push(
      ...table(
        [
          [
            'SUBTASK',
            ...keyedCols(['KEY GROUPS', 'BYTES']),
            ...chainCols(['BLOCKS', 'WRITTEN']),
            ...opCols(['OPERATOR STATE']),
          ],
          ...op.subtasks.map((s) => [
            String(s.index),
            ...keyedCols([rangeText(s.keyGroupRange), formatBytes(s.bytes)]),
            ...chainCols([String(s.blocks), formatBytes(s.bytesWritten)]),
            ...opCols([formatBytes(s.operatorStateBytes)]),
          ]),
        ],
        '  ',
      ),
    );
  }
  if (op.keyGroups > 0 && entry) lines.push(...keyGroupChart(entry, op.maxParallelism));
  if (op.heaviestKeyGroups.length > 0) {
    const heavy = op.heaviestKeyGroups.map((h) => `${h.keyGroup} (${formatBytes(h.bytes)})`);
    lines.push(`  heaviest key groups: ${heavy.join(', ')}`);
  }
  for (const s of op.operatorState) {
    lines.push(
      `  operator state '${s.name}' (${s.mode}): ${count(s.elements, 'element')}, ${formatBytes(s.bytes)}`,
    );
  }
  if (op.plan) lines.push(...formatPlan(op, op.plan));
  return lines;
};

/** Whether any of the operator's keyed handles is incremental (chains of base + deltas). */
const isChained = (op: InspectedOperator): boolean =>
  op.keyedState.format === 'incremental' || op.keyedState.format === 'mixed';

/**
 * What the keyed state is: its size and key groups, full or incremental, and for incremental
 * state its chains (blocks, shared files, longest chain) and what this checkpoint wrote of it.
 */
const keyedHeadline = (op: InspectedOperator): string[] => {
  if (!op.keyed) return ['  no keyed state'];
  const k = op.keyedState;
  const size = `  keyed state ${formatBytes(op.keyedStateBytes)} in ${op.keyGroups} of ${op.maxParallelism} key groups`;
  if (!isChained(op)) return [`${size}, full (one block per key group)`];
  const how =
    k.format === 'mixed'
      ? `full and incremental: ${count(k.blocks, 'block')} in ${count(k.files.length, 'file')}`
      : `incremental: ${count(k.blocks, 'block')} in ${count(k.files.length, 'shared file')}`;
  const share =
    k.bytesReferenced > 0 ? ` (${((100 * k.bytesWritten) / k.bytesReferenced).toFixed(1)}%)` : '';
  return [
    `${size}, ${how}, longest chain ${count(k.longestChain, 'block')}`,
    `  this checkpoint wrote ${formatBytes(k.bytesWritten)} of the ${formatBytes(k.bytesReferenced)} its chains reference${share}`,
  ];
};

/**
 * Mean bytes per key group (its chain's bytes) in up to 40 buckets of the key-group space, as a
 * bar chart.
 */
export const keyGroupChart = (entry: OperatorStateEntry, maxParallelism: number): string[] => {
  const bytes = new Array<number>(maxParallelism).fill(0);
  for (const [keyGroup, n] of keyGroupBytes(entry)) {
    if (keyGroup >= 0 && keyGroup < maxParallelism) bytes[keyGroup]! += n;
  }
  const buckets = Math.min(CHART_BUCKETS, maxParallelism);
  const means = Array.from({ length: buckets }, (_, b) => {
    const start = Math.floor((b * maxParallelism) / buckets);
    const end = Math.floor(((b + 1) * maxParallelism) / buckets);
    return sum(bytes.slice(start, end)) / (end - start);
  });
  const top = Math.max(...means);
  const bars = means
    .map((m) => (m === 0 ? ' ' : BARS[Math.min(7, Math.max(0, Math.ceil((m / top) * 8) - 1))]))
    .join('');
  const last = String(maxParallelism - 1);
  const per =
    maxParallelism === buckets
      ? '1 key group'
      : `${(maxParallelism / buckets).toFixed(1)} key groups`;
  return [
    `  bytes per key group (${buckets} buckets of ${per}, bar = mean; blank = no state; ` +
      `min ${formatBytes(Math.min(...bytes))}, max ${formatBytes(Math.max(...bytes))}):`,
    `  │${bars}│`,
    `   0${last.padStart(Math.max(1, buckets - 1))}`,
  ];
};

const formatPlan = (op: InspectedOperator, plan: InspectPlan): string[] => {
  const lines = ['', `  restore at parallelism ${plan.parallelism} (from ${op.parallelism}):`];
  if (op.keyed) {
    const amp = Number.isFinite(plan.readAmplification) ? plan.readAmplification.toFixed(2) : '∞';
    lines.push(
      `  keyed state: reads ${formatBytes(plan.bytesRead)} for ${formatBytes(plan.bytesNeeded)} needed, read amplification ${amp}; ` +
        `${count(plan.movedKeyGroups, 'key group')} (${formatBytes(plan.movedBytes)}) change subtask index`,
    );
    const chained = isChained(op);
    if (chained) {
      const files = new Set(plan.subtasks.flatMap((s) => s.reads.map((r) => r.file))).size;
      lines.push(
        `  each key group's chain is read whole (its base, then its deltas): ` +
          `${count(plan.blocksRead, 'block')} from ${count(files, 'file')}`,
      );
    }
    const rows = [['SUBTASK', 'KEY GROUPS', 'BYTES', ...(chained ? ['BLOCKS'] : []), 'READS']];
    const blank = chained ? ['', '', '', ''] : ['', '', ''];
    for (const s of plan.subtasks) {
      const reads = s.reads.slice(0, MAX_READS_SHOWN).map((r) => readText(r, chained));
      if (s.reads.length > MAX_READS_SHOWN) {
        const rest = s.reads.slice(MAX_READS_SHOWN);
        reads.push(
          `… ${count(rest.length, 'more read')} (${formatBytes(sum(rest.map((r) => r.length)))})`,
        );
      }
      const head = [String(s.index), rangeText(s.keyGroupRange), formatBytes(s.bytes)];
      if (chained) head.push(String(s.blocks));
      rows.push([...head, reads[0] ?? '(nothing)']);
      for (const r of reads.slice(1)) rows.push([...blank, r]);
    }
    lines.push(...table(rows, '  '));
  }
  if (plan.operatorState.length > 0) {
    const whole = sum(plan.operatorStateReads.map((r) => r.length));
    lines.push(
      `  operator state: each new subtask reads ${formatBytes(whole)} (every old operator state file, whole) and keeps:`,
    );
    for (const { index, states } of plan.operatorState) {
      const kept = states.map(
        (st) =>
          `'${st.name}' (${st.mode}) ${count(st.elements, 'element')}` +
          (st.from.length > 0
            ? ` from ${[...new Set(st.from.map((r) => r.file))].join(', ')}`
            : ''),
      );
      lines.push(`    ${index}: ${kept.join('; ')}`);
    }
  }
  if (!op.keyed && plan.operatorState.length === 0) lines.push('  nothing to read');
  return lines;
};

/** A read; of chains (`chained`), also its blocks and how many are deltas. */
const readText = (r: KeyedFileRead, chained: boolean): string =>
  `${r.file} [${r.offset}, ${r.offset + r.length}) ${formatBytes(r.length)}, key groups ${rangeText(r.keyGroups)}` +
  (chained ? `, ${count(r.blocks, 'block')} (${count(r.deltas, 'delta')})` : '');

const rangeText = ([start, end]: readonly [number, number]): string =>
  start === end ? String(start) : `${start}-${end}`;

/** Columns padded to the widest cell, the last one unpadded. */
const table = (rows: readonly (readonly string[])[], indent: string): string[] => {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  return rows.map(
    (r) =>
      indent +
      r
        .map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]!)))
        .join('  ')
        .trimEnd(),
  );
};

/** `512 B`, `1.5 KiB`, `3.0 MiB`, `1.2 GiB`. */
export const formatBytes = (n: number): string => {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(1)} ${units[u]}`;
};

const count = (n: number, noun: string): string => `${n} ${noun}${n === 1 ? '' : 's'}`;

const sum = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0);
