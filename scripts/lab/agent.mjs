// floodgate lab: attacker/client traffic agent. Runs INSIDE the attacker network
// namespace (started by scripts/lab/lab.ts via `ip netns exec <atk> node agent.mjs`).
//
// Opens plain non-blocking TCP connects bound to given source addresses and holds
// the sockets until told to close them. Half-open floods are made by the lab
// dropping the server's SYN-ACKs in the attacker namespace's INPUT chain, so the
// connect never completes and the server keeps one SYN_RECV request per connect.
// The same code path serves IPv4 and IPv6.
//
// Control protocol: JSON lines on stdin/stdout (see listener.mjs). Exits when
// stdin closes.
import net from 'node:net';
import readline from 'node:readline';

/** @type {Map<string, Set<import('node:net').Socket>>} */
const groups = new Map();
let lateErrors = 0;
/** @type {Record<string, number>} */
const lateErrorCodes = {};

function group(name) {
  let g = groups.get(name);
  if (!g) {
    g = new Set();
    groups.set(name, g);
  }
  return g;
}

/**
 * @param {{host:string, port:number, sources:string[], perSource:number, group?:string, wait?:'issued'|'connect', timeoutMs?:number}} o
 */
function connect(o) {
  const g = group(o.group ?? 'default');
  const want = o.sources.length * o.perSource;
  const waitConnect = o.wait === 'connect';
  return new Promise((resolve, reject) => {
    let connected = 0;
    let settled = false;
    const errors = [];
    const finish = (err) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err) reject(err);
      else resolve({ opened: want, connected });
    };
    const timer = setTimeout(
      () =>
        finish(
          new Error(
            `only ${connected}/${want} connected after ${o.timeoutMs ?? 20000} ms; errors: ${errors.slice(0, 5).join('; ')}`,
          ),
        ),
      o.timeoutMs ?? 20000,
    );
    for (const src of o.sources) {
      for (let i = 0; i < o.perSource; i++) {
        const s = net.connect({ host: o.host, port: o.port, localAddress: src });
        g.add(s);
        s.setNoDelay(true);
        s.on('connect', () => {
          connected++;
          if (waitConnect && connected === want) finish();
        });
        s.on('error', (e) => {
          const msg = `${src}: ${e.code ?? e.message}`;
          if (!settled) {
            errors.push(msg);
            finish(new Error(`connect from ${msg}`));
          } else {
            lateErrors++;
            lateErrorCodes[e.code ?? 'other'] = (lateErrorCodes[e.code ?? 'other'] ?? 0) + 1;
          }
        });
        s.on('close', () => g.delete(s));
        s.resume();
      }
    }
    // Without waiting for completion: every connect() has been issued after the
    // nextTick queue drained (IP literal -> no DNS); give bind errors a moment.
    if (!waitConnect) setTimeout(() => finish(), 50);
  });
}

function close({ group: name }) {
  let n = 0;
  const names = name ? [name] : [...groups.keys()];
  for (const k of names) {
    const g = groups.get(k);
    if (!g) continue;
    for (const s of g) {
      s.destroy();
      n++;
    }
    groups.delete(k);
  }
  return n;
}

function stats() {
  const out = {};
  for (const [k, g] of groups) out[k] = g.size;
  return { groups: out, lateErrors, lateErrorCodes };
}

const handlers = { connect, close, stats, ping: () => 'pong' };

const reply = (obj) => process.stdout.write(`${JSON.stringify(obj)}\n`);
const rl = readline.createInterface({ input: process.stdin });
rl.on('line', async (line) => {
  if (!line.trim()) return;
  let msg;
  try {
    msg = JSON.parse(line);
  } catch {
    reply({ id: null, ok: false, error: `bad json: ${line}` });
    return;
  }
  const fn = handlers[msg.cmd];
  if (!fn) return reply({ id: msg.id, ok: false, error: `unknown cmd ${msg.cmd}` });
  try {
    reply({ id: msg.id, ok: true, result: (await fn(msg)) ?? null });
  } catch (e) {
    reply({ id: msg.id, ok: false, error: String(e?.message ? e.message : e) });
  }
});
rl.on('close', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0));
reply({ id: 0, ok: true, result: 'ready' });
