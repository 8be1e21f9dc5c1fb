// kill -9 of a real `wt-sync ingest` process mid-apply: the database holds the old state or the new one, never a
// mix, and the next start finishes the run with nothing lost or doubled.
import Database from 'better-sqlite3';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeWorkspace, spawnCli, usersCsv, type Workspace } from '../helpers/workspace.js';

const USERS = 20_000;
let ws: Workspace;
let files: string[];

beforeAll(() => {
  ws = makeWorkspace();
  ws.tenant('acme');
  const rows = Array.from({ length: USERS }, (_, i) => ({ id: `u${i}`, groups: i % 2 ? 'dev' : 'prod', segments: 'swe' }));
  files = [
    ws.file('groups.csv', 'Group name;GroupID;Parent groupID\nProduct;prod;\nDev;dev;prod\n'),
    ws.file('segments.csv', 'SegmentName;SegmentID\nSweden;swe\n'),
    ws.file('users.csv', usersCsv(rows)),
  ];
});
afterAll(() => ws.cleanup());

function counts() {
  const db = new Database(path.join(ws.dir, 'data/wt-sync.sqlite'), { readonly: true });
  try {
    const one = (sql: string) => db.prepare(sql).pluck().get() as number;
    return {
      users: one('SELECT count(*) FROM dir_users'),
      memberships: one('SELECT count(*) FROM dir_memberships'),
      links: one('SELECT count(*) FROM dir_segment_links'),
      applied: one("SELECT count(*) FROM runs WHERE status = 'applied'"),
      pending: one("SELECT count(*) FROM runs WHERE status = 'pending'"),
    };
  } finally {
    db.close();
  }
}

/** Runs ingest and SIGKILLs it `delayMs` after it logs that it starts applying the plan. */
function ingestKilledAfter(delayMs: number): Promise<NodeJS.Signals | null> {
  return new Promise((resolve) => {
    const child = spawnCli(ws, ['ingest', '--tenant', 'acme', ...files], { WT_SYNC_LOG_LEVEL: 'info' });
    let buffered = '';
    child.stderr.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      if (buffered.includes('"msg":"applying plan"')) {
        buffered = '';
        setTimeout(() => child.kill('SIGKILL'), delayMs);
      }
    });
    child.on('exit', (_code, signal) => resolve(signal));
  });
}

describe('crash during apply', () => {
  it('leaves all-or-nothing state and converges on restart', async () => {
    let killedMidApply = 0;
    for (const delay of [0, 20, 60]) {
      const signal = await ingestKilledAfter(delay);
      const c = counts();
      if (signal === 'SIGKILL' && c.pending === 1) killedMidApply++;
      // Atomic: either nothing of the run is in the directory, or all of it.
      expect([0, USERS]).toContain(c.users);
      expect(c.memberships).toBe(c.users);
      expect(c.links).toBe(c.users);
    }
    expect(killedMidApply).toBeGreaterThan(0);

    // Restart: the pending run is redone; the files themselves are duplicates by now.
    const done = ws.cli(['ingest', '--tenant', 'acme', ...files]);
    expect(done.status, done.stderr).toBe(0);
    expect(counts()).toEqual({ users: USERS, memberships: USERS, links: USERS, applied: 1, pending: 0 });
    const users = ws.cli(['directory', 'users', '--tenant', 'acme', '--json']);
    const list = JSON.parse(users.stdout) as { externalId: string }[];
    expect(new Set(list.map((u) => u.externalId)).size).toBe(USERS);
  }, 120_000);
});
