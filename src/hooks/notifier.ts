// Notifications: the daemon's bans, unbans, expiries, refusals, attacks and errors, batched and sent
// to a command (argv, no shell; JSON on stdin, FLOODGATE_* variables) and/or a webhook (an HTTP POST
// of JSON with a human `text`, as Slack- and Mattermost-style incoming webhooks take it). Events are
// taken synchronously and sent later, one batch at a time: a burst of 10k bans is one notification,
// and a slow or failing receiver never delays a ban.
import { hostname } from 'node:os';
import type { LoggedEvent } from '../log-events.js';
import type { Logger } from '../log.js';
import { redactUrl } from '../policy/policy-diff.js';
import type { NotifyEvent, Policy } from '../policy/schema.js';
import type { CommandRunner } from '../system/command-runner.js';
import { shellCommand } from '../system/shell-quote.js';

export type NotifySettings = NonNullable<Policy['notify']>;

/** One event as it is sent: the contract's fields first, null when the event has none. */
export interface NotifiedEvent {
  readonly event: NotifyEvent;
  readonly target: string | null;
  readonly rule: string | null;
  readonly count: number | null;
  readonly ttl: string | null;
  readonly expiresAt: string | null;
  readonly dryRun: boolean;
  readonly at: string;
  /** The log line's message, as a person reads it. */
  readonly message: string;
  readonly reason?: string;
  /** refused: why (protected, max_active, firewall-full); error: what failed (scan, commit, save…). */
  readonly why?: string;
  readonly during?: string;
}

/** The webhook's body and the command's standard input. */
export interface NotificationBody {
  /** The first max_targets events of the batch. */
  readonly events: readonly NotifiedEvent[];
  /** Events in the batch, including those left out of `events`. */
  readonly total: number;
  readonly counts: Readonly<Partial<Record<NotifyEvent, number>>>;
  readonly dryRun: boolean;
  readonly text: string;
  readonly host: string;
}

export interface NotifierOptions {
  readonly runner: CommandRunner;
  readonly log: Logger;
  /** The daemon's mode: a dry-run daemon's notifications say so. */
  readonly dryRun: boolean;
  readonly host?: string;
  /** How long events are gathered into one notification. @default 1000 */
  readonly batchMs?: number;
  /** The first retry waits this long, each next one twice as long. @default 1000 */
  readonly backoffMs?: number;
  /** The notification command's timeout. @default 10_000 */
  readonly commandTimeoutMs?: number;
  readonly clock?: () => number;
}

const NOUNS: Record<NotifyEvent, readonly [string, string]> = {
  ban: ['ban', 'bans'],
  unban: ['unban', 'unbans'],
  expire: ['expiry', 'expiries'],
  refused: ['refusal', 'refusals'],
  attack: ['attack warning', 'attack warnings'],
  error: ['error', 'errors'],
};

interface Batch {
  events: NotifiedEvent[];
  counts: Partial<Record<NotifyEvent, number>>;
  total: number;
}

/** The same kind of error (its `during`) is notified at most this often. */
export const ERROR_REPEAT_MS = 60_000;

const emptyBatch = (): Batch => ({ events: [], counts: {}, total: 0 });
const text = (value: unknown): string | null => (typeof value === 'string' ? value : null);

/** The human summary: one line for one event; a count per kind and the first events for a batch. */
export function notificationText(
  batch: {
    readonly events: readonly NotifiedEvent[];
    readonly counts: Partial<Record<NotifyEvent, number>>;
    readonly total: number;
  },
  host: string,
  dryRun: boolean,
): string {
  const head = `floodgate on ${host}${dryRun ? ' (dry-run: the firewall was not changed)' : ''}`;
  if (batch.total === 1 && batch.events[0]) return `${head}: ${batch.events[0].message}`;
  const counts = Object.entries(batch.counts).map(
    ([event, n]) => `${n} ${NOUNS[event as NotifyEvent][n === 1 ? 0 : 1]}`,
  );
  const omitted = batch.total - batch.events.length;
  return [
    `${head}: ${counts.join(', ')}`,
    ...batch.events.map((e) => `• ${e.message}`),
    ...(omitted > 0 ? [`… and ${omitted} more`] : []),
  ].join('\n');
}

