// The WT-only lists in the user extension schema: `segments` (segment external IDs) and `adminOf` (the external IDs
// of the groups a user administers). Sent on create and adopt; a change of either is a PATCH of just that attribute;
// a removed segment or group leaves its users' lists; drift compares them.
import { describe, expect, it } from 'vitest';
import type { App } from '../../src/app.js';
import { readDirectory } from '../../src/targets/embedded.js';
import { driftLines, scimDrift } from '../../src/targets/scim-drift.js';
import type { ScimTarget } from '../../src/targets/scim.js';
import { USER_EXTENSION, type ScimServer } from '../helpers/scim-server.js';
import { usersCsv, type Workspace } from '../helpers/workspace.js';
import { expectedRemote, ingest, remoteState, useScimServer } from './scim-helpers.js';

let server: ScimServer;
const GROUPS = 'Group name;GroupID;Parent groupID\nProduct;prod;\nDev;dev;prod\nOps;ops;\n';
const SEGMENTS = 'SegmentName;SegmentID\nSweden;swe\nNorway;nor\n';

const scimWorkspace = useScimServer((s) => (server = s));

function workspace(extra: Record<string, unknown> = {}): Workspace {
  return scimWorkspace({ userExtension: USER_EXTENSION, ...extra }, {
    rules: { membershipUpdate: 'overwrite', segmentConnectionUpdate: 'overwrite' },
    safeguards: { maxRemovals: 10, maxRemovalPercent: 100 },
  });
}

/** A remote user's extension attributes (the server drops an empty extension). */
const ext = (externalId: string) => server.userByExternalId(externalId)?.[USER_EXTENSION] ?? {};
/** Every remote user without `meta` (which a write stamps), keyed by externalId: to see what else changed. */
const snapshot = () => new Map([...server.users.values()].map((u) => {
  const { meta: _m, ...rest } = u;
  return [u.externalId as string, structuredClone(rest)];
}));
/** The operations of each successful user PATCH, by the user's externalId. */
function userPatches(): Map<string, any[]> {
  const byId = new Map([...server.users.values()].map((u) => [u.id, u.externalId]));
  const out = new Map<string, any[]>();
  for (const w of server.writes().filter((r) => r.method === 'PATCH' && r.path.includes('/Users/'))) {
    const id = decodeURIComponent(w.path.split('/Users/')[1]);
    out.set(byId.get(id), [...(out.get(byId.get(id)) ?? []), ...(w.body as any).Operations]);
  }
  return out;
}
/** Nothing but these users' extension lists changed since `before`. */
function onlyListsChanged(before: ReturnType<typeof snapshot>, changed: string[]) {
  const after = snapshot();
  expect([...after.keys()].sort()).toEqual([...before.keys()].sort());
  for (const [id, u] of after) {
    const was = before.get(id)!;
    if (!changed.includes(id)) {
      expect(u).toEqual(was);
      continue;
    }
    const { [USER_EXTENSION]: e1, ...rest1 } = u;
    const { [USER_EXTENSION]: e0, ...rest0 } = was;
    expect(rest1).toEqual(rest0);
    expect({ ...e1, segments: undefined, adminOf: undefined }).toEqual({ ...e0, segments: undefined, adminOf: undefined });
  }
}

async function day(app: App, ws: Workspace, files: Record<string, string>) {
  server.requests.length = 0;
  const before = snapshot();
  const report = (await ingest(app, ws, files))!;
  expect(report.counts.failed).toBe(0);
  expect(remoteState(server)).toEqual(expectedRemote(app));
  return { report, before };
}

