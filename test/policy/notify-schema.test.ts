// The policy's `notify:` key: defaults, the messages for wrong values, and a reload line that never
// shows a webhook's token or secret URL.
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import { parsePolicy } from '../../src/policy/load-policy.js';
import { describeDiff, diffPolicy } from '../../src/policy/policy-diff.js';

const base = 'rules:\n  - {name: syn-flood, states: [SYN_RECV], threshold: 20}\n';
const refusal = (text: string): string => {
  try {
    parsePolicy(text, 'p.yaml');
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as Error).message;
  }
  throw new Error('accepted');
};

describe('notify', () => {
  it('fills in its defaults', () => {
    expect(
      parsePolicy(`${base}notify: {webhook: {url: "https://hooks.example.com/T/B/x"}}\n`, 'p.yaml').notify,
    ).toEqual({
      webhook: { url: 'https://hooks.example.com/T/B/x', timeout: 10_000 },
      on: ['ban', 'unban', 'expire', 'refused', 'attack', 'error'],
      max_targets: 20,
      retries: 3,
    });
    expect(parsePolicy(base, 'p.yaml').notify).toBeUndefined();
  });

  it.each([
    [
      'notify: {}',
      'notify: expected command: [argv…] or webhook: {url: …} (or both), got neither: nothing would be notified',
    ],
    [
      'notify: {command: "mail -s ban root"}',
      'notify.command: expected a command as a list of strings, like [systemctl, reload, nginx], got "mail -s ban root"',
    ],
    [
      'notify: {webhook: {url: "ftp://example.com/x"}}',
      'notify.webhook.url: expected an http:// or https:// URL, like https://hooks.example.com/T000/B000, got "ftp://example.com/x"',
    ],
    [
      'notify: {webhook: {url: "https://example.com/x", headers: {"X Bad": "v"}}}',
      'notify.webhook.headers: expected a mapping of HTTP header names to text',
    ],
    [
      'notify: {command: [/bin/true], on: [ban, reboot]}',
      'notify.on[1]: expected one of ban | unban | expire | refused | attack | error, got "reboot"',
    ],
    [
      'notify: {command: [/bin/true], on: []}',
      'notify.on: expected at least one of ban, unban, expire, refused, attack, error (leave notify out for none), got an empty list',
    ],
  ])('refuses %s', (line, message) => {
    expect(refusal(`${base}${line}\n`)).toContain(message);
  });

  it('a reload line says the webhook headers and URL changed, never what they are', () => {
    const before = parsePolicy(
      `${base}notify: {webhook: {url: "https://hooks.example.com/T/B/old-secret", headers: {Authorization: "Bearer old-token"}}}\n`,
      'p.yaml',
    );
    const after = parsePolicy(
      `${base}notify: {webhook: {url: "https://hooks.example.com/T/B/new-secret", headers: {Authorization: "Bearer new-token"}}}\n`,
      'p.yaml',
    );
    const text = describeDiff(diffPolicy(before, after));
    expect(text).toContain('notify.webhook.headers.Authorization (hidden) -> (hidden)');
    expect(text).toContain('notify.webhook.url https://hooks.example.com/… -> https://hooks.example.com/…');
    expect(JSON.stringify(diffPolicy(before, after))).not.toMatch(/token|secret/);
  });
});

describe('policy check', () => {
  it('prints a webhook without its headers’ values or its URL’s path', async () => {
    const { printablePolicy } = await import('../../src/cli/policy-check.js');
    const { renderPolicy } = await import('../../src/policy/load-policy.js');
    const policy = parsePolicy(
      `${base}notify: {webhook: {url: "https://hooks.example.com/T/B/secret", headers: {Authorization: "Bearer token"}}}\n`,
      'p.yaml',
    );
    const text = renderPolicy(printablePolicy(policy));
    expect(text).toContain('Authorization: (hidden)');
    expect(text).toContain('url: https://hooks.example.com/…');
    expect(text).not.toMatch(/secret|token/);
    expect(policy.notify!.webhook!.headers).toEqual({ Authorization: 'Bearer token' });
  });
});
