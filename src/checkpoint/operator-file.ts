/**
 * Operator list state files (docs/DESIGN.md §3): one file per subtask; every element of every named
 * list is its own checksummed block, so a restore at another parallelism can fetch exactly the
 * elements the redistribution (split / union / broadcast) deals to it.
 */
import { EddyError, InternalError } from '../core/errors.js';
import type { OperatorStateSnapshot, RedistributionMode } from '../state/types.js';
import { blockCrc, packBlock, unpackBlock } from './block-codec.js';
import { readBlocks, writeSequentially } from './block-io.js';
import { malformedBlockError } from './errors.js';
import { fileInDir, isContainedRelativePath } from './paths.js';
import {
  type BlockRead,
  coalesceBlocks,
  DEFAULT_MAX_READ_BYTES,
  type ReadOptions,
} from './read-plan.js';
import type { BlockHandle, OperatorStateHandle } from './types.js';

const MODES: ReadonlySet<string> = new Set<RedistributionMode>(['split', 'union', 'broadcast']);

/**
 * Writes one subtask's operator list state to `<dir>/<file>` and fsyncs it; each element is
 * one block, states and elements in snapshot order.
 * @throws InternalError if `file` escapes `dir`, a state name repeats or a mode is unknown;
 *   EddyError `EDDY_CHECKPOINT_IO` if the file system refuses; `EDDY_STATE` if an element
 *   cannot be encoded.
 */
export const writeOperatorStateFile = async (
  dir: string,
  file: string,
  snapshot: OperatorStateSnapshot,
): Promise<OperatorStateHandle> => {
  checkFileName(file);
  checkSnapshot(snapshot);
  const { result: states, bytes } = await writeSequentially(fileInDir(dir, file), async (w) => {
    const out: OperatorStateHandle['states'][number][] = [];
    for (const state of snapshot.states) {
      const elements: BlockHandle[] = [];
      for (let i = 0; i < state.elements.length; i++) {
        const encoded = encodeElement(state.name, i, state.elements[i]);
        elements.push({ offset: w.size, length: encoded.length, crc32: blockCrc(encoded) });
        await w.append(encoded);
      }
      out.push({ name: state.name, mode: state.mode, elements });
    }
    return out;
  });
  return { file, states, bytes };
};

const checkSnapshot = (snapshot: OperatorStateSnapshot): void => {
  const seen = new Set<string>();
  for (const s of snapshot.states) {
    if (seen.has(s.name)) throw new InternalError(`operator state '${s.name}' appears twice`);
    if (!MODES.has(s.mode)) {
      throw new InternalError(`operator state '${s.name}' has unknown mode '${String(s.mode)}'`);
    }
    seen.add(s.name);
  }
};

const encodeElement = (name: string, index: number, element: unknown): Uint8Array => {
  try {
    return packBlock(element);
  } catch (e) {
    throw new EddyError(
      'EDDY_STATE',
      `cannot write element ${index} of operator state '${name}' to a checkpoint: ` +
        `${(e as Error).message}; state values must be plain data (no functions or symbols)`,
      { domain: 'user', cause: e },
    );
  }
};

const checkFileName = (file: string): void => {
  if (!isContainedRelativePath(file)) {
    throw new InternalError(
      `state file name '${file}' is not a relative path inside the checkpoint`,
    );
  }
};

/** Which elements of which named list to read; `indices` absent means all, in order. */
export interface OperatorStateSelection {
  readonly name: string;
  readonly indices?: readonly number[];
}

/** Operator list state as read back, plus the bytes read. */
export interface OperatorStateRead extends OperatorStateSnapshot {
  readonly bytesRead: number;
}

/** An element block with where its value goes in the result. */
export interface OperatorElementBlock extends BlockHandle {
  readonly name: string;
  readonly index: number;
  /** Position in the result: `states[state].elements[slot]`. */
  readonly state: number;
  readonly slot: number;
}

/**
 * The reads that fetch the selected elements (default: every element of every state), in file
 * order, coalesced where elements touch. Pure.
 * @throws InternalError if a selection names an unknown state, an index out of range, or an
 *   index twice.
 */
export const planOperatorReads = (
  handle: OperatorStateHandle,
  selection: readonly OperatorStateSelection[] = allOf(handle),
  maxReadBytes = DEFAULT_MAX_READ_BYTES,
): BlockRead<OperatorElementBlock>[] => {
  const blocks: OperatorElementBlock[] = [];
  selection.forEach((sel, state) => {
    const elements = stateOf(handle, sel.name).elements;
    const indices = sel.indices ?? elements.map((_, i) => i);
    checkIndices(sel.name, indices, elements.length);
    indices.forEach((index, slot) => {
      blocks.push({ ...elements[index]!, name: sel.name, index, state, slot });
    });
  });
  return coalesceBlocks(
    blocks.sort((a, b) => a.offset - b.offset),
    maxReadBytes,
  );
};

const allOf = (handle: OperatorStateHandle): OperatorStateSelection[] =>
  handle.states.map((s) => ({ name: s.name }));

const stateOf = (handle: OperatorStateHandle, name: string) => {
  const state = handle.states.find((s) => s.name === name);
  if (state === undefined) {
    throw new InternalError(`operator state '${name}' is not in checkpoint file ${handle.file}`);
  }
  return state;
};

const checkIndices = (name: string, indices: readonly number[], size: number): void => {
  const seen = new Set<number>();
  for (const i of indices) {
    if (!Number.isSafeInteger(i) || i < 0 || i >= size || seen.has(i)) {
      throw new InternalError(
        `element index ${i} of operator state '${name}' is out of range [0, ${size}) or repeated`,
      );
    }
    seen.add(i);
  }
};

/**
 * Reads the selected elements (default: all) of the operator state file of `handle` in `dir`,
 * checking each element's CRC. States come back in selection order (default: file order), each
 * with its redistribution mode and its elements in the order of `indices`.
 * @throws EddyError `EDDY_CHECKPOINT_CORRUPT` naming the file, state and element (CRC mismatch,
 *   truncated or missing file, undecodable element); `EDDY_CHECKPOINT_IO` for other fs errors.
 */
export const readOperatorStateElements = async (
  dir: string,
  handle: OperatorStateHandle,
  selection: readonly OperatorStateSelection[] = allOf(handle),
  options: ReadOptions = {},
): Promise<OperatorStateRead> => {
  checkFileName(handle.file);
  const path = fileInDir(dir, handle.file);
  const reads = planOperatorReads(handle, selection, options.maxReadBytes);
  const states = selection.map((sel) => ({
    name: sel.name,
    mode: stateOf(handle, sel.name).mode,
    elements: new Array<unknown>(sel.indices?.length ?? stateOf(handle, sel.name).elements.length),
  }));
  const describe = (b: OperatorElementBlock) => `element ${b.index} of operator state '${b.name}'`;
  const bytesRead = await readBlocks(path, reads, describe, (block, bytes) => {
    states[block.state]!.elements[block.slot] = decodeElement(
      bytes,
      `${describe(block)} in ${path}`,
    );
  });
  return { states, bytesRead };
};

const decodeElement = (bytes: Uint8Array, where: string): unknown => {
  try {
    return unpackBlock(bytes);
  } catch (e) {
    throw malformedBlockError(where, `not msgpack (${(e as Error).message})`, e);
  }
};