/** What a failed attempt says: never the headers, never the URL's path (it may be the secret). */
function failure(error: unknown): string {
  const e = error as Error & { cause?: { code?: string; message?: string } };
  if (e?.name === 'TimeoutError' || e?.name === 'AbortError') return 'timed out';
  if (e?.cause?.code) return e.cause.code;
  return e?.message ?? String(error);
}

export class Notifier {
  private pending = emptyBatch();
  private timer: NodeJS.Timeout | undefined;
  private sending: Promise<void> | undefined;
  private readonly aborter = new AbortController();
  private readonly lastError = new Map<string, number>();
  private readonly host: string;
  private readonly clock: () => number;

  constructor(
    private settings: NotifySettings | undefined,
    private readonly options: NotifierOptions,
  ) {
    this.host = options.host ?? hostname();
    this.clock = options.clock ?? Date.now;
  }

  /** A policy reload: the new settings apply to every batch sent from now on; none stops them. */
  configure(settings: NotifySettings | undefined): void {
    this.settings = settings;
    if (settings === undefined) this.pending = emptyBatch();
  }

  /** Takes one logged event (from tapEvents); constant time, never throws, never waits. */
  take(logged: LoggedEvent): void {
    const settings = this.settings;
    if (settings === undefined) return;
    const f = logged.fields;
    const kind = f.event as NotifyEvent;
    if (!settings.on.includes(kind)) return;
    // Its own failures are logged as errors: notifying them would feed a failing receiver forever.
    if (kind === 'error' && f.during === 'notify') return;
    if (kind === 'error') {
      // A scan failing at every interval is one notification a minute, not one per interval; the log has each.
      const during = typeof f.during === 'string' ? f.during : '';
      const now = this.clock();
      if (now - (this.lastError.get(during) ?? -Infinity) < ERROR_REPEAT_MS) return;
      this.lastError.set(during, now);
    }
    const batch = this.pending;
    batch.total++;
    batch.counts[kind] = (batch.counts[kind] ?? 0) + 1;
    if (batch.events.length < settings.max_targets) {
      batch.events.push({
        event: kind,
        target: text(f.target),
        rule: text(f.rule),
        count: typeof f.count === 'number' ? f.count : null,
        ttl: text(f.ttl),
        expiresAt: text(f.expiresAt),
        dryRun: typeof f.dryRun === 'boolean' ? f.dryRun : this.options.dryRun,
        at: new Date(this.clock()).toISOString(),
        message: logged.msg,
        ...(typeof f.reason === 'string' && { reason: f.reason }),
        ...(typeof f.why === 'string' && { why: f.why }),
        ...(typeof f.during === 'string' && { during: f.during }),
      });
    }
    this.schedule();
  }

  private schedule(): void {
    if (this.timer !== undefined || this.sending !== undefined || this.aborter.signal.aborted) return;
    this.timer = setTimeout(() => this.sendPending(), this.options.batchMs ?? 1000);
    this.timer.unref();
  }

  private sendPending(): void {
    this.timer = undefined;
    const settings = this.settings;
    if (this.pending.total === 0 || settings === undefined) return;
    const batch = this.pending;
    this.pending = emptyBatch();
    // One batch at a time: events arriving meanwhile make the next one.
    this.sending = this.send(batch, settings).finally(() => {
      this.sending = undefined;
      if (this.pending.total > 0) this.schedule();
    });
  }

  /** The body a batch is sent as. */
  body(batch: Batch): NotificationBody {
    const dryRun = this.options.dryRun;
    return {
      events: batch.events,
      total: batch.total,
      counts: batch.counts,
      dryRun,
      text: notificationText(batch, this.host, dryRun),
      host: this.host,
    };
  }

  private async send(batch: Batch, settings: NotifySettings): Promise<void> {
    const body = this.body(batch);
    const json = JSON.stringify(body);
    const jobs: Promise<void>[] = [];
    if (settings.command) {
      const argv = settings.command;
      jobs.push(this.deliver(settings, `command ${shellCommand(argv)}`, () => this.runCommand(argv, json, body)));
    }
    if (settings.webhook) {
      const webhook = settings.webhook;
      jobs.push(this.deliver(settings, `webhook ${redactUrl(webhook.url)}`, () => this.post(webhook, json)));
    }
    await Promise.all(jobs);
  }

