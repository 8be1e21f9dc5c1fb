// The service's HTTP listener (fastify 5, logging through the app's pino logger): health, readiness, Prometheus
// metrics, and the token-guarded JSON API under /api/v1/ with its OpenAPI document.
import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifySchema } from 'fastify';
import type { Logger } from 'pino';
import { registerApi, type ApiContext } from './api.js';
import type { ServiceMetrics } from './metrics.js';
import { collectRoutes } from './openapi.js';

/** One part the service needs to do its work; `problem` is null when it is fine, else what is wrong. */
export interface ReadinessCheck {
  name: string;
  problem(): string | null;
}

export interface HttpServerOptions {
  host: string;
  /** 0 = any free port. */
  port: number;
  logger: Logger;
  readiness: ReadinessCheck[];
  metrics?: ServiceMetrics;
  /** The JSON API; it is off (404 with the reason) without a token, while health and metrics stay. */
  api?: ApiContext & { token: string | undefined };
}

export interface RunningHttpServer {
  port: number;
  close(): Promise<void>;
}

/** Paths polled by health checkers and scrapers: logged at debug only, not one info line every few seconds. */
const QUIET = /^\/(healthz|readyz|metrics)(\?|$)/;

export function buildHttpServer(opts: HttpServerOptions): FastifyInstance {
  const server = Fastify({
    loggerInstance: opts.logger.child({ component: 'http' }) as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: (req) => QUIET.test(req.url) }),
    keepAliveTimeout: 5000,
    requestTimeout: 120_000,
    bodyLimit: 64 * 1024,
    exposeHeadRoutes: true,
  });
  const routes = collectRoutes(server);

  server.setErrorHandler((err: FastifyError, req, reply) => {
    const status = err.statusCode && err.statusCode >= 400 ? err.statusCode : 500;
    if (status >= 500) req.log.error({ err }, 'request failed');
    // A 500 says what failed without internals; the log has the stack.
    void reply.code(status).send({ statusCode: status, error: statusText(status), message: status >= 500 ? `internal error: ${err.message}` : err.message });
  });
  server.setNotFoundHandler((req, reply) => {
    void reply.code(404).send({ statusCode: 404, error: 'Not Found', message: `no such endpoint: ${req.method} ${req.url.split('?')[0]}` });
  });

  server.get('/healthz', { schema: { summary: 'The process is up', response: { 200: { type: 'object', properties: { status: { type: 'string' } } } } } }, async () => ({ status: 'ok' }));

  server.get('/readyz', {
    schema: {
      summary: 'Ready to work: database open and writable, SFTP listening, watcher running (503 names the failing part)',
      response: { '2xx': readySchema, 503: readySchema },
    },
  }, async (_req, reply) => {
    const checks: Record<string, string> = {};
    const failing: string[] = [];
    for (const c of opts.readiness) {
      let problem: string | null;
      try {
        problem = c.problem();
      } catch (err) {
        problem = (err as Error).message;
      }
      checks[c.name] = problem ?? 'ok';
      if (problem) failing.push(c.name);
    }
    if (failing.length === 0) return { status: 'ready', checks };
    return reply.code(503).send({ status: 'not ready', failing, checks, message: failing.map((f) => `${f}: ${checks[f]}`).join('; ') });
  });

  if (opts.metrics) {
    const metrics = opts.metrics;
    server.get('/metrics', { schema: { summary: 'Prometheus metrics (text exposition format)' } as FastifySchema }, async (_req, reply) => {
      const { contentType, body } = await metrics.text();
      return reply.type(contentType).send(body);
    });
  }

  if (opts.api) registerApi(server, opts.api, opts.api.token, routes);
  return server;
}

const readySchema = {
  type: 'object',
  properties: {
    status: { type: 'string' },
    failing: { type: 'array', items: { type: 'string' } },
    checks: { type: 'object', additionalProperties: { type: 'string' } },
    message: { type: 'string' },
  },
};

function statusText(code: number): string {
  return ({ 400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 405: 'Method Not Allowed', 409: 'Conflict', 413: 'Payload Too Large', 415: 'Unsupported Media Type', 429: 'Too Many Requests', 503: 'Service Unavailable' } as Record<number, string>)[code] ?? (code >= 500 ? 'Internal Server Error' : 'Error');
}

/** Starts listening; rejects (e.g. EADDRINUSE) when the port cannot be bound, so `serve` can exit with the reason. */
export async function startHttpServer(opts: HttpServerOptions): Promise<RunningHttpServer> {
  const server = buildHttpServer(opts);
  try {
    await server.listen({ host: opts.host, port: opts.port, listenTextResolver: (address) => `HTTP listening on ${address}` });
  } catch (err) {
    await server.close().catch(() => undefined);
    const e = err as NodeJS.ErrnoException;
    const reason = e.code === 'EADDRINUSE' ? `HTTP port ${opts.host}:${opts.port} is already in use` : e.code === 'EACCES' ? `no permission to listen on HTTP port ${opts.host}:${opts.port}` : `HTTP listener on ${opts.host}:${opts.port} cannot start: ${e.message}`;
    throw Object.assign(new Error(reason, { cause: err }), { code: e.code });
  }
  const address = server.server.address();
  return {
    port: typeof address === 'object' && address ? address.port : opts.port,
    close: async () => {
      server.server.closeAllConnections();
      await server.close();
    },
  };
}
