// How a manual command reaches the bans: through the running daemon's control socket, or, when no
// daemon runs, directly on the state and the firewall under the state directory's lock.
// Only what the socket path needs is imported up front: the enforcement stack (execa, pino, zod,
// yaml, the backends) costs a third of a second to load and is needed only when no daemon runs.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { checkStatePath } from '../bans/state-file.js';
import type { BanStore } from '../bans/ban-store.js';
import { sendControl } from '../daemon/control-socket.js';
import { CONTROL_SOCKET, LOCK_FILE, type ListedBan, type Request } from '../daemon/protocol.js';
import { type Mode, defaultStateDir, ensureStateDir, stateFile } from '../daemon/state-dir.js';
import { BackendUnavailableError, FloodgateError, UsageError } from '../errors.js';
import type { LogFormat, LogLevel } from '../log-format.js';
import type { Logger } from '../log.js';
import type { LoadedPolicy } from '../policy/load-policy.js';

export interface CommonOptions {
  readonly stateDir?: string;
  readonly policy?: string;
  readonly enforce?: boolean;
  readonly dryRun?: boolean;
  readonly pretty?: boolean;
  readonly logFormat?: LogFormat;
  readonly logLevel?: LogLevel;
}

/** The mode the flags ask for, if any. */
export function toldMode(options: CommonOptions): Mode | undefined {
  if (options.enforce && options.dryRun)
    throw new UsageError('--enforce and --dry-run contradict each other: give one');
  return options.enforce ? 'enforce' : options.dryRun ? 'dry-run' : undefined;
}

export function resolveMode(policyMode: Mode, options: CommonOptions): Mode {
  return toldMode(options) ?? policyMode;
}

class DaemonError extends FloodgateError {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
  }
}

export interface Acted {
  readonly result: unknown;
  readonly via: 'daemon' | 'direct';
  readonly mode: Mode;
}

/**
 * The fields every `--json` answer of a changing command (`ban`, `unban`, `flush`) starts with: where
 * and how the change was made, named as `status --json` names them.
 */
export interface ActedJson {
  readonly stateDir: string;
  /** enforce: the firewall was changed; dry-run: only the would-be bans were. */
  readonly mode: Mode;
  /** daemon: the running `floodgate run` made the change; direct: this command did, under the lock. */
  readonly via: 'daemon' | 'direct';
}

export function actedJson(acted: Acted, options: CommonOptions): ActedJson {
  return { stateDir: options.stateDir ?? defaultStateDir(), mode: acted.mode, via: acted.via };
}

/** A `--json` answer, as `list` and `status` print theirs. */
export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/**
 * The policy a manual command works with, in the order of policy-lookup.ts: --policy,
 * $FLOODGATE_POLICY, the file `floodgate run` was given in this state directory (so a manual ban
 * uses the daemon's backend), /etc/floodgate/policy.yaml, the embedded default.
 */
export async function loadCommandPolicy(
  options: CommonOptions,
  stateDir: string,
): Promise<LoadedPolicy & { source: string }> {
  const { lookUpPolicy } = await import('./policy-lookup.js');
  return lookUpPolicy({ policy: options.policy, stateDir });
}

/** A change made but not saved: said on stderr, beside the command's own output, with exit code 3. */
function warnUnsaved(message: string): void {
  process.stderr.write(`floodgate: ${message}\n`);
  process.exitCode = new BackendUnavailableError('').exitCode;
}

