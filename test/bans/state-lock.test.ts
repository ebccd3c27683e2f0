// One writer per state directory: a live owner keeps the lock, a dead one loses it, a waiter gives up
// with the owner's pid.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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
    expect(existsSync(path)).toBe(false);
    expect(lockOwner(path)).toBeNull();
  });

  it('fails while the owner is alive', () => {
    const first = tryLock(path);
    expect(first).not.toBeNull();
    expect(tryLock(path)).toBeNull();
    first!.release();
    const again = tryLock(path);
    expect(again).not.toBeNull();
    again!.release();
  });

  it('takes over a stale lock whose owner is dead', () => {
    const dead = deadPid();
    writeFileSync(path, `${dead}\n`);
    expect(lockOwner(path)).toBeNull();
    const lock = tryLock(path);
    expect(lock).not.toBeNull();
    expect(readFileSync(path, 'utf8')).toBe(`${process.pid}\n`);
    lock!.release();
  });

  it('takes over a lock file that holds no pid', () => {
    writeFileSync(path, 'garbage');
    const lock = tryLock(path);
    expect(lock).not.toBeNull();
    lock!.release();
  });

  it('release does not remove a lock that another process has taken since', () => {
    const lock = tryLock(path)!;
    // Someone else (here: pid 1, which is always alive) holds the lock file now.
    writeFileSync(path, '1\n');
    lock.release();
    expect(readFileSync(path, 'utf8')).toBe('1\n');
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
    await expect(attempt).rejects.toThrow(`the state directory is locked by process ${process.pid} (${path}); try again, or stop that process`);
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
    await expect(acquireLock(path, 10_000, async () => true)).rejects.toThrow(new ConflictError('retry through the daemon'));
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
      const runs = Array.from({ length: 6 }, () =>
        new Promise<number>((resolve) => {
          const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: process.cwd(), stdio: 'inherit' });
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
