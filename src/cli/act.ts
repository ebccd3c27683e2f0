// How a manual command reaches the bans: through the running daemon's control socket, or, when no
// daemon runs, directly on the state and the firewall under the state directory's lock.
// Only what the socket path needs is imported up front: the enforcement stack (execa, pino, zod,
// yaml, the backends) costs a third of a second to load and is needed only when no daemon runs.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { sendControl } from '../daemon/control-socket.js';
import { CONTROL_SOCKET, LOCK_FILE, type ListedBan, type Request } from '../daemon/protocol.js';
import { type Mode, defaultStateDir, ensureStateDir, policyRecord, stateFile } from '../daemon/state-dir.js';
import { FloodgateError, UsageError } from '../errors.js';
import type { LoadedPolicy } from '../policy/load-policy.js';

export interface CommonOptions {
  readonly stateDir?: string;
  readonly policy?: string;
  readonly enforce?: boolean;
  readonly dryRun?: boolean;
  readonly pretty?: boolean;
}

/** The mode the flags ask for, if any. */
export function toldMode(options: CommonOptions): Mode | undefined {
  if (options.enforce && options.dryRun) throw new UsageError('--enforce and --dry-run contradict each other: give one');
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
  readonly mode?: Mode;
}

/**
 * The policy a manual command works with: --policy if given, else the one `floodgate run` last ran
 * with in this state directory (so a manual ban uses the daemon's backend), else the default.
 */
export async function loadCommandPolicy(options: CommonOptions, stateDir: string): Promise<LoadedPolicy> {
  const { loadPolicy } = await import('../policy/load-policy.js');
  if (options.policy !== undefined) return loadPolicy(options.policy);
  try {
    const recorded = readFileSync(policyRecord(stateDir), 'utf8').trim();
    if (recorded !== '' && existsSync(recorded)) return loadPolicy(recorded);
  } catch {
    // no daemon has run here yet
  }
  return loadPolicy();
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
    return { result: response.result, via: 'daemon', mode: response.mode };
  };
  const first = await viaDaemon();
  if (first !== null) return first;

  ensureStateDir(stateDir);
  let answered: Acted | null = null;
  const { acquireLock } = await import('../bans/state-lock.js');
  let lock;
  try {
    // While another command or a starting daemon holds the lock, keep trying the socket too.
    lock = await acquireLock(join(stateDir, LOCK_FILE), 15_000, async () => (answered = await viaDaemon()) !== null);
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
    const log = createLogger({ pretty: options.pretty ?? true, level: 'warn', destination: process.stderr });
    const { enforcer } = await openEnforcement(policy, mode, stateDir, log);
    if (mode === 'enforce' && request.cmd === 'ban' && policy.firewall.backend === 'iptables') {
      // iptables rules have no kernel timeout: without a daemon nothing lifts them on time.
      process.stderr.write('floodgate: note: no `floodgate run` is running here: these bans expire only while it runs (or at the next floodgate command); start it, or use the ipset/nftables backend, whose kernel timeouts lift them anyway\n');
    }
    // No daemon keeps the firewall in line: do its start-up work (expiry and reconcile) first.
    enforcer.expire();
    await enforcer.reconcile();
    const result = await perform(request, { enforcer, policy, now: Date.now(), daemon: null });
    await enforcer.close();
    return { result, via: 'direct', mode };
  } finally {
    lock.release();
  }
}

/** Reads both stores without the lock or the firewall (the files are replaced atomically). */
export async function readBans(stateDir: string, policyTtl: number, policyMaxTtl: number): Promise<ListedBan[]> {
  const [{ BanStore }, { listedBan }] = await Promise.all([import('../bans/ban-store.js'), import('../daemon/operations.js')]);
  const out: ListedBan[] = [];
  const now = Date.now();
  for (const mode of ['enforce', 'dry-run'] as const) {
    const file = stateFile(stateDir, mode);
    if (!existsSync(file)) continue;
    const store = BanStore.load(file, { ttl: policyTtl, maxTtl: policyMaxTtl });
    for (const ban of store.all()) if (ban.expiresAt > now) out.push(listedBan(ban, mode === 'dry-run'));
  }
  return out;
}
