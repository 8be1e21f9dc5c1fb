// `wt-sync drift`: a user changed and a member removed directly on the SCIM server are found; exit 0 without drift,
// 1 with it; an embedded tenant is a usage error.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startScimServer, type ScimServer } from '../helpers/scim-server.js';
import { makeWorkspace, type Workspace } from '../helpers/workspace.js';
import { cliAsync, examples, ingest, scimTarget, TOKEN_ENV } from './scim-helpers.js';

let server: ScimServer;
let ws: Workspace;

beforeAll(async () => {
  server = await startScimServer();
  process.env[TOKEN_ENV] = server.token;
  ws = makeWorkspace();
  ws.tenant('acme', { target: scimTarget(server) });
  ws.tenant('plain', {});
  const app = ws.open();
  await ingest(app, ws, examples());
  app.close();
});
afterAll(async () => {
  await server.close();
  ws.cleanup();
});

const env = () => ({ [TOKEN_ENV]: server.token });

describe('wt-sync drift', () => {
  it('none right after a run (exit 0), read page by page from a server capping pages at 7', async () => {
    server.pageCap = 7;
    const r = await cliAsync(ws, ['drift', '--tenant', 'acme', '--json'], env());
    server.pageCap = null;
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const d = JSON.parse(r.stdout);
    expect(d).toMatchObject({ drift: false, fields: [], memberships: [], missing: { users: [], groups: [] }, extra: { users: [], groups: [] } });
    expect(server.requests.filter((q) => /\/Users\?/.test(q.path)).length).toBeGreaterThanOrEqual(4);
  });

  it('finds a user changed, a member removed, a user gone and one added by another client (exit 1); changes nothing', async () => {
    const users = [...server.users.values()];
    const changed = users[0];
    server.users.set(changed.id, { ...changed, name: { ...changed.name, familyName: 'Edited' } });
    const group = [...server.groups.values()].find((g) => g.members.length > 0)!;
    const removed = group.members[0].value;
    group.members = group.members.slice(1);
    const gone = users[1];
    server.users.delete(gone.id);
    for (const g of server.groups.values()) g.members = g.members.filter((m: any) => m.value !== gone.id);
    server.users.set('other', { id: 'other', externalId: 'from-elsewhere', userName: 'x@example.com', active: true });
    server.users.set('hand', { id: 'hand', userName: 'byhand@example.com', active: true }); // made in WT: not ours, not reported
    const writesBefore = server.writes().length;

    const r = await cliAsync(ws, ['drift', '--tenant', 'acme', '--json'], env());
    expect(r.status).toBe(1);
    const d = JSON.parse(r.stdout);
    expect(d.drift).toBe(true);
    expect(d.fields).toContainEqual({ externalId: changed.externalId, field: 'lastName', mirror: changed.name.familyName, remote: 'Edited' });
    const removedExternal = server.users.get(removed)!.externalId;
    expect(d.memberships).toContainEqual(expect.objectContaining({ group: group.externalId, missing: expect.arrayContaining([removedExternal]) }));
    expect(d.missing.users).toEqual([gone.externalId]);
    expect(d.extra.users).toEqual(['from-elsewhere']);
    expect(server.writes().length).toBe(writesBefore);

    const text = await cliAsync(ws, ['drift', '--tenant', 'acme'], env());
    expect(text.status).toBe(1);
    expect(text.stdout).toContain(`user ${changed.externalId}: lastName is "Edited" in WT`);
    expect(text.stdout).toContain(`missing user ${gone.externalId}`);
    expect(text.stdout).toMatch(new RegExp(`group ${group.externalId}: missing members .*${removedExternal}`));
  });

  it('an embedded tenant is a usage error (exit 2)', async () => {
    const r = await cliAsync(ws, ['drift', '--tenant', 'plain']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/not a SCIM target/);
  });
});
