// Checks a ban store file's contents before anything in it is trusted: the version, every field's
// type, canonical targets and the CLI's own limits. A store is floodgate's own file, but an old
// version, a damaged disk or a hand edit can put anything there, and whatever is in it reaches the
// firewall at the next reconcile: a /0 entry dropped every packet the host got.
import type { Ban } from './ban-store.js';
import { type Cidr, formatCidr, parseCidr } from '../net/ip.js';

/**
 * The store format this floodgate writes and reads. Version 2 added each ban's fleet part and the
 * fleet outbox; a version 1 file is read as all-local bans with an empty outbox.
 */
export const STORE_VERSION = 2;

/**
 * The widest network a detector rule bans (the policy's smallest prefix4 and prefix6). Wider ones
 * come only from a manual ban with --force, which the store does not record, so they are kept.
 */
const DETECTOR_WIDEST = { 4: 8, 6: 16 } as const;

/** JavaScript dates end here (year 275760): a time past it cannot be shown or compared sensibly. */
const LAST_TIME = 8.64e15;

/** Where a fleet ban came from: the engine's decision, with its own absolute expiry. */
export interface FleetPart {
  /** The host that decided it (floodgate's own decisions), or "" for another origin's. */
  readonly host: string;
  /** The engine's origin: floodgate, crowdsec, cscli, … */
  readonly origin: string;
  readonly decisionId: string;
  readonly expiresAt: number;
}

/** A change waiting to be pushed to the fleet: kept with the state, so an outage or a restart loses none. */
export type OutboxEntry =
  | { readonly op: 'ban'; readonly target: string; readonly rule: string; readonly expiresAt: number }
  | { readonly op: 'unban'; readonly target: string };

export interface CheckedState {
  readonly bans: Ban[];
  readonly offenders: [string, { readonly lastTtl: number; readonly lastBanAt: number }][];
  readonly grace: [string, number][];
  readonly refused: number;
  readonly lastScan?: { readonly at: number; readonly durationMs: number; readonly sockets: number };
  readonly outbox: OutboxEntry[];
  /** The fleet engine's resume point (a Redis stream id); opaque to the store. */
  readonly fleetCursor?: string;
  /** Every sound target, parsed: the store needs them, and parsing 100k again cost as much as checking. */
  readonly cidrs: ReadonlyMap<string, Cidr>;
  /** What was left out, one line per entry or field ("bans[3]: …"). */
  readonly problems: string[];
}

/** The file cannot be used at all: not a store, or a newer one. */
export type StoreVerdict =
  | { readonly ok: true; readonly state: CheckedState }
  | { readonly ok: false; readonly why: string; readonly newer: boolean };

const isTime = (value: unknown): value is number =>
  typeof value === 'number' && Number.isFinite(value) && Math.abs(value) <= LAST_TIME;
const isCount = (value: unknown): value is number =>
  typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);
const shown = (value: unknown): string => {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
};

/**
 * Why `value` is not a target floodgate could have stored, or null; sound targets are kept in
 * `cidrs` (an offender's target is usually a ban's too: checked once). `rule` decides the widest.
 */
function targetProblem(value: unknown, cidrs: Map<string, Cidr>, rule?: string): string | null {
  if (typeof value !== 'string') return `target ${shown(value)} is not a string`;
  let cidr = cidrs.get(value);
  if (cidr === undefined) {
    const parsed = parseCidr(value);
    if (parsed === null) return `target ${shown(value)} is not an address or network`;
    if (formatCidr(parsed) !== value) return `target ${shown(value)} is not in canonical form (${formatCidr(parsed)})`;
    if (parsed.prefix === 0) return `target ${value} covers every address (a /0 ban would cut this host off)`;
    cidrs.set(value, parsed);
    cidr = parsed;
  }
  if (rule !== undefined && rule !== 'manual' && cidr.prefix < DETECTOR_WIDEST[cidr.family]) {
    return (
      `target ${value} is wider than /${DETECTOR_WIDEST[cidr.family]}, ` +
      'which no detector rule bans (only a manual ban with --force may be)'
    );
  }
  return null;
}

function checkBan(value: unknown, cidrs: Map<string, Cidr>): Ban | string {
  if (!isObject(value)) return `${shown(value)} is not a ban`;
  const { target, rule, reason, count, createdAt, expiresAt, ttl, fleet, localExpiresAt } = value;
  if (typeof rule !== 'string' || rule === '') return `rule ${shown(rule)} is not a name`;
  let fleetPart: FleetPart | undefined;
  if (fleet !== undefined) {
    if (
      !isObject(fleet) ||
      typeof fleet.host !== 'string' ||
      typeof fleet.origin !== 'string' ||
      fleet.origin === '' ||
      typeof fleet.decisionId !== 'string' ||
      !isTime(fleet.expiresAt)
    ) {
      return `fleet ${shown(fleet)} is not {host, origin, decisionId, expiresAt}`;
    }
    fleetPart = { host: fleet.host, origin: fleet.origin, decisionId: fleet.decisionId, expiresAt: fleet.expiresAt };
  }
  if (localExpiresAt !== undefined && (fleetPart === undefined || !isTime(localExpiresAt)))
    return `localExpiresAt ${shown(localExpiresAt)} is not a time with a fleet part`;
  // A fleet ban's width is the fleet's (a cscli decision may be a /8); the gate checked it when pulled.
  const bad = targetProblem(target, cidrs, fleetPart !== undefined && localExpiresAt === undefined ? undefined : rule);
  if (bad !== null) return bad;
  if (reason !== undefined && reason !== null && typeof reason !== 'string')
    return `reason ${shown(reason)} is not text`;
  if (!isCount(count)) return `count ${shown(count)} is not a whole number >= 0`;
  if (!isTime(createdAt)) return `createdAt ${shown(createdAt)} is not a time`;
  if (!isTime(expiresAt)) return `expiresAt ${shown(expiresAt)} is not a time`;
  if (typeof ttl !== 'number' || !Number.isFinite(ttl) || ttl <= 0) return `ttl ${shown(ttl)} is not a duration`;
  const ban = {
    target: target as string,
    rule,
    count,
    createdAt,
    expiresAt,
    ttl,
    ...(typeof reason === 'string' && { reason }),
    ...(fleetPart && { fleet: fleetPart }),
    ...(typeof localExpiresAt === 'number' && { localExpiresAt }),
  };
  return ban;
}

