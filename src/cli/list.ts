// `floodgate list [--json]`: the active bans, dry-run ones marked as such, and the state directory
// they were read from.
import { join } from 'node:path';
import { sendControl } from '../daemon/control-socket.js';
import { CONTROL_SOCKET, type ListedBan } from '../daemon/protocol.js';
import { defaultStateDir } from '../daemon/state-dir.js';
import { type CommonOptions, loadCommandPolicy, readBans } from './act.js';
import { PROCESS_READER, type Reader, rootStateNote } from './state-dir-note.js';
import { type PolicyChoice, daemonPolicy, describePolicy } from './policy-lookup.js';

// C0 and C1 controls, DEL, and the Unicode line separators and bidirectional overrides: each could
// start a forged row or reach the terminal as an escape sequence (a colour, a title, a clipboard write).
// The backslash too, so that an escaped character cannot be told apart from its text.
const UNSAFE = /[\\\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;
const NAMED: Record<string, string> = { '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t', '\x1b': '\\e' };

/** A cell as it may reach a terminal: one line, no escape sequences, every hidden character visible. */
export function printable(text: string): string {
  return text.replace(UNSAFE, (c) => NAMED[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** The table `list` prints, one string per line (the header first). */
export function banTable(bans: readonly ListedBan[]): string[] {
  const rows = bans.map((b) =>
    [
      b.target,
      b.rule,
      String(b.count),
      b.createdAt,
      b.expiresAt,
      b.dryRun ? 'dry-run (not in firewall)' : 'enforced',
      b.source ?? 'local',
      b.reason ?? '',
    ].map((cell) => printable(String(cell))),
  );
  const header = ['TARGET', 'RULE', 'COUNT', 'CREATED', 'EXPIRES', 'MODE', 'SOURCE', 'REASON'];
  // A loop, not Math.max(...column): 125k+ arguments overflow V8's stack.
  const widths = header.map((h) => h.length);
  for (const row of rows) for (let i = 0; i < row.length; i++) widths[i] = Math.max(widths[i]!, row[i]!.length);
  const lines = [header, ...rows].map((row) =>
    row
      .map((cell, i) => cell.padEnd(widths[i]!))
      .join('  ')
      .trimEnd(),
  );
  return lines;
}

export async function listCommand(
  options: CommonOptions & { json?: boolean },
  reader: Reader = PROCESS_READER,
): Promise<void> {
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
  // In pieces: one string of 200k rows is 30 MB more than needed.
  const lines = banTable(bans);
  for (let i = 0; i < lines.length; i += 1000) process.stdout.write(`${lines.slice(i, i + 1000).join('\n')}\n`);
  process.stdout.write(footer);
}
