// floodgate lab: server-side listener. Runs INSIDE the server network namespace
// (started by scripts/lab/lab.ts via `ip netns exec <srv> node listener.mjs`).
//
// Holds every accepted TCP connection open until the peer closes it (or until
// told to close it first, which leaves the SERVER side in TIME_WAIT), and keeps
// a few UDP sockets open so /proc/net/udp{,6} are not empty.
//
// Control protocol: one JSON object per line on stdin, one JSON reply per line
// on stdout: {"id":1,"cmd":"listen",...} -> {"id":1,"ok":true,"result":...}.
// The process exits when stdin closes (i.e. when the owning lab process dies).
import net from 'node:net';
import dgram from 'node:dgram';
import readline from 'node:readline';

/** @type {Set<import('node:net').Socket>} */
const accepted = new Set();
/** @type {Map<string, import('node:net').Server>} */
const servers = new Map();
/** @type {import('node:dgram').Socket[]} */
const udpSockets = [];

const plain = (a) => (a?.startsWith('::ffff:') && a.includes('.') ? a.slice(7) : a);

function listen({ port, host, ipv6Only = false, backlog = 65535 }) {
  return new Promise((resolve, reject) => {
    const srv = net.createServer({ pauseOnConnect: false }, (sock) => {
      accepted.add(sock);
      sock.on('error', () => {});
      sock.on('close', () => accepted.delete(sock));
      sock.resume(); // discard whatever the client sends
    });
    srv.on('error', reject);
    srv.listen({ port, host, ipv6Only, backlog }, () => {
      servers.set(`${host}:${port}`, srv);
      resolve(srv.address());
    });
  });
}

function udp({ type, bindAddr, port, connectAddr, connectPort }) {
  return new Promise((resolve, reject) => {
    const s = dgram.createSocket({ type, ipv6Only: type === 'udp6' });
    s.on('error', reject);
    s.on('message', () => {});
    s.bind({ address: bindAddr, port: port ?? 0 }, () => {
      udpSockets.push(s);
      if (connectAddr) {
        s.connect(connectPort, connectAddr, (err) => (err ? reject(err) : resolve(s.address())));
      } else resolve(s.address());
    });
  });
}

/** Close (server first) every accepted connection from `addr` (optionally only on local `port`). */
function closeFrom({ addr, port }) {
  let n = 0;
  for (const s of accepted) {
    if (plain(s.remoteAddress) === addr && (port === undefined || s.localPort === port)) {
      s.end();
      n++;
    }
  }
  return n;
}

function stats() {
  return { accepted: accepted.size, servers: [...servers.keys()], udp: udpSockets.length };
}

const handlers = {
  listen,
  udp,
  closeFrom,
  stats,
  ping: () => 'pong',
  closeAll: () => {
    const n = accepted.size;
    for (const s of accepted) s.destroy();
    return n;
  },
};

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
    const result = await fn(msg);
    reply({ id: msg.id, ok: true, result: result ?? null });
  } catch (e) {
    reply({ id: msg.id, ok: false, error: String(e?.message ? e.message : e) });
  }
});
rl.on('close', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0));
reply({ id: 0, ok: true, result: 'ready' });
