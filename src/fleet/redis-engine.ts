// The fleet through Redis (issue 14): a ban is one key per target, `<prefix>ban:<target>`, holding
// host, rule and the absolute expiry (SET NX PXAT), plus one entry in the stream `<prefix>events`;
// one Lua script does both, so a target banned by several hosts at once is banned and announced
// once. Unban: DEL plus an `unban` entry, in one script too. Expiry needs no entry: every host has
// the expiry. Each host follows the stream with XREAD BLOCK from the id it applied last (never `$`
// in a loop: that skips entries added between two reads), on a connection of its own since a
// blocked connection can send nothing else.
import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from '../log.js';
import type { FleetChanges, FleetDecision, FleetEngine, PushBan } from './fleet-engine.js';
import { FORMAT, decodeEntry, encodeBan, encodeUnban, ownBanPrefix } from './redis-entry.js';

export interface RedisEngineOptions {
  readonly url: string;
  readonly host: string;
  readonly password?: string;
  readonly prefix: string;
  /** Redis Sentinel: the client asks these for the primary of `sentinelName` and follows a failover. */
  readonly sentinels?: readonly { host: string; port: number }[];
  readonly sentinelName?: string;
  /**
   * The CA certificates (PEM) a rediss:// server's certificate must chain to, for both the sentinels
   * and the primary. @default Node's bundled CAs
   */
  readonly tlsCa?: string;
  /** How long one XREAD blocks; a stop closes the connection sooner. @default 5000 */
  readonly blockMs?: number;
  /** The stream is trimmed to about this many entries. @default 100000 */
  readonly maxlen?: number;
  /** Where a stream entry that cannot be read is reported (once per reason). @default not reported */
  readonly log?: Logger;
}

const ORIGIN = 'floodgate';
/** Entries one XREAD takes: 10 000 bans pushed at once arrive in one read. */
const READ_COUNT = 10_000;
/** Bans per script call: Redis runs each call alone; 500 SET + XADD take it a few ms. */
const BAN_CHUNK = 500;
/** ioredis's error after a round of the sentinels with no reply but the primary's refusal. */
const SENTINEL_ROUND_OVER = /^All sentinels are unreachable\. Retrying from scratch after \d+ms\.$/;
/** How long a pull waits for a lost connection to come back before it reports the failure. */
const WAIT_READY_MS = 1000;

// KEYS: the stream, then one ban key per ban. ARGV: host, maxlen, the entry's field, then rule,
// expiresAt (ms) and the stream entry (redis-entry.ts) per ban. One call per chunk of bans: a script
// call each cost A ~90 µs of its own CPU for 10,000 bans. Each ban is still its own SET NX + XADD,
// and the whole chunk runs atomically.
const BAN_LUA = `
local added = 0
for i = 2, #KEYS do
  local at = 4 + (i - 2) * 3
  local rule, expiresAt = ARGV[at], ARGV[at + 1]
  if redis.call('SET', KEYS[i], cjson.encode({host=ARGV[1], rule=rule, expiresAt=tonumber(expiresAt)}),
      'NX', 'PXAT', expiresAt) then
    redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', ARGV[3], ARGV[at + 2])
    added = added + 1
  end
end
return added`;

// KEYS: ban key, stream. ARGV: maxlen, the entry's field, the entry. Nothing to announce when no
// ban was there.
const UNBAN_LUA = `
if redis.call('DEL', KEYS[1]) == 1 then
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[1], '*', ARGV[2], ARGV[3])
  return 1
end
return 0`;

type FleetRedis = Redis & {
  fgBan(numKeys: number, ...args: string[]): Promise<number>;
  fgUnban(key: string, stream: string, max: string, field: string, entry: string): Promise<number>;
};

/** "1700000000000-3" → [ms, seq] as bigints, for comparing stream ids. */
function idParts(id: string): [bigint, bigint] {
  const [ms, seq] = id.split('-');
  return [BigInt(ms ?? '0'), BigInt(seq ?? '0')];
}

/** <0, 0, >0 as stream id a is before, equal to or after b. */
export function compareIds(a: string, b: string): number {
  const [am, as] = idParts(a);
  const [bm, bs] = idParts(b);
  return am !== bm ? (am < bm ? -1 : 1) : as === bs ? 0 : as < bs ? -1 : 1;
}

/**
 * A connection's error as the operator needs it: a certificate Node refused is said to be one, with
 * the usual cause (a CA file that did not sign the server's certificate), and Node's reason kept.
 */
