// `floodgate flush` (and `unban --all`): removes every rule this state directory's floodgate owns and
// clears its bans.
import type { FlushResult } from '../daemon/protocol.js';
import { type Acted, type ActedJson, type CommonOptions, act, actedJson, printJson } from './act.js';

export interface FlushOptions extends CommonOptions {
  readonly json?: boolean;
}

/** What `flush --json` prints. */
export interface FlushJson extends ActedJson {
  /** How many bans were cleared (in dry-run: would-be bans; the firewall was not changed). */
  readonly cleared: number;
}

export function flushJson(acted: Acted, options: FlushOptions): FlushJson {
  return { ...actedJson(acted, options), cleared: (acted.result as FlushResult).cleared };
}

export async function flushCommand(options: FlushOptions): Promise<void> {
  const acted = await act({ cmd: 'flush' }, options);
  const json = flushJson(acted, options);
  if (options.json) {
    printJson(json);
    return;
  }
  const { cleared, mode } = json;
  process.stdout.write(
    mode === 'dry-run'
      ? `dry-run: ${cleared} would-be ban(s) cleared; the firewall was not changed (use --enforce)\n`
      : `flushed: ${cleared} ban(s) cleared and every rule of this state directory's floodgate removed\n`,
  );
}
