// `floodgate run`: the controller loop (dry-run unless --enforce or the policy says enforce).
import { runDaemon } from '../daemon/daemon.js';
import { defaultStateDir } from '../daemon/state-dir.js';
import { createLogger } from '../log.js';
import { loadPolicy } from '../policy/load-policy.js';
import type { Policy } from '../policy/schema.js';
import type { Mode } from '../daemon/state-dir.js';
import { type CommonOptions, resolveMode } from './act.js';
import { lookUpPolicy } from './policy-lookup.js';

export interface RunOptions extends CommonOptions {
  readonly flushOnExit?: boolean;
  readonly interval?: number;
}

export async function runCommand(options: RunOptions): Promise<void> {
  // No state-directory record here: `run` is what writes it.
  const loaded = await lookUpPolicy({ policy: options.policy });
  // The command line beats the file, at start and at every reload.
  const effective = (policy: Policy): { policy: Policy; mode: Mode } => {
    const withInterval = options.interval === undefined ? policy : { ...policy, interval: options.interval };
    return { policy: withInterval, mode: resolveMode(withInterval.mode, options) };
  };
  const { policy, mode } = effective(loaded.policy);
  const log = createLogger({ format: options.logFormat, pretty: options.pretty, level: options.logLevel });
  await runDaemon({
    policy,
    policyFile: loaded.file,
    mode,
    stateDir: options.stateDir ?? defaultStateDir(),
    flushOnExit: options.flushOnExit ?? false,
    log,
    reload: () => effective(loadPolicy(loaded.file).policy),
  });
}
