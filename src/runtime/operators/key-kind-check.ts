import { EddyError } from '../../core/errors.js';
import { type Key, keyKind } from '../../keygroups/index.js';

/**
 * Checks that two inputs that must meet by key (connect, joins) give keys of one kind: `1`
 * and `'1'` are different keys in different key groups, so records keyed by one would never
 * meet records keyed by the other, silently. TypeScript checks the declared key types; this
 * checks the values, on the first key of each input (later keys cost one branch).
 */
export class KeyKindCheck {
  /** False once both inputs' kinds were seen and compared. */
  pending = true;
  private readonly kinds: [string | undefined, string | undefined] = [undefined, undefined];
  private readonly keys: [unknown, unknown] = [undefined, undefined];

  constructor(
    /** Names the operator in the error. */
    private readonly operator: string,
    /** What gives each input's key, e.g. `['the first input', 'the second input']`. */
    private readonly sides: readonly [string, string] = ['the first input', 'the second input'],
  ) {}

  /**
   * Notes the kind of `key`, the first of input `side`.
   * @throws EddyError `EDDY_INVALID_JOB` naming the operator and both keys when the kinds differ.
   */
  check(side: 0 | 1, key: Key): void {
    if (this.kinds[side] !== undefined) return;
    this.kinds[side] = keyKind(key);
    this.keys[side] = key;
    const [a, b] = this.kinds;
    if (a === undefined || b === undefined) return;
    this.pending = false;
    if (a !== b) {
      throw new EddyError(
        'EDDY_INVALID_JOB',
        `operator '${this.operator}': its two inputs' keys are of different types: ${this.sides[0]} gave the ${a} key ${show(this.keys[0])}, ${this.sides[1]} gave the ${b} key ${show(this.keys[1])}; keys of different types never meet: make both key selectors return the same type`,
        { domain: 'user' },
      );
    }
  }

  /** `selector`, checking its first key as input `side`'s. */
  wrap<T, K extends Key>(selector: (value: T) => K, side: 0 | 1): (value: T) => K {
    return (value) => {
      const key = selector(value);
      if (this.pending) this.check(side, key);
      return key;
    };
  }
}

const show = (key: unknown): string => {
  try {
    return typeof key === 'bigint' ? `${key}n` : (JSON.stringify(key) ?? String(key));
  } catch {
    return String(key);
  }
};
