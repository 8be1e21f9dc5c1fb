// Shared by the SCIM target's tests: a workspace whose tenant targets a local SCIM server, and the remote state
// compared with the mirror (the embedded directory).
import fs from 'node:fs';
import path from 'node:path';
import { reconcile } from '../../src/apply/run.js';
import type { App } from '../../src/app.js';
import { receiveFile } from '../../src/intake/receive.js';
import type { Report } from '../../src/report/report.js';
import { directoryView } from '../../src/targets/directory-view.js';
import { readDirectory } from '../../src/targets/embedded.js';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { makeWorkspace, REPO, spawnCli, type Workspace } from '../helpers/workspace.js';
import { startScimServer, type ScimServer } from '../helpers/scim-server.js';

export const TOKEN_ENV = 'WT_SCIM_TOKEN_TEST';

/** Fast retries for tests: the same rules, shorter waits. */
export function scimTarget(server: ScimServer, extra: Record<string, unknown> = {}) {
  return { type: 'scim', baseUrl: server.url, tokenEnv: TOKEN_ENV, backoffBaseMs: 5, backoffMaxMs: 50, timeoutSeconds: 5, ...extra };
}

/**
 * One SCIM server for a test file: started before its tests (its token in TOKEN_ENV) and handed to `started`, reset
 * after each test, closed at the end with the workspaces made meanwhile. Returns the file's workspace factory: a
 * tenant `acme` targeting the server (`extra`: target options), membershipUpdate overwrite unless `tenant` says else.
 */
export function useScimServer(started: (server: ScimServer) => void, opts: Parameters<typeof startScimServer>[0] = {}) {
  let server: ScimServer;
  const spaces: Workspace[] = [];
  beforeAll(async () => {
    server = await startScimServer(opts);
    process.env[TOKEN_ENV] = server.token;
    started(server);
  });
  afterAll(async () => {
    await server.close();
    for (const ws of spaces) ws.cleanup();
  });
  afterEach(() => server.reset());
  return (extra: Record<string, unknown> = {}, tenant: Record<string, unknown> = {}): Workspace => {
    const ws = makeWorkspace();
    spaces.push(ws);
    ws.tenant('acme', { target: scimTarget(server, extra), rules: { membershipUpdate: 'overwrite' }, ...tenant });
    return ws;
  };
}

export const EXAMPLES = ['wt_groups.csv', 'wt_segments.csv', 'wt_users.csv'].map((f) => path.join(REPO, 'examples', f));

export async function ingest(app: App, ws: Workspace, files: Record<string, string>, tenant = 'acme'): Promise<Report | null> {
  const ids = [];
  for (const [name, body] of Object.entries(files)) ids.push((await receiveFile(app, app.tenant(tenant), ws.file(name, body))).id);
  return reconcile(app, app.tenant(tenant), { kind: 'ingest', fileIds: ids });
}

export function examples(): Record<string, string> {
  return Object.fromEntries(EXAMPLES.map((f) => [path.basename(f), fs.readFileSync(f, 'utf8')]));
}

/** The remote users and groups in the mirror's terms, keyed by externalId. */
export function remoteState(server: ScimServer) {
  const byId = new Map([...server.users.values()].map((u) => [u.id, u]));
  const users = [...server.users.values()].map((u) => ({
    externalId: u.externalId, username: u.userName, firstName: u.name?.givenName, lastName: u.name?.familyName,
    email: (u.emails ?? []).find((e: any) => e.primary)?.value, primaries: (u.emails ?? []).filter((e: any) => e.primary).length, active: u.active !== false,
  })).sort((a, b) => (a.externalId < b.externalId ? -1 : 1));
  const groups = [...server.groups.values()].map((g) => ({
    externalId: g.externalId, name: g.displayName, members: (g.members ?? []).map((m: any) => byId.get(m.value)?.externalId).sort(),
  })).sort((a, b) => (a.externalId < b.externalId ? -1 : 1));
  return { users, groups };
}

/** What the remote should hold for the mirror (default options: segments and tree left out). */
export function expectedRemote(app: App, tenant = 'acme') {
  const view = directoryView(readDirectory(app.db, tenant));
  const users = view.users.filter((u) => u.externalId !== null).map((u) => ({
    externalId: u.externalId, username: u.username, firstName: u.firstName, lastName: u.lastName,
    email: u.email ?? u.username, primaries: 1, active: u.removedAt === null && u.status !== 'inactive',
  })).sort((a, b) => (a.externalId! < b.externalId! ? -1 : 1));
  const groups = view.groups.filter((g) => g.externalId !== null).map((g) => ({
    externalId: g.externalId, name: g.name,
    members: view.users.filter((u) => u.memberOf.includes(g.externalId!)).map((u) => u.externalId).sort(),
  })).sort((a, b) => (a.externalId! < b.externalId! ? -1 : 1));
  return { users, groups };
}

/** The CLI without blocking this process (the SCIM server in it must keep answering). */
export function cliAsync(ws: Workspace, args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawnCli(ws, args, { WT_SYNC_CONFIG: '', ...env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}
