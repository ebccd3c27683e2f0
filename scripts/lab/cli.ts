/**
 * floodgate lab CLI (run as root):
 *   npx tsx scripts/lab/cli.ts up [--syncookies]
 *   npx tsx scripts/lab/cli.ts scenario <name> [--syncookies]
 *   npx tsx scripts/lab/cli.ts capture <dir> [scenario ...]
 *   npx tsx scripts/lab/cli.ts cleanup
 *   npx tsx scripts/lab/cli.ts list
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { cleanupStaleLabs, createLab, listLabNamespaces, type Lab } from './lab.js';
import {
  captureTables,
  expectedFor,
  findScenario,
  observedSynRecvByIp,
  runScenario,
  SCENARIOS,
  type Scenario,
} from './scenarios.js';
import { FORMAT_NOTES } from './notes.js';

const USAGE = `floodgate lab: throw-away network namespaces for connection-flood tests (root only)

usage: npx tsx scripts/lab/cli.ts <command> [args]

commands:
  up [--syncookies]            bring up an empty lab (listeners on :80 dual-stack and :443),
                               print the namespace names, stay up until Ctrl-C, then tear down
  scenario <name> [--syncookies]
                               bring up a lab, run a named traffic scenario, print what was done,
                               stay up until Ctrl-C (half-open sockets are kept alive ~30 min:
                               tcp_synack_retries=20 in the server ns)
  capture <dir> [name ...]     run the capture scenarios (default: ${SCENARIOS.filter((s) => s.capture)
    .map((s) => s.name)
    .join(', ')}) each in a fresh lab and
                               write <dir>/<name>/{proc-*,netstat-*,ss-*}.txt + expected.json
  cleanup                      remove namespaces of dead labs (fgl-<pid>-<rand>-srv/atk)
  list                         list lab namespaces present now

scenarios:
${SCENARIOS.map((s) => `  ${s.name.padEnd(18)} ${s.description}`).join('\n')}
`;

function holdUntilSignal(lab: Lab): Promise<never> {
  return new Promise<never>(() => {
    const keepAlive = setInterval(() => {}, 1 << 30);
    const stop = (sig: string) => {
      process.stderr.write(`\n${sig}: tearing down ${lab.server} / ${lab.attacker} ...\n`);
      void lab.destroy().finally(() => {
        clearInterval(keepAlive);
        process.stderr.write('done, namespaces removed\n');
        process.exit(0);
      });
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGHUP', () => stop('SIGHUP'));
  });
}

function printLab(lab: Lab): void {
  console.log(`lab ${lab.id}
  server   ns: ${lab.server}   if ${lab.serverIf}   ${lab.serverAddr4}  ${lab.serverAddr6}
  attacker ns: ${lab.attacker}   if ${lab.attackerIf}   ${lab.attackerAddr4}  ${lab.attackerAddr6}
  listeners (server): tcp [::]:80 (dual-stack), 0.0.0.0:443, [::]:443 (v6only); udp 0.0.0.0:53, [::]:53
  server routes 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32 via the attacker

  exec in them:
    ip netns exec ${lab.server} ss -tan
    ip netns exec ${lab.server} bash
    ip netns exec ${lab.attacker} bash`);
}

async function cmdUp(args: string[]): Promise<void> {
  const t0 = Date.now();
  const lab = await createLab({ syncookies: args.includes('--syncookies'), synackRetries: 20 });
  printLab(lab);
  console.log(`\nup in ${Date.now() - t0} ms. Ctrl-C to tear down.`);
  await holdUntilSignal(lab);
}

async function cmdScenario(args: string[]): Promise<void> {
  const name = args.find((a) => !a.startsWith('--'));
  if (!name) throw new Error('scenario: missing <name>');
  const sc = findScenario(name);
  const syncookies = args.includes('--syncookies') || !!sc.lab.syncookies;
  const t0 = Date.now();
  const lab = await createLab({ ...sc.lab, syncookies, synackRetries: 20 });
  try {
    printLab(lab);
    console.log(`\nscenario ${sc.name} (syncookies ${syncookies ? 'on' : 'off'}): ${sc.description}`);
    await runScenario(lab, sc, { log: (m) => console.log(`  - ${m}`) });
    const rows = await lab.serverSockets();
    const byState = new Map<string, number>();
    for (const r of rows) byState.set(r.state, (byState.get(r.state) ?? 0) + 1);
    console.log(
      `\nserver now shows (ss): ${[...byState].map(([k, v]) => `${k}=${v}`).join(' ')}  [${Date.now() - t0} ms]`,
    );
    const top = [...(await lab.countServer())].sort((a, b) => b[1] - a[1]).slice(0, 8);
    console.log(`top peers: ${top.map(([ip, n]) => `${ip}=${n}`).join(' ')}`);
  } catch (e) {
    await lab.destroy();
    throw e;
  }
  console.log('\nCtrl-C to tear down.');
  await holdUntilSignal(lab);
}

async function captureOne(sc: Scenario, dir: string): Promise<void> {
  const out = path.join(dir, sc.name);
  await mkdir(out, { recursive: true });
  const t0 = Date.now();
  const lab = await createLab({ ...sc.lab });
  const tUp = Date.now() - t0;
  try {
    await runScenario(lab, sc, {
      log: (m) => console.log(`    ${m}`),
      snapshot: async (file, argv) => {
        const r = await lab.execServer(argv);
        await writeFile(path.join(out, file), r.stdout);
      },
    });
    const tRun = Date.now() - t0 - tUp;
    const cap = await captureTables(lab, out);
    const expected = expectedFor(sc);
    const notes = [expected.notes, ...FORMAT_NOTES].filter(Boolean).join(' ');
    const doc: Record<string, unknown> = { ...expected, notes };
    if (sc.steps.some((s) => s.kind === 'synSettle')) {
      doc.observedSynRecvByIp = observedSynRecvByIp(await readFile(path.join(out, 'ss-tan.txt'), 'utf8'));
    }
    doc.capturedAt = new Date().toISOString();
    doc.kernel = (await lab.execServer(['uname', '-r'])).stdout.trim();
    await writeFile(path.join(out, 'expected.json'), `${JSON.stringify(doc, null, 2)}\n`);
    console.log(`  ${sc.name}: createLab ${tUp} ms, traffic ${tRun} ms, capture spread ${cap.spreadMs} ms -> ${out}`);
  } finally {
    await lab.destroy();
  }
}

async function cmdCapture(args: string[]): Promise<void> {
  const dir = args[0];
  if (!dir) throw new Error('capture: missing <dir>');
  const names = args.slice(1);
  const list = names.length ? names.map(findScenario) : SCENARIOS.filter((s) => s.capture);
  const t0 = Date.now();
  for (const sc of list) {
    console.log(`capturing ${sc.name} ...`);
    await captureOne(sc, dir);
  }
  console.log(`done in ${Date.now() - t0} ms`);
}

async function main(): Promise<void> {
  const [cmd, ...args] = process.argv.slice(2);
  switch (cmd) {
    case 'up':
      return cmdUp(args);
    case 'scenario':
      return cmdScenario(args);
    case 'capture':
      return cmdCapture(args);
    case 'cleanup': {
      const removed = await cleanupStaleLabs();
      console.log(removed.length ? `removed: ${removed.join(' ')}` : 'nothing to remove');
      const left = listLabNamespaces();
      if (left.length) console.log(`still present (owner alive): ${left.join(' ')}`);
      return;
    }
    case 'list':
      console.log(listLabNamespaces().join('\n') || '(none)');
      return;
    case undefined:
    case '-h':
    case '--help':
    case 'help':
      process.stdout.write(USAGE);
      return;
    default:
      process.stderr.write(`unknown command "${cmd}"\n\n${USAGE}`);
      process.exitCode = 2;
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`error: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
