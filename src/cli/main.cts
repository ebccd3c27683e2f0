#!/usr/bin/env node
// floodgate's one executable. The version (`--version`, `-V`, `-v` or `floodgate version`) is answered
// before commander and the command table load (a third of the start-up: monitoring and packaging
// scripts call it often); everything else goes to program.ts. A CommonJS file, like version.cts, so
// that the version is answered before Node starts its ES module loader: 16 ms of a 45 ms start on
// the README's machine (as an ES module --version took 1.51x `node -e 0`; as this, ~1.2x).
// No V8 flag on the #! line: with one, node rejects part of its own code cache and every command
// starts ~10 ms later (--version 1.48x node -e 0 instead of 1.24x). The daemon's small young
// generation (2 MiB semi-spaces, not 16: a daemon holding 100k bans at about 120 MiB instead of
// 150, scripts/bench-bans.ts part 4) comes from NODE_OPTIONS, which the systemd unit sets.
import { VERSION_ARGS, version } from './version.cjs';

const args = process.argv.slice(2);
if (args.length === 1 && VERSION_ARGS.includes(args[0]!)) {
  process.stdout.write(`${version()}\n`);
} else {
  // The program is ES modules; a CommonJS file loads them with import() (and has no top-level await).
  void import('./program.js').then(({ main }) => main());
}
