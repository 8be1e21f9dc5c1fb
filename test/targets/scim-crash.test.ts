// kill -9 of a real `wt-sync ingest` applying 2,000 users to a SCIM server, at 5 points, then a restart: nothing
// created twice (a replayed create finds the stored id or adopts on 409), and the remote ends as the plan says.
import Database from 'better-sqlite3';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resumeUnfinished } from '../../src/apply/run.js';
import type { App } from '../../src/app.js';
import { directoryView } from '../../src/targets/directory-view.js';
import { readDirectory } from '../../src/targets/embedded.js';
import { startScimServer, type ScimServer } from '../helpers/scim-server.js';
import { makeWorkspace, spawnCli, usersCsv, type Workspace } from '../helpers/workspace.js';
import { expectedRemote, ingest, remoteState, scimTarget, TOKEN_ENV } from './scim-helpers.js';

const USERS = 2000;
const GROUPS = 'Group name;GroupID;Parent groupID\nProduct;prod;\nDev;dev;prod\nOps;ops;prod\n';
const DAY1 = usersCsv(Array.from({ length: USERS }, (_, i) => ({ id: `u${String(i).padStart(5, '0')}`, groups: i % 2 ? 'dev' : 'ops', title: 'T' })));
// Seeded delays after the apply starts, spread over its length.
const KILLS = [150, 500, 900, 1400, 2100];

let server: ScimServer;
let reference: unknown;
const spaces: Workspace[] = [];

function workspace(): Workspace {
  const ws = makeWorkspace();
  spaces.push(ws);
  ws.tenant('acme', { target: scimTarget(server, { concurrency: 4 }), safeguards: { maxRemovals: 100_000, maxRemovalPercent: 100 } });
  return ws;
}

function directoryOf(app: App): unknown {
  const view = directoryView(readDirectory(app.db, 'acme'));
  return { ...view, users: view.users.map((u) => ({ ...u, removedAt: u.removedAt !== null, purgeAfter: u.purgeAfter !== null })) };
}

function reset(): void {
  server.users.clear();
  server.groups.clear();
  server.requests.length = 0;
  server.arrivals.length = 0;
}

beforeAll(async () => {
  server = await startScimServer();
  server.latencyMs = 1;
  process.env[TOKEN_ENV] = server.token;
  const ws = workspace();
  const app = ws.open();
  await ingest(app, ws, { 'groups.csv': GROUPS, 'users.csv': DAY1 });
  reference = directoryOf(app);
  expect(remoteState(server)).toEqual(expectedRemote(app));
  app.close();
}, 120_000);
afterAll(async () => {
  await server.close();
  for (const ws of spaces) ws.cleanup();
});

function ingestKilled(ws: Workspace, files: string[], delayMs: number): Promise<NodeJS.Signals | null> {
  return new Promise((resolve) => {
    const child = spawnCli(ws, ['ingest', '--tenant', 'acme', ...files], { WT_SYNC_LOG_LEVEL: 'info', [TOKEN_ENV]: server.token });
    let buffered = '';
    let armed = false;
    child.stderr.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      if (!armed && buffered.includes('"msg":"applying plan"')) {
        armed = true;
        setTimeout(() => child.kill('SIGKILL'), delayMs);
      }
    });
    child.on('exit', (_code, signal) => resolve(signal));
  });
}

describe('kill -9 during a SCIM apply, then restart', () => {
  let midApply = 0;
  it.each(KILLS)('killed %i ms into the apply of 2,000 users', async (delay) => {
    reset();
    const ws = workspace();
    const signal = await ingestKilled(ws, [ws.file('groups.csv', GROUPS), ws.file('users.csv', DAY1)], delay);
    expect(signal).toBe('SIGKILL');
    const db = new Database(path.join(ws.dir, 'data/wt-sync.sqlite'), { readonly: true });
    const statuses = Object.fromEntries((db.prepare('SELECT status, count(*) AS n FROM journal GROUP BY status').all() as { status: string; n: number }[]).map((r) => [r.status, r.n]));
    db.close();
    if (statuses.done && statuses.planned) midApply++;
    const createdBefore = server.users.size;
    const app = ws.open();
    await resumeUnfinished(app, new Set(['acme']));
    // Nothing twice: one remote user per external ID, every group member once; the mirror as an uninterrupted run's.
    expect(server.users.size).toBe(USERS);
    expect(new Set([...server.users.values()].map((u) => u.externalId)).size).toBe(USERS);
    for (const g of server.groups.values()) expect(new Set(g.members.map((m: any) => m.value)).size).toBe(g.members.length);
    expect(remoteState(server)).toEqual(expectedRemote(app));
    expect(directoryOf(app)).toEqual(reference);
    const runs = app.db.prepare("SELECT status FROM runs WHERE tenant = 'acme'").pluck().all();
    expect(runs).toEqual(['applied']);
    expect(app.db.prepare("SELECT count(*) FROM journal WHERE status <> 'done'").pluck().get()).toBe(0);
    expect(createdBefore).toBeLessThanOrEqual(USERS);
    app.close();
  }, 90_000);

  it('some kills landed in the middle of the apply', () => {
    expect(midApply).toBeGreaterThanOrEqual(3);
  });
});
