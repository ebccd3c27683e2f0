// The fleet through CrowdSec's Local API (LAPI, API v1, as in crowdsec 1.4.6): this host is a
// machine (it pushes its bans as alerts carrying decisions) and a bouncer (it pulls the decision
// stream). Each LAPI defect this works around is named where it is handled.
import type { FleetChanges, FleetDecision, FleetEngine, PushBan } from './fleet-engine.js';
import { parseGoDuration } from './go-duration.js';

export interface CrowdsecOptions {
  readonly url: string;
  /** This host's name in the fleet: it tags the scenario, so that its own decisions are filtered out. */
  readonly host: string;
  readonly machine: string;
  readonly password: string;
  readonly bouncerKey: string;
  /** The origins pulled: floodgate for the fleet's own bans, plus crowdsec, cscli, … */
  readonly origins: readonly string[];
  /** Each request's limit. @default 10s */
  readonly timeoutMs?: number;
  readonly fetch?: typeof fetch;
}

/** The LAPI refused or failed a request; the message never carries a secret. */
export class LapiError extends Error {
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
  }
}

// The machine login splits the User-Agent on "/" and refuses anything but name/version (Node's
// fetch sends "node": 401 "incorrect Username or Password").
const USER_AGENT = 'floodgate/0.1.0';
const ORIGIN = 'floodgate';
/** A pushed decision is taken as landed when the LAPI's expiry is this close to ours. */
const LANDED_SLACK_MS = 3000;

interface LapiDecision {
  readonly id?: number | string;
  readonly origin?: string;
  readonly scenario?: string;
  readonly scope?: string;
  readonly type?: string;
  readonly value?: string;
  readonly duration?: string;
}

/** "floodgate/<rule> (host <host>)": what this engine writes as every pushed decision's scenario. */
export function scenarioFor(rule: string, host: string): string {
  return `floodgate/${rule} (host ${host})`;
}

const SCENARIO = /^floodgate\/(.+) \(host ([^()]+)\)$/;

export class CrowdsecEngine implements FleetEngine {
  readonly name = 'crowdsec';
  private token: string | undefined;
  private started = false;
  /** A push failed after it may have stored part of its decisions: check before sending again. */
  private uncertain = false;
  private readonly fetch: typeof fetch;

  constructor(private readonly options: CrowdsecOptions) {
    this.fetch = options.fetch ?? fetch;
  }

