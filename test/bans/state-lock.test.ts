// One writer per state directory: a kernel lock that dies with its holder (kill -9 included), whatever
// pid the file holds; a waiter gives up with the holder's pid.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { acquireLock, lockOwner, tryLock } from '../../src/bans/state-lock.js';
import { ConflictError } from '../../src/errors.js';

let dir: string;
let path: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'floodgate-lock-'));
  path = join(dir, 'lock');
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** The pid of a process that has already exited. */
function deadPid(): number {
  const child = spawnSync('true');
  expect(child.status).toBe(0);
  return child.pid;
}

describe('tryLock', () => {
  it('takes a free lock and writes this process’s pid into it', () => {
    const lock = tryLock(path);
    expect(lock).not.toBeNull();
    expect(readFileSync(path, 'utf8')).toBe(`${process.pid}\n`);
    expect(lockOwner(path)).toBe(process.pid);
    lock!.release();
    // The file stays (removing it would race a waiter), but nothing holds it any more.
    const again = tryLock(path);
    expect(again).not.toBeNull();
    again!.release();
  });

  it('fails while the owner holds it', () => {
    const first = tryLock(path);
    expect(first).not.toBeNull();
    expect(tryLock(path)).toBeNull();
    first!.release();
    const again = tryLock(path);
    expect(again).not.toBeNull();
    again!.release();
  });

  it('takes a lock file left with a dead process’s pid', () => {
    const dead = deadPid();
    writeFileSync(path, `${dead}\n`);
    const lock = tryLock(path);
    expect(lock).not.toBeNull();
    expect(readFileSync(path, 'utf8')).toBe(`${process.pid}\n`);
    lock!.release();
  });

  it('takes a lock file whose pid now belongs to another, live process (a pid reused after a reboot)', () => {
    const other = spawn('sleep', ['30']);
    try {
      writeFileSync(path, `${other.pid}\n`);
      const lock = tryLock(path);
      expect(lock).not.toBeNull();
      expect(readFileSync(path, 'utf8')).toBe(`${process.pid}\n`);
      lock!.release();
    } finally {
      other.kill('SIGKILL');
    }
  });

  it('takes a lock file that holds no pid', () => {
    writeFileSync(path, 'garbage');
    const lock = tryLock(path);
    expect(lock).not.toBeNull();
    lock!.release();
  });

  it('is released by the kernel when its holder is killed with -9', async () => {
    const lockModule = new URL('../../src/bans/state-lock.ts', import.meta.url).pathname;
    const script = `import { tryLock } from ${JSON.stringify(lockModule)};
      if (tryLock(${JSON.stringify(path)}) === null) process.exit(3);
      process.stdout.write('locked\\n'); setInterval(() => {}, 1000);`;
    const holder = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: process.cwd(),
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    await new Promise<void>((resolve, reject) => {
      holder.stdout.on('data', (chunk: Buffer) => chunk.toString().includes('locked') && resolve());
      holder.on('exit', (code) => reject(new Error(`the holder exited with ${code}`)));
    });
    expect(tryLock(path)).toBeNull();
    expect(lockOwner(path)).toBe(holder.pid);
    const exited = new Promise((resolve) => holder.on('exit', resolve));
    holder.kill('SIGKILL');
    await exited;
    const lock = tryLock(path);
    expect(lock).not.toBeNull();
    lock!.release();
  }, 30_000);

  it('refuses a symlink planted as the lock file, and writes nothing through it', () => {
    const victim = join(dir, 'victim');
    writeFileSync(victim, 'ROOT ONLY\n', { mode: 0o600 });
    symlinkSync(victim, path);
    expect(() => tryLock(path)).toThrow(/is a symbolic link/);
    expect(readFileSync(victim, 'utf8')).toBe('ROOT ONLY\n');
  });
});

describe('acquireLock', () => {
  it('waits for the lock, then fails with a ConflictError naming the owner’s pid', async () => {
    const held = tryLock(path)!;
    let waits = 0;
    const attempt = acquireLock(path, 150, async () => {
      waits++;
      return false;
    });
    await expect(attempt).rejects.toThrow(ConflictError);
    await expect(attempt).rejects.toThrow(
      `the state directory is locked by process ${process.pid} (${path}); try again, or stop that process`,
    );
    expect(waits).toBeGreaterThan(1);
    held.release();
  });

  it('gets the lock once its owner releases it while waiting', async () => {
    const held = tryLock(path)!;
    let waits = 0;
    const lock = await acquireLock(path, 10_000, async () => {
      if (++waits === 2) held.release();
      return false;
    });
    expect(lockOwner(path)).toBe(process.pid);
    expect(waits).toBe(2);
    lock.release();
  });

  it('stops waiting when told the request can go through the daemon instead', async () => {
    const held = tryLock(path)!;
    await expect(acquireLock(path, 10_000, async () => true)).rejects.toThrow(
      new ConflictError('retry through the daemon'),
    );
    held.release();
  });

  it('takes a free lock at once', async () => {
    let waits = 0;
    const lock = await acquireLock(path, 0, async () => {
      waits++;
      return false;
    });
    expect(waits).toBe(0);
    lock.release();
  });
});

describe('state lock under contention', () => {
  it('lets exactly one of many processes in at a time: no update of a shared counter is lost', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'floodgate-lock-race-'));
    try {
      const counter = join(dir, 'counter');
      writeFileSync(counter, '0');
      const lockModule = new URL('../../src/bans/state-lock.ts', import.meta.url).pathname;
      // Each process: take the lock, read-modify-write the counter slowly, release; 5 rounds.
      const script = `
        import { acquireLock } from ${JSON.stringify(lockModule)};
        import { readFileSync, writeFileSync } from 'node:fs';
        for (let i = 0; i < 5; i++) {
          const lock = await acquireLock(${JSON.stringify(join(dir, 'state.lock'))}, 30000);
          const n = Number(readFileSync(${JSON.stringify(counter)}, 'utf8'));
          await new Promise((r) => setTimeout(r, 2));
          writeFileSync(${JSON.stringify(counter)}, String(n + 1));
          lock.release();
        }`;
      const { spawn } = await import('node:child_process');
      const runs = Array.from(
        { length: 6 },
        () =>
          new Promise<number>((resolve) => {
            const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
              cwd: process.cwd(),
              stdio: 'inherit',
            });
            child.on('exit', (code) => resolve(code ?? 1));
          }),
      );
      expect(await Promise.all(runs)).toEqual([0, 0, 0, 0, 0, 0]);
      expect(readFileSync(counter, 'utf8')).toBe('30');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
