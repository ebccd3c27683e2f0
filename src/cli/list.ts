// `floodgate list [--json]`: the active bans, dry-run ones marked as such, and the state directory
// they were read from.
import { join } from 'node:path';
import { sendControl } from '../daemon/control-socket.js';
import { CONTROL_SOCKET, type ListedBan } from '../daemon/protocol.js';
import { defaultStateDir } from '../daemon/state-dir.js';
import { type CommonOptions, loadCommandPolicy, readBans } from './act.js';
import { PROCESS_READER, type Reader, rootStateNote } from './state-dir-note.js';
import { type PolicyChoice, daemonPolicy, describePolicy } from './policy-lookup.js';

export async function listCommand(options: CommonOptions & { json?: boolean }, reader: Reader = PROCESS_READER): Promise<void> {
  const stateDir = options.stateDir ?? defaultStateDir();
  const response = await sendControl(join(stateDir, CONTROL_SOCKET), { cmd: 'list' });
  let bans: ListedBan[];
  let used: PolicyChoice;
  if (response?.ok) {
    bans = response.result as ListedBan[];
    used = daemonPolicy(stateDir);
  } else {
    const { policy, file, source } = await loadCommandPolicy(options, stateDir);
    used = { file, source };
    bans = await readBans(stateDir, policy.ban.ttl, policy.ban.max_ttl);
  }
  const note = rootStateNote(stateDir, bans.length === 0 && !response?.ok, reader);
  // On stderr: `list --json` stays JSON.
  if (note !== null) process.stderr.write(`floodgate: ${note}\n`);
  if (options.json) {
    process.stdout.write(`${JSON.stringify(bans, null, 2)}\n`);
    return;
  }
  const where = `${stateDir}${response?.ok ? ', through the running daemon' : ''}`;
  // The JSON stays a plain array; the text says where its bans and settings came from.
  const footer = `policy: ${describePolicy(used.file, used.source)}\n`;
  if (bans.length === 0) {
    process.stdout.write(`no active bans (state directory ${where})\n${footer}`);
    return;
  }
  process.stdout.write(`state directory ${where}\n`);
  const rows = bans.map((b) => [b.target, b.rule, String(b.count), b.createdAt, b.expiresAt, b.dryRun ? 'dry-run (not in firewall)' : 'enforced', b.reason ?? '']);
  const header = ['TARGET', 'RULE', 'COUNT', 'CREATED', 'EXPIRES', 'MODE', 'REASON'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  for (const row of [header, ...rows]) process.stdout.write(`${row.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd()}\n`);
  process.stdout.write(footer);
}
