/**
 * The restore planner (docs/DESIGN.md §2, §3): from a checkpoint's metadata alone, which byte
 * ranges of which state files every new subtask reads when the job restarts at another
 * parallelism. Pure; no I/O. `eddy inspect --plan` shows it; the runtime's restore
 * (`loadOperator` in runtime/worker-agent.ts) reads exactly these ranges, because both go through
 * the same functions: `computeKeyGroupRange` + `intersectKeyGroupRanges` + `planChainReads` for
 * keyed state, `redistributeOperatorState` for operator state (here dealing element handles
 * instead of element values, so the assignment cannot differ).
 *
 * Keyed state is seen as chains (checkpoint/chains.ts): a full handle's key groups are chains of
 * one block in its one file; an incremental handle's are a base block and its deltas, possibly
 * in several shared files. A key group's bytes are its chain's bytes (base + deltas): what a
 * restore of it reads.
 */
import { EddyError } from '../core/errors.js';
import {
  computeKeyGroupRange,
  intersectKeyGroupRanges,
  type KeyGroupRange,
  operatorIndexForKeyGroupUnchecked,
  UPPER_BOUND_MAX_PARALLELISM,
} from '../keygroups/index.js';
import type { OperatorStateSnapshot, RedistributionMode } from '../state/types.js';
import {
  type ChainView,
  chainBytes,
  chainsOf,
  firstChainAtOrAfter,
  isIncremental,
  planChainReads,
} from './chains.js';
import { corruptError } from './errors.js';
import { planOperatorReads } from './operator-file.js';
import { type BlockRead, DEFAULT_MAX_READ_BYTES } from './read-plan.js';
import { redistributeOperatorState } from './redistribute.js';
import type { BlockHandle, CheckpointMetadata, OperatorStateEntry } from './types.js';

/** One contiguous read of a state file: bytes `[offset, offset + length)` of `file`. */
export interface FileRead {
  /** Relative to the checkpoint directory. */
  readonly file: string;
  readonly offset: number;
  readonly length: number;
}

/**
 * A read of a keyed state file (a `.keyed` file of the checkpoint, or `../blocks/<name>` for an
 * incremental checkpoint's blocks), with the span of key groups whose blocks it covers.
 */
export interface KeyedFileRead extends FileRead {
  /**
   * Smallest and largest key group of the blocks it covers. In a full handle's file these are
   * all the key groups between; in a shared file, blocks of the key groups between that have no
   * block in that file are not read.
   */
  readonly keyGroups: readonly [number, number];
  /** How many blocks it covers (base blocks + delta blocks). */
  readonly blocks: number;
  /** How many of those are delta blocks (0 for a full checkpoint). */
  readonly deltas: number;
  /**
   * The index of the old subtask whose handle names the blocks (a shared file's name carries
   * the subtask that wrote it, which after a rescale need not be this one).
   */
  readonly oldSubtask: number;
}

/** The elements of one named operator list state that a new subtask receives. */
export interface PlannedOperatorState {
  readonly name: string;
  readonly mode: RedistributionMode;
  /** How many elements the subtask receives. */
  readonly elements: number;
  /** Their bytes (sum of the element blocks). */
  readonly bytes: number;
  /** Where those elements are: their blocks, coalesced where they touch in one file. */
  readonly from: readonly FileRead[];
}

export interface SubtaskRestorePlan {
  readonly index: number;
  /** The key groups the new subtask owns (Flink's `computeKeyGroupRange`). */
  readonly keyGroupRange: readonly [number, number];
  /** Keyed bytes it reads: the sum of `reads`' lengths. */
  readonly bytes: number;
  /** How many non-empty key groups (chains) it reads. */
  readonly keyGroups: number;
  /** How many blocks it reads: one per key group of a full handle, base + deltas otherwise. */
  readonly blocks: number;
  /**
   * Keyed state reads: from every old subtask whose range intersects, only the blocks of the
   * chains of the intersecting key groups, per file, coalesced (one read per touching run,
   * capped at `maxReadBytes`). In the order the runtime issues them (old subtasks in metadata
   * order, then the handle's files in order, then by offset).
   */
  readonly reads: readonly KeyedFileRead[];
  /** Every operator list state of the operator, with the elements this subtask receives. */
  readonly operatorState: readonly PlannedOperatorState[];
  /**
   * What the restore reads for operator state today: every element of every old subtask's
   * operator state file (the runtime reads them all, then deals). Operator state is small
   * (positions, assignments); `operatorState[].from` is what the subtask keeps of it.
   */
  readonly operatorStateReads: readonly FileRead[];
}