  private async deliver(settings: NotifySettings, to: string, attempt: () => Promise<void>): Promise<void> {
    const { log } = this.options;
    for (let n = 0; ; n++) {
      try {
        await attempt();
        if (n > 0)
          log.info({ event: 'notify', to, attempts: n + 1 }, `notification sent to ${to} after ${n + 1} attempts`);
        else log.debug({ event: 'notify', to }, `notification sent to ${to}`);
        return;
      } catch (error) {
        const why = failure(error);
        if (n >= settings.retries || this.aborter.signal.aborted) {
          log.error(
            { event: 'error', during: 'notify', to, attempts: n + 1, message: why },
            `notification to ${to} failed after ${n + 1} attempt(s), given up: ${why}`,
          );
          return;
        }
        const wait = (this.options.backoffMs ?? 1000) * 2 ** n;
        log.warn(
          { event: 'notify-retry', to, attempt: n + 1, message: why },
          `notification to ${to} failed (${why}); retrying in ${wait} ms`,
        );
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, wait);
          this.aborter.signal.addEventListener(
            'abort',
            () => {
              clearTimeout(timer);
              resolve();
            },
            { once: true },
          );
        });
      }
    }
  }

  private async post(webhook: NonNullable<NotifySettings['webhook']>, json: string): Promise<void> {
    const signal = AbortSignal.any([AbortSignal.timeout(webhook.timeout), this.aborter.signal]);
    const response = await fetch(webhook.url, {
      method: 'POST',
      headers: { ...webhook.headers, 'content-type': 'application/json' },
      body: json,
      signal,
      redirect: 'manual',
    });
    // The body is read (and dropped) so that the connection is freed.
    await response.arrayBuffer().catch(() => undefined);
    if (response.status < 200 || response.status > 299)
      throw new Error(`HTTP ${response.status}${response.statusText ? ` ${response.statusText}` : ''}`);
  }

  private async runCommand(argv: readonly string[], json: string, body: NotificationBody): Promise<void> {
    const first = body.events[0];
    const clean = (value: string) => value.replace(/\0/g, '');
    const env: Record<string, string> = {
      FLOODGATE_EVENT: first?.event ?? '',
      FLOODGATE_TARGET: first?.target ?? '',
      FLOODGATE_RULE: first?.rule ?? '',
      FLOODGATE_COUNT: first?.count === null || first?.count === undefined ? '' : String(first.count),
      FLOODGATE_TTL: first?.ttl ?? '',
      FLOODGATE_EXPIRES_AT: first?.expiresAt ?? '',
      FLOODGATE_DRY_RUN: body.dryRun ? '1' : '0',
      FLOODGATE_TOTAL: String(body.total),
      FLOODGATE_TARGETS: body.events.flatMap((e) => (e.target === null ? [] : [e.target])).join(' '),
      FLOODGATE_HOST: clean(body.host),
      FLOODGATE_TEXT: clean(body.text),
    };
    await this.options.runner.run(argv, { input: json, env, timeoutMs: this.options.commandTimeoutMs ?? 10_000 });
  }

  /**
   * Sends what is pending and waits for it, at most `waitMs`; then abandons retries and requests in
   * flight. The daemon's stop calls it after its last events.
   */
  async stop(waitMs = 5000): Promise<void> {
    const deadline = this.clock() + waitMs;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    while (this.clock() < deadline) {
      if (this.sending === undefined) {
        if (this.pending.total === 0) break;
        this.sendPending();
        if (this.sending === undefined) break;
      }
      const left = deadline - this.clock();
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([this.sending, new Promise((resolve) => (timer = setTimeout(resolve, left)))]);
      clearTimeout(timer);
      // Wait for the sending chain's `finally` (it may schedule the next batch, which we take over).
      await Promise.resolve();
      if (this.timer !== undefined) {
        clearTimeout(this.timer);
        this.timer = undefined;
      }
    }
    this.aborter.abort();
  }
}