describe('segments and adminOf in the user extension', () => {
  it('are sent on create; a change of either is one PATCH of just that attribute; drift compares them', async () => {
    const ws = workspace();
    const app = ws.open();
    const day1 = (await ingest(app, ws, {
      'groups.csv': GROUPS, 'segments.csv': SEGMENTS,
      'users.csv': usersCsv([
        { id: 'u1', groups: 'dev,ops', admin: 'dev', segments: 'swe', title: 'Lead' },
        { id: 'u2', groups: 'dev', segments: 'swe,nor' },
        { id: 'u3', groups: 'ops' },
      ]),
    }))!;
    expect(day1.counts.failed).toBe(0);
    expect(ext('u1')).toEqual({ title: 'Lead', segments: ['swe'], adminOf: ['dev'] });
    expect(ext('u2')).toEqual({ segments: ['nor', 'swe'] });
    expect(ext('u3')).toEqual({});
    // The POSTs carried them: no PATCH of a user on day 1.
    expect(server.writes().filter((w) => w.method === 'PATCH' && w.path.includes('/Users/'))).toEqual([]);

    // Day 2: segments only. u1 joins Norway, u2 leaves it.
    let d = await day(app, ws, {
      'users.csv': usersCsv([
        { id: 'u1', groups: 'dev,ops', admin: 'dev', segments: 'swe,nor', title: 'Lead' },
        { id: 'u2', groups: 'dev', segments: 'swe' },
        { id: 'u3', groups: 'ops' },
      ]),
    });
    expect(server.writes().map((w) => w.method)).toEqual(['PATCH', 'PATCH']);
    expect(Object.fromEntries(userPatches())).toEqual({
      u1: [{ op: 'replace', value: { [USER_EXTENSION]: { segments: ['nor', 'swe'] } } }],
      u2: [{ op: 'replace', value: { [USER_EXTENSION]: { segments: ['swe'] } } }],
    });
    expect(ext('u1')).toEqual({ title: 'Lead', segments: ['nor', 'swe'], adminOf: ['dev'] });
    expect(ext('u2')).toEqual({ segments: ['swe'] });
    onlyListsChanged(d.before, ['u1', 'u2']);

    // Day 3: admin roles only. u1 stays in dev as a member, u2 becomes dev's admin, u3 admin of prod (a new group).
    d = await day(app, ws, {
      'users.csv': usersCsv([
        { id: 'u1', groups: 'dev,ops', segments: 'swe,nor', title: 'Lead' },
        { id: 'u2', groups: 'dev', admin: 'dev', segments: 'swe' },
        { id: 'u3', groups: 'ops', admin: 'prod' },
      ]),
    });
    expect(Object.fromEntries(userPatches())).toEqual({
      u1: [{ op: 'remove', path: `${USER_EXTENSION}:adminOf` }],
      u2: [{ op: 'replace', value: { [USER_EXTENSION]: { adminOf: ['dev'] } } }],
      u3: [{ op: 'replace', value: { [USER_EXTENSION]: { adminOf: ['prod'] } } }],
    });
    // The role changes keep the memberships; u3's new one is the only group PATCH.
    const groupWrites = server.writes().filter((w) => w.path.includes('/Groups/'));
    expect(groupWrites).toHaveLength(1);
    expect((groupWrites[0].body as any).Operations).toEqual([{ op: 'add', path: 'members', value: [{ value: server.userByExternalId('u3')!.id }] }]);
    expect(ext('u1')).toEqual({ title: 'Lead', segments: ['nor', 'swe'] });
    expect(ext('u2')).toEqual({ segments: ['swe'], adminOf: ['dev'] });
    expect(ext('u3')).toEqual({ adminOf: ['prod'] });
    onlyListsChanged(d.before, ['u1', 'u2', 'u3']);

    // Drift: no difference now; then lists edited in WT by hand are found, and nothing is written.
    const target = app.target(app.tenant('acme')) as ScimTarget;
    expect((await scimDrift(target, 'acme', readDirectory(app.db, 'acme'))).drift).toBe(false);
    const u1 = server.userByExternalId('u1')!;
    server.users.set(u1.id, { ...u1, [USER_EXTENSION]: { ...u1[USER_EXTENSION], segments: ['swe'], adminOf: ['ops'] } });
    const writes = server.writes().length;
    const drift = await scimDrift(target, 'acme', readDirectory(app.db, 'acme'));
    expect(drift.drift).toBe(true);
    expect(drift.fields).toEqual([
      { externalId: 'u1', field: 'segments', mirror: ['nor', 'swe'], remote: ['swe'] },
      { externalId: 'u1', field: 'adminOf', mirror: [], remote: ['ops'] },
    ]);
    expect(driftLines(drift)).toContain('user u1: segments is ["swe"] in WT, ["nor","swe"] applied');
    expect(server.writes().length).toBe(writes);
  });

  it('a removed segment or group leaves the lists of its users, in one PATCH each', async () => {
    const ws = workspace();
    const app = ws.open();
    await ingest(app, ws, {
      'groups.csv': GROUPS, 'segments.csv': SEGMENTS,
      'users.csv': usersCsv([{ id: 'u1', groups: 'dev', admin: 'ops', segments: 'swe,nor' }, { id: 'u2', groups: 'dev', segments: 'swe' }]),
    });
    expect(ext('u1')).toEqual({ segments: ['nor', 'swe'], adminOf: ['ops'] });
    const d = await day(app, ws, {
      'groups.csv': 'Group name;GroupID;Parent groupID\nProduct;prod;\nDev;dev;prod\n', 'segments.csv': 'SegmentName;SegmentID\nSweden;swe\n',
      'users.csv': usersCsv([{ id: 'u1', groups: 'dev', segments: 'swe' }, { id: 'u2', groups: 'dev', segments: 'swe' }]),
    });
    expect(d.report.operations.filter((o) => o.op === 'remove').map((o) => `${o.entity}:${(o as any).externalId}`).sort()).toEqual(['group:ops', 'segment:nor']);
    const patches = userPatches();
    expect([...patches.keys()]).toEqual(['u1']);
    const ops = patches.get('u1')!;
    expect(ops).toHaveLength(2);
    expect(ops).toContainEqual({ op: 'replace', value: { [USER_EXTENSION]: { segments: ['swe'] } } });
    expect(ops).toContainEqual({ op: 'remove', path: `${USER_EXTENSION}:adminOf` });
    expect(ext('u1')).toEqual({ segments: ['swe'] });
    expect(ext('u2')).toEqual({ segments: ['swe'] });
  });

  it('an adopted user gets only the lists that differ', async () => {
    server.users.set('r1', {
      schemas: ['urn:ietf:params:scim:schemas:core:2.0:User', USER_EXTENSION], id: 'r1', externalId: 'u1', userName: 'u1@example.com',
      name: { givenName: 'First', familyName: 'Last-u1' }, displayName: 'First Last-u1', emails: [{ value: 'u1@example.com', type: 'work', primary: true }], active: true,
      [USER_EXTENSION]: { segments: ['swe'], adminOf: ['dev'] },
    });
    const ws = workspace();
    const app = ws.open();
    const report = (await ingest(app, ws, { 'groups.csv': GROUPS, 'segments.csv': SEGMENTS, 'users.csv': usersCsv([{ id: 'u1', groups: 'dev', admin: 'dev', segments: 'swe,nor' }]) }))!;
    expect(report.counts.failed).toBe(0);
    expect(server.users.size).toBe(1);
    expect(userPatches().get('u1')).toEqual([{ op: 'replace', value: { [USER_EXTENSION]: { segments: ['nor', 'swe'] } } }]);
    expect(ext('u1')).toEqual({ segments: ['nor', 'swe'], adminOf: ['dev'] });
  });

  it('in the entra dialect the same PATCHes go with its op names, and are accepted', async () => {
    const ws = workspace({ patchDialect: 'entra' });
    const app = ws.open();
    await ingest(app, ws, { 'groups.csv': GROUPS, 'segments.csv': SEGMENTS, 'users.csv': usersCsv([{ id: 'u1', groups: 'dev', admin: 'dev', segments: 'swe' }, { id: 'u2', groups: 'dev' }]) });
    const d = await day(app, ws, { 'users.csv': usersCsv([{ id: 'u1', groups: 'dev', segments: 'swe,nor' }, { id: 'u2', groups: 'dev' }]) });
    expect(userPatches().get('u1')).toEqual([
      { op: 'Remove', path: `${USER_EXTENSION}:adminOf` },
      { op: 'Replace', value: { [USER_EXTENSION]: { segments: ['nor', 'swe'] } } },
    ]);
    expect(server.writes()).toHaveLength(1);
    expect(ext('u1')).toEqual({ segments: ['nor', 'swe'] });
    onlyListsChanged(d.before, ['u1']);
  });

  it('a provider without PATCH gets the lists by PUT of the full user, nothing else changed', async () => {
    server.withoutPatch();
    const ws = workspace();
    const app = ws.open();
    await ingest(app, ws, { 'groups.csv': GROUPS, 'segments.csv': SEGMENTS, 'users.csv': usersCsv([{ id: 'u1', groups: 'dev', admin: 'dev', segments: 'swe', title: 'Lead' }, { id: 'u2', groups: 'dev' }]) });
    const d = await day(app, ws, { 'users.csv': usersCsv([{ id: 'u1', groups: 'dev', segments: 'nor', title: 'Lead' }, { id: 'u2', groups: 'dev', admin: 'dev' }]) });
    expect(server.requests.filter((q) => q.method === 'PATCH')).toEqual([]);
    expect(server.writes().map((w) => `${w.method} ${server.users.get(decodeURIComponent(w.path.split('/Users/')[1]))?.externalId}`).sort()).toEqual(['PUT u1', 'PUT u2']);
    expect(ext('u1')).toEqual({ title: 'Lead', segments: ['nor'] });
    expect(ext('u2')).toEqual({ adminOf: ['dev'] });
    onlyListsChanged(d.before, ['u1', 'u2']);
  });

  it('without the extension the lists are not sent at all', async () => {
    const ws = workspace({ userExtension: undefined });
    const app = ws.open();
    await ingest(app, ws, { 'groups.csv': GROUPS, 'segments.csv': SEGMENTS, 'users.csv': usersCsv([{ id: 'u1', groups: 'dev', admin: 'dev', segments: 'swe' }]) });
    server.requests.length = 0;
    await ingest(app, ws, { 'users.csv': usersCsv([{ id: 'u1', groups: 'dev', segments: 'nor' }]) });
    expect(server.writes()).toEqual([]);
    expect(server.userByExternalId('u1')![USER_EXTENSION]).toBeUndefined();
  });
});
