// What the command line answers before any command runs: a bare `floodgate` (or `floodgate policy`)
// prints the help on stdout with exit code 0; an unknown command or flag is a usage error on stderr,
// exit 2, in the `floodgate:` style of every other error; and a reader that goes away (`| head`)
// ends the output, not the command.
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { BanStore } from '../../src/bans/ban-store.js';
import { stateFile } from '../../src/daemon/state-dir.js';
import { captureOutput } from '../support/captured-output.js';

const out = captureOutput();

let main: (argv?: readonly string[]) => Promise<void>;
beforeAll(async () => {
  // version.cts reads package.json beside dist/; from src/ the single executable's build-time name stands in.
  (globalThis as { FLOODGATE_VERSION?: string }).FLOODGATE_VERSION = '0.0.0-test';
  ({ main } = await import('../../src/cli/program.js'));
});

const floodgate = (...args: string[]) => main(['node', 'floodgate', ...args]);

describe('a bare floodgate', () => {
  it('prints the help, every command included, on stdout and exits 0', async () => {
    await floodgate();
    expect(out.stderr).toBe('');
    expect(process.exitCode ?? 0).toBe(0);
    expect(out.stdout).toMatch(/^Usage: floodgate \[options\] \[command\]/);
    for (const command of ['scan', 'run', 'ban', 'unban', 'list', 'flush', 'status', 'explain', 'top', 'policy'])
      expect(out.stdout).toMatch(new RegExp(`^  ${command}\\b`, 'm'));
  });

  it('floodgate policy alone prints the help of policy on stdout, exit 0', async () => {
    await floodgate('policy');
    expect(out.stderr).toBe('');
    expect(process.exitCode ?? 0).toBe(0);
    expect(out.stdout).toMatch(/^Usage: floodgate policy/);
    expect(out.stdout).toMatch(/^ {2}check \[options\] \[file\]/m);
  });
});

