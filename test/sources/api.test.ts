// The api source against a real local HTTP server serving fixture pages: the four example configs, every paging
// style and auth mode, resilience, all-or-nothing failures, replay, and no secret anywhere.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { pullNow } from '../../src/cli/pull.js';
import { listDirectoryUsers } from './directory.js';
import { bearer, exampleTenant, page, startApiServer, type ApiRequest, type ApiServer } from './api-server.js';
import { sourceWorkspace, type SourceWorkspace } from './helpers.js';
import { listRuns } from '../../src/store/runs.js';
import { lastFetch } from '../../src/sources/run-fetch.js';

const SECRETS = {
  ACME_PERSONIO_CLIENT_SECRET: 'personio-client-secret-7f3a9c',
  ACME_BAMBOO_API_KEY: 'bamboo-api-key-55c1e2',
  ACME_BAMBOO_PASSWORD: 'bamboo-password-x91',
  ACME_GRAPH_TOKEN: 'graph-bearer-token-0b7d4e',
  ACME_OKTA_TOKEN: 'okta-ssws-token-a8e2f0',
  ACME_QUERY_KEY: 'query-api-key-3c9d11',
};
const ISSUED_TOKENS: string[] = [];

let server: ApiServer;
let ws: SourceWorkspace;

beforeEach(async () => {
  server = await startApiServer();
  ws = sourceWorkspace();
});
afterEach(async () => {
  // No secret in logs or in any file the run wrote (reports, archived responses, the database and its journal).
  for (const s of [...Object.values(SECRETS), ...ISSUED_TOKENS]) {
    expect(ws.logs.join('').includes(s), `secret ${s} in the log`).toBe(false);
    expect(ws.filesContaining(s), `secret ${s} in files`).toEqual([]);
  }
  await server.close();
  ws.cleanup();
});

/** Personio-like: OAuth2 token endpoint (tokens expire server-side) + cursor paging. */
function personio(o: { expiresIn?: number | null; personsPages?: Record<string, () => unknown> } = {}) {
  const valid = new Map<string, number>();
  let issued = 0;
  return (req: ApiRequest) => {
    if (req.url.pathname === '/v2/auth/token') {
      const form = new URLSearchParams(req.body);
      if (req.method !== 'POST' || form.get('client_secret') !== SECRETS.ACME_PERSONIO_CLIENT_SECRET || form.get('grant_type') !== 'client_credentials') return { status: 401, body: { error: 'invalid_client' } };
      const token = `tok-${++issued}-${Math.random().toString(36).slice(2, 10)}`;
      ISSUED_TOKENS.push(token);
      valid.set(token, o.expiresIn === null || o.expiresIn === undefined ? Infinity : Date.now() + o.expiresIn * 1000);
      return { body: { access_token: token, token_type: 'Bearer', ...(o.expiresIn === null ? {} : { expires_in: o.expiresIn ?? 3600 }) } };
    }
    const t = bearer(req);
    if (!t || !valid.has(t) || valid.get(t)! < Date.now()) return { status: 401, body: { error: 'token expired' } };
    const cursor = req.url.searchParams.get('cursor');
    if (req.url.pathname === '/v2/persons') {
      const n = cursor === null ? 1 : Number(cursor.slice(1));
      const custom = o.personsPages?.[String(n)];
      return { body: custom ? custom() : page(`personio/persons-${n}.json`, server.base) };
    }
    if (req.url.pathname === '/v2/org-units') return { body: page(`personio/org-units-${cursor === null ? 1 : 2}.json`, server.base) };
    return { status: 404 };
  };
}

function users(app: ReturnType<SourceWorkspace['app']>, tenant: string) {
  return listDirectoryUsers(app, tenant);
}

