// The control socket against a daemon that enforces in the lab: a stop loses no ban a request had
// been answered for or had handed in, and ban lists and lists of 200,000 work end to end (spread
// arguments once overflowed the stack at about 125k, in the CLI and in the firewall commit).
//
// Safety: floodgate, iptables and ipset run in the lab's server namespace only (see support.ts).
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { type Socket, connect } from 'node:net';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  Daemon,
  SKIP_REASON,
  floodgate,
  floodgateOk,
  floodgateRule,
  inputRules,
  listBans,
  sleep,
  tempDir,
  useLab,
  waitFor,
  writePolicy,
} from './support.js';
import { firewallInstance } from '../../src/firewall/instance.js';

/** A client of the control socket (the test runs on the host; the socket is a file). */
async function open(path: string): Promise<{ socket: Socket; answer: Promise<string> }> {
  const socket = await new Promise<Socket>((resolve, reject) => {
    const s = connect(path, () => resolve(s));
    s.once('error', reject);
  });
  const answer = new Promise<string>((resolve) => {
    let text = '';
    socket.on('data', (chunk) => (text += chunk));
    socket.on('error', () => resolve(text));
    socket.on('close', () => resolve(text));
  });
  return { socket, answer };
}

/** 131,072 IPv4 addresses of 198.18.0.0/15, then IPv6 ones: 200,000 distinct targets. */
const target = (i: number) =>
  i < 131_072
    ? `198.${18 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`
    : `2001:db8::${(i >> 16).toString(16)}:${(i & 0xffff).toString(16)}`;

describe.skipIf(SKIP_REASON !== null)('control plane', () => {
  const shared = useLab();

  it('SIGTERM: stops taking requests first, keeps every ban a request handed in, and says which changes wait for the next start', async () => {
    const { lab } = shared;
    const dir = tempDir('shutdown');
    const stateDir = `${dir}/state`;
    // 2 changes per second: a 40-target ban takes 20 s, longer than the stop waits for it.
    const policy = writePolicy(dir, (p) => {
      p.ban = { ...p.ban, rate: '2/s', kill_connections: false };
    });
    const daemon = await Daemon.start(lab, { policy, stateDir });
    const socket = join(stateDir, 'control.sock');
    await waitFor('the control socket', () => existsSync(socket), { timeoutMs: 10_000 });

    const held = await open(socket);
    held.socket.write(
      `${JSON.stringify({ cmd: 'ban', targets: Array.from({ length: 40 }, (_, i) => `203.0.113.${i + 1}`) })}\n`,
    );
    await sleep(300);
    // Ten clients that hand in a ban and go away without waiting for the answer.
    for (let i = 1; i <= 10; i++) {
      const client = await open(socket);
      client.socket.end(`${JSON.stringify({ cmd: 'ban', targets: [`198.51.100.${i}`] })}\n`);
    }
    const idle = await open(socket);
    await daemon.waitForEvent('the ten bans', (e) => e.event === 'ban' && e.target === '198.51.100.10');

    const exit = daemon.stop('SIGTERM', 20_000);
    // A client that was connected but had not sent its request is told, and changes nothing.
    const late = JSON.parse((await idle.answer).split('\n')[0]!);
    expect(late).toMatchObject({
      ok: false,
      exitCode: 5,
      error: expect.stringContaining('is stopping: this request was not taken and changed nothing'),
    });
    expect(await exit).toEqual({ code: 0, signal: null });
    const heldAnswer = JSON.parse((await held.answer).split('\n')[0]!);
    expect(heldAnswer).toMatchObject({
      ok: false,
      exitCode: 5,
      error: expect.stringMatching(
        /^floodgate stopped before \d+ of these 40 change\(s\) reached the firewall: they are saved, and applied when floodgate starts again$/,
      ),
    });

    // Nothing logged as banned after the stop line, and every ban logged is in the saved store.
    const stoppedAt = daemon.events.findIndex((e) => e.event === 'stopped');
    expect(stoppedAt).toBeGreaterThan(0);
    expect(daemon.events.slice(stoppedAt).filter((e) => e.event === 'ban')).toEqual([]);
    const logged = daemon.events.filter((e) => e.event === 'ban').map((e) => e.target as string);
    expect(logged).toHaveLength(50);
    const saved = (await listBans(lab, stateDir)).map((b) => b.target);
    expect(saved.sort()).toEqual([...logged].sort());

    // The next start applies what had not reached the firewall.
    const again = await Daemon.start(lab, { policy, stateDir });
    await waitFor(
      'every saved ban in the firewall',
      async () => {
        const rules = await inputRules(lab, 4);
        return logged.every((t) => rules.includes(floodgateRule(`${t}/32`)));
      },
      { timeoutMs: 40_000, intervalMs: 500, explain: async () => (await inputRules(lab, 4)).join('\n') },
    );
    await again.stop();
  }, 120_000);

  it('bans 200,000 targets from a file into ipset, lists them with and without the daemon, and streams them through it', async () => {
    const { lab } = shared;
    const dir = tempDir('bulk');
    const stateDir = `${dir}/state`;
    const policy = writePolicy(dir, (p) => {
      p.ban = { ...p.ban, rate: '1000000/s', max_active: 1_000_000, kill_connections: false };
      p.firewall = { backend: 'ipset' };
    });
    const count = 200_000;
    const file = join(dir, 'targets.txt');
    writeFileSync(file, `${Array.from({ length: count }, (_, i) => target(i)).join('\n')}\n`);
    // This state directory's own sets (floodgate-<id>-4/-6), named by the id its first ban makes.
    const idFile = join(stateDir, 'instance-id');
    const sets = () => firewallInstance(existsSync(idFile) ? readFileSync(idFile, 'utf8').trim() : null).sets;
    try {
      const ban = await floodgate(
        lab,
        ['ban', '--enforce', '--from-file', file, '--state-dir', stateDir, '--policy', policy],
        { timeoutMs: 240_000 },
      );
      expect(ban.stderr).not.toMatch(/Maximum call stack/);
      expect(ban.exitCode).toBe(0);
      expect(ban.stdout).toContain(`${count} banned, 0 already banned, 0 refused`);
      const entries = async (set: string) =>
        Number(/Number of entries: (\d+)/.exec((await lab.execServer(['ipset', 'list', set, '-t'])).stdout)?.[1]);
      expect(existsSync(idFile)).toBe(true);
      expect(await entries(sets()[4])).toBe(131_072);
      expect(await entries(sets()[6])).toBe(count - 131_072);

      const table = await floodgateOk(lab, ['list', '--state-dir', stateDir, '--policy', policy], {
        timeoutMs: 120_000,
      });
      expect(table.stdout.split('\n').filter((line) => /^(198\.1[89]\.|2001:db8::)/.test(line))).toHaveLength(count);

      const daemon = await Daemon.start(lab, { policy, stateDir });
      const listed = await floodgateOk(lab, ['list', '--json', '--state-dir', stateDir], { timeoutMs: 120_000 });
      expect((JSON.parse(listed.stdout) as unknown[]).length).toBe(count);
      const status = await floodgateOk(lab, ['status', '--json', '--state-dir', stateDir]);
      expect(JSON.parse(status.stdout)).toMatchObject({ daemon: { pid: expect.any(Number) }, active: count });
      await daemon.stop('SIGTERM', 30_000);
    } finally {
      const { 4: v4, 6: v6 } = sets();
      await lab.execServer([
        'sh',
        '-c',
        `iptables -w -F INPUT; ip6tables -w -F INPUT; ipset destroy ${v4}; ipset destroy ${v6}; true`,
      ]);
    }
  }, 400_000);
});
