// The SSH-session guard finds the session under sudo too: env_reset drops SSH_CLIENT, but the
// processes above (sudo, the login shell) still carry it in /proc/<pid>/environ.
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { banCommand } from '../../src/cli/ban.js';
import { findSshSession } from '../../src/cli/ssh-session.js';
import { UsageError } from '../../src/errors.js';
import { parseCidr } from '../../src/net/ip.js';

let proc: string;
beforeEach(() => {
  proc = mkdtempSync(join(tmpdir(), 'floodgate-proc-'));
});
afterEach(() => {
  rmSync(proc, { recursive: true, force: true });
  vi.restoreAllMocks();
});

/** A process in the fake /proc: its name, parent and environment (null: environ cannot be read). */
function processEntry(pid: number, name: string, ppid: number, environ: Record<string, string> | null): void {
  const dir = join(proc, String(pid));
  mkdirSync(dir);
  writeFileSync(
    join(dir, 'status'),
    `Name:\t${name}\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t${pid}\nPid:\t${pid}\nPPid:\t${ppid}\n`,
  );
  if (environ === null)
    mkdirSync(join(dir, 'environ')); // reading it fails (EISDIR), as EACCES would
  else
    writeFileSync(
      join(dir, 'environ'),
      `${Object.entries(environ)
        .map(([k, v]) => `${k}=${v}\0`)
        .join('')}`,
    );
}

/** sshd -> bash (SSH_CLIENT) -> sudo (keeps the user's environment) -> floodgate (env_reset: none). */
function sudoChain(client = '198.51.100.7 52044 22'): void {
  processEntry(1, 'systemd', 0, {});
  processEntry(500, 'sshd', 1, {});
  processEntry(600, 'sshd', 500, {});
  processEntry(700, 'bash', 600, {
    HOME: '/home/op',
    SSH_CLIENT: client,
    SSH_CONNECTION: `${client.split(' ')[0]} 52044 192.0.2.1 22`,
  });
  processEntry(800, 'sudo', 700, { HOME: '/home/op', SSH_CLIENT: client });
  processEntry(900, 'node', 800, { HOME: '/root', SUDO_USER: 'op', PATH: '/usr/bin' });
}

const SUDO_ENV = { HOME: '/root', SUDO_USER: 'op' };