function connectionProblem(error: Error & { code?: unknown }): string {
  const code = typeof error.code === 'string' ? error.code : '';
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID')
    return `TLS: the server's certificate is not for this address (${error.message})`;
  if (/CERT|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)/.test(code) || /certificate/i.test(error.message))
    return `TLS: the server's certificate is not trusted (${error.message}); is fleet.tls_ca_file the CA that signed it?`;
  return error.message;
}

export class RedisEngine implements FleetEngine {
  readonly name = 'redis';
  /** The stream is exact: no follow-up resync after new entries. */
  readonly exactStream = true;
  private readonly cmd: FleetRedis;
  private readonly reader: Redis;
  private readonly stream: string;
  private readonly banPrefix: string;
  private readonly ownBans: string;
  private started = false;
  private closed = false;
  private connectionError: string | undefined;

  constructor(private readonly options: RedisEngineOptions) {
    // rediss:// is TLS to every server this engine talks to: ioredis, given sentinels, would
    // otherwise reach the sentinels and the primary they name in plain text whatever the scheme.
    const tls =
      new URL(options.url).protocol === 'rediss:'
        ? { ...(options.tlsCa !== undefined && { ca: options.tlsCa }) }
        : undefined;
    const common: RedisOptions = {
      ...(tls !== undefined && { tls }),
      ...(options.password !== undefined && { password: options.password }),
      // A command while Redis is down fails at once (the outbox keeps it) rather than queueing here.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      retryStrategy: (times) => Math.min(100 * times, 1000),
      lazyConnect: true,
      ...(options.sentinels !== undefined && {
        sentinels: options.sentinels.map((s) => ({ ...s })),
        name: options.sentinelName,
        ...(tls !== undefined && { enableTLSForSentinelMode: true, sentinelTLS: tls }),
        // A failover is a reconnection: the outbox waits, as while Redis is down.
        sentinelRetryStrategy: (times: number) => Math.min(100 * times, 1000),
      }),
    };
    this.cmd = new Redis(options.url, { ...common, connectionName: `floodgate-${options.host}` }) as FleetRedis;
    this.reader = new Redis(options.url, { ...common, connectionName: `floodgate-${options.host}-follow` });
    // ioredis logs unhandled 'error' events to stderr; the sync reports failures itself.
    // Kept for the next failure's message (WRONGPASS, ECONNREFUSED…; never the password).
    const keep = (error: Error) => {
      // ioredis says this after each round of the sentinels, also when they answered and the
      // primary they named refused the connection: then that refusal, kept, is the cause.
      if (SENTINEL_ROUND_OVER.test(error.message) && this.connectionError !== undefined) return;
      this.connectionError = connectionProblem(error);
    };
    this.cmd.on('error', keep);
    this.reader.on('error', keep);
    this.cmd.on('ready', () => {
      this.connectionError = undefined;
    });
    this.cmd.defineCommand('fgBan', { lua: BAN_LUA });
    this.cmd.defineCommand('fgUnban', { numberOfKeys: 2, lua: UNBAN_LUA });
    this.stream = `${options.prefix}events`;
    this.banPrefix = `${options.prefix}ban:`;
    this.ownBans = ownBanPrefix(options.host);
    void this.cmd.connect().catch(() => {});
    void this.reader.connect().catch(() => {});
  }

  private get maxlen(): string {
    return String(this.options.maxlen ?? 100_000);
  }

  /** Pulls waiting for a connection: a stop ends their wait at once. */
  private readonly waiting = new Set<() => void>();

