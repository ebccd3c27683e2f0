#!/usr/bin/env node
// `npm run package`: builds dist/floodgate-linux-x64, one executable that needs no Node.js on the
// server (Node's single executable applications). Three steps:
//   1. esbuild bundles src/cli/main.cts and every dependency into one CommonJS file (SEA runs only
//      CommonJS in Node 20). The lazy `import()`s of the command modules become in-file requires.
//      The default policy and the version are compiled in with --define, since no policies/ or
//      package.json sits beside the executable (src/policy/load-policy.ts, src/cli/version.cts).
//   2. node --experimental-sea-config turns the bundle into a blob.
//   3. postject injects the blob into a copy of this node binary.
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const out = join(root, 'dist');
const work = join(out, 'sea');
const bundle = join(work, 'floodgate.cjs');
const blob = join(work, 'floodgate.blob');
const executable = join(out, 'floodgate-linux-x64');

if (process.platform !== 'linux' || process.arch !== 'x64') {
  console.error(
    `npm run package: builds a linux-x64 executable from this node; this is ${process.platform}-${process.arch}`,
  );
  process.exit(2);
}

const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const defaultPolicy = readFileSync(join(root, 'policies', 'default.yaml'), 'utf8');

rmSync(work, { recursive: true, force: true });
mkdirSync(work, { recursive: true });

await build({
  entryPoints: [join(root, 'src', 'cli', 'main.cts')],
  outfile: bundle,
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  minifySyntax: true,
  legalComments: 'none',
  define: {
    FLOODGATE_VERSION: JSON.stringify(version),
    FLOODGATE_EMBEDDED_DEFAULT_POLICY: JSON.stringify(defaultPolicy),
  },
  // metrics.ts and load-policy.ts read import.meta.url only when FLOODGATE_VERSION and the embedded
  // default policy are not defined, which they are here.
  logOverride: { 'empty-import-meta': 'silent' },
  plugins: [
    {
      // `debug` (under ioredis) tries require('supports-color') in a try/catch. Left unbundled, that
      // require reaches SEA's built-ins-only require, which prints a warning on every start (and
      // the daemon's output must be log lines only). Bundled as "no colour support" instead.
      name: 'no-optional-supports-color',
      setup(esbuild) {
        esbuild.onResolve({ filter: /^supports-color$/ }, () => ({ path: 'supports-color', namespace: 'stub' }));
        esbuild.onLoad({ filter: /.*/, namespace: 'stub' }, () => ({ contents: 'module.exports = false;' }));
      },
    },
  ],
  logLevel: 'warning',
});
// SEA's main script is run as CommonJS source: a #! line is not JavaScript.
writeFileSync(bundle, readFileSync(bundle, 'utf8').replace(/^#![^\n]*\n/, ''));

const seaConfig = join(work, 'sea-config.json');
// No V8 code cache: it saves about 35 ms of CPU at start, but V8 rejects it, with a warning on
// every start, as soon as NODE_OPTIONS sets a V8 flag, and the daemon wants
// NODE_OPTIONS=--max-semi-space-size=2, which the systemd unit gives it.
writeFileSync(
  seaConfig,
  JSON.stringify({ main: bundle, output: blob, disableExperimentalSEAWarning: true, useCodeCache: false }, null, 2),
);
execFileSync(process.execPath, ['--experimental-sea-config', seaConfig], { stdio: ['ignore', 'ignore', 'inherit'] });

rmSync(executable, { force: true });
copyFileSync(process.execPath, executable);
chmodSync(executable, 0o755);
// NodeSource's node ships with debug symbols (99 MB); nothing at run time needs them.
try {
  // strip complains about NodeSource's many .note sections; the result is fine.
  execFileSync('strip', ['--strip-all', executable], { stdio: 'ignore' });
} catch {
  console.error('npm run package: strip not found (apt-get install binutils): the executable keeps its debug symbols');
}
try {
  // Its ELF library warns about each of NodeSource's .note sections: shown only if it fails.
  execFileSync(
    process.execPath,
    [
      require.resolve('postject/dist/cli.js'),
      executable,
      'NODE_SEA_BLOB',
      blob,
      '--sentinel-fuse',
      'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2',
    ],
    { stdio: 'pipe' },
  );
} catch (error) {
  process.stderr.write(String(error.stderr ?? error.message));
  rmSync(executable, { force: true });
  process.exit(1);
}

const mib = (statSync(executable).size / 2 ** 20).toFixed(1);
console.log(`wrote ${executable} (${mib} MiB, floodgate ${version}, node ${process.version})`);
