// What every backend does with a change set: apply it as one batch (restore file or transaction),
// and if the batch fails, apply the changes one by one so that one bad change costs only itself.
import { CommandFailedError } from '../errors.js';
import type { CommitResult, FirewallChange } from './backend.js';

export interface BatchSteps {
  /** Applies every change at once; throws CommandFailedError when the batch is refused. */
  readonly batch: () => Promise<void>;
  /** Applies one change alone. */
  readonly single: (change: FirewallChange) => Promise<void>;
  /** Turns a single change's failure into the error reported (a full set, for example). */
  readonly explain?: (error: CommandFailedError, change: FirewallChange) => Error;
}

export async function applyBatch(
  changes: readonly FirewallChange[],
  steps: BatchSteps,
  result: CommitResult,
): Promise<void> {
  if (changes.length === 0) return;
  try {
    await steps.batch();
    // A loop, not push(...changes): a batch of 125k+ changes overflows V8's stack as arguments.
    for (const change of changes) result.applied.push(change);
    return;
  } catch (error) {
    if (!(error instanceof CommandFailedError)) throw error;
  }
  for (const change of changes) {
    try {
      await steps.single(change);
      result.applied.push(change);
    } catch (error) {
      if (!(error instanceof CommandFailedError)) throw error;
      result.failed.push({ change, error: steps.explain?.(error, change) ?? error });
    }
  }
}

/** Buffered changes, one per target: a later change to the same target replaces the earlier one. */
export class ChangeBuffer {
  private pending = new Map<string, FirewallChange>();

  constructor(private readonly keyOf: (change: FirewallChange) => string) {}

  add(change: FirewallChange): void {
    this.pending.set(this.keyOf(change), change);
  }

  /** The buffered changes, emptying the buffer. */
  take(): FirewallChange[] {
    const changes = [...this.pending.values()];
    this.pending = new Map();
    return changes;
  }

  clear(): void {
    this.pending = new Map();
  }
}
