// The HTTP face in-process against a real workspace (SQLite file, runs made by the real pipeline) over a real
// loopback socket: health and readiness, the token guard, every API route, the OpenAPI document, /metrics.
import Database from 'better-sqlite3';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { reconcile } from '../../src/apply/run.js';
import type { App } from '../../src/app.js';
import type { TenantConfig } from '../../src/config/schema.js';
import { tokenMatches } from '../../src/http/api.js';
import { ServiceMetrics } from '../../src/http/metrics.js';
import { startHttpServer, type RunningHttpServer } from '../../src/http/server.js';
import { receiveFile } from '../../src/intake/receive.js';
import { loadTenants } from '../../src/config/load.js';
import { databaseProblem } from '../../src/store/health.js';
import { makeWorkspace, REPO, type Workspace } from '../helpers/workspace.js';

const TOKEN = 'test-token-9f8e7d6c5b4a';
const EXAMPLES = path.join(REPO, 'examples');

let ws: Workspace;
let app: App;
let http: RunningHttpServer;
let base: string;
let heldRunId: number;
const parts = { sftp: true, watcher: true };

async function ingest(tenant: TenantConfig, files: [string, string | Buffer][]) {
  const ids: number[] = [];
  for (const [name, body] of files) ids.push((await receiveFile(app, tenant, ws.file(name, body))).id);
  return reconcile(app, tenant, { kind: 'ingest', fileIds: ids });
}

const get = (url: string, token: string | null = TOKEN) => fetch(`${base}${url}`, { headers: token ? { authorization: `Bearer ${token}` } : {} });

beforeAll(async () => {
  ws = makeWorkspace();
  ws.tenant('acme', { name: 'Acme AB' });
  ws.tenant('beta');
  app = ws.open();
  const acme = app.tenant('acme');
  const examples = ['wt_groups.csv', 'wt_segments.csv', 'wt_users.csv'].map((f) => [f, fs.readFileSync(path.join(EXAMPLES, f))] as [string, Buffer]);
  await ingest(acme, examples);
  // 5 of 25 users gone is 20 % > the default 10 %: the removals are held.
  const users = fs.readFileSync(path.join(EXAMPLES, 'wt_users.csv'), 'utf8').trimEnd().split('\n');
  heldRunId = (await ingest(acme, [['wt_users.csv', users.slice(0, -5).join('\n') + '\n']]))!.runId;
  await ingest(acme, [['wt_segments_bad.csv', 'SegmentName,SegmentID\nx,y\n']]);
  const tenants = () => loadTenants(app.config.paths.tenantsDir);
  const metrics = new ServiceMetrics({ db: app.db, tenantIds: () => tenants().map((t) => t.id), staleTenants: () => new Set(['beta']), now: () => new Date() });
  http = await startHttpServer({
    host: '127.0.0.1', port: 0, logger: app.logger, metrics,
    readiness: [
      { name: 'database', problem: () => databaseProblem(app.db, app.config.paths.database) },
      { name: 'sftp', problem: () => (parts.sftp ? null : 'the SFTP server is not listening') },
      { name: 'watcher', problem: () => (parts.watcher ? null : 'the inbox watcher is not running') },
    ],
    api: { app, token: TOKEN, tenants, staleness: () => null, version: '1.2.3' },
  });
  base = `http://127.0.0.1:${http.port}`;
}, 60_000);
afterAll(async () => {
  await http?.close();
  ws.cleanup();
});

