// The daemon's control socket (mode 0600 in the state directory) and the client the manual commands
// use to reach it. One JSON request line per connection; the answer is one JSON line, or, for a list,
// a header line and the items in lines of up to ANSWER_CHUNK (so 500k bans need no 100 MB line).
//
// Requests are handled as they arrive, not one after another: a status must not wait behind a ban
// list's drain (the caller orders what must be ordered). The socket is root-only, but its resources
// are bounded all the same: a client that sends nothing is dropped, request bytes are capped per
// connection and for all of them together, and so is the number of connections.
import { chmodSync, unlinkSync } from 'node:fs';
import { type Server, type Socket, connect, createServer } from 'node:net';
import { ConflictError, FloodgateError, UsageError } from '../errors.js';
import type { Request, Response } from './protocol.js';
import { runningUser } from '../bans/state-file.js';

export interface ControlLimits {
  /** The longest request line, in bytes (a ban list of about 3 million targets). @default 64 MiB */
  readonly maxRequestBytes: number;
  /** Request bytes all connections may hold together. @default 128 MiB */
  readonly maxBufferedBytes: number;
  /** Connections open at once; more are answered "busy". @default 128 */
  readonly maxConnections: number;
  /** Time a client has to send its whole request. @default 10 s */
  readonly requestTimeoutMs: number;
}

export const DEFAULT_CONTROL_LIMITS: ControlLimits = {
  maxRequestBytes: 64 * 1024 * 1024,
  maxBufferedBytes: 128 * 1024 * 1024,
  maxConnections: 128,
  requestTimeoutMs: 10_000,
};

/** Items per line of a streamed answer. */
const ANSWER_CHUNK = 1000;
const MiB = 1024 * 1024;

export interface ControlServer {
  readonly server: Server;
  /**
   * Stops listening and refuses every request not yet taken ("stopping"); resolves when each
   * request already taken has been answered (or its client has gone).
   */
  stop(): Promise<void>;
}

/** Splits a byte stream into lines without searching or copying what came before each chunk. */
class LineReader {
  private chunks: Buffer[] = [];
  length = 0;

  /** The lines this chunk completes. */
  push(chunk: Buffer): string[] {
    const lines: string[] = [];
    let from = 0;
    for (let end = chunk.indexOf(10, from); end >= 0; end = chunk.indexOf(10, from)) {
      this.chunks.push(chunk.subarray(from, end));
      // Decoded once per line: a character split between two chunks stays whole.
      lines.push(Buffer.concat(this.chunks).toString('utf8'));
      this.chunks = [];
      this.length = 0;
      from = end + 1;
    }
    if (from < chunk.length) {
      this.chunks.push(chunk.subarray(from));
      this.length += chunk.length - from;
    }
    return lines;
  }
}

const failure = (error: string, exitCode: number): Response => ({ ok: false, error, exitCode });

