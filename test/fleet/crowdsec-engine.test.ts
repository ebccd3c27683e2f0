// The LAPI client's requests, byte for byte where the LAPI is picky (User-Agent, durations in ms,
// exact scopes, delete by value and origin), and its answer to a failed POST: check what landed,
// send only the rest.
import { describe, expect, it } from 'vitest';
import { CrowdsecEngine } from '../../src/fleet/crowdsec-engine.js';
import { parseGoDuration } from '../../src/fleet/go-duration.js';

const T0 = Date.UTC(2026, 0, 15, 12, 0, 0);

interface Call {
  readonly method: string;
  readonly url: string;
  readonly headers: Record<string, string>;
  readonly body: unknown;
}

function fakeLapi(answers: ((call: Call) => [number, unknown] | undefined)[]) {
  const calls: Call[] = [];
  const fetch = (async (url: string, init: RequestInit) => {
    const call = {
      method: init.method ?? 'GET',
      url,
      headers: init.headers as Record<string, string>,
      body: init.body === undefined ? undefined : JSON.parse(String(init.body)),
    };
    calls.push(call);
    if (call.url.endsWith('/v1/watchers/login'))
      return new Response(JSON.stringify({ code: 200, token: 'jwt' }), { status: 200 });
    for (const answer of answers) {
      const got = answer(call);
      if (got !== undefined) return new Response(JSON.stringify(got[1]), { status: got[0] });
    }
    return new Response('null', { status: 200 });
  }) as unknown as typeof globalThis.fetch;
  const engine = new CrowdsecEngine({
    url: 'http://127.0.0.1:8080',
    host: 'web-1',
    machine: 'floodgate-web-1',
    password: 'secret-pw',
    bouncerKey: 'secret-key',
    origins: ['floodgate', 'cscli'],
    fetch,
  });
  return { engine, calls };
}

