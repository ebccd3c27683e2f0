// The control socket between the manual commands and the daemon: one JSON line each way, whole even
// when it is megabytes long, and errors that say what happened.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { type Socket, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  type ControlLimits,
  type ControlServer,
  DEFAULT_CONTROL_LIMITS,
  sendControl,
  serveControl,
} from '../../src/daemon/control-socket.js';
import type { Request } from '../../src/daemon/protocol.js';
import { ConflictError, UsageError } from '../../src/errors.js';

const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

let control: ControlServer;

async function serve(
  handle: (request: Request) => Promise<unknown>,
  limits: Partial<ControlLimits> = {},
): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'floodgate-socket-'));
  const path = join(dir, 'control.sock');
  control = await serveControl(path, 'enforce', (raw) => handle(raw as Request), {
    ...DEFAULT_CONTROL_LIMITS,
    ...limits,
  });
  const { server } = control;
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  cleanups.push(() => control.stop());
  return path;
}

/** A raw client: connects, optionally writes, and collects what the daemon says until it closes. */
async function rawClient(path: string, text?: string): Promise<{ socket: Socket; answer: Promise<string> }> {
  const socket = await new Promise<Socket>((resolve, reject) => {
    const s = connect(path, () => resolve(s));
    s.once('error', reject);
  });
  cleanups.push(() => void socket.destroy());
  const answer = new Promise<string>((resolve) => {
    let text = '';
    socket.on('data', (chunk) => (text += chunk));
    socket.on('error', () => resolve(text));
    socket.on('close', () => resolve(text));
  });
  if (text !== undefined) socket.write(text);
  return { socket, answer };
}

const parsed = async (answer: Promise<string>) => JSON.parse((await answer).split('\n')[0]!) as Record<string, unknown>;

