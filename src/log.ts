// pino logs: JSON lines, one event per ban, unban, expiry, refusal and error; readable lines on a
// terminal or with --pretty.
import { type Logger, pino } from 'pino';
import pretty from 'pino-pretty';
import { LogDestination } from './log-destination.js';
import { instantFormatter } from './policy/duration.js';

export type { Logger };

// pino.stdTimeFunctions.isoTime, formatting each millisecond once: a burst of 10k ban lines
// spans a few hundred, and a Date and its ISO text per line cost about a tenth of each line.
const logTime = instantFormatter();
const isoTime = () => `,"time":"${logTime(Date.now())}"`;

export function createLogger(options: { pretty?: boolean; level?: string; destination?: NodeJS.WritableStream } = {}): Logger {
  const usePretty = options.pretty ?? Boolean(process.stdout.isTTY);
  const base = { level: options.level ?? process.env.FLOODGATE_LOG_LEVEL ?? 'info', base: { pid: process.pid }, timestamp: isoTime };
  if (usePretty) {
    return pino(base, pretty({ colorize: Boolean(process.stdout.isTTY), sync: true, translateTime: 'SYS:HH:MM:ss', ignore: 'pid,hostname', destination: options.destination ?? 1 }));
  }
  // Batched: a burst of bans costs a few write(2) calls, not one per line (see log-destination.ts).
  return pino(base, options.destination ?? new LogDestination(1));
}