export interface OperatorRestorePlan {
  readonly uid: string;
  readonly name: string;
  readonly oldParallelism: number;
  readonly newParallelism: number;
  readonly maxParallelism: number;
  /** Sum of all key groups' chain bytes (base + deltas) of all old subtasks. */
  readonly keyedStateBytes: number;
  /** Whether any old subtask's keyed handle is incremental (chains of base + delta blocks). */
  readonly incremental: boolean;
  /** Blocks of all chains of all old subtasks (= non-empty key groups for a full checkpoint). */
  readonly keyedBlocks: number;
  /** The most blocks one key group's chain has (1 for a full checkpoint, 0 without state). */
  readonly longestChain: number;
  /** Sum of all operator state element blocks of all old subtasks. */
  readonly operatorStateBytes: number;
  readonly subtasks: readonly SubtaskRestorePlan[];
  /** Keyed bytes planned over all new subtasks. */
  readonly bytesRead: number;
  /** Sum over new subtasks of the chain bytes of the key groups in their range. */
  readonly bytesNeeded: number;
  /** `bytesRead / bytesNeeded` (1 when both are 0). 1 means nothing irrelevant is read. */
  readonly readAmplification: number;
  /** Non-empty key groups whose owning subtask index changes, and their chain bytes. */
  readonly movedKeyGroups: number;
  readonly movedBytes: number;
}

export interface RestorePlan {
  readonly jobName: string;
  readonly checkpointId: number;
  readonly savepoint: boolean;
  readonly operators: readonly OperatorRestorePlan[];
  readonly bytesRead: number;
  readonly bytesNeeded: number;
  readonly readAmplification: number;
}

export interface RestorePlanOptions {
  /**
   * The maxParallelism the restoring job is configured with (one for all operators, or per
   * uid). It must equal the checkpoint's, as the runtime requires: key groups cannot be
   * re-cut without rehashing every key. Absent: the checkpoint's own (always compatible).
   */
  readonly maxParallelismOverride?: number | ReadonlyMap<string, number> | undefined;
  /** Cap on one coalesced read (default 8 MiB, the runtime's default). */
  readonly maxReadBytes?: number | undefined;
}

/**
 * Plans the restore of every operator of `metadata` at `newParallelism` (one for all
 * operators, or per uid; operators missing from the map keep their old parallelism).
 * @throws EddyError `EDDY_INVALID_PARALLELISM` if a parallelism is not an integer in
 *   [1, maxParallelism]; `EDDY_CHECKPOINT_INCOMPATIBLE` if the map or the override names a uid
 *   the checkpoint does not have, or the override's maxParallelism differs from the
 *   checkpoint's; `EDDY_CHECKPOINT_CORRUPT` if two old subtasks hold the same key group.
 */
export const planRestore = (
  metadata: CheckpointMetadata,
  newParallelism: number | ReadonlyMap<string, number>,
  options: RestorePlanOptions = {},
): RestorePlan => {
  checkUids(metadata, newParallelism, 'a new parallelism');
  checkUids(metadata, options.maxParallelismOverride, 'a maxParallelism');
  const operators = metadata.operators.map((entry) => {
    const p = typeof newParallelism === 'number' ? newParallelism : newParallelism.get(entry.uid);
    checkMaxParallelismOverride(entry, options.maxParallelismOverride);
    return planOperatorRestore(entry, p ?? entry.parallelism, options.maxReadBytes);
  });
  const bytesRead = sum(operators.map((o) => o.bytesRead));
  const bytesNeeded = sum(operators.map((o) => o.bytesNeeded));
  return {
    jobName: metadata.jobName,
    checkpointId: metadata.checkpointId,
    savepoint: metadata.savepoint,
    operators,
    bytesRead,
    bytesNeeded,
    readAmplification: amplification(bytesRead, bytesNeeded),
  };
};

/**
 * Plans the restore of one operator at `newParallelism`.
 * @throws EddyError as {@link planRestore}.
 */
