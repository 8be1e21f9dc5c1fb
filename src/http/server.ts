// The service's small HTTP listener: health now; metrics and the JSON API grow here.
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface HealthSource {
  /** Null when healthy, else what is wrong. */
  problem(): string | null;
}

export interface RunningHttpServer {
  port: number;
  close(): Promise<void>;
}

export async function startHttpServer(host: string, port: number, health: HealthSource): Promise<RunningHttpServer> {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body) + '\n');
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, { error: 'method not allowed' });
    if (url.pathname === '/healthz') {
      const problem = health.problem();
      return problem ? send(503, { status: 'unhealthy', problem }) : send(200, { status: 'ok' });
    }
    send(404, { error: `no such endpoint: ${url.pathname}` });
  });
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
