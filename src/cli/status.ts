// `floodgate status [--json]`: mode, backend, bans, the last scan and the kernel's flood counters.
import { join } from 'node:path';
import { sendControl } from '../daemon/control-socket.js';
import { CONTROL_SOCKET, type StatusResult } from '../daemon/protocol.js';
import { defaultStateDir, stateFile } from '../daemon/state-dir.js';
import { BanStore } from '../bans/ban-store.js';
import { formatDuration } from '../policy/duration.js';
import { readKernelCounters } from '../table/live-table.js';
import { FLOOD_COUNTERS } from '../table/kernel-counters.js';
import { type CommonOptions, loadCommandPolicy, resolveMode, warnInvalidEntries } from './act.js';

const mib = (bytes: number): string => (bytes / 2 ** 20).toFixed(1);

export async function statusCommand(options: CommonOptions & { json?: boolean }): Promise<void> {
  const stateDir = options.stateDir ?? defaultStateDir();
  const response = await sendControl(join(stateDir, CONTROL_SOCKET), { cmd: 'status' });
  let status: StatusResult;
  if (response?.ok) status = response.result as StatusResult;
  else {
    const { policy } = await loadCommandPolicy(options, stateDir);
    const mode = resolveMode(policy.mode, options);
    const store = BanStore.load(stateFile(stateDir, mode), { ttl: policy.ban.ttl, maxTtl: policy.ban.max_ttl });
    warnInvalidEntries(store);
    const last = store.lastScan;
    status = {
      daemon: null,
      mode,
      backend: policy.firewall.backend,
      interval: formatDuration(policy.interval),
      active: store.all().filter((b) => b.expiresAt > Date.now()).length,
      refused: store.refused,
      queued: 0,
      lastScan: last ? { at: new Date(last.at).toISOString(), durationMs: last.durationMs, sockets: last.sockets } : null,
    };
  }
  const counters = await readKernelCounters();
  if (options.json) {
    process.stdout.write(`${JSON.stringify({ ...status, counters }, null, 2)}\n`);
    return;
  }
  const lines = [
    `daemon:     ${status.daemon ? `running (pid ${status.daemon.pid}, since ${status.daemon.since})` : 'not running'}`,
    ...(status.daemon?.memory ? [`memory:     ${mib(status.daemon.memory.rss)} MiB resident, ${mib(status.daemon.memory.heapUsed)} MiB of JavaScript heap in use`] : []),
    `mode:       ${status.mode}`,
    `backend:    ${status.backend}`,
    `interval:   ${status.interval}`,
    `bans:       ${status.active} active, ${status.refused} refused, ${status.queued} queued`,
    `last scan:  ${status.lastScan ? `${status.lastScan.at}, ${status.lastScan.sockets} sockets in ${status.lastScan.durationMs} ms` : 'never'}`,
    ...(status.unsaved ? [`NOT SAVED:  the ban store cannot be saved since ${status.unsaved.since} (${status.unsaved.message}); bans stay in force, saving is retried`] : []),
    'kernel flood counters (since boot):',
    ...FLOOD_COUNTERS.map((name) => `  ${name.padEnd(22)} ${counters[name]}`),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}