  private async request(
    method: string,
    path: string,
    auth: 'machine' | 'bouncer' | 'none',
    body?: unknown,
  ): Promise<unknown> {
    const headers: Record<string, string> = { 'User-Agent': USER_AGENT };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (auth === 'bouncer') headers['X-Api-Key'] = this.options.bouncerKey;
    if (auth === 'machine') headers.Authorization = `Bearer ${this.token ?? ''}`;
    let response: Response;
    try {
      response = await this.fetch(`${this.options.url}${path}`, {
        method,
        headers,
        ...(body !== undefined && { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(this.options.timeoutMs ?? 10_000),
      });
    } catch (error) {
      const cause = (error as { cause?: { code?: string; message?: string } }).cause;
      throw new LapiError(
        `${method} ${path.split('?')[0]}: ${cause?.code ?? cause?.message ?? (error as Error).message}`,
      );
    }
    const text = await response.text();
    if (!response.ok) {
      let message = text.slice(0, 300);
      try {
        message = String((JSON.parse(text) as { message?: unknown }).message ?? message);
      } catch {
        // not JSON: the text as it came
      }
      throw new LapiError(`${method} ${path.split('?')[0]}: HTTP ${response.status} ${message}`, response.status);
    }
    return text === '' ? null : JSON.parse(text);
  }

  private async login(): Promise<void> {
    const answer = (await this.request('POST', '/v1/watchers/login', 'none', {
      machine_id: this.options.machine,
      password: this.options.password,
      scenarios: [],
    })) as { token?: string } | null;
    if (typeof answer?.token !== 'string') throw new LapiError('POST /v1/watchers/login: no token in the answer');
    this.token = answer.token;
  }

  /** A machine request, logging in first and again when the token expired (it lasts an hour). */
  private async asMachine(method: string, path: string, body?: unknown): Promise<unknown> {
    if (this.token === undefined) await this.login();
    try {
      return await this.request(method, path, 'machine', body);
    } catch (error) {
      // A 401 stored nothing: log in again and send once more.
      if (!(error instanceof LapiError) || error.status !== 401) throw error;
      await this.login();
      return this.request(method, path, 'machine', body);
    }
  }

  async push(bans: readonly PushBan[], unbans: readonly string[], now: number): Promise<void> {
    let toSend = bans.filter((ban) => ban.expiresAt - now >= 1000);
    if (toSend.length > 0 && this.uncertain) {
      // A failed POST may have stored part of its decisions (SQLite's "database is locked" after
      // inserting some): a blind retry would store them twice. Send only what did not land.
      const landed = await this.landed(now);
      toSend = toSend.filter(
        (ban) => !(landed.get(ban.target) ?? []).some((until) => Math.abs(until - ban.expiresAt) <= LANDED_SLACK_MS),
      );
      this.uncertain = false;
    }
    if (toSend.length > 0) {
      try {
        await this.asMachine('POST', '/v1/alerts', this.alerts(toSend, now));
      } catch (error) {
        if (!(error instanceof LapiError) || error.status === undefined || error.status >= 500) this.uncertain = true;
        throw error;
      }
    }
    for (const target of unbans) {
      // By value and origin: `?ip=` would also lift every range that contains the address.
      await this.asMachine('DELETE', `/v1/decisions?${new URLSearchParams({ value: target, origin: ORIGIN })}`);
    }
  }

  /** One alert per rule, each with all its decisions; the absolute expiry is stop_at + duration. */
  private alerts(bans: readonly PushBan[], now: number): unknown[] {
    const byRule = new Map<string, PushBan[]>();
    for (const ban of bans) {
      const list = byRule.get(ban.rule);
      if (list === undefined) byRule.set(ban.rule, [ban]);
      else list.push(ban);
    }
    const at = new Date(now).toISOString();
    const { host } = this.options;
    return [...byRule].map(([rule, list]) => {
      const scenario = scenarioFor(rule, host);
      const first = list[0]!;
      return {
        scenario,
        scenario_hash: '',
        scenario_version: '',
        message: `floodgate on ${host}: ${list.length} ban(s) by rule ${rule}`,
        events_count: list.length,
        start_at: at,
        stop_at: at,
        capacity: 0,
        leakspeed: '0',
        simulated: false,
        remediation: true,
        events: [],
        labels: ['floodgate'],
        source: { scope: first.target.includes('/') ? 'Range' : 'Ip', value: first.target },
        decisions: list.map((ban) => ({
          origin: ORIGIN,
          type: 'ban',
          scope: ban.target.includes('/') ? 'Range' : 'Ip',
          value: ban.target,
          // Milliseconds: Go durations have no day unit, and ms keeps the expiry exact.
          duration: `${Math.round(ban.expiresAt - now)}ms`,
          scenario,
        })),
      };
    });
  }

  /** This host's own decisions the LAPI holds, by value: their expiries. */
  private async landed(now: number): Promise<Map<string, number[]>> {
    const query = new URLSearchParams({ origins: ORIGIN, scenarios_containing: `(host ${this.options.host})` });
    const list = ((await this.request('GET', `/v1/decisions?${query}`, 'bouncer')) as LapiDecision[] | null) ?? [];
    const out = new Map<string, number[]>();
    for (const d of list) {
      const left = typeof d.duration === 'string' ? parseGoDuration(d.duration) : null;
      if (typeof d.value !== 'string' || left === null) continue;
      const until = now + left;
      const known = out.get(d.value);
      if (known === undefined) out.set(d.value, [until]);
      else known.push(until);
    }
    return out;
  }

  private filters(): URLSearchParams {
    return new URLSearchParams({
      origins: this.options.origins.join(','),
      scopes: 'Ip,Range',
      // Without it, the LAPI keeps the longest decision per value before filtering: a longer
      // decision of another origin hides ours.
      dedup: 'false',
      // The parentheses keep "web-1" from matching "web-10".
      scenarios_not_containing: `(host ${this.options.host})`,
    });
  }

  private decision(d: LapiDecision, now: number): FleetDecision | null {
    if (typeof d.value !== 'string' || typeof d.origin !== 'string' || d.id === undefined) return null;
    // Only exact scopes are served; the LAPI accepts "ip" but never serves it, so be as strict.
    if (d.scope !== 'Ip' && d.scope !== 'Range') return null;
    if (d.type !== undefined && d.type !== 'ban') return null;
    const left = typeof d.duration === 'string' ? parseGoDuration(d.duration) : null;
    if (left === null) return null;
    const tag = typeof d.scenario === 'string' && d.origin === ORIGIN ? SCENARIO.exec(d.scenario) : null;
    return {
      value: d.value,
      id: String(d.id),
      origin: d.origin,
      host: tag?.[2] ?? '',
      rule: tag?.[1] ?? (typeof d.scenario === 'string' && d.scenario !== '' ? d.scenario.slice(0, 60) : d.origin),
      expiresAt: Math.round(now + left),
    };
  }

  async pull(now: number): Promise<FleetChanges> {
    const query = this.filters();
    if (!this.started) query.set('startup', 'true');
    const answer = ((await this.request('GET', `/v1/decisions/stream?${query}`, 'bouncer')) ?? {}) as {
      new?: LapiDecision[] | null;
      deleted?: LapiDecision[] | null;
    };
    const complete = !this.started;
    this.started = true;
    const added = (answer.new ?? [])
      .map((d) => this.decision(d, now))
      .filter((d): d is FleetDecision => d !== null && d.expiresAt > now);
    // At start-up, `deleted` lists every expired decision still in the database: nothing to lift.
    const deleted = complete
      ? []
      : (answer.deleted ?? [])
          .map((d) => this.decision({ ...d, duration: '0s' }, now))
          .filter((d): d is FleetDecision => d !== null);
    return { added, deleted, complete };
  }

  async snapshot(now: number): Promise<FleetDecision[]> {
    const query = this.filters();
    query.delete('dedup');
    query.delete('scopes');
    const list = ((await this.request('GET', `/v1/decisions?${query}`, 'bouncer')) as LapiDecision[] | null) ?? [];
    return list.map((d) => this.decision(d, now)).filter((d): d is FleetDecision => d !== null && d.expiresAt > now);
  }
}
