// `floodgate unban TARGET… [--grace]`: lifts bans; the detector leaves the target alone for the grace.
import type { UnbanResult } from '../daemon/protocol.js';
import { UsageError } from '../errors.js';
import { formatCidr } from '../net/ip.js';
import { parseTarget } from '../net/target.js';
import { type CommonOptions, act } from './act.js';

export interface UnbanOptions extends CommonOptions {
  readonly grace?: number;
}

export async function unbanCommand(targetTexts: string[], options: UnbanOptions): Promise<void> {
  if (targetTexts.length === 0) throw new UsageError('nothing to unban: give one or more targets');
  const targets = targetTexts.map((text) => formatCidr(parseTarget(text, true)));
  const { result, mode } = await act(
    { cmd: 'unban', targets, ...(options.grace !== undefined && { grace: options.grace }) },
    options,
  );
  for (const r of result as UnbanResult[]) {
    process.stdout.write(
      r.status === 'lifted'
        ? `lifted ${r.target}\n`
        : `${r.target} was not banned${mode === 'dry-run' ? '' : ' (any rule left for it is removed)'}\n`,
    );
  }
  if (mode === 'dry-run') process.stdout.write('dry-run: the firewall was not changed (use --enforce)\n');
}
