// The policy's `fleet:` section: defaults, and a clear refusal for each wrong value (secrets are
// files, never values in the policy).
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import { parsePolicy, renderPolicy } from '../../src/policy/load-policy.js';

const RULES = 'rules:\n  - name: syn-flood\n    threshold: 20\n';
const FLEET = `fleet:
  engine: crowdsec
  url: http://127.0.0.1:8080
  host: web-1
  machine: floodgate-web-1
  password_file: /etc/floodgate/lapi-password
  bouncer_key_file: /etc/floodgate/lapi-bouncer-key
`;

function refusal(text: string): string {
  try {
    parsePolicy(text, 'policy.yaml');
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as Error).message;
  }
  throw new Error('expected the policy to be refused');
}

describe('policy fleet section', () => {
  it('has no fleet when absent, and fills in poll, resync and origins', () => {
    expect(parsePolicy(RULES, 'policy.yaml').fleet).toBeUndefined();
    const policy = parsePolicy(RULES + FLEET, 'policy.yaml');
    expect(policy.fleet).toEqual({
      engine: 'crowdsec',
      url: 'http://127.0.0.1:8080',
      host: 'web-1',
      machine: 'floodgate-web-1',
      password_file: '/etc/floodgate/lapi-password',
      bouncer_key_file: '/etc/floodgate/lapi-bouncer-key',
      poll: 500,
      resync: 60_000,
      origins: ['floodgate'],
    });
    // Durations as text again, so that the rendered policy reads back the same.
    expect(renderPolicy(policy)).toMatch(/fleet:\n\s+engine: crowdsec[\s\S]*\n\s+poll: 500ms\n\s+resync: 1m\n/);
    expect(parsePolicy(renderPolicy(policy), 'policy.yaml')).toEqual(policy);
  });

  it.each([
    [
      'an unknown engine',
      FLEET.replace('crowdsec', 'etcd'),
      /fleet\.engine: expected one of crowdsec \| redis, got "etcd"/,
    ],
    [
      'a URL that is not http',
      FLEET.replace('http://127.0.0.1:8080', 'ftp://x'),
      /fleet\.url: expected an http:\/\/ or https:\/\/ URL/,
    ],
    [
      'credentials in the URL',
      FLEET.replace('http://127.0.0.1:8080', 'http://u:secret@127.0.0.1:8080'),
      /fleet\.url: expected an http/,
    ],
    [
      'a password in the policy',
      FLEET.replace('password_file: /etc/floodgate/lapi-password', 'password: hunter2'),
      /password/,
    ],
    [
      'a relative secret file',
      FLEET.replace('/etc/floodgate/lapi-bouncer-key', 'key.txt'),
      /fleet\.bouncer_key_file: expected the bouncer key file as an absolute path/,
    ],
    ['a poll too short', `${FLEET}  poll: 10ms\n`, /fleet\.poll: expected a duration/],
    ['no origins', `${FLEET}  origins: []\n`, /fleet\.origins: expected at least one origin/],
    ['a host name with a space', FLEET.replace('host: web-1', 'host: "web 1"'), /fleet\.host: expected a host name/],
  ])('refuses %s', (_, fleet, why) => {
    expect(refusal(RULES + fleet)).toMatch(why);
  });

  const REDIS =
    'fleet:\n  engine: redis\n  url: rediss://redis.example:6380/0\n  password_file: /etc/floodgate/redis-password\n';

  it('reads a Redis fleet: URL, password file, prefix (default fg:) and resync', () => {
    const policy = parsePolicy(RULES + REDIS, 'policy.yaml');
    expect(policy.fleet).toEqual({
      engine: 'redis',
      url: 'rediss://redis.example:6380/0',
      password_file: '/etc/floodgate/redis-password',
      prefix: 'fg:',
      resync: 60_000,
    });
    expect(parsePolicy(renderPolicy(policy), 'policy.yaml')).toEqual(policy);
  });

  it('reads Sentinel addresses and the primary name', () => {
    const policy = parsePolicy(
      `${RULES + REDIS}  sentinels: ["10.0.0.5:26379", "[2001:db8::5]:26379"]\n  sentinel_name: fleet\n`,
      'policy.yaml',
    );
    expect(policy.fleet).toMatchObject({
      sentinels: ['10.0.0.5:26379', '[2001:db8::5]:26379'],
      sentinel_name: 'fleet',
    });
  });

  it('reads a CA file for rediss://', () => {
    const policy = parsePolicy(`${RULES + REDIS}  tls_ca_file: /etc/floodgate/redis-ca.crt\n`, 'policy.yaml');
    expect(policy.fleet).toMatchObject({
      url: 'rediss://redis.example:6380/0',
      tls_ca_file: '/etc/floodgate/redis-ca.crt',
    });
    expect(parsePolicy(renderPolicy(policy), 'policy.yaml')).toEqual(policy);
  });

  it.each([
    [
      'a CA file for a plain redis:// URL',
      `${REDIS.replace('rediss://', 'redis://')}  tls_ca_file: /etc/floodgate/redis-ca.crt\n`,
      /policy\.yaml:8 fleet\.tls_ca_file: expected tls_ca_file only with a rediss:\/\/ URL \(TLS\), got url "redis:\/\/redis\.example:6380\/0"/,
    ],
    [
      'a relative CA file',
      `${REDIS}  tls_ca_file: redis-ca.crt\n`,
      /policy\.yaml:8 fleet\.tls_ca_file: expected the CA certificate file \(PEM\) as an absolute path, got "redis-ca\.crt"/,
    ],
    ['an http URL', REDIS.replace('rediss://redis.example:6380/0', 'http://x'), /fleet\.url: expected a redis:\/\//],
    [
      'a password in the URL',
      REDIS.replace('rediss://', 'rediss://u:secret@'),
      /fleet\.url: expected a redis:\/\/ or rediss:\/\/ URL .*no password/,
    ],
    ['a prefix with a glob character', `${REDIS}  prefix: "fg*"\n`, /fleet\.prefix: expected a key prefix/],
    ['a CrowdSec key', `${REDIS}  machine: m\n`, /machine/],
    ['sentinels without a name', `${REDIS}  sentinels: ["10.0.0.5:26379"]\n`, /sentinels and sentinel_name together/],
    [
      'a sentinel without a port',
      `${REDIS}  sentinels: ["10.0.0.5"]\n  sentinel_name: p\n`,
      /fleet\.sentinels\[0\]: expected a sentinel address like 10\.0\.0\.5:26379, got "10\.0\.0\.5"/,
    ],
  ])('refuses a Redis fleet with %s', (_what, text, message) => {
    const got = refusal(RULES + text);
    expect(got).toMatch(message);
    expect(got).not.toContain('secret');
  });
});
