// The JSON API under /api/v1/: tenants, their files, runs and held runs, a run's report (JSON and text), the
// directory (paged) and approving a held run. Guarded by a bearer token (WT_SYNC_API_TOKEN), compared in
// constant time; without a token the API is off. Runs and reports are read through src/store/ only.
import { createHash, timingSafeEqual } from 'node:crypto';
import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { App } from '../app.js';
import { approveRun, RunError } from '../apply/run.js';
import type { TenantConfig } from '../config/schema.js';
import { FILE_TYPES } from '../model.js';
import type { Staleness } from '../notify/staleness.js';
import { reportJson, reportLines } from '../report/text.js';
import { listFiles } from '../store/files.js';
import { getRun, listRuns, runSummary } from '../store/runs.js';
import { directoryView } from '../targets/directory-view.js';
import { readDirectory } from '../targets/embedded.js';
import { openApiDocument, type CollectedRoute } from './openapi.js';

export interface ApiContext {
  app: App;
  /** The tenants as their files say now. */
  tenants(): TenantConfig[];
  staleness(tenant: TenantConfig): Staleness | null;
  version: string;
}

export const API_PREFIX = '/api/v1';

class HttpError extends Error {
  constructor(readonly statusCode: number, message: string) {
    super(message);
  }
}

const digest = (s: string) => createHash('sha256').update(s).digest();

/** Constant-time: both sides are hashed to the same length first, so neither length nor content leaks. */
export function tokenMatches(expected: string, header: string | undefined): boolean {
  const m = /^Bearer (.+)$/i.exec(header ?? '');
  const offered = m ? m[1].trim() : '';
  return timingSafeEqual(digest(expected), digest(offered)) && offered.length > 0;
}

const error = { type: 'object', properties: { statusCode: { type: 'integer' }, error: { type: 'string' }, message: { type: 'string' } } };
const errors = { 400: error, 401: error, 404: error };
const tenantParams = { type: 'object', required: ['tenant'], properties: { tenant: { type: 'string', description: 'tenant id' } } };
const runParams = { type: 'object', required: ['tenant', 'run'], properties: { tenant: { type: 'string', description: 'tenant id' }, run: { type: 'integer', minimum: 1, description: 'run id' } } };
const limitQuery = { type: 'object', properties: { limit: { type: 'integer', minimum: 1, maximum: 1000, default: 50, description: 'newest first, at most this many' } } };
const anyObject = { type: 'object', additionalProperties: true };
const runSummarySchema = {
  type: 'object',
  properties: {
    id: { type: 'integer' }, tenant: { type: 'string' }, status: { type: 'string' }, createdAt: { type: 'string' }, finishedAt: { type: ['string', 'null'] },
    trigger: { type: 'object', properties: { kind: { type: 'string' }, fileIds: { type: 'array', items: { type: 'integer' } }, approves: { type: 'integer' } } },
  },
};
const fileSchema = {
  type: 'object',
  properties: {
    id: { type: 'integer' }, tenant: { type: 'string' }, name: { type: 'string' }, type: { type: ['string', 'null'] }, size: { type: 'integer' }, sha256: { type: 'string' },
    receivedAt: { type: 'string' }, processedAt: { type: ['string', 'null'] }, status: { type: 'string' }, dataRows: { type: ['integer', 'null'] }, validRows: { type: ['integer', 'null'] },
    runId: { type: ['integer', 'null'] }, problems: { type: 'array', items: anyObject },
  },
};
const stalenessSchema = {
  type: ['object', 'null'],
  properties: { everyHours: { type: 'number' }, lastFileAt: { type: ['string', 'null'] }, staleSince: { type: ['string', 'null'] }, stale: { type: 'boolean' } },
};
const tenantSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' }, name: { type: 'string' }, types: { type: 'array', items: { type: 'string' } }, sync: anyObject, source: { type: 'string' }, target: { type: 'string' },
    keys: { type: 'integer' }, reportEmails: { type: 'integer' }, heldRuns: { type: 'array', items: { type: 'integer' } }, latestRun: { anyOf: [runSummarySchema, { type: 'null' }] },
    staleness: stalenessSchema,
  },
};
const page = (items: unknown) => ({ type: 'object', properties: { total: { type: 'integer' }, offset: { type: 'integer' }, limit: { type: 'integer' }, items: { type: 'array', items } } });
const pageQuery = {
  type: 'object',
  properties: {
    offset: { type: 'integer', minimum: 0, default: 0 },
    limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
    removed: { type: 'boolean', default: false, description: 'users only: include users marked for removal' },
  },
};
const userSchema = {
  type: 'object',
  properties: Object.fromEntries([
    ...['externalId', 'firstName', 'lastName', 'username', 'email', 'phone', 'title', 'birthday', 'employedSince', 'employedUntil', 'gender', 'status', 'language', 'removedAt', 'purgeAfter'].map((f) => [f, { type: ['string', 'null'] }]),
    ...['memberOf', 'adminOf', 'segments'].map((f) => [f, { type: 'array', items: { type: 'string' } }]),
  ]),
};
const directorySchemas = {
  users: userSchema,
  groups: { type: 'object', properties: { externalId: { type: ['string', 'null'] }, name: { type: 'string' }, parentId: { type: ['string', 'null'] } } },
  segments: { type: 'object', properties: { externalId: { type: ['string', 'null'] }, name: { type: 'string' } } },
};

