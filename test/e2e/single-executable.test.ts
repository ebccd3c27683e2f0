// The single executable (`npm run package` -> dist/floodgate-linux-x64) works with no Node.js on
// the machine: it runs with a PATH that holds only the system tools floodgate calls, answers like
// the npm-installed command, runs a dry-run daemon, and bans and unbans for real inside a network
// namespace this test creates and removes, with only the capabilities the systemd unit grants.
// .ci/run builds the executable before the tests; without it this file is skipped, loudly.
import { type SpawnSyncReturns, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, REPO, SKIP_REASON } from './support.js';

const EXE = join(REPO, 'dist', 'floodgate-linux-x64');
const FIXTURE = join(REPO, 'test', 'fixtures', 'tables', 'mixed', 'netstat-an.txt');
/** What floodgate and this test call; nothing else is reachable, node least of all. */
const TOOLS = [
  'ip',
  'ss',
  'iptables',
  'ip6tables',
  'iptables-restore',
  'ip6tables-restore',
  'iptables-save',
  'ip6tables-save',
  'ipset',
  'nft',
  'setpriv',
];

const skip = !existsSync(EXE) ? `${EXE} was not built (npm run package)` : SKIP_REASON;
if (skip !== null) console.warn(`\n*** single-executable smoke test SKIPPED: ${skip} ***\n`);

let dir: string;
let env: NodeJS.ProcessEnv;
const ns = `fg-sea-${process.pid}`;

beforeAll(() => {
  if (skip !== null) return;
  dir = mkdtempSync(join(tmpdir(), 'floodgate-sea-'));
  const bin = join(dir, 'bin');
  mkdirSync(bin);
  for (const tool of TOOLS) {
    const found = spawnSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).stdout.trim();
    if (found !== '') symlinkSync(found, join(bin, tool));
  }
  // No node, and no /etc/floodgate of this machine's: the embedded default applies.
  env = { PATH: bin, HOME: dir, LANG: 'C', FLOODGATE_ETC: join(dir, 'etc') };
});

afterAll(() => {
  if (skip !== null) return;
  spawnSync('ip', ['netns', 'del', ns]);
  rmSync(dir, { recursive: true, force: true });
});

function sea(args: readonly string[], extraEnv: NodeJS.ProcessEnv = {}): SpawnSyncReturns<string> {
  return spawnSync(EXE, args, { cwd: '/', env: { ...env, ...extraEnv }, encoding: 'utf8', timeout: 30_000 });
}

/** The same command through the npm build, for comparison. */
function npmBuild(args: readonly string[]): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, [CLI, ...args], {
    cwd: '/',
    env: { ...process.env, ...env, PATH: process.env.PATH },
    encoding: 'utf8',
    timeout: 30_000,
  });
}