describe('CrowdsecEngine', () => {
  it('pushes one alert per rule with each decision’s own duration in ms, exact scopes and the host in the scenario', async () => {
    const { engine, calls } = fakeLapi([]);
    await engine.push(
      [
        { target: '198.51.100.7', rule: 'syn-flood', expiresAt: T0 + 600_000 },
        { target: '203.0.113.0/24', rule: 'syn-flood', expiresAt: T0 + 1_234_567 },
        { target: '2001:db8:1::/64', rule: 'manual', expiresAt: T0 + 3_600_000 },
        { target: '198.51.100.9', rule: 'manual', expiresAt: T0 + 500 },
      ],
      [],
      T0,
    );
    expect(calls.map((c) => `${c.method} ${c.url}`)).toEqual([
      'POST http://127.0.0.1:8080/v1/watchers/login',
      'POST http://127.0.0.1:8080/v1/alerts',
    ]);
    expect(calls[0]!.headers['User-Agent']).toMatch(/^floodgate\/[^/]+$/);
    expect(calls[1]!.headers.Authorization).toBe('Bearer jwt');
    const alerts = calls[1]!.body as {
      scenario: string;
      stop_at: string;
      decisions: { scope: string; value: string; duration: string; origin: string }[];
    }[];
    expect(alerts.map((a) => [a.scenario, a.stop_at])).toEqual([
      ['floodgate/syn-flood (host web-1)', '2026-01-15T12:00:00.000Z'],
      ['floodgate/manual (host web-1)', '2026-01-15T12:00:00.000Z'],
    ]);
    // The 0.5 s ban is left out: it would be gone before anyone pulled it.
    expect(alerts.flatMap((a) => a.decisions.map((d) => [d.scope, d.value, d.duration, d.origin]))).toEqual([
      ['Ip', '198.51.100.7', '600000ms', 'floodgate'],
      ['Range', '203.0.113.0/24', '1234567ms', 'floodgate'],
      ['Range', '2001:db8:1::/64', '3600000ms', 'floodgate'],
    ]);
  });

  it('after a failed POST, reads what landed and sends only what is missing', async () => {
    let fail = true;
    const { engine, calls } = fakeLapi([
      (c) =>
        c.url.endsWith('/v1/alerts') && fail
          ? [500, { message: 'unable to create alerts: database is locked' }]
          : undefined,
      (c) =>
        c.url.includes('/v1/decisions?') && c.method === 'GET'
          ? [
              200,
              [
                {
                  id: 9,
                  origin: 'floodgate',
                  scenario: 'floodgate/syn-flood (host web-1)',
                  scope: 'Ip',
                  type: 'ban',
                  value: '198.51.100.7',
                  duration: '9m59.5s',
                },
              ],
            ]
          : undefined,
    ]);
    const bans = [
      { target: '198.51.100.7', rule: 'syn-flood', expiresAt: T0 + 600_000 },
      { target: '198.51.100.8', rule: 'syn-flood', expiresAt: T0 + 600_000 },
    ];
    await expect(engine.push(bans, [], T0)).rejects.toThrow(
      'POST /v1/alerts: HTTP 500 unable to create alerts: database is locked',
    );
    fail = false;
    await engine.push(bans, [], T0 + 1000);
    const check = calls.find((c) => c.method === 'GET')!;
    expect(new URL(check.url).searchParams.get('scenarios_containing')).toBe('(host web-1)');
    expect(check.headers['X-Api-Key']).toBe('secret-key');
    const resent = calls.filter((c) => c.url.endsWith('/v1/alerts')).at(-1)!.body as {
      decisions: { value: string }[];
    }[];
    expect(resent.flatMap((a) => a.decisions.map((d) => d.value))).toEqual(['198.51.100.8']);
  });

  it('unbans by value and origin, never by ip (which lifts covering ranges too)', async () => {
    const { engine, calls } = fakeLapi([]);
    await engine.push([], ['198.51.100.7'], T0);
    expect(calls.at(-1)!.method).toBe('DELETE');
    expect(calls.at(-1)!.url).toBe('http://127.0.0.1:8080/v1/decisions?value=198.51.100.7&origin=floodgate');
  });

  it('pulls with startup=true first, dedup=false, the origins and its own host excluded; keeps only Ip/Range bans', async () => {
    const { engine, calls } = fakeLapi([
      (c) =>
        c.url.includes('/stream')
          ? [
              200,
              {
                new: [
                  {
                    id: 1,
                    origin: 'floodgate',
                    scenario: 'floodgate/syn-flood (host web-2)',
                    scope: 'Ip',
                    type: 'ban',
                    value: '198.51.100.7',
                    duration: '9m59.5s',
                  },
                  {
                    id: 2,
                    origin: 'cscli',
                    scenario: "manual 'ban' from 'localhost'",
                    scope: 'Range',
                    type: 'ban',
                    value: '203.0.113.0/24',
                    duration: '1h0m0s',
                  },
                  {
                    id: 3,
                    origin: 'cscli',
                    scenario: 'x',
                    scope: 'ip',
                    type: 'ban',
                    value: '198.51.100.8',
                    duration: '1h0m0s',
                  },
                  {
                    id: 4,
                    origin: 'cscli',
                    scenario: 'x',
                    scope: 'Ip',
                    type: 'captcha',
                    value: '198.51.100.9',
                    duration: '1h0m0s',
                  },
                ],
                deleted: null,
              },
            ]
          : undefined,
    ]);
    const changes = await engine.pull(T0);
    await engine.pull(T0 + 500);
    const first = new URL(calls[0]!.url).searchParams;
    expect(Object.fromEntries(first)).toEqual({
      origins: 'floodgate,cscli',
      scopes: 'Ip,Range',
      dedup: 'false',
      scenarios_not_containing: '(host web-1)',
      startup: 'true',
    });
    expect(new URL(calls[1]!.url).searchParams.has('startup')).toBe(false);
    expect(changes.complete).toBe(true);
    expect(changes.added).toEqual([
      {
        value: '198.51.100.7',
        id: '1',
        origin: 'floodgate',
        host: 'web-2',
        rule: 'syn-flood',
        expiresAt: T0 + 599_500,
      },
      {
        value: '203.0.113.0/24',
        id: '2',
        origin: 'cscli',
        host: '',
        rule: "manual 'ban' from 'localhost'",
        expiresAt: T0 + 3_600_000,
      },
    ]);
  });

  it('never puts a secret in an error', async () => {
    const { engine } = fakeLapi([
      (c) => (c.url.includes('/stream') ? [403, { message: 'access forbidden' }] : undefined),
    ]);
    const error = (await engine.pull(T0).catch((e: Error) => e)) as Error;
    expect(error.message).toBe('GET /v1/decisions/stream: HTTP 403 access forbidden');
    expect(error.message).not.toMatch(/secret/);
  });
});

describe('parseGoDuration', () => {
  it.each([
    ['9m59.091382523s', 599_091.382523],
    ['-788.760216ms', -788.760216],
    ['1h0m0s', 3_600_000],
    ['0', 0],
    ['1.5µs', 0.0015],
  ])('%s', (text, ms) => {
    expect(parseGoDuration(text)).toBeCloseTo(ms, 6);
  });
  it.each(['', '1d', 'abc', '5'])('refuses %j', (text) => {
    expect(parseGoDuration(text)).toBeNull();
  });
});