describe('the four example configs', () => {
  it('Personio-like: OAuth2 client credentials with a token that expires between pages, cursor paging, users and groups', async () => {
    server.handler = personio({ expiresIn: 1 });
    const tenant = exampleTenant('personio', server.base);
    // Slow enough that the 1 s token expires between pages: the client refreshes it before it runs out.
    (tenant.source as { requestsPerMinute?: number }).requestsPerMinute = 200;
    (tenant.source as { auth: { refreshBeforeSeconds?: number } }).auth.refreshBeforeSeconds = 0.5;
    ws.writeTenant('acme', tenant);
    const app = ws.app();
    const { outcome, report } = await pullNow(app, app.tenant('acme'), SECRETS);
    expect(outcome.record.status).toBe('ok');
    expect(report!.status).toBe('applied');
    const list = users(app, 'acme');
    expect(list.map((u) => u.externalId).sort()).toEqual(['1001', '1002', '1003', '1004', '1005']);
    const bertil = list.find((u) => u.externalId === '1002')!;
    expect(bertil).toMatchObject({ firstName: 'Bertil', email: 'bertil.berg@acme.example', title: 'Manager', status: 'active' });
    expect(bertil.memberOf.sort()).toEqual(['d1', 'd2']);
    expect(list.find((u) => u.externalId === '1004')!.status).toBe('inactive');
    expect(ISSUED_TOKENS.length).toBeGreaterThan(1); // refreshed while paging
    const tokenCalls = server.requests.filter((r) => r.url.pathname === '/v2/auth/token').length;
    expect(tokenCalls).toBeGreaterThan(1);
    // The raw responses are archived, without the token.
    const archived = fs.readdirSync(path.join(ws.dir, 'data/tenants/acme/fetches', outcome.record.fetchId));
    expect(archived).toEqual(expect.arrayContaining(['fetch.json', 'users-00001.json', 'users-00003.json', 'groups-00002.json']));
  });

  it('Personio-like: a token that expires while a page is being retried is refreshed inside the retry loop', async () => {
    let failures = 0;
    const inner = personio({ expiresIn: 0.5 });
    server.handler = (req) => {
      // Page 2 answers 503 with Retry-After 1 s twice: the 0.5 s token expires meanwhile.
      if (req.url.pathname === '/v2/persons' && req.url.searchParams.get('cursor') === 'c2' && failures < 2) {
        failures++;
        return { status: 503, headers: { 'retry-after': '1' } };
      }
      return inner(req);
    };
    const tenant = exampleTenant('personio', server.base);
    delete (tenant.source as { objects: Record<string, unknown> }).objects.groups;
    (tenant.source as { auth: { refreshBeforeSeconds?: number } }).auth.refreshBeforeSeconds = 0.1;
    ws.writeTenant('acme', tenant);
    const app = ws.app();
    const issuedBefore = ISSUED_TOKENS.length;
    const { outcome } = await pullNow(app, app.tenant('acme'), SECRETS);
    expect(outcome.record.status, outcome.record.error).toBe('ok');
    expect(failures).toBe(2);
    expect(ISSUED_TOKENS.length - issuedBefore).toBeGreaterThanOrEqual(2);
    // Every data request carried a token that was valid when it was sent (none refused with 401).
    expect(server.requests.filter((r) => r.url.pathname === '/v2/persons').length).toBe(5);
  }, 20_000);

  it('Personio-like: a token without expires_in is not treated as expired (one token for the whole fetch, both types fetched side by side)', async () => {
    server.handler = personio({ expiresIn: null });
    const tenant = exampleTenant('personio', server.base);
    (tenant.source as { concurrency?: number }).concurrency = 2;
    ws.writeTenant('acme', tenant);
    const app = ws.app();
    const before = ISSUED_TOKENS.length;
    const { outcome } = await pullNow(app, app.tenant('acme'), SECRETS);
    expect(outcome.record.status).toBe('ok');
    expect(ISSUED_TOKENS.length - before).toBe(1);
  });

  it('BambooHR-like: basic auth, no paging, ${tenant} in the URL', async () => {
    server.handler = (req) => {
      const expected = 'Basic ' + Buffer.from(`${SECRETS.ACME_BAMBOO_API_KEY}:${SECRETS.ACME_BAMBOO_PASSWORD}`).toString('base64');
      if (req.headers.authorization !== expected) return { status: 401 };
      if (req.url.pathname !== '/api/gateway.php/bamboo/v1/employees/directory') return { status: 404 };
      return { body: page('bamboohr/directory.json', server.base) };
    };
    ws.writeTenant('bamboo', exampleTenant('bamboohr', server.base));
    const app = ws.app();
    const { report } = await pullNow(app, app.tenant('bamboo'), SECRETS);
    expect(report!.counts.created).toBe(5);
    expect(server.requests).toHaveLength(1);
  });

  it('Graph-like: bearer token and @odata.nextLink', async () => {
    server.handler = (req) => {
      if (bearer(req) !== SECRETS.ACME_GRAPH_TOKEN) return { status: 401 };
      const sk = req.url.searchParams.get('$skiptoken');
      return { body: page(`graph/users-${sk ? sk.slice(2) : 1}.json`, server.base) };
    };
    ws.writeTenant('graph', exampleTenant('graph', server.base));
    const app = ws.app();
    const { report } = await pullNow(app, app.tenant('graph'), SECRETS);
    expect(report!.counts.created).toBe(5);
    expect(server.requests.map((r) => r.url.searchParams.get('$skiptoken'))).toEqual([null, 'sk2', 'sk3']);
    expect(users(app, 'graph').find((u) => u.externalId === 'g-1004')!.status).toBe('inactive');
  });

  it('Okta-like: API key header with prefix, Link rel="next" paging, the body is the array', async () => {
    server.handler = (req) => {
      if (req.headers.authorization !== `SSWS ${SECRETS.ACME_OKTA_TOKEN}`) return { status: 401 };
      const n = Number(req.url.searchParams.get('after') ?? 1);
      const headers: Record<string, string> = { link: `<${server.base}/api/v1/users?limit=2>; rel="self"` };
      if (n < 3) headers.link += `, <${server.base}/api/v1/users?after=${n + 1}&limit=2>; rel="next"`;
      return { headers, body: page(`okta/users-${n}.json`, server.base) };
    };
    ws.writeTenant('okta', exampleTenant('okta', server.base));
    const app = ws.app();
    const { report } = await pullNow(app, app.tenant('okta'), SECRETS);
    expect(report!.counts.created).toBe(5);
    expect(users(app, 'okta').find((u) => u.externalId === '00u1003')!.status).toBe('inactive');
  });
});

