// Resilience against a SCIM server injecting faults: 429 with Retry-After pausing every request, 5xx, slow answers,
// dropped connections, a capped page size. Runs converge with nothing lost or duplicated; too many failures or a
// refused token quarantine the tenant until `wt-sync resume`; held removals are never sent; no token leaks.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { approveRun, reconcile, resumeUnfinished } from '../../src/apply/run.js';
import { createLogger, tenantDirs } from '../../src/app.js';
import { liftQuarantine } from '../../src/store/scim-mirror.js';
import { readDirectory } from '../../src/targets/embedded.js';
import { ScimClient } from '../../src/targets/scim-client.js';
import type { ScimServer } from '../helpers/scim-server.js';
import { usersCsv } from '../helpers/workspace.js';
import { cliAsync, expectedRemote, ingest, remoteState, TOKEN_ENV, useScimServer } from './scim-helpers.js';

let server: ScimServer;
const GROUPS = 'Group name;GroupID;Parent groupID\nProduct;prod;\nDev;dev;prod\nOps;ops;prod\n';
const users = (n: number, f: (i: number) => Record<string, string> = () => ({})) =>
  usersCsv(Array.from({ length: n }, (_, i) => ({ id: `u${String(i).padStart(4, '0')}`, groups: i % 3 ? 'dev' : 'ops,prod', ...f(i) })));

const workspace = useScimServer((s) => (server = s), { seed: 9 });

function client(extra: Partial<ConstructorParameters<typeof ScimClient>[0]> = {}) {
  return new ScimClient({
    baseUrl: server.url, token: server.token, concurrency: 4, connectTimeoutMs: 1000, responseTimeoutMs: 2000, maxAttempts: 4,
    backoffBaseMs: 5, backoffMaxMs: 20, maxRetryAfterMs: 5000, pageSize: 50, logger: createLogger('silent'), ...extra,
  });
}

describe('the client', () => {
  it.each(['1', 'date'])('a 429 with Retry-After %s pauses every request to the server, not only the one refused', async (retryAfter) => {
    server.faults = { rate: 0, kinds: [], retryAfter: retryAfter === 'date' ? 'date' : '1' };
    server.nextFaults = ['429'];
    const c = client();
    const first = c.get('ServiceProviderConfig');
    await new Promise((r) => setTimeout(r, 100));
    const second = c.get('ResourceTypes');
    await Promise.all([first, second]);
    c.close();
    const [refused, ...later] = server.arrivals;
    expect(later).toHaveLength(2);
    // An HTTP date has whole seconds: at least the better part of a second passes.
    for (const t of later) expect(t - refused).toBeGreaterThanOrEqual(950);
  });

  it('500, 503, dropped connections and answers slower than the timeout are retried with backoff', async () => {
    server.faults = { rate: 0, kinds: [], slowMs: 600 };
    server.nextFaults = ['500', '503', 'drop', 'slow'];
    const c = client({ responseTimeoutMs: 300, maxAttempts: 5 });
    const spc = await c.get('ServiceProviderConfig');
    c.close();
    expect(spc.patch.supported).toBe(true);
    expect(server.requests.length).toBe(5);
  });

  it('gives up after maxAttempts with an error naming the request', async () => {
    server.faults = { rate: 1, kinds: ['503'] };
    const c = client({ maxAttempts: 3 });
    await expect(c.get('Users/abc')).rejects.toThrow(/SCIM GET Users\/abc answered 503/);
    c.close();
    expect(server.requests.length).toBe(3);
  });

  it('a rate limit spaces requests', async () => {
    const c = client({ rateLimit: 20, concurrency: 8 });
    const started = Date.now();
    await Promise.all(Array.from({ length: 10 }, () => c.get('ServiceProviderConfig')));
    c.close();
    expect(Date.now() - started).toBeGreaterThanOrEqual(400);
  });
});

