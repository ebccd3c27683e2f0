// `floodgate run`: the controller loop (dry-run unless --enforce or the policy says enforce).
import { runDaemon } from '../daemon/daemon.js';
import { defaultStateDir } from '../daemon/state-dir.js';
import { createLogger } from '../log.js';
import { loadPolicy } from '../policy/load-policy.js';
import { type CommonOptions, resolveMode } from './act.js';

export interface RunOptions extends CommonOptions {
  readonly flushOnExit?: boolean;
  readonly interval?: number;
}

export async function runCommand(options: RunOptions): Promise<void> {
  const loaded = loadPolicy(options.policy);
  const policy = options.interval === undefined ? loaded.policy : { ...loaded.policy, interval: options.interval };
  const mode = resolveMode(policy.mode, options);
  const log = createLogger({ format: options.logFormat, pretty: options.pretty, level: options.logLevel });
  await runDaemon({ policy, policyFile: loaded.file, mode, stateDir: options.stateDir ?? defaultStateDir(), flushOnExit: options.flushOnExit ?? false, log });
}
