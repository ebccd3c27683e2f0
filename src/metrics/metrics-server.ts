// The HTTP endpoint Prometheus scrapes: GET /metrics on the policy's metrics.listen, nothing else.
import { type Server, createServer } from 'node:http';
import { ConfigError } from '../errors.js';
import { parseListen } from '../policy/schema.js';
import type { FloodgateMetrics } from './metrics.js';

export interface MetricsServer {
  /** The address bound, as `host:port` (`[::1]:9464` for IPv6); the port is the real one for port 0. */
  readonly address: string;
  stop(): Promise<void>;
}

/**
 * Binds `listen` and serves the metrics. A failure to bind (the port taken, an address this host
 * lacks) is a ConfigError naming the policy file, the key and the address.
 */
export async function serveMetrics(
  metrics: FloodgateMetrics,
  listen: string,
  policyFile: string,
): Promise<MetricsServer> {
  const where = parseListen(listen);
  if (where === null)
    throw new ConfigError(
      `${policyFile}: metrics.listen: expected an address and port like 127.0.0.1:9464 or [::1]:9464, got "${listen}"`,
    );
  const server: Server = createServer((request, response) => {
    const path = (request.url ?? '/').split('?')[0];
    if (path !== '/metrics') {
      response
        .writeHead(404, { 'content-type': 'text/plain; charset=utf-8' })
        .end('not found: floodgate serves its metrics at /metrics\n');
      return;
    }
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response
        .writeHead(405, { 'content-type': 'text/plain; charset=utf-8', allow: 'GET, HEAD' })
        .end('only GET /metrics\n');
      return;
    }
    metrics.exposition().then(
      (text) =>
        response
          .writeHead(200, { 'content-type': metrics.registry.contentType })
          .end(request.method === 'HEAD' ? undefined : text),
      (error: unknown) =>
        response
          .writeHead(500, { 'content-type': 'text/plain; charset=utf-8' })
          .end(`could not collect the metrics: ${(error as Error).message}\n`),
    );
  });
  // A scraper that keeps its connection open must not hold up the daemon's stop.
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) => {
      const why =
        error.code === 'EADDRINUSE'
          ? 'the address is in use (another floodgate or exporter?)'
          : error.code === 'EADDRNOTAVAIL'
            ? 'this host has no such address'
            : error.code === 'EACCES'
              ? 'permission denied'
              : error.message;
      reject(
        new ConfigError(
          `${policyFile}: metrics.listen: cannot listen on ${listen}: ${why}${error.code ? ` (${error.code})` : ''}`,
        ),
      );
    });
    server.listen({ host: where.host, port: where.port }, () => resolve());
  });
  const bound = server.address();
  const port = bound !== null && typeof bound === 'object' ? bound.port : where.port;
  return {
    address: where.host.includes(':') ? `[${where.host}]:${port}` : `${where.host}:${port}`,
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