/** A users-only api tenant against /people, records in `data`, 7 people. */
const PEOPLE = Array.from({ length: 7 }, (_, i) => ({ id: `p${i + 1}`, name: { first: `First${i + 1}`, last: `Last${i + 1}` }, work: { email: `p${i + 1}@acme.example` } }));
function apiTenant(objects: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  return {
    name: 'Acme API',
    source: {
      type: 'api', schedule: '0 1 * * *', requestsPerMinute: 60_000, retry: { maxAttempts: 3, baseDelayMs: 10, maxDelayMs: 50, maxRetryAfterSeconds: 5 }, ...extra,
      objects: { users: { records: 'data', fields: { externalId: 'id', firstName: 'name.first', lastName: 'name.last', username: 'work.email', email: 'work.email' }, ...objects } },
    },
  };
}

describe('paging styles and stop rules', () => {
  it('offset/limit: a short page does not stop paging; the empty page does', async () => {
    server.handler = (req) => {
      const offset = Number(req.url.searchParams.get('offset'));
      const limit = Number(req.url.searchParams.get('limit'));
      // The API caps pages at 2 whatever is asked: a short page is not the end.
      return { body: { data: PEOPLE.slice(offset, offset + Math.min(limit, 2)) } };
    };
    ws.writeTenant('acme', apiTenant({ request: { url: `${server.base}/people` }, paging: { type: 'offset', limit: 3 } }));
    const app = ws.app();
    const { report } = await pullNow(app, app.tenant('acme'), {});
    expect(report!.counts.created).toBe(7);
    expect(server.requests.map((r) => r.url.searchParams.get('offset'))).toEqual(['0', '2', '4', '6', '7']);
  });

  it('offset with shortPage: true stops at the first short page', async () => {
    server.handler = (req) => {
      const offset = Number(req.url.searchParams.get('offset'));
      return { body: { data: PEOPLE.slice(offset, offset + 3) } };
    };
    ws.writeTenant('acme', apiTenant({ request: { url: `${server.base}/people` }, paging: { type: 'offset', limit: 3 }, stop: { shortPage: true } }));
    const app = ws.app();
    const { report } = await pullNow(app, app.tenant('acme'), {});
    expect(report!.counts.created).toBe(7);
    expect(server.requests).toHaveLength(3);
  });

  it.each([0, 1])('page number with base %i and a has_more path', async (base) => {
    server.handler = (req) => {
      const p = Number(req.url.searchParams.get('page')) - base;
      return { body: { data: PEOPLE.slice(p * 3, p * 3 + 3), has_more: (p + 1) * 3 < PEOPLE.length } };
    };
    ws.writeTenant('acme', apiTenant({ request: { url: `${server.base}/people` }, paging: { type: 'page', base, sizeParam: 'per_page', size: 3 }, stop: { hasMorePath: 'has_more' } }));
    const app = ws.app();
    const { report } = await pullNow(app, app.tenant('acme'), {});
    expect(report!.counts.created).toBe(7);
    expect(server.requests.map((r) => r.url.searchParams.get('page'))).toEqual([0, 1, 2].map((i) => String(i + base)));
  });

  it('page number stopped by a total path, with an API key in the query and a POST body', async () => {
    server.handler = (req) => {
      if (req.url.searchParams.get('api_key') !== SECRETS.ACME_QUERY_KEY || req.method !== 'POST' || JSON.parse(req.body).tenant !== 'acme') return { status: 403 };
      const p = Number(req.url.searchParams.get('page'));
      return { body: { data: PEOPLE.slice((p - 1) * 4, p * 4), meta: { total: 7 } } };
    };
    ws.writeTenant('acme', apiTenant({ request: { method: 'POST', url: `${server.base}/people`, body: { tenant: '${tenant}' } }, paging: { type: 'page', size: 4 }, stop: { totalPath: 'meta.total' }, totalPath: 'meta.total' },
      { auth: { type: 'apiKey', in: 'query', name: 'api_key', value: '${env:ACME_QUERY_KEY}' } }));
    const app = ws.app();
    const { report } = await pullNow(app, app.tenant('acme'), SECRETS);
    expect(report!.counts.created).toBe(7);
    expect(server.requests).toHaveLength(2);
  });
});

