// Notifications against a real HTTP server on loopback and a real command: one notification per
// burst, the contract's body, retries with backoff that end, and no secret in the log.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Notifier, type NotifySettings } from '../../src/hooks/notifier.js';
import { tapEvents } from '../../src/log-events.js';
import { policySchema } from '../../src/policy/schema.js';
import { ExecaRunner } from '../../src/system/command-runner.js';
import { memoryLog } from '../support/memory-log.js';

interface Received {
  readonly headers: IncomingMessage['headers'];
  readonly body: { events: Record<string, unknown>[]; text: string; host: string; total: number; dryRun: boolean };
}

let server: Server;
let url: string;
let received: Received[];
let respond: (res: ServerResponse, n: number) => void;
let dir: string;

beforeEach(async () => {
  received = [];
  respond = (res) => res.end('ok');
  dir = mkdtempSync(join(tmpdir(), 'floodgate-notify-'));
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({
        headers: req.headers,
        body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as Received['body'],
      });
      respond(res, received.length);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/T000/SECRETPATH`;
});
afterEach(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  rmSync(dir, { recursive: true, force: true });
});

function settings(notify: Record<string, unknown>): NotifySettings {
  return policySchema.parse({ rules: [{ name: 'syn-flood', threshold: 10 }], notify }).notify!;
}

function setup(notify: Record<string, unknown>, dryRun = false) {
  const memory = memoryLog();
  const notifier = new Notifier(settings(notify), {
    runner: new ExecaRunner(),
    log: memory.log,
    dryRun,
    host: 'web1',
    batchMs: 50,
    backoffMs: 50,
  });
  tapEvents(memory.log, (event) => notifier.take(event));
  return { memory, notifier, log: memory.log };
}

const ban = (log: ReturnType<typeof setup>['log'], target: string, dryRun = false) =>
  log.info(
    { event: 'ban', target, rule: 'syn-flood', count: 42, ttl: '10m', expiresAt: '2026-12-01T12:10:00.000Z', dryRun },
    `${dryRun ? 'dry-run: would ban' : 'ban'} ${target} (syn-flood, 42 sockets) for 10m`,
  );

const until = async (check: () => boolean, ms = 5000) => {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
};

describe('webhook notifications', () => {
  it('posts the contract body with a human text, and the headers given', async () => {
    const { log, notifier } = setup({ webhook: { url, headers: { Authorization: 'Bearer s3cret-token' } } });
    ban(log, '192.0.2.7');
    await until(() => received.length === 1);
    const { headers, body } = received[0]!;
    expect(headers.authorization).toBe('Bearer s3cret-token');
    expect(headers['content-type']).toBe('application/json');
    expect(body.events).toEqual([
      {
        event: 'ban',
        target: '192.0.2.7',
        rule: 'syn-flood',
        count: 42,
        ttl: '10m',
        expiresAt: '2026-12-01T12:10:00.000Z',
        dryRun: false,
        at: expect.any(String),
        message: 'ban 192.0.2.7 (syn-flood, 42 sockets) for 10m',
      },
    ]);
    expect(body.text).toBe('floodgate on web1: ban 192.0.2.7 (syn-flood, 42 sockets) for 10m');
    expect(body.host).toBe('web1');
    await notifier.stop(1000);
  });

  it('sends a burst of 10k bans as one notification with a summary and the first targets', async () => {
    const { log, notifier } = setup({ webhook: { url }, max_targets: 5 });
    for (let i = 0; i < 10_000; i++) ban(log, `198.18.${i >> 8}.${i & 255}`);
    log.warn(
      { event: 'refused', target: '192.0.2.1', rule: 'manual', count: 0, why: 'protected' },
      'refused to ban 192.0.2.1: it is allowlisted',
    );
    await until(() => received.length === 1);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(received).toHaveLength(1);
    const { body } = received[0]!;
    expect(body.total).toBe(10_001);
    expect(body.events.map((e) => e.target)).toEqual([
      '198.18.0.0',
      '198.18.0.1',
      '198.18.0.2',
      '198.18.0.3',
      '198.18.0.4',
    ]);
    expect(body.text.split('\n')[0]).toBe('floodgate on web1: 10000 bans, 1 refusal');
    expect(body.text).toContain('… and 9996 more');
    await notifier.stop(1000);
  });

  it('says dry-run', async () => {
    const { log, notifier } = setup({ webhook: { url } }, true);
    ban(log, '192.0.2.7', true);
    await until(() => received.length === 1);
    expect(received[0]!.body.dryRun).toBe(true);
    expect(received[0]!.body.events[0]!.dryRun).toBe(true);
    expect(received[0]!.body.text).toMatch(
      /^floodgate on web1 \(dry-run: the firewall was not changed\): dry-run: would ban 192\.0\.2\.7/,
    );
    await notifier.stop(1000);
  });

  it('sends only the events chosen with on:', async () => {
    const { log, notifier } = setup({ webhook: { url }, on: ['attack'] });
    ban(log, '192.0.2.7');
    log.warn({ event: 'attack', reasons: ['syn_recv_total 5000 > 1000'] }, 'SYN FLOOD IN PROGRESS');
    await until(() => received.length === 1);
    expect(received[0]!.body.events.map((e) => e.event)).toEqual(['attack']);
    await notifier.stop(1000);
  });

  it('retries a server that answers 500 a bounded number of times, logs it, and never logs the secrets', async () => {
    respond = (res) => {
      res.statusCode = 500;
      res.end('no');
    };
    const { log, notifier, memory } = setup({
      webhook: { url, headers: { Authorization: 'Bearer s3cret-token' } },
      retries: 2,
    });
    ban(log, '192.0.2.7');
    await until(() => memory.named('error').length === 1);
    expect(received).toHaveLength(3);
    const [error] = memory.named('error');
    expect(error).toMatchObject({ during: 'notify', attempts: 3, message: 'HTTP 500 Internal Server Error' });
    expect(memory.named('notify-retry')).toHaveLength(2);
    const logged = JSON.stringify(memory.events());
    expect(logged).not.toContain('s3cret-token');
    expect(logged).not.toContain('SECRETPATH');
    // Its own failure is not notified: that would feed a failing receiver forever.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(received).toHaveLength(3);
    await notifier.stop(1000);
  });

  it('gives up on a server that hangs after its timeout, while bans go on at once', async () => {
    respond = () => {};
    const { log, notifier, memory } = setup({ webhook: { url, timeout: '1s' }, retries: 1 });
    ban(log, '192.0.2.7');
    const started = Date.now();
    for (let i = 0; i < 1000; i++) ban(log, `198.51.100.${i & 255}`);
    expect(Date.now() - started).toBeLessThan(1000);
    await until(() => memory.named('error').length === 1, 8000);
    expect(memory.named('error')[0]).toMatchObject({ during: 'notify', attempts: 2, message: 'timed out' });
    await notifier.stop(500);
  });

  it('applies new settings on configure (a policy reload)', async () => {
    const { log, notifier } = setup({ webhook: { url: 'http://127.0.0.1:9/old' } });
    notifier.configure(settings({ webhook: { url }, on: ['unban'] }));
    ban(log, '192.0.2.7');
    log.info({ event: 'unban', target: '192.0.2.7', rule: 'syn-flood', dryRun: false }, 'lifted ban of 192.0.2.7');
    await until(() => received.length === 1);
    expect(received[0]!.body.events.map((e) => e.event)).toEqual(['unban']);
    notifier.configure(undefined);
    ban(log, '192.0.2.8');
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(received).toHaveLength(1);
    await notifier.stop(1000);
  });

  it('gives a hanging server at most its stop wait, then abandons the request', async () => {
    respond = () => {};
    let closed = false;
    server.on('connection', (socket) => socket.on('close', () => (closed = true)));
    const { log, notifier } = setup({ webhook: { url, timeout: '1m' } });
    ban(log, '192.0.2.7');
    await until(() => received.length === 1);
    const started = Date.now();
    await notifier.stop(300);
    expect(Date.now() - started).toBeLessThan(1000);
    await until(() => closed, 2000);
  });

  it('notifies the same kind of error once a minute, not at every interval', async () => {
    const { log, notifier } = setup({ webhook: { url }, on: ['error'] });
    for (let i = 0; i < 5; i++) log.error({ event: 'error', during: 'scan' }, 'scan failed: EIO');
    log.error({ event: 'error', during: 'save' }, 'could not save the ban store');
    await until(() => received.length === 1);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(received).toHaveLength(1);
    expect(received[0]!.body.events.map((e) => e.during)).toEqual(['scan', 'save']);
    await notifier.stop(1000);
  });

  it('sends what is pending when stopped', async () => {
    const memory = memoryLog();
    const notifier = new Notifier(settings({ webhook: { url } }), {
      runner: new ExecaRunner(),
      log: memory.log,
      dryRun: false,
      host: 'web1',
      batchMs: 60_000,
    });
    tapEvents(memory.log, (event) => notifier.take(event));
    ban(memory.log, '192.0.2.7');
    await notifier.stop(2000);
    expect(received).toHaveLength(1);
  });
});

describe('command notifications', () => {
  it('runs the command with the events as JSON on stdin and the main fields in FLOODGATE_* variables', async () => {
    const out = join(dir, 'stdin.json');
    const env = join(dir, 'env');
    const { log, notifier, memory } = setup({
      command: [
        'sh',
        '-c',
        'cat > "$1"; printf "%s|%s|%s|%s|%s" "$FLOODGATE_EVENT" "$FLOODGATE_TARGET" "$FLOODGATE_RULE" "$FLOODGATE_TOTAL" "$FLOODGATE_DRY_RUN" > "$2"',
        'notify',
        out,
        env,
      ],
    });
    ban(log, '192.0.2.7');
    ban(log, '192.0.2.8');
    await until(() => memory.named('notify').length === 1);
    const body = JSON.parse(readFileSync(out, 'utf8')) as Received['body'];
    expect(body.events.map((e) => e.target)).toEqual(['192.0.2.7', '192.0.2.8']);
    expect(body.text.split('\n')[0]).toBe('floodgate on web1: 2 bans');
    expect(readFileSync(env, 'utf8')).toBe('ban|192.0.2.7|syn-flood|2|0');
    await notifier.stop(1000);
  });

  it('logs a command that fails, after its retries', async () => {
    const { log, notifier, memory } = setup({ command: ['sh', '-c', 'echo broken >&2; exit 3'], retries: 1 });
    ban(log, '192.0.2.7');
    await until(() => memory.named('error').length === 1);
    expect(memory.named('error')[0]).toMatchObject({ during: 'notify', attempts: 2 });
    expect(String(memory.named('error')[0]!.message)).toMatch(/exit code 3: broken/);
    await notifier.stop(1000);
  });
});
