// Which floodgate owns a rule, set or table: every state directory is its own instance in the
// firewall, so that two floodgates on one host (two daemons, or a manual `ban --enforce` beside a
// daemon on another state directory) never take each other's rules for unexplained ones.
import type { Family } from '../net/ip.js';

/** The plain tag of the default state directory: rules made before instances existed stay its own. */
export const DEFAULT_TAG = 'floodgate';

/** An instance id as kept in the state directory: 8 lowercase hex digits. */
export const INSTANCE_ID = /^[0-9a-f]{8}$/;

export interface FirewallInstance {
  /** null for the default state directory, which keeps the plain names. */
  readonly id: string | null;
  /** The iptables comment on every rule this instance writes: `floodgate` or `floodgate-<id>`. */
  readonly tag: string;
  /**
   * The ipset sets: `floodgate4`/`floodgate6` or `floodgate-<id>-4`/`-6`
   * (at most 20 of ipset's 31 characters, 25 with `-next`).
   */
  readonly sets: Readonly<Record<Family, string>>;
  /** The nftables table in family inet: `floodgate` or `floodgate-<id>`. */
  readonly table: string;
}

export function firewallInstance(id: string | null): FirewallInstance {
  if (id === null) return { id, tag: DEFAULT_TAG, sets: { 4: 'floodgate4', 6: 'floodgate6' }, table: DEFAULT_TAG };
  if (!INSTANCE_ID.test(id)) throw new Error(`instance id: expected 8 lowercase hex digits, got ${JSON.stringify(id)}`);
  const tag = `${DEFAULT_TAG}-${id}`;
  return { id, tag, sets: { 4: `${tag}-4`, 6: `${tag}-6` }, table: tag };
}

export const DEFAULT_INSTANCE = firewallInstance(null);