export function serveControl(
  path: string,
  mode: 'dry-run' | 'enforce',
  handle: (request: unknown) => Promise<unknown>,
  limits: ControlLimits = DEFAULT_CONTROL_LIMITS,
): Promise<ControlServer> {
  try {
    unlinkSync(path); // a socket file left by a killed daemon
  } catch {
    // none
  }
  let stopping = false;
  let buffered = 0; // request bytes held by every connection together
  // Connections still to send their request: how to refuse each.
  const waiting = new Set<(response: Response) => void>();
  const taken = new Set<Promise<void>>(); // requests being handled and answered
  const refusal = () =>
    failure(
      `floodgate (pid ${process.pid}) is stopping: this request was not taken ` +
        'and changed nothing; run it again once floodgate has stopped or restarted',
      5,
    );

  const answer = async (socket: Socket, response: Response, items?: readonly unknown[]): Promise<void> => {
    if (socket.destroyed) return;
    if (items === undefined) {
      socket.end(`${JSON.stringify(response)}\n`);
      return;
    }
    // In lines of ANSWER_CHUNK items, each written when the client has read the one before; a
    // client that stops reading is dropped rather than holding the answer for ever.
    socket.setTimeout(limits.requestTimeoutMs, () => socket.destroy());
    if (!socket.write(`${JSON.stringify({ ok: true, mode, items: items.length })}\n`)) await drained(socket);
    for (let i = 0; i < items.length && !socket.destroyed; i += ANSWER_CHUNK) {
      if (!socket.write(`${JSON.stringify(items.slice(i, i + ANSWER_CHUNK))}\n`)) await drained(socket);
    }
    socket.end();
  };

  const run = async (socket: Socket, line: string): Promise<void> => {
    let response: Response;
    let items: readonly unknown[] | undefined;
    try {
      let request: unknown;
      try {
        request = JSON.parse(line);
      } catch {
        throw new UsageError('a control request must be one line of JSON');
      }
      const result = await handle(request);
      if (Array.isArray(result)) items = result;
      response = { ok: true, result, mode };
    } catch (error) {
      const exitCode = error instanceof FloodgateError ? error.exitCode : 1;
      response = failure((error as Error).message, exitCode);
    }
    await answer(socket, response, items);
  };

  let open = 0;
  const server = createServer((socket) => {
    open++;
    const reader = new LineReader();
    let reading = true;
    let held = 0; // this connection's share of `buffered`
    const stopReading = () => {
      reading = false;
      waiting.delete(refuse);
      buffered -= held;
      held = 0;
      socket.setTimeout(0);
    };
    // Answered before its request was taken; whatever it still sends is read and dropped, and a
    // client that keeps the connection open is cut off shortly after.
    function refuse(response: Response): void {
      if (!reading) return;
      stopReading();
      void answer(socket, response);
      setTimeout(() => socket.destroy(), 1000).unref();
    }
    socket.on('error', () => socket.destroy()); // a client that went away: nothing to tell it
    socket.on('close', () => {
      open--;
      if (reading) stopReading();
    });
    if (stopping) return refuse(refusal());
    if (open > limits.maxConnections)
      return refuse(
        failure(`the running floodgate is busy (${limits.maxConnections} control connections open); try again`, 5),
      );
    waiting.add(refuse);
    socket.setTimeout(limits.requestTimeoutMs, () =>
      refuse(failure(`no request within ${limits.requestTimeoutMs / 1000} s: connection closed`, 2)),
    );
    socket.on('data', (chunk: Buffer) => {
      if (!reading) return; // after the request, or refused
      const lines = reader.push(chunk);
      if (lines.length === 0) {
        held += chunk.length;
        buffered += chunk.length;
        if (reader.length > limits.maxRequestBytes) {
          refuse(
            failure(
              `request too large: more than ${limits.maxRequestBytes / MiB} MiB (split a ban list into smaller ones)`,
              2,
            ),
          );
        } else if (buffered > limits.maxBufferedBytes) {
          refuse(
            failure(
              `the running floodgate is busy reading ${Math.round(buffered / MiB)} MiB of other requests; try again`,
              5,
            ),
          );
        }
        return;
      }
      // The first line is the request; anything after it is dropped.
      if (stopping) return refuse(refusal());
      stopReading();
      const job = run(socket, lines[0]!).finally(() => taken.delete(job));
      taken.add(job);
    });
  });

  return new Promise((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) => {
      // Not a bug: something else holds the path, or the directory refuses us.
      reject(
        new ConflictError(
          `cannot listen on the control socket ${path} (${error.code ?? error.message}): ` +
            'remove what is there if no floodgate runs, or check the state directory',
          { cause: error },
        ),
      );
    });
    server.listen(path, () => {
      chmodSync(path, 0o600);
      resolve({
        server,
        stop: async () => {
          stopping = true;
          server.close();
          for (const settleOne of [...waiting]) settleOne(refusal());
          while (taken.size > 0) await Promise.allSettled([...taken]);
        },
      });
    });
  });
}

function drained(socket: Socket): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      socket.off('drain', done);
      socket.off('close', done);
      resolve();
    };
    socket.on('drain', done);
    socket.on('close', done);
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
      throw new UsageError(
        `cannot reach ${path}: permission denied for ${runningUser()}, the user this command runs as; run ` +
          `it as the state directory's owner (root for /var/lib/floodgate), or choose another --state-dir`,
        { cause: error },
      );
    }
    throw error;
  }
  try {
    return await new Promise<Response>((resolve, reject) => {
      const reader = new LineReader();
      let header: Response | undefined;
      let expected = 0;
      const items: unknown[] = [];
      const fail = (error: Error) =>
        reject(
          new ConflictError(`the running floodgate closed the connection (${error.message}); see its log`, {
            cause: error,
          }),
        );
      const parse = (line: string): unknown => {
        try {
          return JSON.parse(line);
        } catch (error) {
          throw new ConflictError('the running floodgate sent an answer that is not JSON; see its log', {
            cause: error,
          });
        }
      };
      socket.on('data', (chunk: Buffer) => {
        try {
          for (const line of reader.push(chunk)) {
            if (header === undefined) {
              const first = parse(line) as Response & { items?: number };
              if (!first.ok || first.items === undefined) return resolve(first);
              header = first;
              expected = first.items;
            } else {
              for (const item of parse(line) as unknown[]) items.push(item);
            }
            if (header !== undefined && items.length >= expected)
              return resolve({ ok: true, result: items, mode: header.ok ? header.mode : 'dry-run' });
          }
        } catch (error) {
          reject(error);
        }
      });
      socket.on('end', () => {
        if (header === undefined)
          reject(
            new ConflictError(
              'the running floodgate closed the connection without an answer (did it stop?); see its log',
            ),
          );
        else
          reject(
            new ConflictError(
              `the running floodgate closed the connection after ${items.length} of ${expected} items; see its log`,
            ),
          );
      });
      socket.on('error', fail);
      socket.write(`${JSON.stringify(request)}\n`);
    });
  } finally {
    socket.destroy();
  }
}
