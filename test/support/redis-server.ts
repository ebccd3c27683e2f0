// Throw-away redis-servers and sentinels for the Redis fleet tests: each its own directory and
// loopback port, AOF on, no RDB snapshots; never the system's service. They run on the host's
// loopback, or inside a lab namespace when given the lab's spawn.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TlsFiles } from './tls-files.js';

export const HAS_REDIS = existsSync('/usr/bin/redis-server');

/** Starts argv: on the host by default, `lab.spawnServer` for the lab's server namespace. */
export type Spawner = (argv: string[]) => ChildProcess;
const onHost: Spawner = (argv) => spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });

/** A port free on the host's loopback now (a namespace's loopback has every port free). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** One redis-server or sentinel process, ready once its log says so. */
class RedisProcess {
  private made: string | undefined;
  /** What it logged, for a failed test's message. */
  log = '';
  private child: ChildProcess | undefined;

  constructor(private readonly spawner: Spawner = onHost) {}

  /** Its directory, made when first needed: a test file's filtered-out servers leave none behind. */
  get dir(): string {
    this.made ??= mkdtempSync(join(tmpdir(), 'floodgate-redis-'));
    return this.made;
  }

  protected async run(argv: string[], ready: RegExp, what: string): Promise<void> {
    this.log = '';
    const child = this.spawner(argv);
    this.child = child;
    const started = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${what} did not start within 10 s:\n${this.log}`)), 10_000);
      const seen = (chunk: Buffer) => {
        this.log += chunk.toString();
        if (ready.test(this.log)) {
          clearTimeout(timer);
          resolve();
        }
      };
      child.stdout?.on('data', seen);
      child.stderr?.on('data', seen);
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`${what} exited (${code ?? signal}) before it was ready:\n${this.log}`));
      });
    });
    await started;
  }

  /** Stops it (SIGKILL with `hard`) and waits for the exit. */
  async stop(hard = false): Promise<void> {
    const child = this.child;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    this.child = undefined;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill(hard ? 'SIGKILL' : 'SIGTERM');
    });
  }

  async remove(): Promise<void> {
    await this.stop(true);
    if (this.made !== undefined) rmSync(this.made, { recursive: true, force: true });
    this.made = undefined;
  }
}

export interface RedisServerOptions {
  /** TLS only: the port is the TLS port and plain connections are refused. */
  readonly tls?: TlsFiles;
  readonly spawn?: Spawner;
}

export class RedisServer extends RedisProcess {
  constructor(
    readonly port = 20_000 + Math.floor(Math.random() * 10_000),
    private readonly extra: string[] = [],
    private readonly options: RedisServerOptions = {},
  ) {
    super(options.spawn);
  }

  get url(): string {
    return `${this.options.tls ? 'rediss' : 'redis'}://127.0.0.1:${this.port}`;
  }

  /** Its arguments, with a listening port (TLS or plain) of its own. */
  private argv(): string[] {
    const { tls } = this.options;
    const listen = tls
      ? [
          '--port',
          '0',
          '--tls-port',
          String(this.port),
          '--tls-cert-file',
          tls.cert,
          '--tls-key-file',
          tls.key,
          '--tls-ca-cert-file',
          tls.ca,
          '--tls-auth-clients',
          'no',
          // A replica reaches its primary, and the primary's TLS port only.
          '--tls-replication',
          'yes',
        ]
      : ['--port', String(this.port)];
    return [
      'redis-server',
      ...listen,
      '--bind',
      '127.0.0.1',
      '--dir',
      this.dir,
      '--appendonly',
      'yes',
      '--save',
      '',
      '--daemonize',
      'no',
      ...this.extra,
    ];
  }

  start(): Promise<void> {
    return this.run(this.argv(), /Ready to accept connections/, `redis-server on port ${this.port}`);
  }
}

export interface SentinelOptions {
  readonly port: number;
  /** The primary's name in the sentinel's config. */
  readonly name: string;
  readonly primaryPort: number;
  /** A primary unanswered this long is down. @default 1000 */
  readonly downAfterMs?: number;
  /** @default 5000 */
  readonly failoverTimeoutMs?: number;
  /** TLS to the servers and on its own port (which is then TLS only). */
  readonly tls?: TlsFiles;
  readonly spawn?: Spawner;
}

/**
 * One Redis Sentinel, the only one: quorum 1, so it fails over alone. Debian's redis-server binary
 * runs as a sentinel with --sentinel; the redis-sentinel package adds only a symlink and a system
 * service on port 26379, which the tests neither need nor want.
 */
export class RedisSentinel extends RedisProcess {
  constructor(private readonly options: SentinelOptions) {
    super(options.spawn);
  }

  get port(): number {
    return this.options.port;
  }

  start(): Promise<void> {
    const { port, name, primaryPort, tls } = this.options;
    // The sentinel rewrites its config file: one of its own in its directory.
    const conf = join(this.dir, 'sentinel.conf');
    const listen = tls
      ? [
          'port 0',
          `tls-port ${port}`,
          `tls-cert-file ${tls.cert}`,
          `tls-key-file ${tls.key}`,
          `tls-ca-cert-file ${tls.ca}`,
          'tls-auth-clients no',
          'tls-replication yes',
        ]
      : [`port ${port}`];
    writeFileSync(
      conf,
      [
        ...listen,
        'bind 127.0.0.1',
        `dir ${this.dir}`,
        `sentinel monitor ${name} 127.0.0.1 ${primaryPort} 1`,
        `sentinel down-after-milliseconds ${name} ${this.options.downAfterMs ?? 1000}`,
        `sentinel failover-timeout ${name} ${this.options.failoverTimeoutMs ?? 5000}`,
        '',
      ].join('\n'),
    );
    return this.run(['redis-server', conf, '--sentinel'], /\+monitor master/, `redis sentinel on port ${port}`);
  }
}
