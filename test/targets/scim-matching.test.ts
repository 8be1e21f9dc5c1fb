// Matching and adopting: stored id → externalId filter → userName filter (values quoted, escaped and URL-encoded),
// 409 → adopt, never duplicate; 404 on PATCH → look up, then recreate; paging with a capped page size; options.
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config/load.js';
import { readDirectory } from '../../src/targets/embedded.js';
import { ScimClient, ScimError } from '../../src/targets/scim-client.js';
import pino from 'pino';
import SCIMMY from 'scimmy';
import type { ScimTarget } from '../../src/targets/scim.js';
import { createLogger, openApp } from '../../src/app.js';
import { GROUP_EXTENSION, USER_EXTENSION, type ScimServer } from '../helpers/scim-server.js';
import { usersCsv } from '../helpers/workspace.js';
import { expectedRemote, ingest, remoteState, useScimServer } from './scim-helpers.js';

let server: ScimServer;
const GROUPS = 'Group name;GroupID;Parent groupID\nProduct;prod;\nDev;dev;prod\n';
const SEGMENTS = 'SegmentName;SegmentID\nSweden;swe\n';

const workspace = useScimServer((s) => (server = s));

const remoteUser = (id: string, u: Record<string, unknown>) => server.users.set(id, { schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'], id, ...u });

describe('matching remote users', () => {
  it('IDs with quotes, spaces, + and non-ASCII are matched by filter and adopted on 409, never duplicated', async () => {
    const ids = ['a"b', 'x y+z', 'åäö-ü', 'back\\slash'];
    // Already in WT: the same externalIds (made by another run whose ids we lost), one by userName only.
    remoteUser('r1', { externalId: 'a"b', userName: 'a@example.com', name: { givenName: 'Old', familyName: 'Name' }, emails: [{ value: 'a@example.com', primary: true }], active: true });
    remoteUser('r2', { externalId: 'x y+z', userName: 'x@example.com', active: false });
    remoteUser('r3', { userName: 'ÅÄÖ@EXAMPLE.COM', active: true }); // made by hand, no externalId; userName matches case-insensitively
    const ws = workspace();
    const app = ws.open();
    const report = (await ingest(app, ws, {
      'groups.csv': GROUPS,
      'users.csv': usersCsv([
        // CSV-quoted: the cell is a"b.
        { id: '"a""b"', username: 'a@example.com', email: 'a@example.com', groups: 'dev' }, { id: ids[1], username: 'x@example.com', email: 'x@example.com', groups: 'dev' },
        { id: ids[2], username: 'åäö@example.com', email: 'åäö@example.com', groups: 'prod' }, { id: ids[3], username: 'b@example.com', email: 'b@example.com' },
      ]),
    }))!;
    expect(report.problems).toEqual([]);
    expect(report.counts.failed).toBe(0);
    expect(readDirectory(app.db, 'acme').users.map((u) => u.externalId).sort()).toEqual([...ids].sort());
    expect(server.users.size).toBe(4);
    expect(remoteState(server)).toEqual(expectedRemote(app));
    expect(server.users.get('r1')!.name.givenName).toBe('First');
    expect(server.users.get('r2')!.active).toBe(true);
    expect(server.users.get('r3')!.externalId).toBe('åäö-ü');
    // Filters went out as JSON strings, URL-encoded (a space as %20, never a raw + or quote).
    const filters = server.requests.filter((r) => r.path.includes('filter=')).map((r) => r.path);
    expect(filters.some((p) => p.includes(encodeURIComponent('externalId eq "a\\"b"')))).toBe(true);
    expect(filters.some((p) => p.includes('x%20y%2Bz'))).toBe(true);
    expect(filters.every((p) => !/[" +]/.test(p.split('?')[1]))).toBe(true);
  });

  it('a group already in WT is adopted on 409 (renamed, not duplicated); members go in chunks of at most 100', async () => {
    server.groups.set('g-old', { schemas: ['urn:ietf:params:scim:schemas:core:2.0:Group'], id: 'g-old', externalId: 'dev', displayName: 'Old name', members: [] });
    const ws = workspace();
    const app = ws.open();
    const report = (await ingest(app, ws, { 'groups.csv': GROUPS, 'users.csv': usersCsv(Array.from({ length: 250 }, (_, i) => ({ id: `m${i}`, groups: 'dev' }))) }))!;
    expect(report.counts.failed).toBe(0);
    expect(server.groups.size).toBe(2);
    expect(server.groups.get('g-old')).toMatchObject({ displayName: 'Dev' });
    expect(server.groups.get('g-old')!.members).toHaveLength(250);
    const adds = server.writes().filter((r) => r.method === 'PATCH' && r.path.endsWith('/Groups/g-old') && (r.body as any).Operations[0].path === 'members');
    // Per batch of the journal (200 operations), the new users' memberships in chunks of at most 100.
    const sizes = adds.map((r) => (r.body as any).Operations[0].value.length);
    expect(Math.max(...sizes)).toBe(100);
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(250);
    expect(sizes.length).toBeLessThanOrEqual(4);
    expect(remoteState(server)).toEqual(expectedRemote(app));
  });

  it('/ServiceProviderConfig is read at first use: bulk.maxOperations caps member chunks, filter.maxResults the page size', async () => {
    // A copy: Config.get() hands out the live object, which set() changes in place.
    const before = JSON.parse(JSON.stringify(SCIMMY.Config.get()));
    SCIMMY.Config.set({ bulk: { ...before.bulk, supported: true, maxOperations: 30 }, filter: { ...before.filter, maxResults: 10 } });
    try {
      const ws = workspace();
      const app = ws.open();
      const report = (await ingest(app, ws, { 'groups.csv': GROUPS, 'users.csv': usersCsv(Array.from({ length: 70 }, (_, i) => ({ id: `c${i}`, groups: 'dev' }))) }))!;
      expect(report.counts.failed).toBe(0);
      expect(server.requests.filter((r) => r.path.endsWith('/ServiceProviderConfig'))).toHaveLength(1);
      const sizes = server.writes().filter((r) => r.method === 'PATCH').map((r) => (r.body as any).Operations[0].value.length);
      expect(sizes).toEqual([30, 30, 10]);
      const target = app.target(app.tenant('acme')) as ScimTarget;
      const pages: string[] = [];
      server.requests.length = 0;
      for await (const _u of target.client().list('Users')) pages.push('');
      expect(pages).toHaveLength(70);
      expect(server.requests.every((r) => r.path.includes('count=10'))).toBe(true);
    } finally {
      SCIMMY.Config.set({ bulk: before.bulk, filter: before.filter });
    }
  });

  it('a userName held by another externalId is a clear failure; nothing is adopted or changed', async () => {
    remoteUser('r9', { externalId: 'someone-else', userName: 'taken@example.com', active: true });
    const ws = workspace();
    const app = ws.open();
    const report = (await ingest(app, ws, { 'users.csv': usersCsv([{ id: 'u1', username: 'taken@example.com' }, { id: 'u2' }]) }))!;
    const failed = report.operations.filter((o) => o.status === 'failed');
    expect(failed).toHaveLength(1);
    expect(failed[0].error).toMatch(/userName "taken@example.com" is already used in WT by another user \(externalId "someone-else"\)/);
    expect(server.users.get('r9')).toMatchObject({ externalId: 'someone-else', userName: 'taken@example.com' });
    expect(server.users.size).toBe(2);
    expect(readDirectory(app.db, 'acme').users.map((u) => u.externalId)).toEqual(['u2']);
  });

  it('a PATCH answered 404 looks the user up again, then recreates it with its memberships', async () => {
    const ws = workspace();
    const app = ws.open();
    await ingest(app, ws, { 'groups.csv': GROUPS, 'users.csv': usersCsv([{ id: 'u1', groups: 'dev' }, { id: 'u2', groups: 'dev' }]) });
    const gone = [...server.users.values()].find((u) => u.externalId === 'u1')!;
    server.users.delete(gone.id);
    for (const g of server.groups.values()) g.members = g.members.filter((m: any) => m.value !== gone.id);
    const report = (await ingest(app, ws, { 'users.csv': usersCsv([{ id: 'u1', groups: 'dev', last: 'Changed' }, { id: 'u2', groups: 'dev' }]) }))!;
    expect(report.counts.failed).toBe(0);
    expect(server.requests.some((r) => r.method === 'PATCH' && r.status === 404)).toBe(true);
    expect(remoteState(server)).toEqual(expectedRemote(app));
    expect(server.users.size).toBe(2);
  });

  it('lists page with startIndex/count when the server caps the page at 7', async () => {
    for (let i = 0; i < 30; i++) remoteUser(`p${i}`, { externalId: `p${i}`, userName: `p${i}@example.com` });
    server.pageCap = 7;
    const client = new ScimClient({
      baseUrl: server.url, token: server.token, concurrency: 2, connectTimeoutMs: 1000, responseTimeoutMs: 5000, maxAttempts: 2,
      backoffBaseMs: 1, backoffMaxMs: 5, maxRetryAfterMs: 1000, pageSize: 50, logger: createLogger('silent'),
    });
    const seen: string[] = [];
    for await (const u of client.list('Users')) seen.push(u.id);
    client.close();
    expect(new Set(seen).size).toBe(30);
    expect(seen).toHaveLength(30);
    expect(server.requests.filter((r) => r.path.includes('/Users?'))).toHaveLength(5);
  });

  it('SCIM error bodies become errors a person can act on', async () => {
    const client = new ScimClient({
      baseUrl: server.url, token: server.token, concurrency: 1, connectTimeoutMs: 1000, responseTimeoutMs: 5000, maxAttempts: 1,
      backoffBaseMs: 1, backoffMaxMs: 5, maxRetryAfterMs: 1000, pageSize: 50, logger: createLogger('silent'),
    });
    const err = await client.post('Users', { schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'] }).catch((e) => e);
    client.close();
    expect(err).toBeInstanceOf(ScimError);
    expect(err.status).toBe(400);
    expect(err.message).toMatch(/^SCIM POST Users answered 400/);
    expect(err.message).toMatch(/userName/);
  });
});

describe('options', () => {
  it('WT-only fields in the extension schema, segments as prefixed groups, group parents in the group extension', async () => {
    const ws = workspace({ userExtension: USER_EXTENSION, segments: 'groups', groupParents: 'extension', groupExtension: GROUP_EXTENSION });
    const app = ws.open();
    const report = (await ingest(app, ws, { 'groups.csv': GROUPS, 'segments.csv': SEGMENTS, 'users.csv': usersCsv([{ id: 'u1', title: 'Boss', phone: '08-1', groups: 'dev', segments: 'swe' }]) }))!;
    expect(report.counts.failed).toBe(0);
    const u = [...server.users.values()][0];
    expect(u[USER_EXTENSION]).toMatchObject({ title: 'Boss', phone: '08-1' });
    const groups = [...server.groups.values()];
    expect(groups.find((g) => g.externalId === 'dev')![GROUP_EXTENSION]).toEqual({ parentExternalId: 'prod' });
    const seg = groups.find((g) => g.externalId === 'segment:swe')!;
    expect(seg.displayName).toBe('Segment: Sweden');
    expect(seg.members.map((m: any) => m.value)).toEqual([u.id]);
    // A title change is a PATCH of the extension only.
    server.requests.length = 0;
    await ingest(app, ws, { 'users.csv': usersCsv([{ id: 'u1', title: 'CEO', phone: '', groups: 'dev', segments: 'swe' }]) });
    expect(server.writes()).toHaveLength(1);
    // The extension also carries the user's segments (by external ID), sent with the create.
    expect(server.users.get(u.id)![USER_EXTENSION]).toEqual({ title: 'CEO', segments: ['swe'] });
  });

  it('an extension URN the server does not list at /Schemas is warned about once', async () => {
    const lines: string[] = [];
    const logger = pino({ level: 'warn' }, { write: (l: string) => lines.push(l) });
    const ws = workspace({ userExtension: 'urn:example:typo:2.0:User' });
    const app = openApp({ configPath: ws.configPath, logger });
    await ingest(app, ws, { 'users.csv': usersCsv([{ id: 'u1' }]) });
    await ingest(app, ws, { 'users.csv': usersCsv([{ id: 'u1' }, { id: 'u2' }]) });
    app.close();
    const warnings = lines.filter((l) => l.includes('does not list this extension schema'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain('urn:example:typo:2.0:User');
    expect(warnings[0]).toContain(USER_EXTENSION); // what it does list
  });

  it('userRemoval delete sends DELETE; deactivate (default) sends active=false', async () => {
    for (const userRemoval of ['deactivate', 'delete']) {
      server.users.clear();
      const ws = workspace({ userRemoval }, { safeguards: { maxRemovals: 10, maxRemovalPercent: 100 } });
      const app = ws.open();
      await ingest(app, ws, { 'users.csv': usersCsv([{ id: 'u1' }, { id: 'u2' }]) });
      await ingest(app, ws, { 'users.csv': usersCsv([{ id: 'u1' }]) });
      const u2 = [...server.users.values()].find((u) => u.externalId === 'u2');
      if (userRemoval === 'delete') expect(u2).toBeUndefined();
      else expect(u2!.active).toBe(false);
    }
  });

  it('bad target settings are clear config errors naming the key', () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ baseUrl: 'ftp://x' }, /baseUrl/],
      [{ baseUrl: 'http://scim.example.com/api' }, /must be https/],
      [{ tokenEnv: 'sk-live-abc123' }, /tokenEnv.*NAME of an environment variable/s],
      [{ token: 'abc' }, /token/],
      [{ patchDialect: 'okta' }, /patchDialect/],
      [{ groupParents: 'extension' }, /groupExtension/],
      [{ concurrency: 0 }, /concurrency/],
    ];
    for (const [extra, message] of cases) {
      const ws = workspace(extra);
      const app = ws.open();
      expect(() => app.tenant('acme')).toThrow(ConfigError);
      expect(() => app.tenant('acme')).toThrow(message);
    }
  });

  it('a missing token variable stops the run before anything is sent, saying which variable', async () => {
    const ws = workspace({ tokenEnv: 'WT_SCIM_TOKEN_UNSET' });
    const app = ws.open();
    await expect(ingest(app, ws, { 'users.csv': usersCsv([{ id: 'u1' }]) })).rejects.toThrow(/WT_SCIM_TOKEN_UNSET \(target.tokenEnv of tenant acme\) is not set/);
    expect(server.requests).toHaveLength(0);
    expect(readDirectory(app.db, 'acme').users).toHaveLength(0);
  });
});
