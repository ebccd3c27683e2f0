// A manual command refuses a state directory another user controls before it trusts anything in
// it, the control socket included: that user could answer "banned" from a daemon of their own.
import { chownSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { act } from '../../src/cli/act.js';
import { UsageError } from '../../src/errors.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'floodgate-trust-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe.runIf(process.getuid?.() === 0)('act in a state directory another user owns', () => {
  it('refuses before connecting to the socket there', async () => {
    const stateDir = join(dir, 'theirs');
    mkdirSync(stateDir, { mode: 0o755 });
    let connections = 0;
    const server = createServer((socket) => {
      connections++;
      socket.end(
        `${JSON.stringify({ ok: true, mode: 'enforce', result: [{ target: '198.51.100.9', status: 'banned', expiresAt: 'x' }] })}\n`,
      );
    });
    await new Promise<void>((resolve) => server.listen(join(stateDir, 'control.sock'), resolve));
    chownSync(stateDir, 65534, 65534);
    try {
      const attempt = act({ cmd: 'ban', targets: ['198.51.100.9'] }, { stateDir });
      await expect(attempt).rejects.toThrow(UsageError);
      await expect(attempt).rejects.toThrow(
        `the state directory ${stateDir} is owned by nobody (uid 65534), not by root (uid 0)`,
      );
      expect(connections).toBe(0);
    } finally {
      server.close();
    }
  });
});