describe('resilience', () => {
  it('429 with Retry-After in seconds and as an HTTP date, then a 500, then success', async () => {
    let n = 0;
    const waits: number[] = [];
    let last = Date.now();
    server.handler = () => {
      const now = Date.now();
      waits.push(now - last);
      last = now;
      n++;
      if (n === 1) return { status: 429, headers: { 'retry-after': '1' } };
      if (n === 2) return { status: 429, headers: { 'retry-after': new Date(Date.now() + 2000).toUTCString() } };
      if (n === 3) return { status: 500, body: 'boom' };
      return { body: { data: PEOPLE } };
    };
    ws.writeTenant('acme', apiTenant({ request: { url: `${server.base}/people` } }, { retry: { maxAttempts: 4, baseDelayMs: 10, maxDelayMs: 50, maxRetryAfterSeconds: 5 } }));
    const app = ws.app();
    const { outcome, report } = await pullNow(app, app.tenant('acme'), {});
    expect(outcome.record.status).toBe('ok');
    expect(report!.counts.created).toBe(7);
    expect(waits[1]).toBeGreaterThanOrEqual(950);
    expect(waits[2]).toBeGreaterThanOrEqual(900); // an HTTP date has one-second resolution
    expect(ws.logs.join('')).toContain('retrying');
  });

  it('a Retry-After beyond maxRetryAfterSeconds fails the fetch at once', async () => {
    server.handler = () => ({ status: 429, headers: { 'retry-after': '3600' } });
    ws.writeTenant('acme', apiTenant({ request: { url: `${server.base}/people` } }));
    const app = ws.app();
    const { outcome } = await pullNow(app, app.tenant('acme'), {});
    expect(outcome.record.status).toBe('failed');
    expect(outcome.record.error).toContain('maxRetryAfterSeconds');
    expect(server.requests).toHaveLength(1);
  });
});