export const planOperatorRestore = (
  entry: OperatorStateEntry,
  newParallelism: number,
  maxReadBytes: number = DEFAULT_MAX_READ_BYTES,
): OperatorRestorePlan => {
  checkNewParallelism(entry, newParallelism);
  const olds = oldChainViews(entry);
  const perKeyGroup = keyGroupBytes(entry, olds);
  const summary = summarizeKeyedState(entry);
  const operatorState = planOperatorState(entry, newParallelism, maxReadBytes);
  const operatorStateReads = entry.subtasks.flatMap((s) =>
    s.operatorState ? toFileReads(s.operatorState.file, planOperatorReads(s.operatorState)) : [],
  );
  // needed[kg + 1] - needed[start]: bytes of the key groups [start, kg], from the chains alone.
  const needed = prefixSums(perKeyGroup, entry.maxParallelism);
  let bytesNeeded = 0;
  const subtasks = Array.from({ length: newParallelism }, (_, index): SubtaskRestorePlan => {
    const range = computeKeyGroupRange(entry.maxParallelism, newParallelism, index);
    const planned = planSubtaskKeyedReads(olds, range, maxReadBytes);
    bytesNeeded += needed[range.end + 1]! - needed[range.start]!;
    return {
      index,
      keyGroupRange: [range.start, range.end],
      bytes: sum(planned.reads.map((r) => r.length)),
      keyGroups: planned.keyGroups,
      blocks: sum(planned.reads.map((r) => r.blocks)),
      reads: planned.reads,
      operatorState: operatorState[index] ?? [],
      operatorStateReads,
    };
  });
  const bytesRead = sum(subtasks.map((s) => s.bytes));
  const moved = movedKeyGroups(olds, entry, newParallelism);
  return {
    uid: entry.uid,
    name: entry.name,
    oldParallelism: entry.parallelism,
    newParallelism,
    maxParallelism: entry.maxParallelism,
    keyedStateBytes: sum([...perKeyGroup.values()]),
    incremental: summary.format === 'incremental' || summary.format === 'mixed',
    keyedBlocks: summary.blocks,
    longestChain: summary.longestChain,
    operatorStateBytes: sum(
      entry.subtasks.flatMap((s) =>
        (s.operatorState?.states ?? []).flatMap((st) => st.elements.map((e) => e.length)),
      ),
    ),
    subtasks,
    bytesRead,
    bytesNeeded,
    readAmplification: amplification(bytesRead, bytesNeeded),
    movedKeyGroups: moved.keyGroups,
    movedBytes: moved.bytes,
  };
};

/** What an operator's keyed state consists of, over all its subtasks (full or incremental). */
export interface KeyedStateSummary {
  /**
   * `none`: no subtask has a keyed handle; `full`: every handle is one file with one block per
   * key group; `incremental`: every handle is chains of blocks in shared files; `mixed`: both.
   */
  readonly format: 'none' | 'full' | 'incremental' | 'mixed';
  /**
   * The files the handles use, each once, relative to the checkpoint directory
   * (`../blocks/<name>` for an incremental handle's), subtasks in index order.
   */
  readonly files: readonly string[];
  /** Non-empty key groups. */
  readonly keyGroups: number;
  /** Blocks of all chains (base + deltas; one per key group for a full handle). */
  readonly blocks: number;
  /** The most blocks one key group's chain has (0 without state). */
  readonly longestChain: number;
  /** Bytes the chains reference: what restoring all of the state reads. */
  readonly bytesReferenced: number;
  /**
   * Bytes this checkpoint wrote for the state (the handles' `bytes`): the whole state for a
   * full handle, only the new blocks for an incremental one.
   */
  readonly bytesWritten: number;
}

/** Summarizes the keyed handles of `entry` (pure; `eddy inspect` and the planner use it). */
export const summarizeKeyedState = (entry: OperatorStateEntry): KeyedStateSummary => {
  let full = 0;
  let incremental = 0;
  let keyGroups = 0;
  let blocks = 0;
  let longestChain = 0;
  let bytesReferenced = 0;
  let bytesWritten = 0;
  const files = new Set<string>();
  for (const s of [...entry.subtasks].sort((a, b) => a.index - b.index)) {
    if (!s.keyed) continue;
    if (isIncremental(s.keyed)) incremental++;
    else full++;
    bytesWritten += s.keyed.bytes;
    const view = chainsOf(s.keyed);
    for (const f of view.files) files.add(f);
    keyGroups += view.chains.length;
    for (const chain of view.chains) {
      blocks += chain.blocks.length;
      longestChain = Math.max(longestChain, chain.blocks.length);
      bytesReferenced += chainBytes(chain);
    }
  }
  const format =
    incremental === 0 ? (full === 0 ? 'none' : 'full') : full === 0 ? 'incremental' : 'mixed';
  return {
    format,
    files: [...files],
    keyGroups,
    blocks,
    longestChain,
    bytesReferenced,
    bytesWritten,
  };
};

/** An old subtask's keyed handle as chains (computed once per operator, not per new subtask). */
interface OldChains {
  readonly index: number;
  readonly view: ChainView;
}

