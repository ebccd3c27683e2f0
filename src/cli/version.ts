// floodgate's version, from package.json beside dist/, or compiled into the single executable.
import { createRequire } from 'node:module';

// The single executable has no package.json beside it: scripts/package.mjs defines this name as the version.
declare const FLOODGATE_VERSION: string | undefined;

export function version(): string {
  if (typeof FLOODGATE_VERSION === 'string') return FLOODGATE_VERSION;
  return (createRequire(import.meta.url)('../../../package.json') as { version: string }).version;
}