describe('all or nothing: a failed fetch changes nothing and is reported', () => {
  /** First a good fetch of 7 people; then the API breaks as `broken` says. */
  async function breakAfterGoodFetch(broken: (req: ApiRequest) => { status?: number; body?: unknown; headers?: Record<string, string> }, objects: Record<string, unknown> = {}) {
    let good = true;
    server.handler = (req) => {
      if (good) {
        const c = req.url.searchParams.get('cursor');
        const i = c === null ? 0 : Number(c);
        return { body: { data: PEOPLE.slice(i, i + 3), next: i + 3 < PEOPLE.length ? String(i + 3) : null, total: 7 } };
      }
      return broken(req);
    };
    ws.writeTenant('acme', apiTenant({ request: { url: `${server.base}/people` }, paging: { type: 'cursor', cursorPath: 'next', cursorParam: 'cursor' }, ...objects }, { maxPages: 50 }));
    const app = ws.app();
    const first = await pullNow(app, app.tenant('acme'), {});
    expect(first.report!.counts.created).toBe(7);
    good = false;
    server.requests.length = 0;
    const before = JSON.stringify(users(app, 'acme'));
    const reportsBefore = fs.readdirSync(path.join(ws.dir, 'data/tenants/acme/home/reports')).length;
    const second = await pullNow(app, app.tenant('acme'), {});
    expect(second.outcome.record.status).toBe('failed');
    expect(second.received).toEqual([]);
    expect(JSON.stringify(users(app, 'acme'))).toBe(before);
    // The previous snapshot stays the tenant's current one.
    const files = app.db.prepare("SELECT count(*) FROM files WHERE tenant = 'acme'").pluck().get();
    expect(files).toBe(1);
    // A run with a fetch-failed report, in /reports/ too.
    const run = listRuns(app.db, 'acme', 1)[0];
    expect(run.status).toBe('failed');
    expect(second.outcome.report!.status).toBe('fetch-failed');
    const reports = fs.readdirSync(path.join(ws.dir, 'data/tenants/acme/home/reports'));
    expect(reports.length).toBe(reportsBefore + 2);
    const json = JSON.parse(fs.readFileSync(path.join(ws.dir, 'data/tenants/acme/home/reports', reports.find((r) => r.endsWith(`run-${run.id}.json`))!), 'utf8'));
    expect(json.status).toBe('fetch-failed');
    const text = fs.readFileSync(path.join(ws.dir, 'data/tenants/acme/home/reports', reports.find((r) => r.endsWith(`run-${run.id}.txt`))!), 'utf8');
    expect(text).toContain('status: fetch-failed');
    expect(text).toContain('fetch failed (nothing of it was handed over or applied; the previous snapshot stays):');
    // No half-written file is left behind.
    expect(fs.readdirSync(path.join(ws.dir, 'data/tenants/acme/partial'))).toEqual([]);
    expect(fs.readdirSync(path.join(ws.dir, 'data/tenants/acme/inbox'))).toEqual([]);
    expect(lastFetch(app, 'acme')!.status).toBe('failed');
    return { message: json.problems[0].message as string, app };
  }

  it('a page that keeps failing in the middle of paging (and its archive is not replayed as a whole fetch)', async () => {
    const { message, app } = await breakAfterGoodFetch((req) => (req.url.searchParams.get('cursor') === '3' ? { status: 503, body: 'maintenance' } : { body: { data: PEOPLE.slice(0, 3), next: '3', total: 7 } }));
    const replay = await ws.cliAsync(['check', '--tenant', 'acme', '--replay', lastFetch(app, 'acme')!.fetchId, '--json']);
    expect(replay.status).toBe(1);
    expect(JSON.parse(replay.stdout).problems[0].message).toContain('this fetch failed (HTTP 503');
    expect(message).toContain('HTTP 503');
    expect(message).toContain('users page 2');
    expect(message).toContain('cursor=3');
    expect(message).toContain('after 3 attempts');
  });

  it('a repeated cursor (a paging loop)', async () => {
    const { message } = await breakAfterGoodFetch((req) => {
      const c = req.url.searchParams.get('cursor');
      return { body: { data: c === null ? PEOPLE.slice(0, 3) : PEOPLE.slice(3, 6), next: 'A', total: 7 } };
    });
    expect(message).toContain('cursor "A" a second time');
  });

  it('an identical page (the API ignores the paging parameter)', async () => {
    const { message } = await breakAfterGoodFetch((req) => ({ body: { data: PEOPLE.slice(0, 3), next: String(Number(req.url.searchParams.get('cursor') ?? 0) + 3), total: 7 } }));
    expect(message).toContain('identical to page 1');
  });

  it('the page cap', async () => {
    const { message } = await breakAfterGoodFetch((req) => {
      const i = Number(req.url.searchParams.get('cursor') ?? 0);
      return { body: { data: [{ ...PEOPLE[0], id: `x${i}` }], next: String(i + 1) } };
    });
    expect(message).toContain('more than maxPages (50)');
  });

  it('a total that does not match the records fetched', async () => {
    const { message } = await breakAfterGoodFetch((req) => {
      const c = req.url.searchParams.get('cursor');
      const i = c === null ? 0 : Number(c);
      return { body: { data: PEOPLE.slice(i, i + 3).slice(0, i === 3 ? 2 : 3), next: i + 3 < PEOPLE.length ? String(i + 3) : null, total: 7 } };
    }, { totalPath: 'total' });
    expect(message).toContain('reported a total of 7 records but 6 were fetched');
  });

  it('a response that is not JSON', async () => {
    const { message } = await breakAfterGoodFetch(() => ({ body: '<html>Service Unavailable</html>' }));
    expect(message).toContain('page 1 is not valid JSON');
  });

  it('a mapping that finds nothing in any record (a renamed field)', async () => {
    const { message } = await breakAfterGoodFetch(() => ({ body: { data: PEOPLE.map((p) => ({ ...p, id: undefined, personId: p.id })), next: null, total: 7 } }));
    expect(message).toContain('mapping of externalId (path "id") found no value in any of 7 records');
  });

  it('a coverage rule not met (the API silently stopped returning email)', async () => {
    const { message } = await breakAfterGoodFetch(() => ({ body: { data: PEOPLE.map((p, i) => (i < 5 ? { ...p, work: {} } : p)), next: null, total: 7 } }), { coverage: [{ field: 'email', minPercent: 90 }] });
    expect(message).toContain('only 2 of 7 records (28.6%) carry email');
  });
});

