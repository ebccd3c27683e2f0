// The nftables backend's transactions: the exact `nft -f -` input for IPv4 and IPv6 hosts and
// networks, one statement per run of changes to one set, and the one-by-one pass after a refusal.
// Nothing here runs nft: the backend talks to a recording runner.
import { describe, expect, it } from 'vitest';
import { CommandFailedError } from '../../src/errors.js';
import { NftablesBackend, type NftablesOptions } from '../../src/firewall/nftables.js';
import { type Cidr, parseCidr } from '../../src/net/ip.js';
import { RecordingRunner } from '../support/recording-runner.js';

const cidr = (text: string): Cidr => parseCidr(text)!;
const NOW = Date.UTC(2026, 0, 15, 12, 0, 0);
const HOUR = 3_600_000;
const OPTIONS: NftablesOptions = { hook: 'input', target: 'DROP', maxElements: 20_000 };

/** `nft -j list table inet floodgate` output with these elements in their sets. */
function listing(elements: Record<string, string[]>): string {
  const sets = Object.entries(elements).map(([name, values]) => ({
    set: {
      family: 'inet',
      name,
      table: 'floodgate',
      elem: values.map((v) =>
        v.includes('/') ? { prefix: { addr: v.split('/')[0], len: Number(v.split('/')[1]) } } : v,
      ),
    },
  }));
  return JSON.stringify({ nftables: [{ metainfo: {} }, { table: { family: 'inet', name: 'floodgate' } }, ...sets] });
}

function setup(listed: Record<string, string[]> = {}) {
  const runner = new RecordingRunner().on(['nft', '-j', 'list', 'table', 'inet', 'floodgate'], {
    stdout: listing(listed),
  });
  const backend = new NftablesBackend(runner, OPTIONS, () => NOW);
  const transactions = () => runner.calls.filter((c) => c.argv.join(' ') === 'nft -f -').map((c) => c.input);
  return { runner, backend, transactions };
}

describe('NftablesBackend.command', () => {
  const { backend } = setup();

  it('writes the single command for a host with its kernel timeout (the ban plus the safety margin)', () => {
    expect(backend.command({ op: 'add', target: cidr('198.51.100.7'), expiresAt: NOW + HOUR })).toEqual([
      'nft',
      'add',
      'element',
      'inet',
      'floodgate',
      'hosts4',
      '{',
      '198.51.100.7',
      'timeout',
      '4200s',
      '}',
    ]);
  });

  it('puts networks in the interval sets and deletes without a timeout', () => {
    expect(backend.command({ op: 'delete', target: cidr('2001:db8:1::/64') }).join(' ')).toBe(
      'nft delete element inet floodgate nets6 { 2001:db8:1::/64 }',
    );
  });
});

describe('NftablesBackend.commit', () => {
  it('adds a batch of hosts in one statement per set, in the order they came', async () => {
    const { backend, transactions } = setup();
    for (const target of ['198.51.100.7', '198.51.100.8', '2001:db8::7', '198.51.100.9'])
      backend.add(cidr(target), NOW + HOUR);
    const result = await backend.commit();
    expect(result.failed).toEqual([]);
    expect(result.applied).toHaveLength(4);
    expect(transactions()).toEqual([
      'add element inet floodgate hosts4 { 198.51.100.7 timeout 4200s, 198.51.100.8 timeout 4200s }\n' +
        'add element inet floodgate hosts6 { 2001:db8::7 timeout 4200s }\n' +
        'add element inet floodgate hosts4 { 198.51.100.9 timeout 4200s }\n',
    ]);
  });

  it('deletes only what is there, and replaces networks that a new, wider one contains', async () => {
    const { backend, transactions } = setup({
      hosts4: ['198.51.100.7', '198.51.100.8'],
      nets4: ['203.0.113.0/25', '203.0.113.128/25'],
    });
    for (const target of ['198.51.100.7', '198.51.100.8', '198.51.100.99']) backend.delete(cidr(target));
    backend.add(cidr('203.0.113.0/24'), NOW + HOUR);
    const result = await backend.commit();
    expect(result.applied).toHaveLength(4);
    expect(transactions()).toEqual([
      'delete element inet floodgate hosts4 { 198.51.100.7, 198.51.100.8 }\n' +
        'delete element inet floodgate nets4 { 203.0.113.0/25, 203.0.113.128/25 }\n' +
        'add element inet floodgate nets4 { 203.0.113.0/24 timeout 4200s }\n',
    ]);
  });

  it('after a refused transaction, applies the changes one by one so that a bad one costs only itself', async () => {
    const { runner, backend, transactions } = setup();
    runner.on(['nft', '-f', '-'], (call) =>
      call.input?.includes('198.51.100.8 ')
        ? { exitCode: 1, stderr: 'Error: Could not process rule: No space left on device' }
        : {},
    );
    for (const target of ['198.51.100.7', '198.51.100.8', '198.51.100.9']) backend.add(cidr(target), NOW + HOUR);
    const result = await backend.commit();
    expect(transactions().slice(1)).toEqual([
      'add element inet floodgate hosts4 { 198.51.100.7 timeout 4200s }\n',
      'add element inet floodgate hosts4 { 198.51.100.8 timeout 4200s }\n',
      'add element inet floodgate hosts4 { 198.51.100.9 timeout 4200s }\n',
    ]);
    expect(result.applied.map((c) => c.target)).toEqual([cidr('198.51.100.7'), cidr('198.51.100.9')]);
    expect(result.failed).toHaveLength(1);
    expect(result.failed[0]!.error.message).toBe('hosts4 is full (size 20000)');
    expect(result.failed[0]!.error.cause).toBeInstanceOf(CommandFailedError);
  });
});
