// The addresses floodgate never judges or bans: the policy's allowlist, loopback, and the host's own.
import { networkInterfaces } from 'node:os';
import { CidrSet } from './cidr-set.js';
import { parseCidr } from './ip.js';

const ALWAYS = ['127.0.0.0/8', '::1', 'fe80::/10'];

/** Every address configured on this host's interfaces (in the current network namespace). */
export function hostAddresses(): string[] {
  const out: string[] = [];
  for (const entries of Object.values(networkInterfaces())) {
    for (const entry of entries ?? []) out.push(entry.address.split('%')[0]!);
  }
  return out;
}

export function buildAllowlist(policyAllowlist: readonly string[], ownAddresses: readonly string[]): CidrSet {
  const set = new CidrSet();
  for (const text of [...ALWAYS, ...policyAllowlist, ...ownAddresses]) {
    const cidr = parseCidr(text);
    if (cidr !== null) set.add(cidr);
  }
  return set;
}
