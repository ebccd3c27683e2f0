// `floodgate unban TARGET… [--grace]`: lifts bans; the detector leaves the target alone for the grace.
// `unban --all` is `flush`, for those who know fail2ban's `unban --all`.
import type { UnbanResult } from '../daemon/protocol.js';
import { UsageError } from '../errors.js';
import { formatCidr } from '../net/ip.js';
import { hostBitsNote, parseTarget } from '../net/target.js';
import { formatDuration } from '../policy/duration.js';
import { type Acted, type ActedJson, type CommonOptions, act, actedJson, printJson } from './act.js';
import { flushCommand } from './flush.js';
import { type TargetNotes, printTargetNotes } from './target-notes.js';

export interface UnbanOptions extends CommonOptions {
  readonly grace?: number;
  readonly all?: boolean;
  readonly json?: boolean;
}

/** What `unban --json` prints (`unban --all --json` prints what `flush --json` does). */
export interface UnbanJson extends ActedJson {
  /** The --grace asked for, or null for the policy's ban.ttl. */
  readonly grace: string | null;
  readonly counts: { readonly lifted: number; readonly notBanned: number };
  /**
   * One per target, in the order given: lifted, or not-banned (any rule left for it is removed);
   * `note` when the target was written with host bits, saying which network is unbanned.
   */
  readonly results: readonly (UnbanResult & { readonly note?: string })[];
}

export function unbanJson(acted: Acted, options: UnbanOptions, notes: TargetNotes = []): UnbanJson {
  const results = (acted.result as UnbanResult[]).map(({ unsaved: _, ...r }, i) =>
    notes[i] === undefined ? r : { ...r, note: notes[i] },
  );
  const lifted = results.filter((r) => r.status === 'lifted').length;
  return {
    ...actedJson(acted, options),
    grace: options.grace === undefined ? null : formatDuration(options.grace),
    counts: { lifted, notBanned: results.length - lifted },
    results,
  };
}

export async function unbanCommand(targetTexts: string[], options: UnbanOptions): Promise<void> {
  if (options.all) {
    if (targetTexts.length > 0)
      throw new UsageError('unban takes targets or --all, not both: --all lifts every ban, as flush does');
    // flush sets no grace period: a --grace here would promise what is not done.
    if (options.grace !== undefined)
      throw new UsageError(
        '--grace does not go with --all: like flush, unban --all lifts every ban with no grace period',
      );
    return flushCommand(options);
  }
  if (targetTexts.length === 0)
    throw new UsageError('nothing to unban: give one or more targets, or --all to lift every ban (as flush does)');
  const notes: (string | undefined)[] = [];
  const targets = targetTexts.map((text, i) => {
    const target = parseTarget(text, true);
    const note = hostBitsNote(text, target);
    if (note !== null) notes[i] = `${note}; unbanning that`;
    return formatCidr(target);
  });
  printTargetNotes(notes);
  const acted = await act(
    { cmd: 'unban', targets, ...(options.grace !== undefined && { grace: options.grace }) },
    options,
  );
  if (options.json) {
    printJson(unbanJson(acted, options, notes));
    return;
  }
  for (const r of acted.result as UnbanResult[]) {
    process.stdout.write(
      r.status === 'lifted'
        ? `lifted ${r.target}\n`
        : `${r.target} was not banned${acted.mode === 'dry-run' ? '' : ' (any rule left for it is removed)'}\n`,
    );
  }
  if (acted.mode === 'dry-run') process.stdout.write('dry-run: the firewall was not changed (use --enforce)\n');
}
