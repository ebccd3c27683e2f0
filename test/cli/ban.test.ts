// `floodgate ban` refuses, before anything runs, a target that would lock the operator out of the
// SSH session the command runs in.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MAX_TARGET_FILE_BYTES, banCommand, readTargetFile, sshClientAddress } from '../../src/cli/ban.js';
import { UsageError } from '../../src/errors.js';
import { parseCidr } from '../../src/net/ip.js';

const saved = { SSH_CLIENT: process.env.SSH_CLIENT, SSH_CONNECTION: process.env.SSH_CONNECTION };
let dir: string;
/** A state directory that cannot be made (its parent is a file): nothing past the check can run. */
let stateDir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'floodgate-ban-'));
  writeFileSync(join(dir, 'a-file'), '');
  stateDir = join(dir, 'a-file', 'state');
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
  for (const [key, value] of Object.entries(saved)) {
    if (value === undefined) delete process.env[key];
    else process.env[key] = value;
  }
});

describe('sshClientAddress', () => {
  it('reads the client address from SSH_CLIENT, else SSH_CONNECTION, in either family', () => {
    expect(sshClientAddress({ SSH_CLIENT: '198.51.100.7 52044 22' })).toEqual(parseCidr('198.51.100.7'));
    expect(sshClientAddress({ SSH_CONNECTION: '2001:db8::7 52044 2001:db8::1 22' })).toEqual(parseCidr('2001:db8::7'));
    expect(sshClientAddress({})).toBeNull();
  });
});

describe('banCommand and the SSH session', () => {
  it.each([
    ['the address itself', ['198.51.100.7'], '198.51.100.7'],
    ['a network around it, among other targets', ['203.0.113.9', '198.51.100.0/24'], '198.51.100.0/24'],
    ['an IPv6 network around an IPv6 client', ['2001:db8::/48'], '2001:db8::/48'],
  ])('refuses %s', async (_what, targets, named) => {
    process.env.SSH_CLIENT = targets[0]!.startsWith('2001') ? '2001:db8::7 52044 22' : '198.51.100.7 52044 22';
    const refusal = banCommand(targets, { stateDir, dryRun: true });
    await expect(refusal).rejects.toThrow(UsageError);
    await expect(refusal).rejects.toThrow(
      `refusing to ban ${named}: it covers ${process.env.SSH_CLIENT.split(' ')[0]}, the address of your SSH session`,
    );
  });

  it('checks targets read from --from-file too', async () => {
    process.env.SSH_CLIENT = '198.51.100.7 52044 22';
    const file = join(dir, 'targets.txt');
    writeFileSync(file, '# incident 42\n203.0.113.9\n198.51.100.0/28\n');
    await expect(banCommand([], { stateDir, dryRun: true, fromFile: file })).rejects.toThrow(
      'refusing to ban 198.51.100.0/28',
    );
  });

  it('does not take a neighbour, or the same bits in the other family, for the client', async () => {
    process.env.SSH_CLIENT = '198.51.100.7 52044 22';
    // Past the SSH check the command needs its state directory: that error shows the check let the targets through.
    for (const targets of [['198.51.100.8'], ['198.51.100.16/28'], ['::c633:6407']]) {
      await expect(banCommand(targets, { stateDir, dryRun: true })).rejects.toThrow(
        'cannot create the state directory',
      );
    }
  });

  it('refuses a --reason over 200 characters before anything runs', async () => {
    delete process.env.SSH_CLIENT;
    delete process.env.SSH_CONNECTION;
    await expect(banCommand(['198.51.100.8'], { stateDir, dryRun: true, reason: 'x'.repeat(201) })).rejects.toThrow(
      new UsageError('--reason is 201 characters long; at most 200 are kept with a ban (a note, not a document)'),
    );
    // 200 passes the check (and fails later, on the state directory this test makes unusable).
    await expect(banCommand(['198.51.100.8'], { stateDir, dryRun: true, reason: 'x'.repeat(200) })).rejects.toThrow(
      'cannot create the state directory',
    );
  });
});

describe('readTargetFile: --from-file is bounded', () => {
  it('refuses /dev/zero at once instead of reading it for ever', () => {
    expect(() => readTargetFile('/dev/zero')).toThrow(
      'cannot read --from-file /dev/zero: expected a regular file (or a pipe), got a character device',
    );
  });

  it('refuses a directory', () => {
    expect(() => readTargetFile(dir)).toThrow(UsageError);
    expect(() => readTargetFile(dir)).toThrow(
      `cannot read --from-file ${dir}: expected a regular file (or a pipe), got a directory`,
    );
  });

  it('refuses a regular file over the bound before reading it, naming the bound', () => {
    const file = join(dir, 'big.txt');
    writeFileSync(file, '198.51.100.7\n'.repeat(10));
    expect(() => readTargetFile(file, 100)).toThrow(
      `cannot read --from-file ${file}: 130 bytes, more than the 100 bytes allowed for a list of targets: split it`,
    );
    expect(readTargetFile(file, 130)).toBe('198.51.100.7\n'.repeat(10));
    expect(MAX_TARGET_FILE_BYTES).toBe(16 * 1024 * 1024);
  });

  it('reads a FIFO up to the bound, and no further', () => {
    const fifo = join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    // A writer that never stops, like `yes`: the read must end at the bound.
    const writer = spawn('sh', ['-c', `exec yes 198.51.100.7 > ${fifo}`], { stdio: 'ignore' });
    try {
      expect(() => readTargetFile(fifo, 4096)).toThrow(
        `cannot read --from-file ${fifo}: more than the 4096 bytes allowed for a list of targets: split it`,
      );
    } finally {
      writer.kill();
    }
  });

  it('says a missing file is missing', () => {
    expect(() => readTargetFile(join(dir, 'nope.txt'))).toThrow(
      `cannot read --from-file ${join(dir, 'nope.txt')}: no such file`,
    );
  });
});