describe('findSshSession', () => {
  it('takes SSH_CLIENT from the environment when it is there', () => {
    expect(findSshSession({ env: { SSH_CLIENT: '203.0.113.5 1 22' }, procRoot: proc, pid: 900 })).toEqual({
      kind: 'found',
      address: parseCidr('203.0.113.5'),
      source: 'SSH_CLIENT in the environment',
    });
  });

  it('finds the session under sudo, in the nearest ancestor that carries SSH_CLIENT', () => {
    sudoChain();
    expect(findSshSession({ env: SUDO_ENV, procRoot: proc, pid: 900 })).toEqual({
      kind: 'found',
      address: parseCidr('198.51.100.7'),
      source: 'SSH_CLIENT of process 800 (sudo)',
    });
  });

  it('finds an IPv6 session through SSH_CONNECTION, past ancestors without it (sudo -i, su)', () => {
    processEntry(1, 'systemd', 0, {});
    processEntry(600, 'sshd-session', 1, {});
    processEntry(700, 'bash', 600, { SSH_CONNECTION: '2001:db8::7 52044 2001:db8::1 22' });
    processEntry(750, 'su', 700, {});
    processEntry(800, 'bash', 750, { HOME: '/root' });
    processEntry(900, 'node', 800, {});
    expect(findSshSession({ env: {}, procRoot: proc, pid: 900 })).toMatchObject({
      kind: 'found',
      address: parseCidr('2001:db8::7'),
      source: 'SSH_CLIENT of process 700 (bash)',
    });
  });

  it('says there is no session on a local console', () => {
    processEntry(1, 'systemd', 0, {});
    processEntry(700, 'login', 1, {});
    processEntry(800, 'bash', 700, { HOME: '/root' });
    processEntry(900, 'node', 800, {});
    expect(findSshSession({ env: { HOME: '/root' }, procRoot: proc, pid: 900 })).toEqual({ kind: 'none' });
  });

  it('cannot tell when an sshd is above but neither the variables nor its connection can be read (env -i)', () => {
    processEntry(1, 'systemd', 0, {});
    processEntry(600, 'sshd', 1, {});
    processEntry(700, 'env', 600, {});
    processEntry(900, 'node', 700, {});
    expect(findSshSession({ env: {}, procRoot: proc, pid: 900 })).toEqual({
      kind: 'unknown',
      why: 'process 600 (sshd) above this command is an SSH session, but neither SSH_CLIENT nor its connection could be read',
    });
  });

  /** sshd 600 holds socket inode 4242: an established connection in its /proc/600/net/<table>. */
  function sshdWithConnection(table: 'tcp' | 'tcp6', local: string, remote: string): void {
    processEntry(1, 'systemd', 0, {});
    processEntry(600, 'sshd', 1, {});
    processEntry(700, 'env', 600, {});
    processEntry(900, 'node', 700, {});
    mkdirSync(join(proc, '600', 'fd'));
    symlinkSync('/dev/null', join(proc, '600', 'fd', '0'));
    symlinkSync('socket:[1111]', join(proc, '600', 'fd', '3'));
    symlinkSync('socket:[4242]', join(proc, '600', 'fd', '4'));
    mkdirSync(join(proc, '600', 'net'));
    const header = '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n';
    // A listening socket of another process first, then the session's connection.
    writeFileSync(
      join(proc, '600', 'net', table),
      `${header}   0: ${local}:0016 ${local.replace(/./g, '0')}:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1111 1 0 100 0 0 10 0\n   1: ${local}:0016 ${remote}:CB4C 01 00000000:00000000 02:0000A000 00000000     0        0 4242 4 0 20 4 29 10 -1\n`,
    );
  }

  it('reads the client address from the connection of the sshd above when the variables are gone', () => {
    sshdWithConnection('tcp', '010200C0', '076433C6');
    expect(findSshSession({ env: {}, procRoot: proc, pid: 900 })).toEqual({
      kind: 'found',
      address: parseCidr('198.51.100.7'),
      source: 'the connection of process 600 (sshd)',
    });
  });

  it('reads an IPv6 client, and an IPv4 one on a dual-stack socket, from tcp6', () => {
    sshdWithConnection('tcp6', 'B80D0120000000000000000001000000', 'B80D0120000000000000000007000000');
    expect(findSshSession({ env: {}, procRoot: proc, pid: 900 })).toMatchObject({
      kind: 'found',
      address: parseCidr('2001:db8::7'),
    });
    rmSync(proc, { recursive: true, force: true });
    mkdirSync(proc);
    sshdWithConnection('tcp6', '0000000000000000FFFF0000010200C0', '0000000000000000FFFF0000076433C6');
    expect(findSshSession({ env: {}, procRoot: proc, pid: 900 })).toMatchObject({
      kind: 'found',
      address: parseCidr('198.51.100.7'),
    });
  });

  it('cannot tell when an ancestor environment cannot be read (not root)', () => {
    processEntry(1, 'systemd', 0, {});
    processEntry(800, 'sudo', 1, null);
    processEntry(900, 'node', 800, {});
    expect(findSshSession({ env: SUDO_ENV, procRoot: proc, pid: 900 })).toMatchObject({
      kind: 'unknown',
      why: expect.stringMatching(/^cannot read the environment of process 800 \(sudo\)/),
    });
  });

  it('cannot tell under sudo without a /proc to read', () => {
    expect(findSshSession({ env: SUDO_ENV, procRoot: join(proc, 'missing'), pid: 900 })).toMatchObject({
      kind: 'unknown',
      why: expect.stringContaining('run through sudo'),
    });
  });

  it('ends on a loop in the parent chain', () => {
    processEntry(800, 'a', 900, {});
    processEntry(900, 'b', 800, {});
    expect(findSshSession({ env: {}, procRoot: proc, pid: 900 })).toEqual({ kind: 'none' });
  });
});

describe('banCommand under sudo', () => {
  it('refuses to ban the SSH session sudo hid from the environment', async () => {
    sudoChain();
    const saved = { ...process.env };
    delete process.env.SSH_CLIENT;
    delete process.env.SSH_CONNECTION;
    try {
      const refusal = banCommand(
        ['198.51.100.0/24'],
        { dryRun: true, stateDir: join(proc, 'never') },
        { env: SUDO_ENV, procRoot: proc, pid: 900 },
      );
      await expect(refusal).rejects.toThrow(UsageError);
      await expect(refusal).rejects.toThrow(
        'refusing to ban 198.51.100.0/24: it covers 198.51.100.7, the address of your SSH session (SSH_CLIENT of process 800 (sudo); --force to ban it anyway)',
      );
    } finally {
      process.env = saved;
    }
  });

  it('warns, once and clearly, when the guard could not run', async () => {
    processEntry(1, 'systemd', 0, {});
    processEntry(600, 'sshd', 1, {});
    processEntry(900, 'node', 600, {});
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    // A state directory under a file: the command stops right after the guard.
    writeFileSync(join(proc, 'a-file'), '');
    await expect(
      banCommand(
        ['203.0.113.9'],
        { dryRun: true, stateDir: join(proc, 'a-file', 'state') },
        { env: {}, procRoot: proc, pid: 900 },
      ),
    ).rejects.toThrow('cannot create the state directory');
    const warnings = stderr.mock.calls.map(([text]) => String(text)).filter((text) => text.includes('SSH session'));
    expect(warnings).toEqual([
      'floodgate: warning: the guard against banning your own SSH session could not run: process 600 (sshd) above this command is an SSH session, but neither SSH_CLIENT nor its connection could be read. Check that no target covers your address.\n',
    ]);
  });
});
