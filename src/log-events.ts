// The daemon's events, as it logs them, for whoever else needs them (metrics, notifications, the ban
// history): every ban, unban, expiry, refusal, attack and error is already one structured log call
// with an `event` field, so taking them from there keeps the log, the metrics and the notifications
// in agreement, and needs no second call at each place something happens.
import type { Logger } from './log.js';

export type EventLevel = 'debug' | 'info' | 'warn' | 'error';

export interface LoggedEvent {
  readonly level: EventLevel;
  /** The log call's fields: `event` names what happened (ban, unban, expire, refused, attack, …). */
  readonly fields: Readonly<Record<string, unknown>> & { readonly event: string };
  readonly msg: string;
}

export type EventListener = (event: LoggedEvent) => void;

const LEVELS: readonly EventLevel[] = ['debug', 'info', 'warn', 'error'];

/**
 * Calls `listener` for every log call on `log` that carries an `event` field, whatever the log level
 * lets through (the metrics must not depend on --log-level). A listener that throws never breaks
 * logging. Returns a function that removes the tap.
 */
export function tapEvents(log: Logger, listener: EventListener): () => void {
  const originals = new Map<EventLevel, Logger[EventLevel]>();
  for (const level of LEVELS) {
    const original = log[level];
    originals.set(level, original);
    log[level] = ((first: unknown, ...rest: unknown[]) => {
      if (typeof first === 'object' && first !== null && typeof (first as { event?: unknown }).event === 'string') {
        try {
          listener({ level, fields: first as LoggedEvent['fields'], msg: typeof rest[0] === 'string' ? rest[0] : '' });
        } catch {
          // A listener's failure is its own to report; the log line still goes out.
        }
      }
      (original as (...args: unknown[]) => void).apply(log, [first, ...rest]);
    }) as Logger[EventLevel];
  }
  return () => {
    for (const [level, original] of originals) log[level] = original;
  };
}
