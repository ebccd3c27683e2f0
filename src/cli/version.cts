// floodgate's version, from package.json beside dist/, or compiled into the single executable.
// CommonJS, as main.cts is: `floodgate --version` reads it before any ES module loads.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

// The single executable has no package.json beside it: scripts/package.mjs defines this name as the version.
declare const FLOODGATE_VERSION: string | undefined;

/**
 * A command line that is only one of these asks for the version: commander's `-V, --version`, and
 * `-v` and `version`, which other tools answer (a newcomer tried both).
 */
export const VERSION_ARGS: readonly string[] = ['--version', '-V', '-v', 'version'];

export function version(): string {
  if (typeof FLOODGATE_VERSION === 'string') return FLOODGATE_VERSION;
  // Read, not required: a bundler would try to resolve a require of it from src/ (see package.mjs).
  return (JSON.parse(readFileSync(join(__dirname, '../../../package.json'), 'utf8')) as { version: string }).version;
}