describe('control socket', () => {
  it('carries a request and an answer of megabytes whole, characters split between chunks included', async () => {
    // 10k targets one way; 100k answers with a two-byte character in each the other way.
    const targets = Array.from({ length: 10_000 }, (_, i) => `198.18.${i >> 8}.${i & 255}`);
    const answer = Array.from({ length: 100_000 }, (_, i) => ({
      target: `2001:db8::${i.toString(16)}`,
      reason: `flood ü ${i}`,
    }));
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
    expect(await sendControl(path, { cmd: 'status' })).toEqual({
      ok: false,
      error: '198.51.100.0/8 is wider than /16',
      exitCode: 2,
    });
  });

  it('reports no daemon when nothing listens', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'floodgate-socket-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    expect(await sendControl(join(dir, 'control.sock'), { cmd: 'status' })).toBeNull();
  });

  it('streams an answer of 500,000 items, which as one line passed the 64 MiB cap and failed', async () => {
    const answer = Array.from({ length: 500_000 }, (_, i) => ({
      target: `198.18.${(i >> 8) & 255}.${i & 255}`,
      rule: 'manual',
      reason: 'a reason of some length to make the row realistic',
      createdAt: '2026-12-01T10:00:00.000Z',
      expiresAt: '2026-12-01T11:00:00.000Z',
    }));
    expect(JSON.stringify(answer).length).toBeGreaterThan(64 * 1024 * 1024);
    const path = await serve(async () => answer);
    const response = await sendControl(path, { cmd: 'list' });
    expect(response?.ok).toBe(true);
    const result = (response as { result: typeof answer }).result;
    expect(result).toHaveLength(500_000);
    expect(result[499_999]).toEqual(answer[499_999]);
  }, 60_000);

  it('answers a request while an earlier one is still being handled (a status does not wait behind a ban)', async () => {
    let release!: () => void;
    const path = await serve(async (request) => {
      if (request.cmd === 'ban') await new Promise<void>((resolve) => (release = resolve));
      return request.cmd;
    });
    const ban = sendControl(path, { cmd: 'ban', targets: ['198.51.100.7'] });
    await new Promise((r) => setTimeout(r, 50));
    const started = Date.now();
    expect(await sendControl(path, { cmd: 'status' })).toEqual({ ok: true, result: 'status', mode: 'enforce' });
    expect(Date.now() - started).toBeLessThan(1000);
    release();
    expect(await ban).toEqual({ ok: true, result: 'ban', mode: 'enforce' });
  });

  it('answers a line that is not JSON with a clear error', async () => {
    const path = await serve(async () => 'never');
    const { answer } = await rawClient(path, 'ban 198.51.100.7\n');
    expect(await parsed(answer)).toEqual({
      ok: false,
      error: 'a control request must be one line of JSON',
      exitCode: 2,
    });
  });

  it('drops a client that sends no request in time, telling it why', async () => {
    const path = await serve(async () => 'never', { requestTimeoutMs: 200 });
    const { answer } = await rawClient(path);
    const started = Date.now();
    expect(await parsed(answer)).toMatchObject({ ok: false, error: 'no request within 0.2 s: connection closed' });
    expect(Date.now() - started).toBeLessThan(3000);
  });

  it('refuses a request over the per-connection cap with an answer, not a cut connection', async () => {
    const path = await serve(async () => 'never', { maxRequestBytes: 1024 * 1024 });
    const targets = Array.from({ length: 100_000 }, (_, i) => `198.18.${(i >> 8) & 255}.${i & 255}`);
    const response = await sendControl(path, { cmd: 'ban', targets });
    expect(response).toEqual({
      ok: false,
      error: 'request too large: more than 1 MiB (split a ban list into smaller ones)',
      exitCode: 2,
    });
  });

  it('caps the request bytes all connections hold together', async () => {
    const path = await serve(async () => 'never', { maxRequestBytes: 1024 * 1024, maxBufferedBytes: 1536 * 1024 });
    const first = await rawClient(path, `{"cmd":"ban","targets":["${'1'.repeat(1000 * 1024)}`);
    await new Promise((r) => setTimeout(r, 100));
    const second = await rawClient(path, `{"cmd":"ban","targets":["${'1'.repeat(1000 * 1024)}`);
    expect(await parsed(second.answer)).toMatchObject({
      ok: false,
      exitCode: 5,
      error: expect.stringMatching(/^the running floodgate is busy reading 2 MiB of other requests; try again$/),
    });
    first.socket.destroy();
  });

  it('answers "busy" past the connection cap, and takes requests again once connections close', async () => {
    const path = await serve(async () => 'ok', { maxConnections: 2 });
    const idle = [await rawClient(path), await rawClient(path)];
    const third = await rawClient(path);
    expect(await parsed(third.answer)).toMatchObject({
      ok: false,
      exitCode: 5,
      error: 'the running floodgate is busy (2 control connections open); try again',
    });
    for (const client of idle) client.socket.destroy();
    await new Promise((r) => setTimeout(r, 100));
    expect(await sendControl(path, { cmd: 'status' })).toEqual({ ok: true, result: 'ok', mode: 'enforce' });
  });

  it('on stop, refuses what comes and what waits to be sent, and resolves once every taken request is answered', async () => {
    let release!: () => void;
    const path = await serve(async () => {
      await new Promise<void>((resolve) => (release = resolve));
      return 'done';
    });
    const taken = sendControl(path, { cmd: 'ban', targets: ['198.51.100.7'] });
    await new Promise((r) => setTimeout(r, 50));
    const idle = await rawClient(path);
    let stopped = false;
    const stopping = control.stop().then(() => (stopped = true));
    expect(await parsed(idle.answer)).toMatchObject({
      ok: false,
      exitCode: 5,
      error: expect.stringContaining('is stopping: this request was not taken and changed nothing'),
    });
    expect(await sendControl(path, { cmd: 'status' })).toBeNull(); // no longer listening
    await new Promise((r) => setTimeout(r, 50));
    expect(stopped).toBe(false);
    release();
    expect(await taken).toEqual({ ok: true, result: 'done', mode: 'enforce' });
    await stopping;
  });

  it('drops a client that stops reading a long answer, instead of holding the answer for ever', async () => {
    const answer = Array.from({ length: 200_000 }, (_, i) => ({
      target: `198.18.${(i >> 8) & 255}.${i & 255}`,
      reason: 'x'.repeat(100),
    }));
    const path = await serve(async () => answer, { requestTimeoutMs: 300 });
    const { socket } = await rawClient(path, '{"cmd":"list"}\n');
    socket.pause();
    await new Promise((r) => setTimeout(r, 200));
    const started = Date.now();
    await control.stop(); // resolves once every taken request is over: here, once the client is dropped
    expect(Date.now() - started).toBeLessThan(5000);
  });
});

describe('serveControl when the path cannot be bound', () => {
  it('says which socket and why, as a conflict, not as a bug', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'floodgate-socket-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    // A directory in the socket's place: the bind fails with EADDRINUSE.
    const path = join(dir, 'control.sock');
    mkdirSync(join(path, 'x'), { recursive: true });
    const bound = serveControl(path, 'enforce', async () => null, DEFAULT_CONTROL_LIMITS);
    await expect(bound).rejects.toBeInstanceOf(ConflictError);
    await expect(bound).rejects.toThrow(`cannot listen on the control socket ${path} (EADDRINUSE)`);
  });
});