describe('runs against a faulty server', () => {
  it('20 % injected faults: converges within 3 runs, nothing lost or duplicated', async () => {
    const ws = workspace({ concurrency: 4, maxAttempts: 3, timeoutSeconds: 0.5 });
    const app = ws.open();
    server.faults = { rate: 0.2, kinds: ['429', '500', '503', 'slow', 'drop', 'dropAfter'], retryAfter: '0', slowMs: 700 };
    server.pageCap = 7;
    const first = (await ingest(app, ws, { 'groups.csv': GROUPS, 'users.csv': users(150) }))!;
    const tenant = app.tenant('acme');
    let runs = 1;
    let failed = first.counts.failed;
    while (failed > 0 && runs < 3) {
      const again = await reconcile(app, tenant, { kind: 'schedule', fileIds: [] });
      runs++;
      failed = again?.counts.failed ?? 0;
    }
    server.faults = null;
    expect(failed).toBe(0);
    expect(server.requests.filter((r) => r.fault).length).toBeGreaterThan(20);
    expect(server.users.size).toBe(150);
    expect(remoteState(server)).toEqual(expectedRemote(app));
    expect(await reconcile(app, tenant, { kind: 'schedule', fileIds: [] })).toBeNull(); // nothing left to do
  });

  it('a server that cannot be reached stops the run; what was confirmed stays, the rest is applied on the next start', async () => {
    const ws = workspace({ maxAttempts: 2, connectTimeoutSeconds: 0.5 });
    const app = ws.open();
    await ingest(app, ws, { 'users.csv': users(20, () => ({ groups: '' })) });
    // Day 2 starts; after 5 requests every connection is dropped.
    server.requests.length = 0;
    const drop = setInterval(() => {
      if (server.requests.length >= 5 && server.nextFaults.length === 0) server.nextFaults = Array(1000).fill('drop');
    }, 1);
    await expect(ingest(app, ws, { 'users.csv': users(20, (i) => ({ groups: '', last: `Day2-${i}` })) })).rejects.toThrow(/after 2 tries; is http:\/\/127\.0\.0\.1:\d+ reachable\?/);
    clearInterval(drop);
    server.nextFaults = [];
    const pending = app.db.prepare("SELECT id FROM runs WHERE status = 'pending'").pluck().all();
    expect(pending).toHaveLength(1);
    const planned = app.db.prepare("SELECT count(*) FROM journal WHERE run_id = ? AND status = 'planned'").pluck().get(pending[0]) as number;
    expect(planned).toBeGreaterThan(0);
    await resumeUnfinished(app, new Set(['acme']));
    expect(app.db.prepare('SELECT status FROM runs WHERE id = ?').pluck().get(pending[0])).toBe('applied');
    expect(remoteState(server)).toEqual(expectedRemote(app));
    expect([...server.users.values()].every((u) => u.name.familyName.startsWith('Day2-'))).toBe(true);
  });

  it('a 401 quarantines the tenant: the run stops, status and the report say why, resume lifts it', async () => {
    const ws = workspace();
    const app = ws.open();
    server.forceStatus = 401;
    const report = (await ingest(app, ws, { 'groups.csv': GROUPS, 'users.csv': users(10) }))!;
    expect(report.status).toBe('quarantined');
    expect(report.problems.some((p) => /quarantined since .*401/.test(p.message) && /wt-sync resume --tenant acme/.test(p.hint ?? ''))).toBe(true);
    expect(readDirectory(app.db, 'acme').users).toHaveLength(0);
    expect(app.db.prepare('SELECT status FROM runs').pluck().get()).toBe('failed');
    const status = ws.cli(['status', '--tenant', 'acme']);
    expect(status.stdout).toMatch(/QUARANTINED since .*401.*\n.*wt-sync resume --tenant acme/);
    const json = JSON.parse(ws.cli(['status', '--tenant', 'acme', '--json']).stdout);
    expect(json[0].quarantine.reason).toMatch(/401/);
    // Another run while quarantined sends nothing.
    server.requests.length = 0;
    server.forceStatus = null;
    const still = (await reconcile(app, app.tenant('acme'), { kind: 'schedule', fileIds: [] }))!;
    expect(still.status).toBe('quarantined');
    expect(server.requests).toHaveLength(0);
    app.close();
    const resumed = await cliAsync(ws, ['resume', '--tenant', 'acme'], { [TOKEN_ENV]: server.token });
    expect(resumed.stderr).toMatch(/quarantine of acme lifted/);
    expect(resumed.status).toBe(0);
    const after = ws.open();
    expect(remoteState(server)).toEqual(expectedRemote(after));
    expect(server.users.size).toBe(10);
    expect(JSON.parse(ws.cli(['status', '--tenant', 'acme', '--json']).stdout)[0].quarantine).toBeNull();
  });

  it.each([
    { n: 60, bad: 30, trips: true },
    { n: 60, bad: 20, trips: false },
    { n: 40, bad: 30, trips: false }, // fewer than 50 tried
  ])('$bad of $n creates refused: quarantine $trips', async ({ n, bad, trips }) => {
    const ws = workspace();
    const app = ws.open();
    server.reject = (r) => r.method === 'POST' && /^u0*(\d+)$/.test(r.body?.externalId ?? '') && Number(r.body.externalId.slice(1)) < bad;
    const report = (await ingest(app, ws, { 'users.csv': users(n, () => ({ groups: '' })) }))!;
    expect(report.counts.failed).toBe(bad);
    expect(report.operations.find((o) => o.status === 'failed')!.error).toMatch(/SCIM POST Users answered 400 invalidValue: refused by the test/);
    expect(report.status).toBe(trips ? 'quarantined' : 'applied');
    expect(ws.cli(['status', '--tenant', 'acme']).stdout.includes('QUARANTINED')).toBe(trips);
  });

  it('held removals are never sent; approving sends them', async () => {
    const ws = workspace();
    const app = ws.open();
    await ingest(app, ws, { 'users.csv': users(30, () => ({ groups: '' })) });
    server.requests.length = 0;
    const held = (await ingest(app, ws, { 'users.csv': users(10, () => ({ groups: '' })) }))!;
    expect(held.status).toBe('held');
    expect(server.writes()).toHaveLength(0);
    expect([...server.users.values()].every((u) => u.active)).toBe(true);
    // An approval while WT refuses the token sends nothing and leaves the run held.
    server.forceStatus = 401;
    const refused = await approveRun(app, app.tenant('acme'), held.runId);
    server.forceStatus = null;
    expect(refused.status).toBe('quarantined');
    expect(app.db.prepare('SELECT status FROM runs WHERE id = ?').pluck().get(held.runId)).toBe('held');
    expect([...server.users.values()].every((u) => u.active)).toBe(true);
    liftQuarantine(app.db, 'acme');
    await approveRun(app, app.tenant('acme'), held.runId);
    expect([...server.users.values()].filter((u) => !u.active)).toHaveLength(20);
    expect(remoteState(server)).toEqual(expectedRemote(app));
  });

  it('no token in logs, reports or the database, even at debug level and with a 401', async () => {
    const ws = workspace();
    const env = { [TOKEN_ENV]: server.token, WT_SYNC_LOG_LEVEL: 'debug' };
    server.faults = { rate: 0.3, kinds: ['500', '429'], retryAfter: '0' };
    const a = await cliAsync(ws, ['ingest', '--tenant', 'acme', ws.file('groups.csv', GROUPS), ws.file('users.csv', users(20))], env);
    server.faults = null;
    server.forceStatus = 403;
    const b = await cliAsync(ws, ['ingest', '--tenant', 'acme', ws.file('users2.csv', users(25))], env);
    server.forceStatus = null;
    const c = await cliAsync(ws, ['resume', '--tenant', 'acme'], env);
    const d = await cliAsync(ws, ['drift', '--tenant', 'acme', '--json'], env);
    const output = [a, b, c, d].map((r) => r.stdout + r.stderr).join('\n');
    expect(output).toMatch(/"msg":"SCIM request"/); // debug lines were written
    expect(output).toMatch(/quarantine/);
    expect(output.includes(server.token)).toBe(false);
    const files = [path.join(ws.dir, 'data/wt-sync.sqlite'), path.join(ws.dir, 'data/wt-sync.sqlite-wal')].filter((f) => fs.existsSync(f));
    const app = ws.open();
    const reports = fs.readdirSync(tenantDirs(app.config.paths, 'acme').reports).map((f) => path.join(tenantDirs(app.config.paths, 'acme').reports, f));
    app.close();
    expect(reports.length).toBeGreaterThan(0);
    for (const f of [...files, ...reports]) expect(fs.readFileSync(f).includes(Buffer.from(server.token)), f).toBe(false);
  });
});
