// floodgate's version, from package.json beside dist/, or compiled into the single executable.
import { createRequire } from 'node:module';

// The single executable has no package.json beside it: scripts/package.mjs defines this name as the version.
declare const FLOODGATE_VERSION: string | undefined;

/**
 * A command line that is only one of these asks for the version: commander's `-V, --version`, and
 * `-v` and `version`, which other tools answer (a newcomer tried both).
 */
export const VERSION_ARGS: readonly string[] = ['--version', '-V', '-v', 'version'];

export function version(): string {
  if (typeof FLOODGATE_VERSION === 'string') return FLOODGATE_VERSION;
  return (createRequire(import.meta.url)('../../../package.json') as { version: string }).version;
}
