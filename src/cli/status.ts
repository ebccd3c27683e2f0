// `floodgate status [--json]`: mode, backend, bans, the last scan and the kernel's flood counters,
// and the state directory they were read from.
import { join } from 'node:path';
import { sendControl } from '../daemon/control-socket.js';
import { CONTROL_SOCKET, type StatusResult } from '../daemon/protocol.js';
import { peekStateDirInstance } from '../daemon/instance-id.js';
import { type Mode, defaultStateDir } from '../daemon/state-dir.js';
import type { BanStore } from '../bans/ban-store.js';
import { formatDuration } from '../policy/duration.js';
import { readKernelCounters } from '../table/live-table.js';
import { FLOOD_COUNTERS } from '../table/kernel-counters.js';
import { type CommonOptions, loadCommandPolicy, readStores, resolveMode } from './act.js';
import { PROCESS_READER, type Reader, rootStateNote } from './state-dir-note.js';
import { type PolicyChoice, daemonPolicy, describePolicy } from './policy-lookup.js';

const mib = (bytes: number): string => (bytes / 2 ** 20).toFixed(1);

/**
 * `status`'s exit code when no daemon answers (the same information is printed): a monitoring check
 * can run `floodgate status` as it is. Other failures keep their own codes (2 usage, 3 unavailable…).
 */
export const NO_DAEMON_EXIT_CODE = 1;

/** What `status --json` prints besides the kernel counters. */
export interface Status extends StatusResult {
  readonly stateDir: string;
  /** The comment its rules carry (`floodgate`, or `floodgate-<id>`); null before its first ban. */
  readonly tag?: string | null;
  /** Active bans by the mode they were made in: enforced ones are in the firewall, dry-run ones are not. */
  readonly bans: { readonly enforce: number; readonly dryRun: number };
}

/**
 * With no daemon, both stores, as `list` reads them: a `ban --enforce` made without a daemon is in
 * the enforce store whatever mode the policy says.
 */
async function readStatus(
  stateDir: string,
  mode: Mode,
  policy: Awaited<ReturnType<typeof loadCommandPolicy>>['policy'],
): Promise<Status> {
  const now = Date.now();
  const counts = { enforce: 0, 'dry-run': 0 };
  let refused = 0;
  let last: BanStore['lastScan'];
  for (const { mode: stored, store } of await readStores(stateDir, policy.ban.ttl, policy.ban.max_ttl)) {
    counts[stored] = store.all().filter((b) => b.expiresAt > now).length;
    refused += store.refused;
    if (store.lastScan && (last === undefined || store.lastScan.at > last.at)) last = store.lastScan;
  }
  return {
    stateDir,
    daemon: null,
    mode,
    backend: policy.firewall.backend,
    interval: formatDuration(policy.interval),
    active: counts.enforce + counts['dry-run'],
    bans: { enforce: counts.enforce, dryRun: counts['dry-run'] },
    refused,
    queued: 0,
    lastScan: last ? { at: new Date(last.at).toISOString(), durationMs: last.durationMs, sockets: last.sockets } : null,
  };
}

export async function statusCommand(
  options: CommonOptions & { json?: boolean },
  reader: Reader = PROCESS_READER,
): Promise<void> {
  const stateDir = options.stateDir ?? defaultStateDir();
  const response = await sendControl(join(stateDir, CONTROL_SOCKET), { cmd: 'status' });
  let status: Status;
  let used: PolicyChoice;
  if (response?.ok) {
    const answered = response.result as StatusResult;
    used = daemonPolicy(stateDir);
    // A daemon holds the bans of its own mode only.
    status = {
      stateDir,
      ...answered,
      bans: {
        enforce: answered.mode === 'enforce' ? answered.active : 0,
        dryRun: answered.mode === 'dry-run' ? answered.active : 0,
      },
    };
  } else {
    const { policy, file, source } = await loadCommandPolicy(options, stateDir);
    used = { file, source };
    status = await readStatus(stateDir, resolveMode(policy.mode, options), policy);
  }
  status = { ...status, tag: peekStateDirInstance(stateDir)?.tag ?? null };
  const note = rootStateNote(stateDir, status.daemon === null && status.active === 0, reader);
  if (note !== null) process.stderr.write(`floodgate: ${note}\n`);
  const counters = await readKernelCounters();
  if (status.daemon === null) process.exitCode = NO_DAEMON_EXIT_CODE;
  if (options.json) {
    const json = { ...status, policy: { file: used.file ?? null, source: used.source }, stateDir, counters };
    process.stdout.write(`${JSON.stringify(json, null, 2)}\n`);
    return;
  }
  const byMode =
    `${status.bans.enforce} enforced (in the firewall), ` + `${status.bans.dryRun} dry-run (not in the firewall)`;
  const modeFrom = options.enforce || options.dryRun ? 'the flags say' : 'the policy says';
  const tag = status.tag ? ` (this state directory's rules, sets and table: ${status.tag})` : '';
  const { lastScan: scan, fleet } = status;
  const lines = [
    `state dir:  ${stateDir}`,
    `daemon:     ${status.daemon ? `running (pid ${status.daemon.pid}, since ${status.daemon.since})` : 'not running'}`,
    ...(status.daemon?.memory
      ? [
          `memory:     ${mib(status.daemon.memory.rss)} MiB resident, ` +
            `${mib(status.daemon.memory.heapUsed)} MiB of JavaScript heap in use`,
        ]
      : []),
    `policy:     ${describePolicy(used.file, used.source)}`,
    // With no daemon, the mode is only what the next command would use; the bans say their own.
    `mode:       ${status.mode}${status.daemon ? '' : ` (what ${modeFrom}; no daemon runs)`}`,
    `backend:    ${status.backend}${tag}`,
    `interval:   ${status.interval}`,
    `bans:       ${status.active} active: ${byMode}; ${status.refused} refused, ${status.queued} queued`,
    `last scan:  ${scan ? `${scan.at}, ${scan.sockets} sockets in ${scan.durationMs} ms` : 'never'}`,
    ...(fleet
      ? [
          `fleet:      ${fleet.engine} as ${fleet.host}, ${fleet.connected ? 'connected' : 'NOT CONNECTED'}; ` +
            `last pull ${fleet.lastPull ?? 'never'}; ${fleet.fleetBans} fleet ban(s); outbox ${fleet.outbox}` +
            `${fleet.lastError ? `; last error ${fleet.lastError.at}: ${fleet.lastError.message}` : ''}`,
        ]
      : []),
    ...(status.unsaved
      ? [
          `NOT SAVED:  the ban store cannot be saved since ${status.unsaved.since} ` +
            `(${status.unsaved.message}); bans stay in force, saving is retried`,
        ]
      : []),
    'kernel flood counters (since boot):',
    ...FLOOD_COUNTERS.map((name) => `  ${name.padEnd(22)} ${counters[name]}`),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}