describe('health and readiness', () => {
  it('answers /healthz and /readyz with every part named', async () => {
    const h = await get('/healthz', null);
    expect(h.status).toBe(200);
    expect(await h.json()).toEqual({ status: 'ok' });
    const r = await get('/readyz', null);
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ status: 'ready', checks: { database: 'ok', sftp: 'ok', watcher: 'ok' } });
  });

  it('says 503 naming the failing part', async () => {
    parts.watcher = false;
    try {
      const r = await get('/readyz', null);
      expect(r.status).toBe(503);
      expect(await r.json()).toMatchObject({ status: 'not ready', failing: ['watcher'], message: 'watcher: the inbox watcher is not running', checks: { database: 'ok', sftp: 'ok' } });
    } finally {
      parts.watcher = true;
    }
  });

  it('says 503 "database" while another process holds the write lock, and ready again after', async () => {
    const other = new Database(app.config.paths.database);
    other.exec('BEGIN IMMEDIATE');
    try {
      const r = await get('/readyz', null);
      expect(r.status).toBe(503);
      const body = await r.json();
      expect(body.failing).toEqual(['database']);
      expect(body.checks.database).toMatch(/the database takes no write: database is locked/);
    } finally {
      other.exec('ROLLBACK');
      other.close();
    }
    expect((await get('/readyz', null)).status).toBe(200);
  });
});

describe('the token guard', () => {
  it('refuses a missing or wrong token with a JSON 401', async () => {
    for (const token of [null, 'wrong', `${TOKEN}x`, TOKEN.slice(0, -1)]) {
      const r = await get('/api/v1/tenants', token);
      expect(r.status).toBe(401);
      expect(r.headers.get('www-authenticate')).toBe('Bearer');
      expect(await r.json()).toEqual({ statusCode: 401, error: 'Unauthorized', message: 'missing or wrong bearer token (Authorization: Bearer <WT_SYNC_API_TOKEN>)' });
    }
    expect(tokenMatches(TOKEN, `Bearer ${TOKEN}`)).toBe(true);
    expect(tokenMatches(TOKEN, `bearer ${TOKEN}`)).toBe(true);
    expect(tokenMatches(TOKEN, TOKEN)).toBe(false);
    expect(tokenMatches(TOKEN, 'Bearer ')).toBe(false);
  });

  it('is off without a token, while health and metrics stay', async () => {
    const off = await startHttpServer({ host: '127.0.0.1', port: 0, logger: app.logger, readiness: [], metrics: new ServiceMetrics({ db: app.db, tenantIds: () => ['acme'], staleTenants: () => new Set(), now: () => new Date() }), api: { app, token: undefined, tenants: () => [], staleness: () => null, version: '0' } });
    try {
      const api = await fetch(`http://127.0.0.1:${off.port}/api/v1/tenants`, { headers: { authorization: 'Bearer anything' } });
      expect(api.status).toBe(404);
      expect((await api.json()).message).toMatch(/the API is off: set WT_SYNC_API_TOKEN to enable it/);
      expect((await fetch(`http://127.0.0.1:${off.port}/api/v1/openapi.json`)).status).toBe(404);
      expect((await fetch(`http://127.0.0.1:${off.port}/healthz`)).status).toBe(200);
      expect((await fetch(`http://127.0.0.1:${off.port}/metrics`)).status).toBe(200);
    } finally {
      await off.close();
    }
  });
});

