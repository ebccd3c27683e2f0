// A real pino logger (src/log.ts) writing JSON lines to memory, so tests assert on the events a
// user would see in the journal.
import { Writable } from 'node:stream';
import { createLogger, type Logger } from '../../src/log.js';

export interface LogEvent {
  readonly level: number;
  readonly msg: string;
  readonly event?: string;
  readonly [field: string]: unknown;
}

export interface MemoryLog {
  readonly log: Logger;
  /** Every line written so far, parsed. */
  events(): LogEvent[];
  /** The lines whose `event` field is `name`. */
  named(name: string): LogEvent[];
}

export function memoryLog(): MemoryLog {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer | string, _encoding, callback) {
      lines.push(
        ...String(chunk)
          .split('\n')
          .filter((line) => line !== ''),
      );
      callback();
    },
  });
  const log = createLogger({ pretty: false, level: 'debug', destination });
  const events = (): LogEvent[] => lines.map((line) => JSON.parse(line) as LogEvent);
  return { log, events, named: (name) => events().filter((e) => e.event === name) };
}