/** Entries of a list field, each kept or reported. */
function entries<T>(
  state: Record<string, unknown>,
  field: string,
  check: (value: unknown) => T | string,
  problems: string[],
): T[] {
  const value = state[field];
  if (value === undefined) return [];
  if (!Array.isArray(value)) {
    problems.push(`${field}: ${shown(value)} is not a list`);
    return [];
  }
  const out: T[] = [];
  value.forEach((item, i) => {
    const checked = check(item);
    if (typeof checked === 'string') problems.push(`${field}[${i}]: ${checked}`);
    else out.push(checked);
  });
  return out;
}

export function checkStore(raw: unknown): StoreVerdict {
  if (!isObject(raw)) return { ok: false, why: `it holds ${shown(raw)}, not a ban store`, newer: false };
  const { version } = raw;
  if (typeof version === 'number' && Number.isSafeInteger(version) && version > STORE_VERSION) {
    return {
      ok: false,
      why: `it is version ${version}, written by a newer floodgate (this one reads version ${STORE_VERSION})`,
      newer: true,
    };
  }
  // Version 1 (before the fleet): the same fields, every ban local, no outbox.
  if (version !== STORE_VERSION && version !== 1)
    return { ok: false, why: `its version is ${shown(version)}, not ${STORE_VERSION} (or 1)`, newer: false };
  const problems: string[] = [];
  const cidrs = new Map<string, Cidr>();
  const bans = entries(raw, 'bans', (item) => checkBan(item, cidrs), problems);
  const offenders = entries(
    raw,
    'offenders',
    (item): [string, { lastTtl: number; lastBanAt: number }] | string => {
      if (!Array.isArray(item) || item.length !== 2 || !isObject(item[1]))
        return `${shown(item)} is not [target, {lastTtl, lastBanAt}]`;
      const bad = targetProblem(item[0], cidrs);
      if (bad !== null) return bad;
      const { lastTtl, lastBanAt } = item[1];
      if (typeof lastTtl !== 'number' || !Number.isFinite(lastTtl) || lastTtl <= 0 || !isTime(lastBanAt))
        return `${shown(item)} has no valid lastTtl and lastBanAt`;
      return [item[0] as string, { lastTtl, lastBanAt }];
    },
    problems,
  );
  const grace = entries(
    raw,
    'grace',
    (item): [string, number] | string => {
      if (!Array.isArray(item) || item.length !== 2) return `${shown(item)} is not [target, until]`;
      const bad = targetProblem(item[0], cidrs);
      if (bad !== null) return bad;
      if (!isTime(item[1])) return `until ${shown(item[1])} is not a time`;
      return [item[0] as string, item[1]];
    },
    problems,
  );
  let refused = 0;
  if (raw.refused !== undefined) {
    if (isCount(raw.refused)) refused = raw.refused;
    else problems.push(`refused: ${shown(raw.refused)} is not a whole number >= 0`);
  }
  let lastScan: CheckedState['lastScan'];
  if (raw.lastScan !== undefined) {
    const scan = raw.lastScan;
    if (isObject(scan) && isTime(scan.at) && isCount(scan.durationMs) && isCount(scan.sockets))
      lastScan = { at: scan.at, durationMs: scan.durationMs, sockets: scan.sockets };
    else problems.push(`lastScan: ${shown(scan)} is not {at, durationMs, sockets}`);
  }
  const outbox = version === 1 ? [] : entries(raw, 'outbox', (item) => checkOutboxEntry(item, cidrs), problems);
  let fleetCursor: string | undefined;
  if (raw.fleetCursor !== undefined) {
    if (typeof raw.fleetCursor === 'string' && raw.fleetCursor.length <= 200) fleetCursor = raw.fleetCursor;
    else problems.push(`fleetCursor: ${shown(raw.fleetCursor)} is not a short text`);
  }
  return {
    ok: true,
    state: {
      bans,
      offenders,
      grace,
      refused,
      ...(lastScan && { lastScan }),
      outbox,
      ...(fleetCursor !== undefined && { fleetCursor }),
      cidrs,
      problems,
    },
  };
}

function checkOutboxEntry(value: unknown, cidrs: Map<string, Cidr>): OutboxEntry | string {
  if (!isObject(value)) return `${shown(value)} is not an outbox entry`;
  const bad = targetProblem(value.target, cidrs);
  if (bad !== null) return bad;
  const target = value.target as string;
  if (value.op === 'unban') return { op: 'unban', target };
  if (value.op !== 'ban') return `op ${shown(value.op)} is not ban or unban`;
  if (typeof value.rule !== 'string' || value.rule === '') return `rule ${shown(value.rule)} is not a name`;
  if (!isTime(value.expiresAt)) return `expiresAt ${shown(value.expiresAt)} is not a time`;
  return { op: 'ban', target, rule: value.rule, expiresAt: value.expiresAt };
}
