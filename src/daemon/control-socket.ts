// The daemon's control socket (mode 0600 in the state directory) and the client the manual commands
// use to reach it. One JSON line each way per connection.
import { chmodSync, unlinkSync } from 'node:fs';
import { type Server, type Socket, connect, createServer } from 'node:net';
import { ConflictError, FloodgateError, UsageError } from '../errors.js';
import type { Request, Response } from './protocol.js';
import { runningUser } from '../bans/state-file.js';

function readLine(socket: Socket, limit = 64 * 1024 * 1024): Promise<string> {
  return new Promise((resolve, reject) => {
    // The chunks are kept and only the newest one is searched: a big answer (list with 100k bans is
    // 17 MB) comes in hundreds of chunks, and searching all the text so far each time was quadratic.
    // Decoded once at the end, so a character split between two chunks stays whole.
    const chunks: Buffer[] = [];
    let length = 0;
    let done = false;
    const finish = (last?: Buffer) => {
      if (done) return;
      done = true;
      if (last !== undefined) chunks.push(last);
      resolve(Buffer.concat(chunks).toString('utf8'));
    };
    socket.on('data', (chunk: Buffer) => {
      if (done) return;
      const end = chunk.indexOf(10); // \n
      if (end >= 0) return finish(chunk.subarray(0, end));
      chunks.push(chunk);
      length += chunk.length;
      if (length > limit) socket.destroy(new Error('request too large'));
    });
    socket.on('end', () => finish());
    socket.on('error', reject);
  });
}

export function serveControl(path: string, mode: 'dry-run' | 'enforce', handle: (request: Request) => Promise<unknown>): Promise<Server> {
  try {
    unlinkSync(path); // a socket file left by a killed daemon
  } catch {
    // none
  }
  // Requests run one at a time, in arrival order: two manual commands never interleave.
  let chain: Promise<unknown> = Promise.resolve();
  const server = createServer((socket) => {
    readLine(socket)
      .then((line) => {
        const job = chain.then(async (): Promise<Response> => {
          try {
            return { ok: true, result: await handle(JSON.parse(line) as Request), mode };
          } catch (error) {
            const exitCode = error instanceof FloodgateError ? error.exitCode : 1;
            return { ok: false, error: (error as Error).message, exitCode };
          }
        });
        // The chain holds on to nothing: a bulk ban's results would otherwise stay in memory until
        // the next request.
        chain = job.then(
          () => undefined,
          () => undefined,
        );
        return job;
      })
      .then((response) => socket.end(`${JSON.stringify(response)}\n`))
      .catch(() => socket.destroy());
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => {
      chmodSync(path, 0o600);
      resolve(server);
    });
  });
}

/** Sends one request; null when no daemon listens on the socket. */
export async function sendControl(path: string, request: Request): Promise<Response | null> {
  let socket: Socket;
  try {
    socket = await new Promise<Socket>((resolve, reject) => {
      const s = connect(path, () => resolve(s));
      s.once('error', reject);
    });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ECONNREFUSED' || code === 'ENOTDIR') return null;
    if (code === 'EACCES' || code === 'EPERM') {
      throw new UsageError(`cannot reach ${path}: permission denied for ${runningUser()}, the user this command runs as; run it as the state directory's owner (root for /var/lib/floodgate), or choose another --state-dir`, { cause: error });
    }
    throw error;
  }
  socket.write(`${JSON.stringify(request)}\n`);
  let line: string;
  try {
    line = await readLine(socket);
  } catch (error) {
    throw new ConflictError(`the running floodgate closed the connection (${(error as Error).message}); see its log`, { cause: error });
  } finally {
    socket.destroy();
  }
  try {
    return JSON.parse(line) as Response;
  } catch (error) {
    throw new ConflictError('the running floodgate closed the connection without an answer (did it stop?); see its log', { cause: error });
  }
}