type TenantReq = FastifyRequest<{ Params: { tenant: string } }>;
type RunReq = FastifyRequest<{ Params: { tenant: string; run: number } }>;

export function registerApi(server: FastifyInstance, ctx: ApiContext, token: string | undefined, routes: CollectedRoute[]): void {
  const { app } = ctx;

  server.addHook('onRequest', async (req: FastifyRequest, reply: FastifyReply) => {
    const url = req.url.split('?')[0];
    if (url !== API_PREFIX && !url.startsWith(`${API_PREFIX}/`)) return;
    if (!token) throw new HttpError(404, 'the API is off: set WT_SYNC_API_TOKEN to enable it (health and metrics stay available)');
    if (url === `${API_PREFIX}/openapi.json`) return;
    if (!tokenMatches(token, req.headers.authorization)) {
      void reply.header('www-authenticate', 'Bearer');
      throw new HttpError(401, 'missing or wrong bearer token (Authorization: Bearer <WT_SYNC_API_TOKEN>)');
    }
  });

  const tenantOf = (id: string): TenantConfig => {
    const t = ctx.tenants().find((x) => x.id === id);
    if (!t) throw new HttpError(404, `no tenant "${id}"`);
    return t;
  };
  const runOf = (tenant: TenantConfig, id: number) => {
    const run = runSummary(app.db, id);
    if (!run || run.tenant !== tenant.id) throw new HttpError(404, `no run ${id} for tenant ${tenant.id}`);
    return run;
  };
  const heldRuns = (tenantId: string) => listRuns(app.db, tenantId, 1000).filter((r) => r.status === 'held').map((r) => r.id);
  const describeTenant = (t: TenantConfig) => ({
    id: t.id, name: t.name, types: FILE_TYPES.filter((f) => t.files[f]), sync: t.sync, source: t.source.type, target: t.target.type,
    keys: t.keys.length, reportEmails: t.reports.email.length, heldRuns: heldRuns(t.id), latestRun: listRuns(app.db, t.id, 1)[0] ?? null,
    staleness: ctx.staleness(t),
  });

  server.get(`${API_PREFIX}/openapi.json`, { schema: { summary: 'This OpenAPI document', security: [], response: { 200: anyObject } } }, async () =>
    openApiDocument(routes, { title: 'wt-sync API', version: ctx.version, prefix: API_PREFIX }));

  server.get(`${API_PREFIX}/tenants`, { schema: { summary: 'Every tenant with its latest run, held runs and staleness', tags: ['tenants'], response: { 200: { type: 'array', items: tenantSchema }, ...errors } } },
    async () => ctx.tenants().map(describeTenant));

  server.get(`${API_PREFIX}/tenants/:tenant`, { schema: { summary: 'One tenant', tags: ['tenants'], params: tenantParams, response: { 200: tenantSchema, ...errors } } },
    async (req: TenantReq) => describeTenant(tenantOf(req.params.tenant)));

  server.get(`${API_PREFIX}/tenants/:tenant/files`, { schema: { summary: "The tenant's received files, newest first", tags: ['files'], params: tenantParams, querystring: limitQuery, response: { 200: { type: 'array', items: fileSchema }, ...errors } } },
    async (req: FastifyRequest<{ Params: { tenant: string }; Querystring: { limit: number } }>) => listFiles(app.db, tenantOf(req.params.tenant).id, req.query.limit));

  server.get(`${API_PREFIX}/tenants/:tenant/runs`, { schema: { summary: "The tenant's runs, newest first", tags: ['runs'], params: tenantParams, querystring: limitQuery, response: { 200: { type: 'array', items: runSummarySchema }, ...errors } } },
    async (req: FastifyRequest<{ Params: { tenant: string }; Querystring: { limit: number } }>) => listRuns(app.db, tenantOf(req.params.tenant).id, req.query.limit));

  server.get(`${API_PREFIX}/tenants/:tenant/runs/held`, { schema: { summary: 'Runs whose user removals wait for approval', tags: ['runs'], params: tenantParams, response: { 200: { type: 'array', items: runSummarySchema }, ...errors } } },
    async (req: TenantReq) => {
      const t = tenantOf(req.params.tenant);
      return heldRuns(t.id).map((id) => runSummary(app.db, id));
    });

  server.get(`${API_PREFIX}/tenants/:tenant/runs/:run`, { schema: { summary: 'One run (without its report)', tags: ['runs'], params: runParams, response: { 200: runSummarySchema, ...errors } } },
    async (req: RunReq) => runOf(tenantOf(req.params.tenant), req.params.run));

  const reportOf = (req: RunReq) => {
    const t = tenantOf(req.params.tenant);
    runOf(t, req.params.run);
    const report = getRun(app.db, req.params.run)?.report;
    if (!report) throw new HttpError(409, `run ${req.params.run} has no report yet (it is still running)`);
    return report;
  };
  server.get(`${API_PREFIX}/tenants/:tenant/runs/:run/report`, {
    schema: { summary: "A run's report as JSON (the .json file in the customer's /reports/)", tags: ['reports'], params: runParams, response: { 200: { ...anyObject, description: 'runId, tenant, status, trigger, createdAt, files, counts, safeguard, operations, problems' }, ...errors, 409: error } },
  }, async (req: RunReq, reply: FastifyReply) => reply.type('application/json; charset=utf-8').send(Readable.from(reportJson(reportOf(req)))));

  server.get(`${API_PREFIX}/tenants/:tenant/runs/:run/report.txt`, {
    schema: { summary: "A run's report as text (what the customer reads in /reports/)", tags: ['reports'], params: runParams, produces: ['text/plain'], response: { 200: { type: 'string' }, ...errors, 409: error } },
  }, async (req: RunReq, reply: FastifyReply) => reply.type('text/plain; charset=utf-8').send(Readable.from(reportLines(reportOf(req)))));

  server.post(`${API_PREFIX}/tenants/:tenant/runs/:run/approve`, {
    schema: {
      summary: 'Apply the user removals a held run kept back, re-checked against the latest snapshot', tags: ['runs'], params: runParams,
      response: { 200: { ...anyObject, description: 'the approval run\'s report' }, ...errors, 409: error },
    },
  }, async (req: RunReq, reply: FastifyReply) => {
    const t = tenantOf(req.params.tenant);
    runOf(t, req.params.run);
    try {
      const report = await approveRun(app, t, req.params.run);
      req.log.info({ tenant: t.id, approves: req.params.run, runId: report.runId }, 'held run approved over the API');
      return reply.type('application/json; charset=utf-8').send(Readable.from(reportJson(report)));
    } catch (err) {
      if (err instanceof RunError) throw new HttpError(409, err.message);
      throw err;
    }
  });

  for (const kind of ['users', 'groups', 'segments'] as const) {
    server.get(`${API_PREFIX}/tenants/:tenant/directory/${kind}`, {
      schema: { summary: `The WT directory's ${kind} (embedded target), paged`, tags: ['directory'], params: tenantParams, querystring: pageQuery, response: { 200: page(directorySchemas[kind]), ...errors } },
    }, async (req: FastifyRequest<{ Params: { tenant: string }; Querystring: { offset: number; limit: number; removed: boolean } }>) => {
      const t = tenantOf(req.params.tenant);
      const view = directoryView(readDirectory(app.db, t.id));
      const all: unknown[] = kind === 'users' ? view.users.filter((u) => req.query.removed || !u.removedAt) : view[kind];
      const { offset, limit } = req.query;
      return { total: all.length, offset, limit, items: all.slice(offset, offset + limit) };
    });
  }
}