/** Runs a request through the daemon when one listens, else directly under the lock. */
export async function act(untold: Request, options: CommonOptions): Promise<Acted> {
  const told = toldMode(options);
  const request: Request = told === undefined ? untold : { ...untold, mode: told };
  const stateDir = options.stateDir ?? defaultStateDir();
  const socket = join(stateDir, CONTROL_SOCKET);
  const viaDaemon = async (): Promise<Acted | null> => {
    const response = await sendControl(socket, request);
    if (response === null) return null;
    if (!response.ok) throw new DaemonError(response.error, response.exitCode);
    const first: unknown = Array.isArray(response.result) ? response.result[0] : response.result;
    const unsaved = (first as { unsaved?: unknown } | null)?.unsaved;
    if (typeof unsaved === 'string') warnUnsaved(unsaved);
    return { result: response.result, via: 'daemon', mode: response.mode };
  };
  // A daemon answering from a state directory another user controls could be theirs: refuse it
  // before trusting its socket, as before using its files.
  if (existsSync(stateDir)) checkStatePath(stateDir, 'directory');
  const first = await viaDaemon();
  if (first !== null) return first;

  ensureStateDir(stateDir);
  let answered: Acted | null = null;
  const { acquireLock } = await import('../bans/state-lock.js');
  let lock: Awaited<ReturnType<typeof acquireLock>>;
  try {
    // While another command or a starting daemon holds the lock, keep trying the socket too.
    lock = await acquireLock(join(stateDir, LOCK_FILE), 15_000, async () => {
      answered = await viaDaemon();
      return answered !== null;
    });
  } catch (error) {
    // The daemon came up while we waited and has answered.
    if (answered !== null) return answered;
    throw error;
  }
  try {
    const [{ policy }, { createLogger }, { openEnforcement }, { perform }, { parseRequest }] = await Promise.all([
      loadCommandPolicy(options, stateDir),
      import('../log.js'),
      import('../daemon/setup.js'),
      import('../daemon/operations.js'),
      import('../daemon/request-schema.js'),
    ]);
    // The checks the daemon makes, before anything here changes the state or the firewall.
    parseRequest(request);
    const mode = resolveMode(policy.mode, options);
    // Refusals and errors only, readable: the command prints its own results on stdout.
    const log = createLogger({
      format: options.logFormat,
      pretty: options.pretty,
      level: options.logLevel,
      defaultLevel: 'warn',
      fallbackFormat: 'pretty',
      destination: process.stderr,
    });
    // The ban history is the operator's record: bans made without a daemon go in it too (they are
    // not notified: a notification belongs to the daemon, which retries without holding up a command).
    const { HistoryWriter } = await import('../bans/ban-history.js');
    const { tapEvents } = await import('../log-events.js');
    const history = new HistoryWriter(stateDir, (error) =>
      process.stderr.write(`floodgate: could not write the ban history: ${error.message}\n`),
    );
    const untap = tapEvents(log, (event) => history.take(event));
    const { enforcer } = await openEnforcement(policy, mode, stateDir, log);
    // No daemon to push to the fleet now: the outbox keeps the change for the daemon's next start.
    if (policy.fleet && mode === 'enforce')
      (await import('../fleet/open-fleet.js')).queueManualChanges(log, enforcer.store);
    if (mode === 'enforce' && request.cmd === 'ban' && policy.firewall.backend === 'iptables') {
      // iptables rules have no kernel timeout: without a daemon nothing lifts them on time.
      process.stderr.write(
        'floodgate: note: no `floodgate run` is running here: these bans expire ' +
          'only while it runs (or at the next floodgate command); start it, or ' +
          'use the ipset/nftables backend, whose kernel timeouts lift them anyway\n',
      );
    }
    // No daemon keeps the firewall in line: do its start-up work (expiry and reconcile) first.
    enforcer.expire();
    await enforcer.reconcile();
    // The command prints each refusal on its own result line: the log line would say it twice.
    dropRefusals(log);
    const result = await perform(request, { enforcer, policy, now: Date.now(), daemon: null });
    try {
      await enforcer.close();
    } catch (error) {
      // The firewall is changed but the store is not (a full disk): say what was done, then why it
      // will not last.
      if (enforcer.store.saveFailure === undefined) throw error;
      warnUnsaved((error as Error).message);
    }
    untap();
    history.flush();
    return { result, via: 'direct', mode };
  } finally {
    lock.release();
  }
}

/** Entries of the store that a reader without the lock skipped: said, not hidden. */
export function warnInvalidEntries(store: {
  readonly file: string | undefined;
  readonly loadReport: { readonly problems: readonly string[] } | undefined;
}): void {
  const problems = store.loadReport?.problems;
  if (problems === undefined || problems.length === 0) return;
  process.stderr.write(
    `floodgate: the ban store ${store.file} has ${problems.length} invalid ` +
      `entr${problems.length === 1 ? 'y' : 'ies'}, not shown (${problems[0]}${problems.length > 1 ? '; …' : ''}); ` +
      `the next \`floodgate run\` or ban, unban or flush sets them aside\n`,
  );
}

/** Reads both stores without the lock or the firewall (the files are replaced atomically). */
/**
 * Both ban stores of a state directory, each with the mode it was made in, read without the lock or
 * the firewall (the files are replaced atomically); a store's invalid entries are reported once.
 */
export async function readStores(
  stateDir: string,
  policyTtl: number,
  policyMaxTtl: number,
): Promise<{ readonly mode: Mode; readonly store: BanStore }[]> {
  const { BanStore } = await import('../bans/ban-store.js');
  const out: { mode: Mode; store: BanStore }[] = [];
  for (const mode of ['enforce', 'dry-run'] as const) {
    const file = stateFile(stateDir, mode);
    if (!existsSync(file)) continue;
    const store = BanStore.load(file, { ttl: policyTtl, maxTtl: policyMaxTtl });
    warnInvalidEntries(store);
    out.push({ mode, store });
  }
  return out;
}

/** The active bans of both stores, as `list` shows them. */
export async function readBans(stateDir: string, policyTtl: number, policyMaxTtl: number): Promise<ListedBan[]> {
  const { listedBan } = await import('../daemon/operations.js');
  const out: ListedBan[] = [];
  const now = Date.now();
  for (const { mode, store } of await readStores(stateDir, policyTtl, policyMaxTtl)) {
    for (const ban of store.all()) if (ban.expiresAt > now) out.push(listedBan(ban, mode === 'dry-run'));
  }
  return out;
}

/**
 * Leaves out the enforcer's "refused" warnings (a protected target, max_active): a manual command
 * answers each of them itself. Its other warnings (reconcile repairs, failed commands) still show.
 */
export function dropRefusals(log: Pick<Logger, 'warn'>): void {
  const warn = log.warn.bind(log);
  log.warn = ((first: unknown, ...rest: unknown[]) => {
    if (typeof first === 'object' && first !== null && (first as { event?: unknown }).event === 'refused') return;
    (warn as (...args: unknown[]) => void)(first, ...rest);
  }) as Logger['warn'];
}
