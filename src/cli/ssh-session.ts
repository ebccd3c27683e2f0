// The address of the SSH session a command runs in, so that `ban` does not lock its operator out.
// `sudo` (Debian's `Defaults env_reset`) drops SSH_CLIENT and SSH_CONNECTION, and enforcing needs
// root: the usual `sudo floodgate ban …` had no guard. The variables are still in the environment
// of the processes above this one (sudo itself, the login shell), which root can read in /proc.
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { type Cidr, parseCidr } from '../net/ip.js';

export type SshSession =
  | { readonly kind: 'found'; readonly address: Cidr; readonly source: string }
  /** Not in an SSH session (a local console, a timer, a test). */
  | { readonly kind: 'none' }
  /** Perhaps in one, but its address could not be found: the guard cannot run. */
  | { readonly kind: 'unknown'; readonly why: string };

export interface SessionLookup {
  readonly env?: NodeJS.ProcessEnv;
  /** Where /proc is; tests give a directory of their own. */
  readonly procRoot?: string;
  readonly pid?: number;
}

/** Far more than any real chain of shells, sudo, su and tmux; a loop in a fake /proc ends here. */
const MAX_ANCESTORS = 64;

/** The client address in SSH_CLIENT ("addr port port") or SSH_CONNECTION ("addr port addr port"). */
function clientAddress(vars: { SSH_CLIENT?: string | undefined; SSH_CONNECTION?: string | undefined }): Cidr | null {
  const first = (vars.SSH_CLIENT ?? vars.SSH_CONNECTION ?? '').trim().split(/\s+/)[0];
  return first ? parseCidr(first) : null;
}

export function sshClientAddress(env: NodeJS.ProcessEnv = process.env): Cidr | null {
  return clientAddress(env);
}

function readEnviron(procRoot: string, pid: number): Record<string, string> {
  const out: Record<string, string> = {};
  for (const entry of readFileSync(join(procRoot, String(pid), 'environ'), 'latin1').split('\0')) {
    const eq = entry.indexOf('=');
    if (eq > 0 && (entry.startsWith('SSH_CLIENT=') || entry.startsWith('SSH_CONNECTION=')))
      out[entry.slice(0, eq)] = entry.slice(eq + 1);
  }
  return out;
}

/** Name and parent pid from /proc/<pid>/status, or null when the process is gone or unreadable. */
function readStatus(procRoot: string, pid: number): { name: string; ppid: number } | null {
  try {
    const text = readFileSync(join(procRoot, String(pid), 'status'), 'utf8');
    const name = /^Name:\s*(.*)$/m.exec(text)?.[1]?.trim() ?? '?';
    const ppid = Number(/^PPid:\s*(\d+)$/m.exec(text)?.[1] ?? NaN);
    return Number.isInteger(ppid) ? { name, ppid } : null;
  } catch {
    return null;
  }
}

/**
 * A /proc/net/tcp{,6} address ("0100007F" or 32 hex digits,
 * each 32-bit word in host order: little-endian here) as text.
 */
function procAddress(hex: string): string | null {
  if (!/^(?:[0-9A-F]{8}|[0-9A-F]{32})$/i.test(hex)) return null;
  const words = hex.match(/.{8}/g)!.map((word) => word.match(/../g)!.reverse().join(''));
  if (words.length === 1)
    return words[0]!
      .match(/../g)!
      .map((byte) => parseInt(byte, 16))
      .join('.');
  return words.join('').match(/.{4}/g)!.join(':');
}

/** The remote address of an established TCP connection whose socket process `pid` holds. */
function sshdPeer(procRoot: string, pid: number): Cidr | null {
  const dir = join(procRoot, String(pid));
  const inodes = new Set<string>();
  try {
    for (const fd of readdirSync(join(dir, 'fd'))) {
      try {
        const socket = /^socket:\[(\d+)\]$/.exec(readlinkSync(join(dir, 'fd', fd)));
        if (socket) inodes.add(socket[1]!);
      } catch {
        // closed meanwhile
      }
    }
  } catch {
    return null;
  }
  for (const table of ['tcp', 'tcp6']) {
    let text: string;
    try {
      text = readFileSync(join(dir, 'net', table), 'latin1');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
      const fields = line.trim().split(/\s+/);
      if (fields.length < 10 || fields[3] !== '01' || !inodes.has(fields[9]!)) continue;
      const address = procAddress(fields[2]!.split(':')[0]!);
      const cidr = address === null ? null : parseCidr(address);
      if (cidr !== null) return cidr;
    }
  }
  return null;
}

/** sshd's per-connection process: "sshd" (its name in /proc), or "sshd-session" since OpenSSH 9.8. */
const isSshd = (name: string): boolean => name === 'sshd' || name.startsWith('sshd-');

export function findSshSession(lookup: SessionLookup = {}): SshSession {
  const env = lookup.env ?? process.env;
  const procRoot = lookup.procRoot ?? '/proc';
  const own = clientAddress(env);
  if (own !== null) return { kind: 'found', address: own, source: 'SSH_CLIENT in the environment' };

  let unreadable: string | undefined;
  let pid = lookup.pid ?? process.pid;
  for (let depth = 0; depth < MAX_ANCESTORS; depth++) {
    const status = readStatus(procRoot, pid);
    if (status === null) break;
    if (depth > 0) {
      if (isSshd(status.name)) {
        // The session's own sshd, reached without finding the variables (env -i, or a shell that
        // unset them): its TCP connection has the client's address.
        const peer = sshdPeer(procRoot, pid);
        if (peer !== null)
          return { kind: 'found', address: peer, source: `the connection of process ${pid} (${status.name})` };
        return {
          kind: 'unknown',
          why:
            `process ${pid} (${status.name}) above this command is an SSH ` +
            'session, but neither SSH_CLIENT nor its connection could be read',
        };
      }
      try {
        const address = clientAddress(readEnviron(procRoot, pid));
        if (address !== null)
          return { kind: 'found', address, source: `SSH_CLIENT of process ${pid} (${status.name})` };
      } catch (error) {
        unreadable ??=
          `cannot read the environment of process ${pid} (${status.name}): ` +
          `${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`;
      }
    }
    if (status.ppid <= 1) break;
    pid = status.ppid;
  }
  // Under sudo the variables are expected to be gone: say the
  // guard could not look, rather than that there is no session.
  if (unreadable !== undefined) return { kind: 'unknown', why: unreadable };
  if (env.SUDO_USER !== undefined && readStatus(procRoot, lookup.pid ?? process.pid) === null) {
    return { kind: 'unknown', why: `run through sudo, and ${procRoot} cannot be read to find the session` };
  }
  return { kind: 'none' };
}
