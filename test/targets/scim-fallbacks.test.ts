// Providers that do less than RFC 7644 allows: one without PATCH (said in /ServiceProviderConfig, or found out by a
// 501/405 at runtime) gets PUTs of the full resource; Entra's `emails[type eq "work"].value` on a user without a
// work-typed email (400 noTarget) is sent once more in the RFC form.
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { openApp } from '../../src/app.js';
import type { ScimServer } from '../helpers/scim-server.js';
import { usersCsv, type Workspace } from '../helpers/workspace.js';
import { examples, expectedRemote, ingest, remoteState, useScimServer } from './scim-helpers.js';

let server: ScimServer;

const workspace = useScimServer((s) => (server = s));

function warnings(ws: Workspace) {
  const lines: string[] = [];
  const app = openApp({ configPath: ws.configPath, logger: pino({ level: 'warn' }, { write: (l: string) => lines.push(l) }) });
  return { app, lines };
}

/** The examples' users file with one last name, one email, one user inactive and one user added to another group. */
function day2Users(): string {
  const users = examples()['wt_users.csv'].split('\n');
  const set = (i: number, col: number, value: string) => {
    const c = users[i].split(';');
    c[col] = value;
    users[i] = c.join(';');
  };
  set(1, 2, 'Johnson-Berg');
  set(2, 4, 'anna.a@example.com');
  set(3, 14, 'Inactive');
  set(4, 11, 'sales-2'); // from sales-1, where she stays as admin: one member add
  return users.join('\n');
}