/** The keyed handles of `entry`'s old subtasks as chains, in metadata order. */
const oldChainViews = (entry: OperatorStateEntry): OldChains[] =>
  entry.subtasks.flatMap((s) => (s.keyed ? [{ index: s.index, view: chainsOf(s.keyed) }] : []));

/**
 * As the runtime's `loadOperator`: every old subtask whose range intersects, in metadata order;
 * of each, the chains of the intersecting key groups (planChainReads finds them by binary
 * search, so p old x p new subtasks never scan p^2 blocks).
 */
const planSubtaskKeyedReads = (
  olds: readonly OldChains[],
  range: KeyGroupRange,
  maxReadBytes: number,
): { reads: KeyedFileRead[]; keyGroups: number } => {
  const reads: KeyedFileRead[] = [];
  let keyGroups = 0;
  for (const { index, view } of olds) {
    const [start, end] = view.keyGroupRange;
    const overlap = intersectKeyGroupRanges(range, { start, end });
    if (!overlap) continue;
    keyGroups +=
      firstChainAtOrAfter(view.chains, overlap.end + 1) -
      firstChainAtOrAfter(view.chains, overlap.start);
    for (const { file, reads: fileReads } of planChainReads(view, overlap, maxReadBytes)) {
      for (const r of fileReads) {
        let first = Number.POSITIVE_INFINITY;
        let last = Number.NEGATIVE_INFINITY;
        let deltas = 0;
        for (const b of r.blocks) {
          first = Math.min(first, b.keyGroup);
          last = Math.max(last, b.keyGroup);
          if (b.position > 0) deltas++;
        }
        reads.push({
          file,
          offset: r.offset,
          length: r.length,
          keyGroups: [first, last],
          blocks: r.blocks.length,
          deltas,
          oldSubtask: index,
        });
      }
    }
  }
  return { reads, keyGroups };
};

/** `out[k]` = bytes of key groups `[0, k)`; key groups outside `[0, maxP)` count nowhere. */
const prefixSums = (bytes: ReadonlyMap<number, number>, maxParallelism: number): number[] => {
  const out = new Array<number>(maxParallelism + 1).fill(0);
  for (let kg = 0; kg < maxParallelism; kg++) out[kg + 1] = out[kg]! + (bytes.get(kg) ?? 0);
  return out;
};

/** An operator state element handle, dealt by `redistributeOperatorState` like a value. */
interface ElementRef extends BlockHandle {
  readonly file: string;
}

/** Per new subtask, per state: the elements it receives (same dealing as the runtime). */
const planOperatorState = (
  entry: OperatorStateEntry,
  newParallelism: number,
  maxReadBytes: number,
): PlannedOperatorState[][] => {
  const byIndex = new Map(entry.subtasks.map((s) => [s.index, s]));
  const olds: OperatorStateSnapshot[] = [];
  for (let k = 0; k < entry.parallelism; k++) {
    const handle = byIndex.get(k)?.operatorState;
    olds.push(
      handle
        ? {
            states: handle.states.map((s) => ({
              name: s.name,
              mode: s.mode,
              elements: s.elements.map((e): ElementRef => ({ ...e, file: handle.file })),
            })),
          }
        : { states: [] },
    );
  }
  return redistributeOperatorState(olds, newParallelism).map((snapshot) =>
    snapshot.states.map((s) => {
      const elements = s.elements as readonly ElementRef[];
      return {
        name: s.name,
        mode: s.mode,
        elements: elements.length,
        bytes: sum(elements.map((e) => e.length)),
        from: coalesceElements(elements, maxReadBytes),
      };
    }),
  );
};

/**
 * The elements' blocks as reads: an element joins the current read when it is in the same file,
 * starts exactly where the read ends and the read stays within `maxReadBytes` (the rule of
 * `coalesceBlocks`, which the runtime's reads follow), so no byte between elements is read.
 */
const coalesceElements = (elements: readonly ElementRef[], maxReadBytes: number): FileRead[] => {
  const out: FileRead[] = [];
  let current: { file: string; offset: number; length: number } | undefined;
  for (const e of elements) {
    if (
      current !== undefined &&
      current.file === e.file &&
      current.offset + current.length === e.offset &&
      current.length + e.length <= maxReadBytes
    ) {
      current.length += e.length;
    } else {
      current = { file: e.file, offset: e.offset, length: e.length };
      out.push(current);
    }
  }
  return out;
};

const toFileReads = (file: string, reads: readonly BlockRead[]): FileRead[] =>
  reads.map((r) => ({ file, offset: r.offset, length: r.length }));

