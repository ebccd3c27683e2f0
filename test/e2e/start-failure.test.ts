// A start that fails after the fleet sync began must end the process: the sync's timers would keep
// it alive, without the state lock, still pulling and pushing bans (a second read of the merged
// daemon found it). Dry-run in the host namespace: nothing here touches a firewall, and the fleet's
// address is a loopback port nothing listens on.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CLI } from './support.js';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function run(args: string[], timeoutMs: number): Promise<{ code: number | null; stderr: string; timedOut: boolean }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk) => {
      stderr += String(chunk);
    });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stderr, timedOut });
    });
  });
}

describe('a start that fails once the fleet sync runs', () => {
  it('stops the sync and exits, with a clear message, when the control socket cannot be bound', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'floodgate-start-failure-'));
    dirs.push(dir);
    const stateDir = join(dir, 'state');
    mkdirSync(stateDir, { mode: 0o700 });
    // Something that is not a socket in the control socket's place: the bind fails.
    mkdirSync(join(stateDir, 'control.sock', 'x'), { recursive: true });
    writeFileSync(join(dir, 'password'), 'not-a-real-password\n', { mode: 0o600 });
    writeFileSync(join(dir, 'key'), 'not-a-real-key\n', { mode: 0o600 });
    const policy = join(dir, 'policy.yaml');
    writeFileSync(
      policy,
      [
        'rules: [{name: syn-flood, states: [SYN_RECV], threshold: 20}]',
        'fleet:',
        '  engine: crowdsec',
        '  url: http://127.0.0.1:9',
        '  host: web-test',
        '  machine: floodgate-web-test',
        `  password_file: ${join(dir, 'password')}`,
        `  bouncer_key_file: ${join(dir, 'key')}`,
        '  poll: 500ms',
        '',
      ].join('\n'),
    );
    const result = await run(
      ['run', '--dry-run', '--policy', policy, '--state-dir', stateDir, '--log-format', 'json'],
      15_000,
    );
    expect(result.timedOut, `still running after 15 s; stderr: ${result.stderr}`).toBe(false);
    expect(result.code).toBe(5);
    expect(result.stderr).toContain(`cannot listen on the control socket ${join(stateDir, 'control.sock')}`);
    expect(result.stderr).not.toContain('internal error');
  });
});
