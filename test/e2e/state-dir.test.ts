// The state directory under stress, for real, in the lab's server namespace: a full file system (a
// small tmpfs in a private mount namespace, never the host's disk), a damaged ban store with /0
// entries, a lock left with a live unrelated pid, a lock held by a manual command, a path too long
// for a socket, and a state directory that belongs to another user.
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tryLock } from '../../src/bans/state-lock.js';
import {
  CLI,
  Daemon,
  SKIP_REASON,
  firewallText,
  floodgate,
  floodgateRule,
  inputRules,
  instanceTag,
  sleep,
  tempDir,
  useLab,
  writePolicy,
} from './support.js';

const STACK_TRACE = /\n\s+at .+\(.*:\d+:\d+\)/;

describe.skipIf(SKIP_REASON !== null)('the state directory', () => {
  const shared = useLab();

  it('on a full file system, bans are still applied, the failure is reported, saving is retried, and SIGTERM stops cleanly', async () => {
    const { lab } = shared;
    const dir = tempDir('disk-full');
    chmodSync(dir, 0o755);
    const policy = writePolicy(dir, (p) => {
      p.ban.kill_connections = false;
    });
    const mnt = join(dir, 'mnt');
    mkdirSync(mnt);
    const fg = `${process.execPath} ${CLI}`;
    // Everything that must see the tmpfs runs in one private mount namespace; the log, the answers
    // and the firewall listing are written outside it, in ${dir}.
    const script = `
      set -u
      mount -t tmpfs -o size=256k tmpfs ${mnt}
      SD=${mnt}/sd
      ${fg} run --enforce --policy ${policy} --state-dir $SD --interval 1s > ${dir}/daemon.log 2>&1 & p=$!
      for i in $(seq 100); do [ -S $SD/control.sock ] && break; sleep 0.1; done
      cp $SD/instance-id ${dir}/instance-id
      fill() { dd if=/dev/zero of=${mnt}/filler bs=4k 2>/dev/null; true; }
      fill
      ${fg} ban 198.51.100.2 --state-dir $SD > ${dir}/ban1.out 2> ${dir}/ban1.err; echo $? > ${dir}/ban1.exit
      iptables -w -S INPUT > ${dir}/rules1
      ${fg} status --state-dir $SD > ${dir}/status1
      ls -a $SD > ${dir}/files1
      rm ${mnt}/filler; sleep 2.5
      cp $SD/bans.json ${dir}/saved.json
      ${fg} status --state-dir $SD > ${dir}/status2
      fill
      ${fg} ban 198.51.100.3 --state-dir $SD > ${dir}/ban2.out 2> ${dir}/ban2.err
      kill -TERM $p; wait $p; echo $? > ${dir}/daemon.exit
      ls -a $SD > ${dir}/files2
      ${fg} ban 198.51.100.4 --enforce --policy ${policy} --state-dir $SD > ${dir}/ban3.out 2> ${dir}/ban3.err; echo $? > ${dir}/ban3.exit
      iptables -w -S INPUT > ${dir}/rules3
      ls -a $SD > ${dir}/files3
      umount ${mnt}`;
    const r = await lab.execServer(['unshare', '--mount', '--propagation', 'private', 'bash', '-c', script], {
      timeoutMs: 60_000,
    });
    const read = (name: string) => readFileSync(join(dir, name), 'utf8');
    const context = `${r.stdout}\n${r.stderr}\n--- daemon log ---\n${existsSync(join(dir, 'daemon.log')) ? read('daemon.log') : '(none)'}`;
    expect(r.exitCode, context).toBe(0);
    // The rules carry this state directory's tag; its instance-id went away with the tmpfs, so the script copied it.
    const tag = `floodgate-${read('instance-id').trim()}`;

    // The ban is in the firewall though it could not be saved; the command says so, exit 3.
    expect(read('rules1').split('\n'), context).toContain(floodgateRule('198.51.100.2/32', tag));
    expect(read('ban1.out')).toMatch(/1 banned, 0 already banned, 0 refused \(through the running daemon\)/);
    expect(read('ban1.err')).toMatch(
      /the running floodgate applied this, but cannot save its ban store since .*ENOSPC.*it keeps trying/,
    );
    expect(read('ban1.exit').trim()).toBe('3');
    expect(read('status1')).toMatch(/NOT SAVED: +the ban store cannot be saved since .*ENOSPC/);
    // No temporary file is left on the full file system.
    expect(
      read('files1')
        .split('\n')
        .filter((name) => name.endsWith('.tmp')),
    ).toEqual([]);
    // Once there is space, the retry saves it.
    expect((JSON.parse(read('saved.json')) as { bans: { target: string }[] }).bans.map((b) => b.target)).toEqual([
      '198.51.100.2',
    ]);
    expect(read('status2')).not.toMatch(/NOT SAVED/);
    const log = read('daemon.log');
    expect(log).toMatch(/"during":"save".*could not save the ban store/);
    expect(log).toMatch(/"event":"saved"/);
    // Full again at SIGTERM: a clear message and exit 3, no crash, no temporary file.
    expect(read('ban2.err')).toMatch(/cannot save its ban store/);
    expect(log).toMatch(/stopped without saving: the firewall is changed, but the ban store .* could not be saved/);
    expect(log).not.toMatch(/internal error/);
    expect(read('daemon.exit').trim(), log).toBe('3');
    expect(
      read('files2')
        .split('\n')
        .filter((name) => name.endsWith('.tmp')),
    ).toEqual([]);
    // With no daemon, a manual command applies its ban, then says it will not last: exit 3.
    expect(read('rules3').split('\n')).toContain(floodgateRule('198.51.100.4/32', tag));
    expect(read('ban3.out')).toMatch(/^banned 198\.51\.100\.4 until/);
    expect(read('ban3.err')).toMatch(
      /the firewall is changed, but the ban store .* could not be saved \(.*ENOSPC.*\): the next floodgate command or start will undo what this one changed/,
    );
    expect(read('ban3.exit').trim()).toBe('3');
    expect(
      read('files3')
        .split('\n')
        .filter((name) => name.endsWith('.tmp')),
    ).toEqual([]);
  });

  it('a damaged store with /0 entries: set aside, nothing cuts the host off, and flush removes a /0 rule', async () => {
    const { lab } = shared;
    const dir = tempDir('slash0');
    const stateDir = join(dir, 'state');
    mkdirSync(stateDir, { mode: 0o700 });
    const policy = writePolicy(dir, (p) => {
      p.mode = 'enforce';
      p.ban.kill_connections = false;
    });
    const now = Date.now();
    const ban = (target: string) => ({
      target,
      rule: 'manual',
      count: 0,
      createdAt: now,
      ttl: 600_000,
      expiresAt: now + 600_000,
    });
    const text = JSON.stringify({
      version: 1,
      bans: [ban('0.0.0.0/0'), ban('::/0'), ban('198.51.100.40')],
      offenders: [],
      grace: [],
      refused: 0,
    });
    writeFileSync(join(stateDir, 'bans.json'), text, { mode: 0o600 });

    for (let i = 0; i < 2; i++) {
      const r = await floodgate(lab, ['ban', `198.51.100.5${i}`, '--state-dir', stateDir, '--policy', policy]);
      expect(r.exitCode, `${r.stdout}\n${r.stderr}`).toBe(0);
      if (i === 0)
        expect(r.stderr).toMatch(
          /the ban store .*bans\.json had 2 invalid entries, left out \(bans\[0\]: target 0\.0\.0\.0\/0 covers every address/,
        );
    }
    const v4 = await inputRules(lab, 4);
    const v6 = await inputRules(lab, 6);
    expect([...v4, ...v6].filter((line) => line.includes('floodgate') && !line.includes(' -s '))).toEqual([]);
    expect(v4.filter((line) => line.includes('floodgate')).sort()).toEqual([
      floodgateRule('198.51.100.40/32'),
      floodgateRule('198.51.100.50/32'),
      floodgateRule('198.51.100.51/32'),
    ]);
    const aside = readdirSync(stateDir).filter((name) => name.startsWith('bans.json.corrupt-'));
    expect(aside).toHaveLength(1);
    expect(readFileSync(join(stateDir, aside[0]!), 'utf8')).toBe(text);

    // A /0 rule with this state directory's tag (left by an older floodgate) is recognised and removed.
    // A plain `floodgate` comment would be the default state directory's rule, which this flush leaves alone.
    for (const tool of ['iptables', 'ip6tables']) {
      expect(
        (
          await lab.execServer([
            tool,
            '-w',
            '-A',
            'INPUT',
            '-m',
            'comment',
            '--comment',
            instanceTag(stateDir),
            '-j',
            'DROP',
          ])
        ).exitCode,
      ).toBe(0);
    }
    const flushed = await floodgate(lab, ['flush', '--state-dir', stateDir, '--policy', policy]);
    expect(flushed.exitCode, flushed.stderr).toBe(0);
    expect((await firewallText(lab)).match(/floodgate/g), await firewallText(lab)).toBeNull();
  });

  it('a lock file holding the pid of a live, unrelated process does not keep floodgate from starting', async () => {
    const { lab } = shared;
    const dir = tempDir('reused-pid');
    const stateDir = join(dir, 'state');
    mkdirSync(stateDir, { mode: 0o700 });
    const other = spawn('sleep', ['60']);
    try {
      writeFileSync(join(stateDir, 'state.lock'), `${other.pid}\n`, { mode: 0o600 });
      const daemon = await Daemon.start(lab, { policy: writePolicy(dir), stateDir, enforce: false });
      expect(readFileSync(join(stateDir, 'state.lock'), 'utf8')).toBe(`${daemon.pid}\n`);
      const r = await floodgate(lab, ['ban', '198.51.100.7', '--state-dir', stateDir], { timeoutMs: 10_000 });
      expect(r.stdout).toMatch(/through the running daemon/);
    } finally {
      other.kill('SIGKILL');
    }
  });

  it('run waits for a manual command that holds the lock, with a log line, instead of exiting 5', async () => {
    const { lab } = shared;
    const dir = tempDir('run-waits');
    const stateDir = join(dir, 'state');
    mkdirSync(stateDir, { mode: 0o700 });
    // This test process stands in for a long manual command. It lets go only once run has said that
    // it waits: a lock held for a fixed time raced run's own start-up, which takes seconds on a busy machine.
    const held = tryLock(join(stateDir, 'state.lock'))!;
    expect(held).not.toBeNull();
    try {
      const daemon = Daemon.spawn(lab, { policy: writePolicy(dir), stateDir, enforce: false });
      const wait = await daemon.waitForEvent('its lock-wait line', (e) => e.event === 'lock-wait', 30_000);
      expect(wait.msg).toMatch(
        new RegExp(`locked by process ${process.pid} \\(a manual floodgate command\\?\\): waiting up to`),
      );
      // And it does wait: no exit, no start line while the lock is held.
      await sleep(1500);
      expect(daemon.exitStatus).toBeNull();
      expect(daemon.events.map((e) => e.event)).not.toContain('start');
      const releasedAt = Date.now();
      held.release();
      const started = await daemon.waitForEvent('its start line', (e) => e.event === 'start', 15_000);
      expect(Date.parse(String(started.time))).toBeGreaterThanOrEqual(releasedAt);
    } finally {
      held.release();
    }
  });

  it('a second run is refused at once while a daemon answers on the socket', async () => {
    const { lab } = shared;
    const dir = tempDir('second-run');
    const stateDir = join(dir, 'state');
    const policy = writePolicy(dir);
    const first = await Daemon.start(lab, { policy, stateDir, enforce: false });
    const started = Date.now();
    const r = await floodgate(lab, ['run', '--policy', policy, '--state-dir', stateDir], { timeoutMs: 20_000 });
    expect(r.exitCode, r.stderr).toBe(5);
    expect(r.stderr).toMatch(new RegExp(`another floodgate run \\(pid ${first.pid}\\) is using the state directory`));
    expect(Date.now() - started).toBeLessThan(8000);
  });

  it('refuses a state directory too long for its socket, and binds nothing anywhere', async () => {
    const { lab } = shared;
    const dir = tempDir('long');
    const stateDir = join(dir, 'd'.repeat(100), 'state');
    const socket = join(stateDir, 'control.sock');
    const r = await floodgate(lab, ['run', '--policy', writePolicy(dir), '--state-dir', stateDir], {
      timeoutMs: 15_000,
    });
    expect(r.exitCode, `${r.stdout}\n${r.stderr}`).toBe(2);
    expect(r.stderr).toContain(
      `the state directory ${stateDir} is too long for its control socket: ${socket} is ${Buffer.byteLength(socket)} bytes, and a Unix socket path may have at most 107`,
    );
    expect(r.stderr).not.toMatch(STACK_TRACE);
    // Node would have bound the path cut at 107 bytes, outside the state directory.
    expect(existsSync(socket.slice(0, 107))).toBe(false);
    expect(existsSync(socket)).toBe(false);
  });

  it('as another user, a state directory root owns gives a clear message naming the path and that user', async () => {
    const { lab } = shared;
    const dir = tempDir('other-user');
    chmodSync(dir, 0o755);
    const stateDir = join(dir, 'state');
    mkdirSync(stateDir, { mode: 0o755 });
    for (const [args, wanted] of [
      [
        ['ban', '198.51.100.7'],
        `the state directory ${stateDir} is owned by root (uid 0), not by nobody (uid 65534), the user floodgate runs as`,
      ],
      [
        ['run'],
        `the state directory ${stateDir} is owned by root (uid 0), not by nobody (uid 65534), the user floodgate runs as`,
      ],
      [
        ['ban', '198.51.100.7', '--state-dir', join(dir, 'private', 'x')],
        `permission denied for nobody (uid 65534), the user this command runs as`,
      ],
    ] as const) {
      const named = (args as readonly string[]).includes('--state-dir');
      if (named) mkdirSync(join(dir, 'private'), { mode: 0o700 });
      const argv = named ? args : [...args, '--state-dir', stateDir];
      const r = await lab.execServer(
        ['setpriv', '--reuid=nobody', '--regid=nogroup', '--clear-groups', process.execPath, CLI, ...argv],
        { timeoutMs: 15_000 },
      );
      expect(r.exitCode, `${argv.join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toContain(wanted);
      expect(r.stderr).not.toMatch(/internal error|move it away/);
      expect(r.stderr).not.toMatch(STACK_TRACE);
    }
    // And root refuses a state directory that user owns: its policy-path would choose root's policy.
    spawnSync('chown', ['nobody', stateDir]);
    const r = await floodgate(lab, ['ban', '198.51.100.7', '--state-dir', stateDir]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain(`the state directory ${stateDir} is owned by nobody (uid 65534), not by root (uid 0)`);
  });
});