  /** Waits a little for a connection that is not ready, then lets the command fail. */
  private async ready(client: Redis): Promise<void> {
    if (client.status === 'ready' || this.closed) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, WAIT_READY_MS);
      const waiting = this.waiting;
      function done() {
        clearTimeout(timer);
        client.off('ready', done);
        waiting.delete(done);
        resolve();
      }
      client.once('ready', done);
      waiting.add(done);
    });
    if (this.closed) throw new Error('the Redis fleet engine is closed');
    if ((client.status as string) !== 'ready')
      throw new Error(`Redis at ${this.where()} is not reachable (${this.connectionError ?? client.status})`);
  }

  /** The URL without anything secret (the schema refuses a password in it anyway). */
  private where(): string {
    const { sentinels, sentinelName } = this.options;
    if (sentinels !== undefined)
      return `primary ${sentinelName} (sentinels ${sentinels.map((s) => `${s.host}:${s.port}`).join(', ')})`;
    const url = new URL(this.options.url);
    return `${url.protocol}//${url.host}`;
  }

  /**
   * A command cut off by a lost connection fails in ioredis with an error about its own options
   * (maxRetriesPerRequest, enableOfflineQueue): said here as what happened, where.
   */
  private explain(error: unknown): unknown {
    if (!(error instanceof Error)) return error;
    if (error.name !== 'MaxRetriesPerRequestError' && !/^Stream isn't writeable/.test(error.message)) return error;
    const why = this.connectionError === undefined ? '' : `: ${this.connectionError}`;
    return new Error(`Redis at ${this.where()} is not reachable (the connection was lost${why})`, { cause: error });
  }

  push(bans: readonly PushBan[], unbans: readonly string[], now: number): Promise<void> {
    return this.pushChanges(bans, unbans, now).catch((error: unknown) => {
      throw this.explain(error);
    });
  }

  pull(now: number, cursor?: string): Promise<FleetChanges> {
    return this.pullChanges(now, cursor).catch((error: unknown) => {
      throw this.explain(error);
    });
  }

  snapshot(now: number): Promise<FleetDecision[]> {
    return this.readKeys(now).catch((error: unknown) => {
      throw this.explain(error);
    });
  }

  private async pushChanges(bans: readonly PushBan[], unbans: readonly string[], now: number): Promise<void> {
    await this.ready(this.cmd);
    const { host } = this.options;
    const pipeline = this.cmd.pipeline() as unknown as FleetRedis & { exec(): Promise<[Error | null, unknown][]> };
    let queued = 0;
    // SET PXAT in the past would store nothing: an expired ban has nothing to announce.
    const live = bans.filter((ban) => ban.expiresAt > now);
    for (let from = 0; from < live.length; from += BAN_CHUNK) {
      const chunk = live.slice(from, from + BAN_CHUNK);
      const keys = [this.stream, ...chunk.map((ban) => this.banPrefix + ban.target)];
      const args = [host, this.maxlen, FORMAT];
      for (const ban of chunk)
        args.push(ban.rule, String(ban.expiresAt), encodeBan(host, ban.target, ban.rule, ban.expiresAt));
      void pipeline.fgBan(keys.length, ...keys, ...args);
      queued++;
    }
    for (const target of unbans) {
      void pipeline.fgUnban(this.banPrefix + target, this.stream, this.maxlen, FORMAT, encodeUnban(host, target));
      queued++;
    }
    if (queued === 0) return;
    const results = await pipeline.exec();
    // Each script is atomic and NX makes a repeat a no-op: a retry of the whole batch is harmless.
    const failed = results?.find(([error]) => error !== null);
    if (failed) {
      const error = this.explain(failed[0]);
      throw error === failed[0] ? new Error(`Redis refused a ban: ${failed[0]!.message}`) : error;
    }
  }

  private async pullChanges(now: number, cursor?: string): Promise<FleetChanges> {
    await this.ready(this.cmd);
    const first = !this.started;
    this.started = true;
    if (cursor === undefined) return this.complete(now);
    if (await this.lostSince(cursor)) return this.complete(now);
    await this.ready(this.reader);
    const reply = (await this.reader.xread(
      'COUNT',
      READ_COUNT,
      'BLOCK',
      // The first read after a start does not wait: the sync reports the start-up at once.
      first ? 1 : (this.options.blockMs ?? 5000),
      'STREAMS',
      this.stream,
      cursor,
    )) as [string, [string, string[]][]][] | null;
    const added: FleetDecision[] = [];
    const deleted: FleetDecision[] = [];
    let last = cursor;
    for (const [id, fields] of reply?.[0]?.[1] ?? []) {
      last = id;
      // Our own bans back (all of a 10k burst we pushed): known by their start, not decoded.
      if (fields.length === 2 && fields[0] === FORMAT && fields[1]!.startsWith(this.ownBans)) continue;
      const change = decodeEntry(fields);
      if (typeof change === 'string') {
        this.unreadable(id, change);
        continue;
      }
      const { target, host } = change;
      // An unban has no rule or expiry of its own: the sync needs only its target.
      if (change.op === 'ban')
        added.push({ value: target, id: target, host, origin: ORIGIN, rule: change.rule, expiresAt: change.expiresAt });
      else deleted.push({ value: target, id: target, host, origin: ORIGIN, rule: '', expiresAt: 0 });
    }
    return { added, deleted, complete: false, cursor: last };
  }

  /** Why entries were skipped, each said once: a fleet mixing versions would say it for every entry. */
  private readonly reported = new Set<string>();

  private unreadable(id: string, why: string): void {
    // Bounded: the reasons name the entry's fields, which anyone who can write to the stream chooses.
    if (this.reported.has(why) || this.reported.size >= 100) return;
    this.reported.add(why);
    this.options.log?.warn(
      { event: 'fleet-skipped', engine: this.name, entry: id, why },
      `fleet: skipped stream entry ${id}, ${why}; do all hosts of the fleet run the same floodgate version? ` +
        '(later entries skipped for this reason are not logged)',
    );
  }

  /**
   * Whether entries after `cursor` are gone (trimmed, or the stream lost or replaced): then only
   * the keys tell the truth.
   */
  private async lostSince(cursor: string): Promise<boolean> {
    let info: unknown[];
    try {
      info = (await this.cmd.xinfo('STREAM', this.stream)) as unknown[];
    } catch (error) {
      // No stream: a fresh Redis, or one that lost its data; nothing to read from `cursor` on.
      if (/no such key/i.test((error as Error).message)) return cursor !== '0-0';
      throw error;
    }
    const field = (name: string) => {
      const at = info.indexOf(name);
      return at < 0 ? undefined : info[at + 1];
    };
    const lastId = String(field('last-generated-id') ?? '0-0');
    // A stream behind our cursor is not the one we followed (a restore, another server).
    if (compareIds(lastId, cursor) < 0) return true;
    // Redis 7 counts every entry ever added: when all are still there, none can be missed.
    const added = field('entries-added');
    if (added !== undefined && Number(added) === Number(field('length'))) return false;
    // Entries trimmed are those before the first one left: when it comes after our cursor, some we
    // have not read may be among them (XTRIM does not move max-deleted-entry-id; XDEL does).
    const firstEntry = field('first-entry') as [string, unknown] | null | undefined;
    if (firstEntry ? compareIds(firstEntry[0], cursor) > 0 : compareIds(lastId, cursor) > 0) return true;
    const maxDeleted = field('max-deleted-entry-id');
    return typeof maxDeleted === 'string' && compareIds(maxDeleted, cursor) > 0;
  }

  /** Every ban in the keys, and the stream id they are as of (read first: later entries replay harmlessly). */
  private async complete(now: number): Promise<FleetChanges> {
    let cursor = '0-0';
    try {
      const info = (await this.cmd.xinfo('STREAM', this.stream)) as unknown[];
      cursor = String(info[info.indexOf('last-generated-id') + 1] ?? '0-0');
    } catch (error) {
      if (!/no such key/i.test((error as Error).message)) throw error;
    }
    return { added: await this.readKeys(now), deleted: [], complete: true, cursor };
  }

  /** Every live ban in the keys. */
  private async readKeys(now: number): Promise<FleetDecision[]> {
    await this.ready(this.cmd);
    const decisions: FleetDecision[] = [];
    // The prefix may hold glob characters' lookalikes only ([A-Za-z0-9._:-]): MATCH needs no escape.
    let scan = '0';
    do {
      const [next, keys] = await this.cmd.scan(scan, 'MATCH', `${this.banPrefix}*`, 'COUNT', 1000);
      scan = next;
      if (keys.length === 0) continue;
      const values = await this.cmd.mget(...keys);
      keys.forEach((key, i) => {
        const text = values[i];
        if (text === null || text === undefined) return;
        let parsed: { host?: unknown; rule?: unknown; expiresAt?: unknown };
        try {
          parsed = JSON.parse(text) as typeof parsed;
        } catch {
          return;
        }
        const expiresAt = Number(parsed.expiresAt);
        if (!(expiresAt > now)) return;
        const target = key.slice(this.banPrefix.length);
        decisions.push({
          value: target,
          id: target,
          host: typeof parsed.host === 'string' ? parsed.host : '',
          origin: ORIGIN,
          rule: typeof parsed.rule === 'string' ? parsed.rule : '',
          expiresAt,
        });
      });
    } while (scan !== '0');
    return decisions;
  }

  /** Closes both connections; a blocked read ends at once. */
  async close(): Promise<void> {
    this.closed = true;
    for (const done of [...this.waiting]) done();
    this.cmd.disconnect();
    this.reader.disconnect();
  }
}
