// The daemon's last few events (bans, unbans, expiries, refusals, attacks, errors…), kept in memory
// for the control socket's read-only `events` request (`floodgate top` shows them). Fed by
// tapEvents, so it sees exactly what the log says, whatever the log level.
import type { LoggedEvent } from '../log-events.js';
import type { RecentEvent } from './protocol.js';

/** Enough for a screen of them; the log keeps the rest. */
export const RECENT_EVENTS = 50;

/** The periodic heartbeat and memory compaction: chatter that would push the events worth seeing off the screen. */
const NOT_KEPT: ReadonlySet<string> = new Set(['scan', 'gc']);

export class RecentEvents {
  private readonly ring: RecentEvent[] = [];

  constructor(private readonly capacity = RECENT_EVENTS) {}

  push(event: LoggedEvent, now = Date.now()): void {
    if (NOT_KEPT.has(event.fields.event) || event.level === 'debug') return;
    const target = event.fields.target;
    this.ring.push({
      at: new Date(now).toISOString(),
      level: event.level,
      event: event.fields.event,
      ...(typeof target === 'string' && { target }),
      msg: event.msg,
    });
    if (this.ring.length > this.capacity) this.ring.shift();
  }

  /** Oldest first. */
  all(): RecentEvent[] {
    return [...this.ring];
  }
}