describe('the JSON API', () => {
  it('lists tenants with their latest run and held runs', async () => {
    const r = await get('/api/v1/tenants');
    expect(r.status).toBe(200);
    const tenants = await r.json();
    expect(tenants.map((t: { id: string }) => t.id)).toEqual(['acme', 'beta']);
    expect(tenants[0]).toMatchObject({ id: 'acme', name: 'Acme AB', types: ['users', 'groups', 'segments'], heldRuns: [heldRunId], latestRun: { status: 'rejected' }, source: 'upload', target: 'embedded' });
    expect(await (await get('/api/v1/tenants/beta')).json()).toMatchObject({ id: 'beta', heldRuns: [], latestRun: null });
  });

  it("lists a tenant's files, runs and held runs", async () => {
    const files = await (await get('/api/v1/tenants/acme/files?limit=2')).json();
    expect(files).toHaveLength(2);
    expect(files[0]).toMatchObject({ name: 'wt_segments_bad.csv', status: 'rejected', type: 'segments' });
    expect(files[0].problems[0].message).toMatch(/the header is separated by ','/);
    const runs = await (await get('/api/v1/tenants/acme/runs')).json();
    expect(runs.map((r: { status: string }) => r.status)).toEqual(['rejected', 'held', 'applied']);
    expect(runs[1].trigger).toMatchObject({ kind: 'ingest' });
    const held = await (await get('/api/v1/tenants/acme/runs/held')).json();
    expect(held).toEqual([expect.objectContaining({ id: heldRunId, status: 'held' })]);
    expect(await (await get(`/api/v1/tenants/acme/runs/${heldRunId}`)).json()).toMatchObject({ id: heldRunId, tenant: 'acme', status: 'held' });
    const metrics = await (await get('/metrics', null)).text();
    expect(metrics).toMatch(/^wt_sync_held_removals\{tenant="acme"\} 5$/m);
    expect(metrics).toMatch(/^wt_sync_runs\{tenant="acme",status="held"\} 1$/m);
  });

  it("serves a run's report as JSON and as text", async () => {
    const json = await get(`/api/v1/tenants/acme/runs/${heldRunId}/report`);
    expect(json.headers.get('content-type')).toMatch(/application\/json/);
    const report = await json.json();
    expect(report).toMatchObject({ runId: heldRunId, tenant: 'acme', status: 'held', counts: { held: 5 } });
    expect(report.operations.filter((o: { status: string }) => o.status === 'held')).toHaveLength(5);
    const text = await get(`/api/v1/tenants/acme/runs/${heldRunId}/report.txt`);
    expect(text.headers.get('content-type')).toMatch(/text\/plain/);
    expect(await text.text()).toMatch(new RegExp(`^wt-sync report — run ${heldRunId}, tenant acme\\n[\\s\\S]*HELD: `));
  });

  it('pages the directory', async () => {
    const first = await (await get('/api/v1/tenants/acme/directory/users?limit=10')).json();
    expect(first).toMatchObject({ total: 25, offset: 0, limit: 10 });
    expect(first.items).toHaveLength(10);
    expect(first.items[0]).toHaveProperty('memberOf');
    const last = await (await get('/api/v1/tenants/acme/directory/users?offset=20&limit=10')).json();
    expect(last.items).toHaveLength(5);
    const groups = await (await get('/api/v1/tenants/acme/directory/groups')).json();
    expect(groups.items).toContainEqual({ externalId: 'dev-team-1', name: 'Team 1 Engineering', parentId: 'prod' });
    expect((await (await get('/api/v1/tenants/acme/directory/segments')).json()).total).toBe(4);
  });

  it('answers bad requests with JSON errors saying what is wrong', async () => {
    const cases: [string, number, RegExp][] = [
      ['/api/v1/tenants/nobody', 404, /no tenant "nobody"/],
      ['/api/v1/tenants/beta/runs/1', 404, /no run 1 for tenant beta/],
      ['/api/v1/tenants/acme/runs/999/report', 404, /no run 999 for tenant acme/],
      ['/api/v1/tenants/acme/runs/abc', 400, /params\/run must be integer/],
      ['/api/v1/tenants/acme/files?limit=0', 400, /querystring\/limit must be >= 1/],
      ['/api/v1/tenants/acme/directory/users?limit=5000', 400, /querystring\/limit must be <= 1000/],
      ['/api/v1/nothing', 404, /no such endpoint: GET \/api\/v1\/nothing/],
    ];
    for (const [url, status, message] of cases) {
      const r = await get(url);
      expect(r.status, url).toBe(status);
      expect(r.headers.get('content-type')).toMatch(/application\/json/);
      expect((await r.json()).message).toMatch(message);
    }
  });

  it('approves a held run once, then refuses it with a conflict', async () => {
    const r = await fetch(`${base}/api/v1/tenants/acme/runs/${heldRunId}/approve`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } });
    expect(r.status).toBe(200);
    const report = await r.json();
    expect(report).toMatchObject({ tenant: 'acme', status: 'applied', trigger: `approval of run ${heldRunId}`, counts: { removed: 5 } });
    expect((await (await get('/api/v1/tenants/acme/directory/users')).json()).total).toBe(20);
    const again = await fetch(`${base}/api/v1/tenants/acme/runs/${heldRunId}/approve`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } });
    expect(again.status).toBe(409);
    expect((await again.json()).message).toMatch(/is not held \(status: approved\)/);
    expect((await get('/api/v1/tenants/acme/runs/held').then((x) => x.json()))).toEqual([]);
  });

  it('publishes an OpenAPI document generated from the route schemas', async () => {
    const r = await get('/api/v1/openapi.json', null);
    expect(r.status).toBe(200);
    const doc = await r.json();
    expect(doc).toMatchObject({ openapi: '3.1.0', info: { title: 'wt-sync API', version: '1.2.3' } });
    expect(Object.keys(doc.paths).sort()).toEqual([
      '/api/v1/openapi.json', '/api/v1/tenants', '/api/v1/tenants/{tenant}', '/api/v1/tenants/{tenant}/directory/groups',
      '/api/v1/tenants/{tenant}/directory/segments', '/api/v1/tenants/{tenant}/directory/users', '/api/v1/tenants/{tenant}/files',
      '/api/v1/tenants/{tenant}/runs', '/api/v1/tenants/{tenant}/runs/held', '/api/v1/tenants/{tenant}/runs/{run}',
      '/api/v1/tenants/{tenant}/runs/{run}/approve', '/api/v1/tenants/{tenant}/runs/{run}/report', '/api/v1/tenants/{tenant}/runs/{run}/report.txt',
    ]);
    const approve = doc.paths['/api/v1/tenants/{tenant}/runs/{run}/approve'].post;
    expect(approve.parameters).toEqual([
      { name: 'tenant', in: 'path', required: true, description: 'tenant id', schema: { type: 'string' } },
      { name: 'run', in: 'path', required: true, description: 'run id', schema: { type: 'integer', minimum: 1 } },
    ]);
    expect(Object.keys(approve.responses)).toEqual(['200', '400', '401', '404', '409']);
    expect(doc.paths['/api/v1/tenants/{tenant}/directory/users'].get.parameters.map((p: { name: string }) => p.name)).toEqual(['tenant', 'offset', 'limit', 'removed']);
    expect(doc.paths['/api/v1/openapi.json'].get.security).toEqual([]);
  });
});