describe('the version', () => {
  it.each([['--version'], ['-V'], ['-v'], ['version']])('floodgate %s prints it on stdout, exit 0', async (arg) => {
    await floodgate(arg);
    expect(out.stdout).toBe('0.0.0-test\n');
    expect(out.stderr).toBe('');
    expect(process.exitCode ?? 0).toBe(0);
  });

  it('the help lists floodgate version and names -v beside --version', async () => {
    await floodgate('--help');
    expect(out.stdout).toMatch(/^ {2}-V, --version +print the version \(also -v\)$/m);
    expect(out.stdout).toMatch(/^ {2}version +print the version/m);
  });

  // main.cts answers before commander and the command table load: a third of the start-up.
  it.each(['-v', '-V', '--version', 'version'])(
    'main.cts answers floodgate %s without loading commander',
    async (arg) => {
      // A resolve hook that fails any import of commander; --help shows that it does.
      const noCommander =
        'data:text/javascript,import{register}from"node:module";register("data:text/javascript,' +
        'export async function resolve(s,c,n){if(s===\\"commander\\")throw new Error(\\"commander was loaded\\");return n(s,c)}")';
      const run = (arg: string) => {
        const code =
          `process.argv = [process.execPath, 'floodgate', ${JSON.stringify(arg)}]; ` +
          "globalThis.FLOODGATE_VERSION = '0.0.0-test'; await import('./src/cli/main.cts');";
        return spawnSync(
          process.execPath,
          ['--import', 'tsx', '--import', noCommander, '--input-type=module', '-e', code],
          {
            cwd: fileURLToPath(new URL('../..', import.meta.url)),
            encoding: 'utf8',
          },
        );
      };
      const answered = run(arg);
      expect(answered.stderr).toBe('');
      expect(answered).toMatchObject({ status: 0, stdout: '0.0.0-test\n' });
      const help = run('--help');
      expect(help.status).not.toBe(0);
      expect(help.stderr).toContain('commander was loaded');
    },
    20_000,
  );

  // The built command is CommonJS: `--version` is answered before Node starts its ES module loader,
  // a third of Node's own start (what the npm-installed `floodgate` runs: package.json "bin").
  it('the built command answers --version without starting the ES module loader', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fg-esm-probe-'));
    try {
      const probe = join(dir, 'probe.cjs');
      writeFileSync(
        probe,
        "process.on('exit', () => process.stderr.write(process.moduleLoadList.some((m) => " +
          "m.includes('internal/modules/esm/loader')) ? 'esm loader\\n' : 'no esm loader\\n'));",
      );
      const cli = fileURLToPath(new URL('../../dist/src/cli/main.cjs', import.meta.url));
      const run = (...args: string[]) =>
        spawnSync(process.execPath, ['--require', probe, cli, ...args], { encoding: 'utf8' });
      const version = run('--version');
      expect(version).toMatchObject({ status: 0, stderr: 'no esm loader\n' });
      expect(version.stdout).toMatch(/^\d+\.\d+\.\d+/);
      // Any other command loads the program, ES modules: the probe sees it.
      expect(run('policy', 'check', '-q')).toMatchObject({ status: 0, stderr: 'esm loader\n' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('mistakes on the command line', () => {
  it.each([
    [['bogus'], "floodgate: unknown command 'bogus'"],
    [['policy', 'bogus'], "floodgate: unknown command 'bogus'"],
    [['scna'], "floodgate: unknown command 'scna'\n(Did you mean scan?)"],
    [['scan', '--bogus'], "floodgate: unknown option '--bogus'"],
    [['--bogus'], "floodgate: unknown option '--bogus'"],
  ])('floodgate %j is a usage error on stderr, exit 2', async (args, message) => {
    await floodgate(...args);
    expect(out.stdout).toBe('');
    expect(out.stderr).toContain(`${message}\n`);
    expect(out.stderr).toContain('(run floodgate --help for usage)');
    expect(out.stderr).not.toMatch(/^error:/m);
    expect(process.exitCode).toBe(2);
  });
});

describe('--json on the commands that change bans', () => {
  it.each(['ban', 'unban', 'flush'])('%s --help offers --json', async (command) => {
    await floodgate(command, '--help');
    expect(process.exitCode ?? 0).toBe(0);
    expect(out.stdout).toMatch(/^ {2}--json +print one JSON object/m);
  });

  it('unban --help offers --all', async () => {
    await floodgate('unban', '--help');
    expect(out.stdout).toMatch(/^ {2}--all +lift every ban: the same as flush/m);
  });
});

describe('a reader that goes away', () => {
  it('floodgate list | head: the rest is dropped, exit 0, no EPIPE stack trace', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'floodgate-epipe-'));
    try {
      // 5000 rows, far more than a pipe holds: the command is still writing when the reader goes.
      const stateDir = join(dir, 'state');
      mkdirSync(stateDir, { mode: 0o700 });
      const store = BanStore.load(stateFile(stateDir, 'dry-run'), { ttl: 3_600_000, maxTtl: 86_400_000 });
      for (let i = 0; i < 5000; i++)
        store.add(
          { target: `198.18.${i >> 8}.${i & 255}`, rule: 'manual', count: 0, createdAt: Date.now() },
          3_600_000,
        );
      store.save();
      const argv = ['node', 'floodgate', 'list', '--state-dir', stateDir, '--policy', 'policies/default.yaml'];
      const code =
        "globalThis.FLOODGATE_VERSION = 't'; const { main } = await import('./src/cli/program.ts'); " +
        `await main(${JSON.stringify(argv)});`;
      const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
        cwd: fileURLToPath(new URL('../..', import.meta.url)),
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let childStderr = '';
      child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
        childStderr += chunk;
      });
      let first = '';
      child.stdout.once('data', (chunk: Buffer) => {
        first = chunk.toString('utf8');
        child.stdout.destroy();
      });
      const exitCode = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
      expect(first).toContain('state directory');
      expect(childStderr).not.toContain('EPIPE');
      expect(exitCode, childStderr).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
