// `floodgate top` in a real terminal: run under tmux in the lab's server namespace during a SYN
// flood, its screen read with `tmux capture-pane -p`. The attacker shows as the top source over its
// rule's threshold with no daemon (the table alone), then as banned once a daemon runs; q puts the
// terminal back. A private tmux server (-L) is used and killed at the end, also on failure.
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  CLI,
  Daemon,
  SKIP_REASON,
  floodgate,
  floodgateOk,
  rule,
  tempDir,
  useLab,
  waitFor,
  writePolicy,
} from './support.js';

const ATTACKER = '198.51.100.66';
const TMUX_SOCKET = `floodgate-e2e-top-${process.pid}`;

function hasTmux(): boolean {
  try {
    execFileSync('tmux', ['-V'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
const TMUX_MISSING = hasTmux() ? null : 'tmux is not installed (apt-get install tmux)';
if (SKIP_REASON === null && TMUX_MISSING !== null)
  console.warn(`\n*** floodgate top e2e test SKIPPED: ${TMUX_MISSING} ***\n`);

const tmux = (...args: string[]): string => execFileSync('tmux', ['-L', TMUX_SOCKET, ...args], { encoding: 'utf8' });
const screen = (): string => tmux('capture-pane', '-p', '-t', 'top');

describe.skipIf(SKIP_REASON !== null || TMUX_MISSING !== null)('floodgate top in a terminal', () => {
  const shared = useLab();

  afterEach(() => {
    try {
      tmux('kill-server');
    } catch {
      // already gone
    }
    // tmux leaves its socket file behind.
    rmSync(join(process.env.TMUX_TMPDIR || tmpdir(), `tmux-${process.getuid!()}`, TMUX_SOCKET), { force: true });
  });

  it('shows the attacker as the top source over its threshold, then as banned; follows a resize; q and Ctrl-C restore the terminal', async () => {
    const { lab } = shared;
    const dir = tempDir('top');
    const stateDir = `${dir}/state`;
    const policy = writePolicy(dir, (p) => {
      rule(p, 'syn-flood').threshold = 20;
    });
    let seen = '';
    const explain = () => `the screen last read:\n${seen}`;
    const read = () => (seen = screen());

    // No daemon yet: the table alone.
    await lab.synFlood({ sources: [ATTACKER], perSource: 30, port: 80, exact: false });
    const command = `ip netns exec ${lab.server} ${process.execPath} ${CLI} top --state-dir ${stateDir} --policy ${policy}; echo "top exited $?"; sleep 600`;
    tmux('new-session', '-d', '-s', 'top', '-x', '120', '-y', '40', command);

    const source = new RegExp(`^${ATTACKER.replaceAll('.', '\\.')}\\s+(\\d+)\\s+> 20\\s+syn-flood\\s+OVER\\s*$`, 'm');
    await waitFor(
      'the attacker as the top source, over syn-flood’s threshold',
      () => {
        const text = read();
        const lines = text.split('\n');
        const title = lines.findIndex((l) => l.startsWith('TOP SOURCES'));
        return title >= 0 && source.test(lines[title + 1] ?? '') && text.includes('daemon: not running');
      },
      { timeoutMs: 10_000, intervalMs: 250, explain },
    );
    expect(Number(source.exec(seen)![1])).toBeGreaterThan(20);
    // The flood counters are shown as rates from the second frame on.
    await waitFor('the flood counters as rates', () => /SyncookiesSent \d+(\.\d)?\/s \(\d+\)/.test(read()), {
      timeoutMs: 5000,
      intervalMs: 250,
      explain,
    });

    // A daemon starts and bans it: top shows the ban with its time left, and the daemon's ban event.
    await Daemon.start(lab, { policy, stateDir });
    const banRow = new RegExp(
      `^${ATTACKER.replaceAll('.', '\\.')}\\s+syn-flood\\s+\\d+\\s+9m \\d\\ds\\s+enforced\\s*$`,
      'm',
    );
    await waitFor(
      'the attacker as banned, with its time left and the ban event',
      () => {
        const text = read();
        return (
          /^daemon: pid \d+, enforce with iptables/m.test(text) &&
          banRow.test(text) &&
          text.includes(`ban ${ATTACKER} (syn-flood`)
        );
      },
      { timeoutMs: 10_000, intervalMs: 250, explain },
    );

    // Into a pipe: refused, unless --once asks for one frame, whole and without colour.
    const refused = await floodgate(lab, ['top', '--state-dir', stateDir, '--policy', policy]);
    expect(refused).toMatchObject({ exitCode: 2, stdout: '' });
    expect(refused.stderr).toContain('use --once to print a single frame');
    const once = await floodgateOk(lab, ['top', '--once', '--state-dir', stateDir, '--policy', policy]);
    expect(once.stdout).toMatch(banRow);
    expect(once.stdout).not.toContain('\x1b');

    // q ends it with exit code 0 and the alternate screen gone: the shell's own screen is back.
    tmux('send-keys', '-t', 'top', 'q');
    await waitFor('top to exit', () => read().includes('top exited 0'), { timeoutMs: 5000, intervalMs: 100, explain });
    expect(seen).not.toContain('TOP SOURCES');

    // A terminal resized (SIGWINCH) is redrawn at once, not at the next refresh (an hour away here);
    // Ctrl-C (raw mode: a key, not a signal) ends it cleanly.
    tmux('new-session', '-d', '-s', 'again', '-x', '100', '-y', '30', command.replace(' top ', ' top --interval 1h '));
    const again = () => (seen = tmux('capture-pane', '-p', '-t', 'again'));
    await waitFor('a second top', () => again().startsWith('floodgate top'), {
      timeoutMs: 5000,
      intervalMs: 100,
      explain,
    });
    tmux('resize-window', '-t', 'again', '-x', '60', '-y', '20');
    await waitFor(
      'a 60-column frame',
      () => {
        const lines = again().split('\n');
        // The counters wrapped anew: at 100 columns no line starts with ListenOverflows (tmux only crops).
        return (
          lines[0]!.startsWith('floodgate top') &&
          lines.some((l) => l.startsWith('ListenOverflows ')) &&
          lines.every((l) => l.length <= 60)
        );
      },
      { timeoutMs: 3000, intervalMs: 100, explain },
    );
    tmux('send-keys', '-t', 'again', 'C-c');
    await waitFor('top to exit on Ctrl-C', () => again().includes('top exited 0') && !seen.includes('TOP SOURCES'), {
      timeoutMs: 5000,
      intervalMs: 100,
      explain,
    });
  });
});