describe('secrets', () => {
  it('a failure with an API key in the query (and echoed in the error body) reports the page and URL without the key', async () => {
    server.handler = () => ({ status: 500, body: `internal error for key ${SECRETS.ACME_QUERY_KEY}` });
    ws.writeTenant('acme', apiTenant({ request: { url: `${server.base}/people` } }, { auth: { type: 'apiKey', in: 'query', name: 'api_key', value: '${env:ACME_QUERY_KEY}' }, retry: { maxAttempts: 2, baseDelayMs: 5, maxDelayMs: 5, maxRetryAfterSeconds: 1 } }));
    const r = await ws.cliAsync(['pull', '--tenant', 'acme', '--json'], { ACME_QUERY_KEY: SECRETS.ACME_QUERY_KEY });
    expect(r.status).toBe(1);
    const report = JSON.parse(r.stdout);
    expect(report.status).toBe('fetch-failed');
    expect(report.problems[0].message).toContain(`users page 1 (GET ${server.base}/people)`);
    expect(report.problems[0].message).toContain('HTTP 500');
    expect(server.requests[0].url.searchParams.get('api_key')).toBe(SECRETS.ACME_QUERY_KEY);
  });

  it('the CLI pulling with a bearer token (Graph-like) prints and writes no token', async () => {
    server.handler = (req) => (bearer(req) === SECRETS.ACME_GRAPH_TOKEN ? { body: page(`graph/users-${req.url.searchParams.get('$skiptoken')?.slice(2) ?? 1}.json`, server.base) } : { status: 401 });
    ws.writeTenant('graph', exampleTenant('graph', server.base));
    const r = await ws.cliAsync(['pull', '--tenant', 'graph'], { ACME_GRAPH_TOKEN: SECRETS.ACME_GRAPH_TOKEN, WT_SYNC_LOG_LEVEL: 'debug' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('create user');
    expect(r.stderr).toContain('fetch completed');
  });
});

describe('snapshots from a fetch', () => {
  it('a second fetch with unchanged data is a duplicate; a bad record is reported as "record N"', async () => {
    const data = PEOPLE.map((p, i) => (i === 1 ? { ...p, work: { email: 'not-an-email' } } : p));
    server.handler = () => ({ body: { data } });
    const t = apiTenant({ request: { url: `${server.base}/people` } });
    (t.source.objects.users.fields as Record<string, string>).username = 'id';
    ws.writeTenant('acme', t);
    const app = ws.app();
    const first = await pullNow(app, app.tenant('acme'), {});
    expect(first.report!.counts.created).toBe(6);
    const bad = first.report!.problems.find((p) => p.level === 'row')!;
    expect(bad.record).toBe(2);
    expect(bad.line).toBeUndefined();
    const second = await pullNow(app, app.tenant('acme'), {});
    expect(second.received[0].status).toBe('duplicate');
    expect(second.report?.counts.created ?? 0).toBe(0);
  });

  it('archived fetches are kept archiveDays, like uploaded files', async () => {
    server.handler = () => ({ body: { data: PEOPLE } });
    ws.writeTenant('acme', apiTenant({ request: { url: `${server.base}/people` } }));
    const old = path.join(ws.dir, 'data/tenants/acme/fetches/20000101T000000000Z-aaaaaa');
    fs.mkdirSync(old, { recursive: true });
    fs.writeFileSync(path.join(old, 'fetch.json'), '{}');
    const app = ws.app();
    const { outcome } = await pullNow(app, app.tenant('acme'), {});
    expect(fs.existsSync(old)).toBe(false);
    expect(fs.readdirSync(path.join(ws.dir, 'data/tenants/acme/fetches'))).toEqual([outcome.record.fetchId]);
  });

  it('check --replay re-validates an archived fetch offline; pull --dry-run changes nothing', async () => {
    server.handler = () => ({ body: { data: PEOPLE } });
    ws.writeTenant('acme', apiTenant({ request: { url: `${server.base}/people` } }));
    const dry = (await ws.cliAsync(['pull', '--tenant', 'acme', '--dry-run', '--json']));
    expect(dry.status, dry.stderr).toBe(0);
    const dryReport = JSON.parse(dry.stdout);
    expect(dryReport.status).toBe('check: would apply');
    expect(dryReport.counts.created).toBe(7);
    expect(fs.existsSync(path.join(ws.dir, 'data/tenants/acme/fetches')) && fs.readdirSync(path.join(ws.dir, 'data/tenants/acme/fetches')).length).toBeFalsy();
    const pulled = (await ws.cliAsync(['pull', '--tenant', 'acme', '--json']));
    expect(pulled.status, pulled.stderr).toBe(0);
    expect(JSON.parse(pulled.stdout).counts.created).toBe(7);
    const status = JSON.parse((await ws.cliAsync(['status', '--tenant', 'acme', '--json'])).stdout)[0];
    expect(status.source).toMatchObject({ type: 'api', schedule: '0 1 * * *', timezone: 'Europe/Stockholm', lastFetch: { status: 'ok', summary: { records: 7, files: 1 } } });
    expect(Date.parse(status.source.nextRun)).toBeGreaterThan(Date.now());
    const text = (await ws.cliAsync(['status', '--tenant', 'acme'])).stdout;
    expect(text).toContain('source: api, schedule "0 1 * * *" Europe/Stockholm, next run');
    // Replay: the archive alone, offline (the server is gone).
    await server.close();
    const replay = ws.cli(['check', '--tenant', 'acme', '--replay', status.source.lastFetch.fetchId, '--json']);
    expect(replay.status, replay.stderr).toBe(0);
    const r = JSON.parse(replay.stdout);
    expect(r.files[0].validRows).toBe(7);
    expect(r.counts.unchanged).toBe(7);
    const missing = ws.cli(['check', '--tenant', 'acme', '--replay', '20990101T000000Z-abcdef']);
    expect(missing.status).toBe(2);
    expect(missing.stderr).toContain('no archived fetch');
    server = await startApiServer(); // for afterEach
  }, 60_000);
});

describe('configuration errors name the file and the key', () => {
  it.each([
    ['a secret written in the file', { auth: { type: 'bearer', token: 'plain-token' } }, 'source.auth.token: must be an environment reference'],
    ['an unknown field', { objects: { users: { request: { url: 'http://x' }, fields: { externalId: 'id', firstName: 'a', lastName: 'b', username: 'c', shoeSize: 'd' } } } }, 'source.objects.users.fields.shoeSize: unknown users field'],
    ['a missing mandatory mapping', { objects: { users: { request: { url: 'http://x' }, fields: { externalId: 'id' } } } }, 'mandatory field "firstName" has no mapping'],
    ['an unknown paging style', { objects: { users: { request: { url: 'http://x' }, paging: { type: 'scroll' }, fields: { externalId: 'id', firstName: 'a', lastName: 'b', username: 'c' } } } }, 'source.objects.users.paging.type'],
    ['a bad schedule', { schedule: 'every night' }, 'source.schedule: not a valid cron expression'],
  ])('%s', (_label, patch, expected) => {
    const t = apiTenant({ request: { url: 'http://127.0.0.1:9/x' } });
    ws.writeTenant('acme', { ...t, source: { ...t.source, ...patch } });
    const r = ws.cli(['pull', '--tenant', 'acme']);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(path.join(ws.dir, 'config/tenants/acme.yaml'));
    expect(r.stderr).toContain(expected);
    expect(fs.existsSync(path.join(ws.dir, 'data/tenants/acme/fetches'))).toBe(false);
  });

  it('pull on an upload tenant is a usage error, and nothing is recorded', () => {
    ws.writeTenant('up', { name: 'Uploads only' });
    const r = ws.cli(['pull', '--tenant', 'up']);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('has source type "upload"');
    expect(fs.existsSync(path.join(ws.dir, 'data/tenants/up/fetches'))).toBe(false);
  });

  it('a missing environment variable fails the fetch with its name', async () => {
    ws.writeTenant('acme', apiTenant({ request: { url: `${server.base}/people` } }, { auth: { type: 'bearer', token: '${env:NOT_SET_ANYWHERE}' } }));
    const app = ws.app();
    const { outcome } = await pullNow(app, app.tenant('acme'), {});
    expect(outcome.record.status).toBe('failed');
    expect(outcome.record.error).toContain('NOT_SET_ANYWHERE is not set');
    expect(server.requests).toHaveLength(0);
  });
});
