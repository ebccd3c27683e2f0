/**
 * A walk-through of one attack, end to end, in a throw-away lab (root only):
 *   npx tsx scripts/lab/demo.ts [--backend iptables|ipset|nftables]
 * Brings a lab up, floods the server (one heavy SYN flooder, a spread flood from one /24, an IPv6
 * flood from one /64, normal clients), shows `floodgate scan` before, runs `floodgate run --enforce`
 * in the server namespace until the bans are in, shows the log, `floodgate list`, the firewall,
 * and `floodgate scan` after. Everything happens inside the lab's namespaces, which are removed at
 * the end (also on Ctrl-C).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createLab } from './lab.js';
import { range4, range6 } from './scenarios.js';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const cli = join(repo, 'dist/src/cli/main.cjs');
const backendFlag = process.argv.indexOf('--backend');
const backend = backendFlag > 0 ? process.argv[backendFlag + 1]! : 'iptables';

async function main(): Promise<void> {
  const lab = await createLab({ synackRetries: 8 });
  const stateDir = mkdtempSync(join(tmpdir(), 'floodgate-demo-'));
  const policyFile = join(stateDir, 'policy.yaml');
  writeFileSync(
    policyFile,
    readFileSync(join(repo, 'policies/default.yaml'), 'utf8')
      .replace('interval: 5s', 'interval: 1s')
      .replace('backend: iptables', `backend: ${backend}`),
  );
  const say = (title: string, text = '') => process.stdout.write(`\n$ ${title}\n${text.trimEnd()}\n`);
  const floodgate = async (args: string[]) =>
    (
      await lab.execServer(
        ['node', cli, ...args, '--state-dir', stateDir].filter(
          (a) => !(args[0] === 'scan' && (a === '--state-dir' || a === stateDir)),
        ),
      )
    ).stdout;
  try {
    await lab.normalClients({ sources: range4('198.51.100', 10, 14), perSource: 3, port: 443 });
    await lab.synFlood({ sources: ['198.51.100.66'], perSource: 30, port: 80 });
    await lab.synFlood({ sources: range4('203.0.113', 1, 40), perSource: 5, port: 443 });
    await lab.synFlood({ sources: range6('2001:db8:1::', 1, 40), perSource: 3, port: 80 });

    say('floodgate scan --state SYN_RECV --top 5', await floodgate(['scan', '--state', 'SYN_RECV', '--top', '5']));
    say(
      'floodgate scan --state SYN_RECV --by net --top 5',
      await floodgate(['scan', '--state', 'SYN_RECV', '--by', 'net', '--top', '5']),
    );

    // The lines exactly as a terminal shows them (without colour).
    const daemon = lab.spawnServer(
      ['node', cli, 'run', '--enforce', '--policy', policyFile, '--state-dir', stateDir, '--log-format', 'pretty'],
      { env: { NO_COLOR: '1' } },
    );
    let log = '';
    daemon.stdout!.on('data', (chunk: Buffer) => (log += chunk.toString()));
    daemon.stderr!.on('data', (chunk: Buffer) => (log += chunk.toString()));
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline && (log.match(/ INFO {2}ban /g)?.length ?? 0) < 3)
      await new Promise((r) => setTimeout(r, 200));
    await new Promise((r) => setTimeout(r, 1500));

    say(
      `floodgate run --enforce --policy policy.yaml   # (interval 1s, backend ${backend}; log lines, abridged)`,
      log.trimEnd(),
    );
    say('floodgate list', await floodgate(['list']));
    // A state directory other than /var/lib/floodgate names its table after its instance id.
    const table = `floodgate-${readFileSync(join(stateDir, 'instance-id'), 'utf8').trim()}`;
    const rules =
      backend === 'iptables'
        ? `${(await lab.execServer(['iptables', '-S', 'INPUT'])).stdout}${(await lab.execServer(['ip6tables', '-S', 'INPUT'])).stdout}`
        : backend === 'ipset'
          ? (await lab.execServer(['ipset', 'save'])).stdout
          : (await lab.execServer(['nft', 'list', 'table', 'inet', table])).stdout;
    say(
      backend === 'iptables'
        ? 'iptables -S INPUT; ip6tables -S INPUT'
        : backend === 'ipset'
          ? 'ipset save'
          : `nft list table inet ${table}`,
      rules,
    );
    say(
      'floodgate scan --state SYN_RECV --top 5   # after: the half-open sockets of banned sources were destroyed (ss -K)',
      await floodgate(['scan', '--state', 'SYN_RECV', '--top', '5']),
    );
    daemon.kill('SIGTERM');
    await new Promise((r) => daemon.once('exit', r));
    await floodgate(['flush', '--enforce', '--policy', policyFile]);
  } finally {
    await lab.destroy();
    rmSync(stateDir, { recursive: true, force: true });
  }
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
