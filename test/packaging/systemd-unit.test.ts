// packaging/systemd/floodgate.service is ready to copy to /etc/systemd/system: systemd accepts every
// line of it, it runs the commands the README documents, and its hardening scores below 3.0 on
// `systemd-analyze security`. Needs systemd-analyze (apt-get install systemd); skipped loudly without.
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const UNIT = fileURLToPath(new URL('../../packaging/systemd/floodgate.service', import.meta.url));
const text = readFileSync(UNIT, 'utf8');
const analyze = spawnSync('systemd-analyze', ['--version']).status === 0;
if (!analyze)
  console.warn('\n*** systemd unit checks SKIPPED: systemd-analyze not found (apt-get install systemd) ***\n');

/** Every `Key=value` line of the unit, in order. */
const directives = text
  .split('\n')
  .filter((line) => /^[A-Za-z]+=/.test(line))
  .map((line) => line.trim());
const executables = [
  ...new Set(
    directives.filter((d) => /^Exec/.test(d)).map((d) => d.replace(/^[A-Za-z]+=[+\-@!:]*/, '').split(' ')[0]!),
  ),
];

/**
 * `systemd-analyze verify` on `unitText` installed in a scratch root: the system's own units (for
 * sysinit.target and friends) and a placeholder at each path the unit executes, since verify
 * checks that they exist. Nothing is written outside the scratch root.
 */
function verify(unitText: string): { status: number | null; stderr: string } {
  const root = mkdtempSync(join(tmpdir(), 'floodgate-unit-'));
  try {
    cpSync('/usr/lib/systemd/system', join(root, 'usr/lib/systemd/system'), {
      recursive: true,
      verbatimSymlinks: true,
    });
    for (const path of executables) {
      mkdirSync(join(root, dirname(path)), { recursive: true });
      copyFileSync('/bin/true', join(root, path));
    }
    mkdirSync(join(root, 'etc/systemd/system'), { recursive: true });
    writeFileSync(join(root, 'etc/systemd/system/floodgate.service'), unitText);
    const r = spawnSync('systemd-analyze', ['verify', `--root=${root}`, 'floodgate.service'], { encoding: 'utf8' });
    return { status: r.status, stderr: r.stderr };
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

describe('packaging/systemd/floodgate.service', () => {
  it('checks the policy, runs floodgate from an absolute path, reloads with SIGHUP and restarts on failure', () => {
    expect(directives).toEqual(
      expect.arrayContaining([
        'ExecStartPre=/usr/local/bin/floodgate policy check',
        'ExecStart=/usr/local/bin/floodgate run',
        'ExecReload=/bin/kill -HUP $MAINPID',
        'Restart=on-failure',
        'StateDirectory=floodgate',
        'CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_RAW',
        'NoNewPrivileges=yes',
        'ProtectSystem=strict',
        'ReadWritePaths=/run/xtables.lock',
        'ProtectHome=yes',
        'PrivateTmp=yes',
        'RestrictAddressFamilies=AF_UNIX AF_NETLINK AF_INET AF_INET6',
      ]),
    );
  });

  it('creates /run/xtables.lock, unsandboxed, before any command whose sandbox makes it writable', () => {
    // Each Exec line gets its own sandbox; ReadWritePaths= on a missing path fails its set-up.
    const exec = directives.filter((d) => /^Exec(StartPre|Start)=/.test(d));
    expect(exec[0]).toBe('ExecStartPre=+/bin/touch /run/xtables.lock');
  });

  it.skipIf(!analyze)('passes systemd-analyze verify with nothing to say', () => {
    expect(verify(text)).toEqual({ status: 0, stderr: '' });
  });

  it.skipIf(!analyze)('the check can fail: a misspelt key or a bad value is reported', () => {
    expect(verify(text.replace('NoNewPrivileges=yes', 'NoNewPrivileges=maybe')).stderr).toMatch(
      /Failed to parse boolean value.*maybe/,
    );
    expect(verify(text.replace('ProtectHome=yes', 'ProtectHomes=yes')).stderr).toMatch(/Unknown key 'ProtectHomes'/);
  });

  it.skipIf(!analyze)('scores below 3.0 on systemd-analyze security', () => {
    const out = execFileSync('systemd-analyze', ['security', '--offline=true', UNIT], { encoding: 'utf8' });
    const score = Number(/Overall exposure level for floodgate\.service: ([\d.]+)/.exec(out)?.[1]);
    expect(score).toBeLessThan(3.0);
  });
});
