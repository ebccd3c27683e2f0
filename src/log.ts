// pino logs, one event per ban, unban, expiry, refusal and error. Three formats (log-format.ts):
// JSON lines, journal lines with a syslog priority, or one readable line per event on a terminal.
import { type Logger, pino } from 'pino';
import { LogDestination } from './log-destination.js';
import {
  FormattingDestination,
  LOG_LEVELS,
  type LogFormat,
  type LogLevel,
  checkChoice,
  chooseFormat,
  wantsColor,
} from './log-format.js';
import { instantFormatter } from './policy/duration.js';

export type { Logger, LogFormat, LogLevel };

// pino.stdTimeFunctions.isoTime, formatting each millisecond once: a burst of 10k ban lines
// spans a few hundred, and a Date and its ISO text per line cost about a tenth of each line.
const logTime = instantFormatter();
const isoTime = () => `,"time":"${logTime(Date.now())}"`;

export interface LoggerOptions {
  /** --log-format; else FLOODGATE_LOG_FORMAT, the journal, a terminal, JSON (see chooseFormat). */
  readonly format?: LogFormat | undefined;
  /** The old --pretty flag: the same as format 'pretty'. */
  readonly pretty?: boolean | undefined;
  /**
   * The format when neither a flag, the environment nor the journal chooses.
   * @default pretty on a terminal, else json
   */
  readonly fallbackFormat?: LogFormat;
  /** --log-level; else FLOODGATE_LOG_LEVEL; else `defaultLevel`. */
  readonly level?: LogLevel | undefined;
  /** @default 'info' */
  readonly defaultLevel?: LogLevel;
  /** Where the lines go. @default standard output (fd 1), written in batches */
  readonly destination?: NodeJS.WritableStream;
  /** @default process.env */
  readonly env?: NodeJS.ProcessEnv;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const env = options.env ?? process.env;
  const fromEnv = env.FLOODGATE_LOG_LEVEL;
  const level =
    options.level ??
    (fromEnv !== undefined && fromEnv !== ''
      ? checkChoice('FLOODGATE_LOG_LEVEL', LOG_LEVELS, fromEnv)
      : (options.defaultLevel ?? 'info'));
  const fd = options.destination === process.stderr ? 2 : 1;
  const out = options.destination ?? process.stdout;
  const isTTY = Boolean((out as { isTTY?: boolean }).isTTY);
  const format = chooseFormat({
    flag: options.format ?? (options.pretty === true ? 'pretty' : options.pretty === false ? 'json' : undefined),
    env,
    fd,
    isTTY,
    fallback: options.fallbackFormat,
  });
  const base = { level, base: { pid: process.pid }, timestamp: isoTime };
  // Batched: a burst of bans costs a few write(2) calls, not one per line (see log-destination.ts).
  const sink = options.destination ?? new LogDestination(1);
  if (format === 'json') return pino(base, sink);
  return pino(base, new FormattingDestination(sink as never, format, format === 'pretty' && wantsColor(env, isTTY)));
}