describe.skipIf(skip !== null)('dist/floodgate-linux-x64 with no node on PATH', () => {
  it('really has no node to fall back on', () => {
    expect(spawnSync('node', ['--version'], { env }).error).toMatchObject({ code: 'ENOENT' });
  });

  it('--version, --help and scan --input answer exactly like the npm build', () => {
    const version = (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string }).version;
    expect(sea(['--version'])).toMatchObject({ status: 0, stdout: `${version}\n` });
    for (const args of [
      ['--help'],
      ['ban', '--help'],
      ['scan', '--input', FIXTURE, '--top', '5'],
      ['scan', '--input', FIXTURE, '--by', 'net', '--json'],
    ]) {
      const [mine, theirs] = [sea(args), npmBuild(args)];
      expect({ args, status: mine.status, stdout: mine.stdout, stderr: mine.stderr }).toEqual({
        args,
        status: theirs.status,
        stdout: theirs.stdout,
        stderr: theirs.stderr,
      });
    }
    expect(sea(['scan', '--input', FIXTURE]).stdout).toMatch(/^583 sockets matched/);
    // A typed error keeps its exit code.
    expect(sea(['ban', 'not-an-address', '--state-dir', join(dir, 'usage')])).toMatchObject({ status: 2 });
  });

  it('checks the embedded default policy, and writes and then uses /etc/floodgate/policy.yaml', () => {
    expect(sea(['policy', 'check'])).toMatchObject({
      status: 0,
      stdout: expect.stringMatching(/^# \(embedded default policy\): valid\nmode: dry-run\n/),
    });
    expect(sea(['policy', 'init'])).toMatchObject({
      status: 0,
      stdout: `wrote ${join(dir, 'etc', 'policy.yaml')}\nedit it, then check it with: floodgate policy check\n`,
    });
    expect(sea(['policy', 'check']).stdout).toMatch(new RegExp(`^# ${join(dir, 'etc', 'policy.yaml')}: valid\n`));
  });

  it('runs a dry-run daemon for a few seconds and stops cleanly on SIGINT', async () => {
    const stateDir = join(dir, 'dry-run');
    // With the systemd unit's NODE_OPTIONS: every line of output must still be a JSON log line.
    // No /etc/floodgate/policy.yaml here (the test above wrote one): the embedded default applies.
    const noEtc = { FLOODGATE_ETC: join(dir, 'no-etc') };
    const child = spawn(EXE, ['run', '--state-dir', stateDir, '--interval', '1s'], {
      cwd: '/',
      env: { ...env, ...noEtc, NODE_OPTIONS: '--max-semi-space-size=2' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (out += chunk.toString()));
    await new Promise((resolve) => setTimeout(resolve, 3500));
    const status = sea(['status', '--json', '--state-dir', stateDir], noEtc);
    child.kill('SIGINT');
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect(code, out).toBe(0);
    const events = out
      .trim()
      .split('\n')
      .map((line) => (JSON.parse(line) as { event: string }).event);
    expect(events[0]).toBe('start');
    expect(events.at(-1)).toBe('stopped');
    expect(JSON.parse(status.stdout)).toMatchObject({
      daemon: { pid: child.pid },
      mode: 'dry-run',
      lastScan: expect.anything(),
      policy: { file: '(embedded default policy)', source: "the running daemon's" },
    });
  });

  it.each(['iptables', 'nftables'])(
    'bans and unbans for real with %s in a private namespace, with only CAP_NET_ADMIN and CAP_NET_RAW',
    (backend) => {
      spawnSync('ip', ['netns', 'del', ns]);
      expect(spawnSync('ip', ['netns', 'add', ns]).status).toBe(0);
      const stateDir = join(dir, `enforce-${backend}`);
      const policy = join(dir, `${backend}.yaml`);
      spawnSync('sh', [
        '-c',
        `printf 'rules: [{name: r, threshold: 20}]\\nfirewall: {backend: ${backend}}\\n' > ${policy}`,
      ]);
      // As the systemd unit runs it: root with a bounding set of two capabilities, no new privileges.
      const inNs = (args: readonly string[]) =>
        spawnSync(
          'ip',
          [
            'netns',
            'exec',
            ns,
            'setpriv',
            '--bounding-set',
            '-all,+net_admin,+net_raw',
            '--no-new-privs',
            EXE,
            ...args,
            '--enforce',
            '--policy',
            policy,
            '--state-dir',
            stateDir,
          ],
          { cwd: '/', env, encoding: 'utf8', timeout: 30_000 },
        );
      const firewall = () =>
        spawnSync(
          'ip',
          [
            'netns',
            'exec',
            ns,
            'sh',
            '-c',
            backend === 'iptables' ? 'iptables-save; ip6tables-save' : 'nft list ruleset',
          ],
          { encoding: 'utf8' },
        ).stdout;

      const banned = inNs(['ban', '203.0.113.7', '2001:db8::7']);
      expect(banned.status, banned.stderr).toBe(0);
      expect(firewall()).toContain('203.0.113.7');
      expect(firewall()).toContain('2001:db8::7');
      const unbanned = inNs(['unban', '203.0.113.7', '2001:db8::7']);
      expect(unbanned.status, unbanned.stderr).toBe(0);
      expect(firewall()).not.toContain('203.0.113.7');
      expect(firewall()).not.toContain('2001:db8::7');
      expect(inNs(['flush']).status).toBe(0);
      expect(spawnSync('ip', ['netns', 'del', ns]).status).toBe(0);
    },
  );
});
