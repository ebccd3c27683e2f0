// The fleet as floodgate sees it, whatever engine carries it (CrowdSec's LAPI now, Redis later):
// push our bans and unbans, pull what changed, and read every active fleet ban for a full resync.
// Values come back raw: the sync puts every one through the same gate as a local ban.

/** A ban this host pushes: its canonical target and its absolute expiry. */
export interface PushBan {
  readonly target: string;
  readonly rule: string;
  readonly expiresAt: number;
}

/** A fleet decision as the engine holds it; `value` is not checked yet. */
export interface FleetDecision {
  readonly value: string;
  /** The engine's id for this decision (several may exist for one value). */
  readonly id: string;
  /** The floodgate host that decided it, or "" for another origin's decision. */
  readonly host: string;
  /** floodgate, crowdsec, cscli, … */
  readonly origin: string;
  /** floodgate's rule name when a floodgate pushed it, else the engine's scenario. */
  readonly rule: string;
  readonly expiresAt: number;
}

export interface FleetChanges {
  readonly added: readonly FleetDecision[];
  /** Decisions gone (deleted or expired); the same one may be reported more than once. */
  readonly deleted: readonly FleetDecision[];
  /** True when `added` is every active decision (a start-up pull): fleet bans not in it are gone. */
  readonly complete: boolean;
  /**
   * How far these changes go, for an engine that replays from a point (a Redis stream id): saved
   * with the ban store once they are applied, and given back to the first pull after a restart.
   */
  readonly cursor?: string;
}

export interface FleetEngine {
  readonly name: string;
  /**
   * Sends bans and fleet-wide unbans. Resolves once the engine holds them; throws when it may not,
   * and then makes sure a retry sends nothing twice.
   */
  push(bans: readonly PushBan[], unbans: readonly string[], now: number): Promise<void>;
  /**
   * What changed since the last pull. `cursor` is the one saved from an earlier run: an engine that
   * can resume from it replays from there; otherwise the first pull after start is complete.
   */
  pull(now: number, cursor?: string): Promise<FleetChanges>;
  /** Every active fleet decision (other hosts' and the configured origins'), for a resync. */
  snapshot(now: number): Promise<FleetDecision[]>;
  /** True when the engine's changes miss nothing (a Redis stream): no follow-up resync after a burst. */
  readonly exactStream?: boolean;
  /** Ends the engine's connections (a blocked pull returns at once). */
  close?(): Promise<void>;
}