const HAND_USER = { schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'], id: 'hand', userName: 'byhand@example.com', active: true };

describe.each(['rfc', 'entra'] as const)('a provider without PATCH (/ServiceProviderConfig says so), %s dialect', (patchDialect) => {
  it('gets PUTs of the full resource for users and group members, keeping what it holds that we do not manage', async () => {
    server.withoutPatch(); // a PATCH sent anyway is answered 501 and fails the test
    const ws = workspace({ patchDialect });
    const app = ws.open();
    const day1 = (await ingest(app, ws, examples()))!;
    expect(day1.counts.failed).toBe(0);
    expect(server.requests.filter((r) => r.method === 'PATCH')).toEqual([]);
    expect(remoteState(server)).toEqual(expectedRemote(app));
    // Members went in by PUT: one per group in this one-batch run, each after a GET of the group.
    const groupPuts = server.writes().filter((w) => w.method === 'PUT' && w.path.includes('/Groups/'));
    expect(groupPuts.length).toBe(new Set(groupPuts.map((w) => w.path)).size);
    expect(groupPuts.length).toBe([...server.groups.values()].filter((g) => g.members.length > 0).length);

    // Things WT holds that we do not manage: an attribute set in WT, a member added there by hand.
    const mark = [...server.users.values()].find((u) => u.externalId === '6513270e-269e-4d37-b2a7-4de452e6b438')!;
    server.users.set(mark.id, { ...mark, nickName: 'Marky' });
    server.users.set('hand', HAND_USER);
    const sales2 = [...server.groups.values()].find((g) => g.externalId === 'sales-2')!;
    sales2.members.push({ value: 'hand', type: 'User' });

    server.requests.length = 0;
    const day2 = (await ingest(app, ws, { 'wt_users.csv': day2Users() }))!;
    expect(day2.counts.failed).toBe(0);
    expect(server.requests.filter((r) => r.method === 'PATCH')).toEqual([]);
    const writes = server.writes();
    expect(writes.every((w) => w.method === 'PUT')).toBe(true);
    // As many PUTs as there would be PATCHes: three users, and one to the group with a new member.
    expect(writes.filter((w) => w.path.includes('/Users/'))).toHaveLength(3);
    expect(writes.filter((w) => w.path.includes('/Groups/')).map((w) => decodeURIComponent(w.path.split('/Groups/')[1]))).toEqual([sales2.id]);
    // Each PUT read the resource first.
    for (const w of writes) {
      const i = server.requests.indexOf(w);
      expect(server.requests.slice(0, i).some((r) => r.method === 'GET' && r.path === w.path)).toBe(true);
    }
    // PUT bodies are full resources with booleans, one primary email; the hand-made parts are kept.
    for (const w of writes.filter((x) => x.path.includes('/Users/'))) {
      const body = w.body as any;
      expect(typeof body.active).toBe('boolean');
      expect(body.emails.filter((e: any) => e.primary)).toHaveLength(1);
      expect(body.userName).toBeTruthy();
    }
    expect(server.users.get(mark.id)).toMatchObject({ nickName: 'Marky', name: { familyName: 'Johnson-Berg' } });
    expect(server.groups.get(sales2.id)!.members.map((m: any) => m.value)).toContain('hand');
    server.users.delete('hand');
    const g = server.groups.get(sales2.id)!;
    server.groups.set(sales2.id, { ...g, members: g.members.filter((m: any) => m.value !== 'hand') });
    expect(remoteState(server)).toEqual(expectedRemote(app));
  });
});

describe('PUT of a user gone from the provider', () => {
  it('the GET answered 404 looks the user up again, then recreates it with its memberships (two at once, same group)', async () => {
    server.withoutPatch();
    const ws = workspace();
    const app = ws.open();
    const groups = 'Group name;GroupID;Parent groupID\nDev;dev;\n';
    await ingest(app, ws, { 'groups.csv': groups, 'users.csv': usersCsv([{ id: 'u1', groups: 'dev' }, { id: 'u2', groups: 'dev' }, { id: 'u3', groups: 'dev' }]) });
    const gone = ['u1', 'u2'].map((id) => server.userByExternalId(id)!);
    server.latencyMs = 5; // both recreations read the group before either writes it, unless we keep them apart
    for (const u of gone) {
      server.users.delete(u.id);
      for (const g of server.groups.values()) g.members = g.members.filter((m: any) => m.value !== u.id);
    }
    const report = (await ingest(app, ws, { 'users.csv': usersCsv([{ id: 'u1', groups: 'dev', last: 'Changed' }, { id: 'u2', groups: 'dev', last: 'Changed' }, { id: 'u3', groups: 'dev' }]) }))!;
    expect(report.counts.failed).toBe(0);
    for (const u of gone) expect(server.requests.some((r) => r.method === 'GET' && r.path.endsWith(`/Users/${u.id}`) && r.status === 404)).toBe(true);
    expect(server.requests.filter((r) => r.method === 'PATCH')).toEqual([]);
    expect(server.users.size).toBe(3);
    expect(server.userByExternalId('u1')!.name.familyName).toBe('Changed');
    expect([...server.groups.values()][0].members).toHaveLength(3);
    expect(remoteState(server)).toEqual(expectedRemote(app));
  });
});

describe('a provider that refuses PATCH at runtime although it advertises it', () => {
  it.each([405, 501] as const)('answered %i: PUT from then on, said once at warn', async (status) => {
    server.refusePatch = status;
    const ws = workspace();
    const { app, lines } = warnings(ws);
    try {
      const day1 = (await ingest(app, ws, examples()))!;
      expect(day1.counts.failed).toBe(0);
      expect(remoteState(server)).toEqual(expectedRemote(app));
      // Only the PATCHes already in flight when the first refusal came back (at most the concurrency, 4).
      const patches = server.requests.filter((r) => r.method === 'PATCH');
      expect(patches.length).toBeGreaterThanOrEqual(1);
      expect(patches.length).toBeLessThanOrEqual(4);
      expect(patches.every((r) => r.status === status)).toBe(true);

      server.requests.length = 0;
      const day2 = (await ingest(app, ws, { 'wt_users.csv': day2Users() }))!;
      expect(day2.counts.failed).toBe(0);
      expect(server.requests.filter((r) => r.method === 'PATCH')).toEqual([]);
      expect(server.writes().filter((w) => w.method === 'PUT')).toHaveLength(4);
      expect(remoteState(server)).toEqual(expectedRemote(app));
      const said = lines.filter((l) => l.includes('refused PATCH'));
      expect(said).toHaveLength(1);
      expect(JSON.parse(said[0])).toMatchObject({ level: 40, status });
    } finally {
      app.close();
    }
  });
});

describe('entra dialect, a user without a work-typed email', () => {
  const workEmails = (u: any) => u.emails.filter((e: any) => e.type === 'work');

  it('adopting: the 400 noTarget is sent once more with emails replaced whole, one primary', async () => {
    server.users.set('r1', {
      schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'], id: 'r1', externalId: 'u1', userName: 'u1@example.com',
      name: { givenName: 'First', familyName: 'Old' }, emails: [{ value: 'u1@home.example', type: 'home', primary: true }], active: true,
    });
    const ws = workspace({ patchDialect: 'entra' });
    const app = ws.open();
    const report = (await ingest(app, ws, { 'users.csv': usersCsv([{ id: 'u1' }]) }))!;
    expect(report.counts.failed).toBe(0);
    const patches = server.requests.filter((r) => r.method === 'PATCH' && r.path.endsWith('/Users/r1'));
    expect(patches.map((r) => r.status)).toEqual([400, 200]);
    const [first, second] = patches.map((r) => (r.body as any).Operations);
    expect(first).toContainEqual({ op: 'Replace', path: 'emails[type eq "work"].value', value: 'u1@example.com' });
    // The retry is the same operations with only the email one in the RFC form.
    expect(second).toEqual(first.map((o: any) => (o.path?.startsWith('emails[')
      ? { op: 'Replace', path: 'emails', value: [{ value: 'u1@example.com', type: 'work', primary: true }] } : o)));
    expect(server.users.size).toBe(1);
    expect(server.users.get('r1')).toMatchObject({ externalId: 'u1', name: { givenName: 'First', familyName: 'Last-u1' }, emails: [{ value: 'u1@example.com', type: 'work', primary: true }] });
  });

  it('a day-2 email change: noTarget, then the RFC form; other users untouched', async () => {
    const ws = workspace({ patchDialect: 'entra' });
    const app = ws.open();
    await ingest(app, ws, { 'users.csv': usersCsv([{ id: 'u1' }, { id: 'u2' }]) });
    const u1 = server.userByExternalId('u1')!;
    expect(workEmails(u1)).toHaveLength(1);
    // Someone retyped it in WT.
    server.users.set(u1.id, { ...u1, emails: [{ value: 'u1@example.com', type: 'other', primary: true }, { value: 'x@example.com', type: 'home' }] });
    const u2 = structuredClone(server.userByExternalId('u2')!);
    server.requests.length = 0;
    const report = (await ingest(app, ws, { 'users.csv': usersCsv([{ id: 'u1', email: 'new@example.com' }, { id: 'u2' }]) }))!;
    expect(report.counts.failed).toBe(0);
    expect(server.requests.filter((r) => r.method !== 'GET').map((r) => `${r.method} ${r.status} ${(r.body as any).Operations.map((o: any) => o.path).join(',')}`))
      .toEqual(['PATCH 400 emails[type eq "work"].value', 'PATCH 200 emails']);
    expect(server.userByExternalId('u1')!.emails).toEqual([{ value: 'new@example.com', type: 'work', primary: true }]);
    expect(server.userByExternalId('u2')).toEqual(u2);
  });

  it('any other 400 is the operation\'s failure, sent once', async () => {
    const ws = workspace({ patchDialect: 'entra' });
    const app = ws.open();
    await ingest(app, ws, { 'users.csv': usersCsv([{ id: 'u1' }]) });
    server.requests.length = 0;
    server.reject = ({ method }) => method === 'PATCH';
    const report = (await ingest(app, ws, { 'users.csv': usersCsv([{ id: 'u1', last: 'Changed' }]) }))!;
    expect(report.counts.failed).toBe(1);
    expect(server.requests.filter((r) => r.method === 'PATCH')).toHaveLength(1);
    expect(server.userByExternalId('u1')!.name.familyName).toBe('Last-u1');
  });
});
