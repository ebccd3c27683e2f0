// SIGHUP against `floodgate run --enforce` in the lab: a lower threshold bans a flood the old one let
// through, an invalid edit leaves the daemon running on the previous policy, an allowlist edit frees
// a banned address at once; and under the journal every log line carries a syslog priority.
import { closeSync, openSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  CLI,
  Daemon,
  INTERVAL_MS,
  SKIP_REASON,
  bannedSources,
  firewallText,
  floodgateRule,
  inputRules,
  rule,
  sleep,
  tempDir,
  useLab,
  waitFor,
  waitForScans,
  writePolicy,
  writeText,
} from './support.js';

const BELOW_OLD = '198.51.100.77';
const SECOND = '198.51.100.78';

describe.skipIf(SKIP_REASON !== null)('policy reload on SIGHUP', () => {
  const shared = useLab();

  it('applies a lower threshold, keeps the policy on an invalid edit, and frees a newly allowlisted address', async () => {
    const { lab } = shared;
    const dir = tempDir('reload');
    const stateDir = join(dir, 'state');
    const policy = writePolicy(dir, (p) => {
      rule(p, 'syn-flood').threshold = 20;
    });
    const daemon = await Daemon.start(lab, { policy, stateDir });
    // The sign of life after the first scan.
    const beat = await daemon.waitForEvent('the first heartbeat', (e) => e.event === 'scan');
    expect(beat.msg).toMatch(
      /^scan: \d+ sockets?, (top source \S+ with \d+|no remote sources), nothing over a threshold; 0 active bans$/,
    );

    // 10 half-open connections: under the threshold of 20, nothing is banned.
    await lab.synFlood({ sources: [BELOW_OLD], perSource: 10, port: 80 });
    await waitForScans(lab, stateDir, Date.now(), 2);
    expect(await bannedSources(lab)).toEqual([]);

    // Lower the threshold to 5 and send SIGHUP: the same flood is banned.
    writePolicy(dir, (p) => {
      rule(p, 'syn-flood').threshold = 5;
    });
    daemon.child.kill('SIGHUP');
    const applied = await daemon.waitForEvent('the reload event', (e) => e.event === 'reload' && e.applied === true);
    expect(applied.msg).toContain('rules changed: syn-flood (threshold 20 -> 5)');
    await waitFor(
      'the rule for the flood under the old threshold',
      async () => (await inputRules(lab, 4)).includes(floodgateRule(`${BELOW_OLD}/32`)),
      {
        timeoutMs: 2 * INTERVAL_MS + 2000,
        explain: () => firewallText(lab),
      },
    );

    // An invalid edit: the errors are logged with file:line:key, the daemon keeps running on the
    // previous policy (threshold 5: a second flood of 10 is banned too).
    writeText(
      dir,
      'policy.yaml',
      'interval: 1s\nrules:\n  - name: syn-flood\n    threshold: -1\nban: {ttl: forever}\n',
    );
    daemon.child.kill('SIGHUP');
    const refused = await daemon.waitForEvent('the refused reload', (e) => e.event === 'reload' && e.applied === false);
    expect(refused.level).toBe(50);
    expect(refused.errors).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/policy\.yaml:4 rules\[0\]\.threshold: expected a whole number > 0, got -1$/),
        expect.stringMatching(/policy\.yaml:5 ban\.ttl: expected .*, got "forever"$/),
      ]),
    );
    await sleep(INTERVAL_MS);
    expect(daemon.exitStatus).toBeNull();
    await lab.synFlood({ sources: [SECOND], perSource: 10, port: 80 });
    await waitFor(
      'the rule for a second flood under the previous policy',
      async () => (await inputRules(lab, 4)).includes(floodgateRule(`${SECOND}/32`)),
      {
        timeoutMs: 2 * INTERVAL_MS + 2000,
        explain: () => firewallText(lab),
      },
    );

    // Allowlist the first address: its ban is lifted at once, the other one stays.
    writePolicy(dir, (p) => {
      rule(p, 'syn-flood').threshold = 5;
      p.allowlist.push(BELOW_OLD);
    });
    daemon.child.kill('SIGHUP');
    const freed = await daemon.waitForEvent(
      'the allowlist reload',
      (e) => e.event === 'reload' && e.applied === true && Array.isArray(e.lifted) && e.lifted.length > 0,
    );
    expect(freed.lifted).toEqual([BELOW_OLD]);
    expect(freed.allowlistAdded).toEqual([BELOW_OLD]);
    await waitFor(
      'the allowlisted address’s rule to be gone',
      async () => {
        const rules = await inputRules(lab, 4);
        return !rules.includes(floodgateRule(`${BELOW_OLD}/32`)) && rules.includes(floodgateRule(`${SECOND}/32`));
      },
      { timeoutMs: 3000, explain: () => firewallText(lab) },
    );

    // SIGTERM still ends it cleanly.
    expect(await daemon.stop('SIGTERM')).toEqual({ code: 0, signal: null });
  });

  it('under the journal (JOURNAL_STREAM names stdout) writes one event per line, each with a syslog priority', async () => {
    const { lab } = shared;
    const dir = tempDir('journal');
    const policy = writePolicy(dir, (p) => {
      rule(p, 'syn-flood').threshold = 20;
    });
    const out = join(dir, 'journal.txt');
    closeSync(openSync(out, 'w'));
    const { dev, ino } = statSync(out, { bigint: true });
    const argv = [
      process.execPath,
      CLI,
      'run',
      '--enforce',
      '--policy',
      policy,
      '--state-dir',
      join(dir, 'state'),
      '--interval',
      '1s',
      '--log-level',
      'debug',
    ];
    // The shell execs node with stdout on the file, as systemd hands a service its journal stream.
    const child = lab.spawnServer(['sh', '-c', `exec "$@" >> '${out}'`, 'sh', ...argv], {
      env: { JOURNAL_STREAM: `${dev}:${ino}` },
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const text = () => readFileSync(out, 'utf8');
    try {
      await waitFor('the start line', () => text().includes('floodgate enforcing'), {
        timeoutMs: 15_000,
        explain: text,
      });
      await lab.synFlood({ sources: ['198.51.100.80'], perSource: 30, port: 80, exact: false });
      await waitFor('the ban line', () => text().includes('<6>ban 198.51.100.80 (syn-flood'), {
        timeoutMs: 2 * INTERVAL_MS + 2000,
        explain: text,
      });
      writeText(dir, 'policy.yaml', 'rules: []\n');
      child.kill('SIGHUP');
      await waitFor('the refused reload', () => text().includes('<3>policy reload refused'), {
        timeoutMs: 5000,
        explain: text,
      });
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
    } finally {
      child.kill('SIGKILL');
    }
    const lines = text().split('\n');
    expect(lines.pop()).toBe('');
    for (const line of lines) expect(line).toMatch(/^<[2-7]>[^<{\s]/);
    const priorities = new Set(lines.map((line) => line.slice(0, 3)));
    for (const wanted of ['<3>', '<6>', '<7>']) expect(priorities).toContain(wanted);
    // The logged command pastes into a shell: ss -K's filter is quoted.
    expect(text()).toMatch(/<7>ss -K -t -n -a '\(' dst 198\.51\.100\.80 or dst '\[::ffff:198\.51\.100\.80\]' '\)'/);
  });
});