describe('/metrics', () => {
  it('exposes process metrics and per-tenant figures with tenant ids as the only free label', async () => {
    const r = await get('/metrics', null);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/text\/plain/);
    const text = await r.text();
    expect(text).toMatch(/^wt_sync_process_cpu_seconds_total \d/m);
    expect(text).toMatch(/^wt_sync_files\{tenant="acme",status="accepted"\} 4$/m);
    expect(text).toMatch(/^wt_sync_files\{tenant="acme",status="rejected"\} 1$/m);
    expect(text).toMatch(/^wt_sync_runs\{tenant="acme",status="applied"\} 2$/m);
    expect(text).toMatch(/^wt_sync_held_removals\{tenant="acme"\} 0$/m);
    expect(text).toMatch(/^wt_sync_last_successful_sync_timestamp_seconds\{tenant="acme"\} \d{10}/m);
    expect(text).toMatch(/^wt_sync_seconds_since_last_file\{tenant="acme"\} \d/m);
    expect(text).toMatch(/^wt_sync_tenant_stale\{tenant="beta"\} 1$/m);
    expect(text).not.toMatch(/\.csv/);
    const labels = new Set([...text.matchAll(/(\w+)="/g)].map((m) => m[1]));
    expect([...labels].sort()).toEqual(expect.arrayContaining(['status', 'tenant']));
    for (const l of labels) expect(['tenant', 'status', 'kind', 'le', 'version', 'major', 'minor', 'patch', 'space', 'type', 'kind']).toContain(l);
  });
});

describe('listening', () => {
  it('rejects with the reason when the port is taken', async () => {
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
    const port = (blocker.address() as net.AddressInfo).port;
    try {
      await expect(startHttpServer({ host: '127.0.0.1', port, logger: app.logger, readiness: [] })).rejects.toThrow(`HTTP port 127.0.0.1:${port} is already in use`);
    } finally {
      blocker.close();
    }
  });
});
