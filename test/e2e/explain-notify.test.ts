// A real flood against `floodgate run --enforce` in the lab: the ban is notified through a real
// command and a real webhook on the server's loopback, a webhook that hangs delays no ban, a SIGHUP
// applies new notify settings, and `floodgate explain` shows the ban, its firewall rule, its history,
// its counts against each rule, and the grace period an unban leaves.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  Daemon,
  INTERVAL_MS,
  SKIP_REASON,
  firewallText,
  floodgateOk,
  floodgateRule,
  inputRules,
  rule,
  tempDir,
  useLab,
  waitFor,
  writePolicy,
} from './support.js';

const FIRST = '198.51.100.66';
const SECOND = '203.0.113.77';

interface Explained {
  banned: boolean;
  ban: { target: string; rule: string; count: number; dryRun: boolean } | null;
  firewall: { applied: boolean; command: string } | null;
  allowlisted: unknown;
  grace: { until: string } | null;
  history: { event: string; target: string; rule: string | null }[];
  counts: { rule: string; count: number; threshold: number }[];
}

/** A webhook receiver in the server namespace: hangs, or writes each body as one line to `file`. */
const RECEIVER = `
const [port, file] = process.argv.slice(1);
require('http').createServer((req, res) => {
  if (!file) return; // hangs
  let body = '';
  req.on('data', (c) => (body += c));
  req.on('end', () => { require('fs').appendFileSync(file, body + '\\n'); res.end('ok'); });
}).listen(Number(port), '127.0.0.1', () => console.log('listening'));
`;

const lines = (file: string): Record<string, unknown>[] =>
  existsSync(file)
    ? readFileSync(file, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>)
    : [];

describe.skipIf(SKIP_REASON !== null)('notifications and explain in the lab', () => {
  const shared = useLab();

  it('notifies a flood ban, survives a hanging webhook, applies a reload, and explains the target', async () => {
    const { lab } = shared;
    const dir = tempDir('explain');
    const stateDir = `${dir}/state`;
    const commandOut = join(dir, 'command.jsonl');
    const webhookOut = join(dir, 'webhook.jsonl');
    const servers = [
      lab.spawnServer([process.execPath, '-e', RECEIVER, '18081']),
      lab.spawnServer([process.execPath, '-e', RECEIVER, '18082', webhookOut]),
    ];
    try {
      for (const server of servers) await new Promise((resolve) => server.stdout!.once('data', resolve));
      const threshold = (p: Parameters<NonNullable<Parameters<typeof writePolicy>[1]>>[0]) => {
        rule(p, 'syn-flood').threshold = 20;
      };
      const policy = writePolicy(dir, (p) => {
        threshold(p);
        p.notify = {
          command: ['sh', '-c', 'cat >> "$1"; echo >> "$1"', 'notify', commandOut],
          webhook: {
            url: 'http://127.0.0.1:18081/hook',
            timeout: '1s',
            headers: { Authorization: 'Bearer lab-secret' },
          },
          retries: 1,
          on: ['ban', 'unban'],
        };
      });
      const daemon = await Daemon.start(lab, { policy, stateDir });

      await lab.synFlood({ sources: [FIRST], perSource: 30, port: 80, exact: false });
      const floodInPlace = Date.now();
      await waitFor(
        'the rule for the first attacker',
        async () => (await inputRules(lab, 4)).includes(floodgateRule(`${FIRST}/32`)),
        { timeoutMs: 2 * INTERVAL_MS + 1500, explain: () => firewallText(lab) },
      );
      // The webhook that hangs is still being tried: the ban did not wait for it.
      expect(Date.now() - floodInPlace).toBeLessThanOrEqual(2 * INTERVAL_MS + 1500);

      await waitFor('the notification command’s output', () => lines(commandOut).length > 0, { timeoutMs: 5000 });
      const [sent] = lines(commandOut) as { events: { event: string; target: string; rule: string }[]; text: string }[];
      expect(sent!.events[0]).toMatchObject({ event: 'ban', target: FIRST, rule: 'syn-flood', dryRun: false });
      expect(sent!.text).toContain(`ban ${FIRST}`);
      const failed = await daemon.waitForEvent(
        'the hanging webhook given up',
        (e) => e.event === 'error' && e.during === 'notify',
        10_000,
      );
      expect(failed).toMatchObject({ attempts: 2, message: 'timed out' });
      expect(daemon.stdout).not.toContain('lab-secret');

      const explained = JSON.parse(
        (await floodgateOk(lab, ['explain', FIRST, '--json', '--state-dir', stateDir])).stdout,
      ) as Explained;
      expect(explained).toMatchObject({
        banned: true,
        ban: { target: FIRST, rule: 'syn-flood', dryRun: false },
        firewall: { applied: true },
        allowlisted: null,
        grace: null,
      });
      expect(explained.firewall!.command).toContain(`-s ${FIRST}/32`);
      expect(explained.history).toEqual([expect.objectContaining({ event: 'ban', target: FIRST, rule: 'syn-flood' })]);
      expect(explained.counts.find((c) => c.rule === 'syn-flood')).toMatchObject({ threshold: 20 });

      // SIGHUP: the webhook now goes to the receiver that answers.
      writePolicy(dir, (p) => {
        threshold(p);
        p.notify = { webhook: { url: 'http://127.0.0.1:18082/hook' }, on: ['ban', 'unban'] };
      });
      const reloads = daemon.events.length;
      daemon.child.kill('SIGHUP');
      await daemon.waitForEvent(
        'the reload',
        (e) => daemon.events.indexOf(e) >= reloads && e.event === 'reload' && e.applied === true,
        10_000,
      );
      await lab.synFlood({ sources: [SECOND], perSource: 30, port: 80, exact: false });
      await waitFor(
        'the webhook’s notification of the second ban',
        () => lines(webhookOut).some((b) => JSON.stringify(b).includes(SECOND)),
        { timeoutMs: 2 * INTERVAL_MS + 5000 },
      );

      await floodgateOk(lab, ['unban', FIRST, '--grace', '1h', '--state-dir', stateDir]);
      await waitFor(
        'the unban notification',
        () => lines(webhookOut).some((b) => (b.events as { event: string }[]).some((e) => e.event === 'unban')),
        { timeoutMs: 5000 },
      );
      const after = await waitFor(
        'explain to show the unban',
        async () => {
          const x = JSON.parse(
            (await floodgateOk(lab, ['explain', FIRST, '--json', '--state-dir', stateDir])).stdout,
          ) as Explained;
          return x.history.length === 2 && x.grace !== null ? x : null;
        },
        { timeoutMs: 3 * INTERVAL_MS + 2000 },
      );
      expect(after).toMatchObject({ banned: false, ban: null });
      expect(after.history.map((e) => e.event)).toEqual(['ban', 'unban']);
      expect(Date.parse(after.grace!.until) - Date.now()).toBeGreaterThan(50 * 60_000);
      const text = (await floodgateOk(lab, ['explain', FIRST, '--state-dir', stateDir])).stdout;
      expect(text).toContain('banned:       no');
      expect(text).toMatch(/grace: {8}until /);
    } finally {
      for (const server of servers) server.kill('SIGKILL');
    }
  });
});