/**
 * Chain bytes (base + deltas) per non-empty key group over all old subtasks.
 * @throws EddyError `EDDY_CHECKPOINT_CORRUPT` if two old subtasks hold the same key group
 *   (restoring would duplicate its state).
 */
const keyGroupBytes = (
  entry: OperatorStateEntry,
  olds: readonly OldChains[],
): Map<number, number> => {
  const bytes = new Map<number, number>();
  const fileOf = new Map<number, string>();
  for (const { index, view } of olds) {
    for (const chain of view.chains) {
      // The file of the chain's base block names where the key group lives.
      const file = view.files[chain.blocks[0]?.file ?? 0] ?? `the keyed state of subtask ${index}`;
      const other = fileOf.get(chain.keyGroup);
      if (other !== undefined) {
        throw corruptError(
          file,
          `key group ${chain.keyGroup} of operator '${entry.name}' (uid ${entry.uid}) is also in ` +
            `${other}; every key group belongs to exactly one subtask`,
        );
      }
      fileOf.set(chain.keyGroup, file);
      bytes.set(chain.keyGroup, chainBytes(chain));
    }
  }
  return bytes;
};

const movedKeyGroups = (
  olds: readonly OldChains[],
  entry: OperatorStateEntry,
  newParallelism: number,
): { keyGroups: number; bytes: number } => {
  let keyGroups = 0;
  let bytes = 0;
  for (const { index, view } of olds) {
    for (const chain of view.chains) {
      const owner = operatorIndexForKeyGroupUnchecked(
        entry.maxParallelism,
        newParallelism,
        chain.keyGroup,
      );
      if (owner === index) continue;
      keyGroups++;
      bytes += chainBytes(chain);
    }
  }
  return { keyGroups, bytes };
};

const checkNewParallelism = (entry: OperatorStateEntry, p: number): void => {
  const what = `cannot restore operator '${entry.name}' (uid ${entry.uid}) at parallelism ${p}`;
  if (!Number.isSafeInteger(p) || p < 1) {
    throw new EddyError(
      'EDDY_INVALID_PARALLELISM',
      `${what}: a parallelism must be an integer >= 1`,
      { domain: 'user' },
    );
  }
  const maxP = entry.maxParallelism;
  if (!Number.isSafeInteger(maxP) || maxP < 1 || maxP > UPPER_BOUND_MAX_PARALLELISM) {
    throw new EddyError(
      'EDDY_CHECKPOINT_INCOMPATIBLE',
      `${what}: the checkpoint records maxParallelism ${maxP}, not an integer in ` +
        `[1, ${UPPER_BOUND_MAX_PARALLELISM}]`,
      { domain: 'external' },
    );
  }
  if (p > maxP) {
    throw new EddyError(
      'EDDY_INVALID_PARALLELISM',
      `${what}: its maxParallelism is ${maxP} (fixed once the job has state); choose a ` +
        `parallelism <= ${maxP}`,
      { domain: 'user' },
    );
  }
};

/** The runtime's check (worker-agent.ts `loadOperator`), with the same message. */
const checkMaxParallelismOverride = (
  entry: OperatorStateEntry,
  override: number | ReadonlyMap<string, number> | undefined,
): void => {
  const maxP = typeof override === 'number' ? override : override?.get(entry.uid);
  if (maxP === undefined || maxP === entry.maxParallelism) return;
  throw new EddyError(
    'EDDY_CHECKPOINT_INCOMPATIBLE',
    `operator '${entry.name}' (uid ${entry.uid}): the checkpoint's state has maxParallelism ${entry.maxParallelism} but the job now has ${maxP}; maxParallelism is fixed once a job has state: run with --max-parallelism ${entry.maxParallelism}`,
    { domain: 'user' },
  );
};

const checkUids = (
  metadata: CheckpointMetadata,
  byUid: number | ReadonlyMap<string, number> | undefined,
  what: string,
): void => {
  if (byUid === undefined || typeof byUid === 'number') return;
  const known = new Set(metadata.operators.map((o) => o.uid));
  for (const uid of byUid.keys()) {
    if (known.has(uid)) continue;
    throw new EddyError(
      'EDDY_CHECKPOINT_INCOMPATIBLE',
      `${what} was given for operator uid ${uid}, but checkpoint ${metadata.checkpointId} of ` +
        `job '${metadata.jobName}' has no state for it (its operators: ` +
        `${[...known].join(', ') || 'none'})`,
      { domain: 'user' },
    );
  }
};

const amplification = (read: number, needed: number): number =>
  needed === 0 ? (read === 0 ? 1 : Number.POSITIVE_INFINITY) : read / needed;

const sum = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0);
