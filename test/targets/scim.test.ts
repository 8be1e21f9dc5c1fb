// The SCIM target against a real SCIM server (scimmy + scimmy-routers on express 4, 127.0.0.1): examples/ end up as
// the right Users and Groups, a second day sends only the PATCHes it needs, each dialect's bodies are accepted.
import { describe, expect, it } from 'vitest';
import type { ScimServer } from '../helpers/scim-server.js';
import { examples, expectedRemote, ingest, remoteState, useScimServer } from './scim-helpers.js';

let server: ScimServer;

const workspace = useScimServer((s) => (server = s));

describe.each(['rfc', 'entra'] as const)('scim target, %s dialect', (patchDialect) => {
  it('examples/ become the right SCIM Users and Groups; a second day sends only the PATCHes it needs', async () => {
    const ws = workspace({ patchDialect });
    const app = ws.open();
    const report = (await ingest(app, ws, examples()))!;
    expect(report.counts.failed).toBe(0);
    expect(report.status).toBe('applied');
    const remote = remoteState(server);
    expect(remote).toEqual(expectedRemote(app));
    expect(remote.users).toHaveLength(25);
    expect(remote.groups).toHaveLength(8);
    // Groups created empty, then members added by PATCH.
    const groupPosts = server.writes().filter((r) => r.method === 'POST' && r.path.endsWith('/Groups'));
    expect(groupPosts.every((r) => (r.body as any).members.length === 0)).toBe(true);
    expect(server.requests.some((r) => r.path.endsWith('/ServiceProviderConfig'))).toBe(true);

    // Day 2: one last name, one email, one user inactive, one user out of a group, one title (not carried by SCIM).
    server.requests.length = 0;
    const users = examples()['wt_users.csv'].split('\n');
    const cells = (i: number) => users[i].split(';');
    const set = (i: number, col: number, value: string) => {
      const c = cells(i);
      c[col] = value;
      users[i] = c.join(';');
    };
    set(1, 2, 'Johnson-Berg');
    set(2, 4, 'anna.a@example.com');
    set(3, 14, 'Inactive');
    set(4, 11, 'sales-2'); // from sales-1
    set(5, 6, 'Boss');
    const changed = users.join('\n');
    const before = remoteState(server);
    const day2 = (await ingest(app, ws, { 'wt_users.csv': changed }))!;
    expect(day2.counts.failed).toBe(0);
    expect(remoteState(server)).toEqual(expectedRemote(app));
    const writes = server.writes();
    expect(writes.every((w) => w.method === 'PATCH')).toBe(true);
    const userPatches = writes.filter((w) => w.path.includes('/Users/'));
    const groupPatches = writes.filter((w) => w.path.includes('/Groups/'));
    // Three users changed in what SCIM carries (the title is not); the group move is one add and one removal.
    expect(userPatches).toHaveLength(3);
    const plannedLinks = day2.operations.filter((o) => (o.op === 'link' || o.op === 'unlink') && o.entity === 'membership' && !(o.op === 'link' && o.before));
    expect(groupPatches).toHaveLength(new Set(plannedLinks.map((o) => `${o.op}:${(o as any).groupId}`)).size);
    expect(before.users.length).toBe(remoteState(server).users.length);
    const ops = userPatches.flatMap((w) => (w.body as any).Operations);
    if (patchDialect === 'entra') {
      expect(ops.every((o: any) => /^[A-Z]/.test(o.op))).toBe(true);
      expect(ops.some((o: any) => o.path === 'active' && o.value === 'False')).toBe(true);
    } else {
      expect(ops.every((o: any) => /^[a-z]/.test(o.op))).toBe(true);
      expect(ops.some((o: any) => o.path === 'active' && o.value === false)).toBe(true);
      expect(ops.filter((o: any) => o.path === 'emails').every((o: any) => o.value.filter((e: any) => e.primary).length === 1)).toBe(true);
    }
  });
});
