// `floodgate ban TARGET… [--ttl] [--reason] [--from-file]`: manual bans, validated before anything runs.
import { UsageError } from '../errors.js';
import { type BanResult, reasonProblem } from '../daemon/protocol.js';
import { cidrContains, formatCidr } from '../net/ip.js';
import { hostBitsNote, parseTarget, parseTargetList } from '../net/target.js';
import { formatDuration } from '../policy/duration.js';
import { ReadBoundedError, readBounded } from '../system/read-bounded.js';
import { type Acted, type ActedJson, type CommonOptions, act, actedJson, printJson } from './act.js';
import { type SessionLookup, findSshSession } from './ssh-session.js';
import { type TargetNotes, printTargetNotes } from './target-notes.js';

export interface BanOptions extends CommonOptions {
  readonly ttl?: number;
  readonly reason?: string;
  readonly fromFile?: string;
  readonly force?: boolean;
  readonly json?: boolean;
}

/** What `ban --json` prints: one object for the whole command. */
export interface BanJson extends ActedJson {
  /** The --ttl asked for, or null for the policy's ban.ttl (doubled for repeat offenders). */
  readonly ttl: string | null;
  readonly counts: { readonly banned: number; readonly already: number; readonly refused: number };
  /**
   * One per target, in the order given: banned or already (already banned: its expiry is left as it
   * was) with expiresAt, or refused with the reason; `note` when the target was written with host
   * bits, saying which network is banned (as on stderr).
   */
  readonly results: readonly (BanResult & { readonly note?: string })[];
}

export function banJson(acted: Acted, options: BanOptions, notes: TargetNotes = []): BanJson {
  const results = (acted.result as BanResult[]).map(({ unsaved: _, ...r }, i) =>
    notes[i] === undefined ? r : { ...r, note: notes[i] },
  );
  const counts = { banned: 0, already: 0, refused: 0 };
  for (const r of results) counts[r.status]++;
  return {
    ...actedJson(acted, options),
    ttl: options.ttl === undefined ? null : formatDuration(options.ttl),
    counts,
    results,
  };
}

export { sshClientAddress } from './ssh-session.js';

/** The largest --from-file: 16 MiB, about a million targets (the README's "Limits"). */
export const MAX_TARGET_FILE_BYTES = 16 * 1024 * 1024;

/** A --from-file list: a regular file or a pipe, at most MAX_TARGET_FILE_BYTES. */
export function readTargetFile(path: string, maxBytes = MAX_TARGET_FILE_BYTES): string {
  try {
    return readBounded(path, maxBytes, 'a list of targets');
  } catch (error) {
    if (!(error instanceof ReadBoundedError)) throw error;
    throw new UsageError(
      `cannot read --from-file ${path}: ${error.message}${/allowed for/.test(error.message) ? ': split it' : ''}`,
      { cause: error },
    );
  }
}

export async function banCommand(
  targetTexts: string[],
  options: BanOptions,
  lookup: SessionLookup = {},
): Promise<void> {
  const reasonTooLong = options.reason === undefined ? null : reasonProblem(options.reason);
  if (reasonTooLong !== null) throw new UsageError(reasonTooLong);
  const notes: (string | undefined)[] = [];
  const targets = targetTexts.map((text, i) => {
    const target = parseTarget(text, options.force);
    const note = hostBitsNote(text, target);
    if (note !== null) notes[i] = `${note}; banning that`;
    return target;
  });
  if (options.fromFile !== undefined) {
    const text = readTargetFile(options.fromFile);
    const first = targets.length;
    const listed = parseTargetList(text, options.fromFile, options.force, (i, note) => {
      notes[first + i] = `${note}; banning that`;
    });
    // A loop, not push(...list): spreading 125k+ arguments overflows V8's stack.
    for (const target of listed) targets.push(target);
  }
  if (targets.length === 0) throw new UsageError('nothing to ban: give one or more targets, or --from-file FILE');
  if (!options.force) {
    const session = findSshSession(lookup);
    if (session.kind === 'found') {
      const covering = targets.find((target) => cidrContains(target, session.address));
      if (covering)
        throw new UsageError(
          `refusing to ban ${formatCidr(covering)}: it covers ${formatCidr(session.address)}, ` +
            `the address of your SSH session (${session.source}; --force to ban it anyway)`,
        );
    } else if (session.kind === 'unknown') {
      process.stderr.write(
        'floodgate: warning: the guard against banning your own SSH session could ' +
          `not run: ${session.why}. Check that no target covers your address.\n`,
      );
    }
  }
  printTargetNotes(notes);
  const acted = await act(
    {
      cmd: 'ban',
      targets: targets.map(formatCidr),
      ...(options.ttl !== undefined && { ttl: options.ttl }),
      ...(options.reason !== undefined && { reason: options.reason }),
      ...(options.force && { force: true }),
    },
    options,
  );
  const json = banJson(acted, options, notes);
  const { results, counts } = json;
  // A refusal is an answer, not an error: in the JSON and on stdout, with exit code 1 either way.
  if (counts.refused > 0) process.exitCode = 1;
  if (options.json) {
    printJson(json);
    return;
  }
  for (const r of results) {
    if (results.length <= 50 || r.status === 'refused') {
      const line =
        r.status === 'refused'
          ? `refused ${r.target}: ${r.reason}`
          : `${r.status === 'banned' ? 'banned' : 'already banned'} ${r.target} until ${r.expiresAt}`;
      process.stdout.write(`${line}\n`);
    }
  }
  process.stdout.write(
    `${counts.banned} banned, ${counts.already} already banned, ${counts.refused} refused` +
      `${acted.via === 'daemon' ? ' (through the running daemon)' : ''}` +
      `${acted.mode === 'dry-run' ? ' — dry-run: the firewall was not changed (use --enforce)' : ''}\n`,
  );
}
