// Starts the fleet sync for the daemon from the policy's `fleet:` section: reads the secrets from
// their files (never from the policy, never logged), builds the engine, and feeds the sync this
// host's bans and unbans from the daemon's own log events.
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import type { BanStore } from '../bans/ban-store.js';
import type { Enforcer } from '../enforce/enforcer.js';
import { ConfigError } from '../errors.js';
import type { Logger } from '../log.js';
import { tapEvents } from '../log-events.js';
import type { CidrSet } from '../net/cidr-set.js';
import type { Policy } from '../policy/schema.js';
import { CrowdsecEngine } from './crowdsec-engine.js';
import type { FleetEngine } from './fleet-engine.js';
import { FleetSync } from './fleet-sync.js';
import { RedisEngine } from './redis-engine.js';

export type FleetPolicy = NonNullable<Policy['fleet']>;

/** A secret's file, trimmed; the error names the file and never its content. */
export function readSecret(file: string, what: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError(
      `fleet.${what}: cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`,
      { cause: error },
    );
  }
  const secret = text.trim();
  if (secret === '' || secret.includes('\n'))
    throw new ConfigError(
      `fleet.${what}: ${file} must hold the secret on one line, ` +
        `got ${secret === '' ? 'an empty file' : 'several lines'}`,
    );
  return secret;
}

/** A CA certificate file (PEM) for TLS; the error names the file and what it holds instead. */
export function readCaFile(file: string, what: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError(
      `fleet.${what}: cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`,
      { cause: error },
    );
  }
  if (!text.includes('-----BEGIN CERTIFICATE-----'))
    throw new ConfigError(
      `fleet.${what}: expected ${file} to hold PEM certificates (-----BEGIN CERTIFICATE-----), ` +
        `got ${text.trim() === '' ? 'an empty file' : 'none'}`,
    );
  return text;
}

/** This host's name in the fleet: the policy's, or the hostname. */
export function fleetHost(fleet: FleetPolicy): string {
  return fleet.host ?? hostname();
}

/** `log`: where the engine reports what it skips (Redis: a stream entry it cannot read). */
export function createEngine(fleet: FleetPolicy, log?: Logger): FleetEngine {
  switch (fleet.engine) {
    case 'crowdsec':
      return new CrowdsecEngine({
        url: fleet.url,
        host: fleetHost(fleet),
        machine: fleet.machine,
        password: readSecret(fleet.password_file, 'password_file'),
        bouncerKey: readSecret(fleet.bouncer_key_file, 'bouncer_key_file'),
        origins: fleet.origins,
      });
    case 'redis':
      return new RedisEngine({
        url: fleet.url,
        host: fleetHost(fleet),
        prefix: fleet.prefix,
        ...(log !== undefined && { log }),
        ...(fleet.sentinels !== undefined && {
          sentinels: fleet.sentinels.map((address) => {
            const at = address.lastIndexOf(':');
            return { host: address.slice(0, at).replace(/^\[|\]$/g, ''), port: Number(address.slice(at + 1)) };
          }),
          sentinelName: fleet.sentinel_name,
        }),
        ...(fleet.password_file !== undefined && { password: readSecret(fleet.password_file, 'password_file') }),
        ...(fleet.tls_ca_file !== undefined && { tlsCa: readCaFile(fleet.tls_ca_file, 'tls_ca_file') }),
      });
  }
}

export interface RunningFleet {
  readonly sync: FleetSync;
  stop(): Promise<void>;
}

/**
 * Whether a logged event is this host's own ban or unban, to be pushed to the fleet: not what the
 * fleet itself applied, not a dry-run, and not a lift because this host's allowlist now covers the
 * target (an allowlist protects its own host only; pushing it would lift the ban on every host).
 */
export function pushedChange(
  fields: Readonly<Record<string, unknown>>,
  applyingPulled: boolean,
): 'ban' | 'unban' | null {
  if (fields.source === 'fleet' || fields.why === 'allowlist' || applyingPulled || fields.dryRun === true) return null;
  if (typeof fields.target !== 'string') return null;
  return fields.event === 'ban' ? 'ban' : fields.event === 'unban' ? 'unban' : null;
}

/** `engine`: made before anything else starts (createEngine), so that a bad secret file changes nothing. */
export function openFleet(options: {
  fleet: FleetPolicy;
  engine: FleetEngine;
  enforcer: Enforcer;
  log: Logger;
  dryRun: boolean;
  protectedSet: () => CidrSet;
  maxActive: () => number;
}): RunningFleet {
  const { fleet, enforcer, log, dryRun } = options;
  const sync = new FleetSync({
    engine: options.engine,
    enforcer,
    log,
    host: fleetHost(fleet),
    dryRun,
    // Redis: each pull is a blocking read that returns as soon as an entry comes, so the next one
    // follows at once.
    poll: fleet.engine === 'redis' ? 0 : fleet.poll,
    resync: fleet.resync,
    protectedSet: options.protectedSet,
    maxActive: options.maxActive,
  });
  // The enforcer logs every ban and unban it makes once it is in the store and queued: the moment
  // to push it. Expiries push nothing (the engine expires the decision at the same instant).
  const untap = tapEvents(log, ({ fields }) => {
    const change = pushedChange(fields, sync.applyingPulled);
    if (change === 'ban') sync.localBan(fields.target as string);
    else if (change === 'unban') sync.localUnban(fields.target as string);
  });
  log.info(
    {
      event: 'fleet-start',
      engine: fleet.engine,
      url: fleet.url,
      host: fleetHost(fleet),
      ...(fleet.engine === 'crowdsec' ? { poll: fleet.poll, origins: fleet.origins } : { prefix: fleet.prefix }),
      dryRun,
    },
    `fleet: ${fleet.engine} at ${fleet.url} as ` +
      `${fleetHost(fleet)}${dryRun ? ' (dry-run: pulling only, nothing is pushed)' : ''}`,
  );
  sync.start();
  return {
    sync,
    async stop() {
      untap();
      await sync.stop();
    },
  };
}

/**
 * For a manual ban or unban made while no daemon runs: its changes go into the outbox saved with
 * the store, and the daemon pushes them when it starts. Returns the function that removes the tap.
 */
export function queueManualChanges(log: Logger, store: BanStore): () => void {
  return tapEvents(log, ({ fields }) => {
    if (fields.source === 'fleet' || fields.dryRun === true || typeof fields.target !== 'string') return;
    if (fields.event === 'ban') {
      const ban = store.get(fields.target);
      if (ban !== undefined && (ban.fleet === undefined || ban.localExpiresAt !== undefined))
        store.enqueue({
          op: 'ban',
          target: ban.target,
          rule: ban.rule,
          expiresAt: ban.localExpiresAt ?? ban.expiresAt,
        });
    } else if (fields.event === 'unban') {
      store.enqueue({ op: 'unban', target: fields.target });
    }
  });
}
