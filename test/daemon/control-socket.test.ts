// The control socket between the manual commands and the daemon: one JSON line each way, whole even
// when it is megabytes long, and errors that say what happened.
import { mkdtempSync, rmSync } from 'node:fs';
import type { Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { sendControl, serveControl } from '../../src/daemon/control-socket.js';
import type { Request } from '../../src/daemon/protocol.js';
import { UsageError } from '../../src/errors.js';

const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function serve(handle: (request: Request) => Promise<unknown>): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'floodgate-socket-'));
  const path = join(dir, 'control.sock');
  const server: Server = await serveControl(path, 'enforce', handle);
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return path;
}

describe('control socket', () => {
  it('carries a request and an answer of megabytes whole, characters split between chunks included', async () => {
    // 10k targets one way; 100k answers with a two-byte character in each the other way.
    const targets = Array.from({ length: 10_000 }, (_, i) => `198.18.${i >> 8}.${i & 255}`);
    const answer = Array.from({ length: 100_000 }, (_, i) => ({ target: `2001:db8::${i.toString(16)}`, reason: `flood ü ${i}` }));
    let received: Request | undefined;
    const path = await serve(async (request) => {
      received = request;
      return answer;
    });
    const response = await sendControl(path, { cmd: 'ban', targets });
    expect(received).toEqual({ cmd: 'ban', targets });
    expect(response).toEqual({ ok: true, result: answer, mode: 'enforce' });
  });

  it('answers a failed request with its message and exit code', async () => {
    const path = await serve(async () => {
      throw new UsageError('198.51.100.0/8 is wider than /16');
    });
    expect(await sendControl(path, { cmd: 'status' })).toEqual({ ok: false, error: '198.51.100.0/8 is wider than /16', exitCode: 2 });
  });

  it('reports no daemon when nothing listens', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'floodgate-socket-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    expect(await sendControl(join(dir, 'control.sock'), { cmd: 'status' })).toBeNull();
  });
});
