// Staging a file inline and on a second thread (large users files) must give the same result: the same rows file
// contents, the same duplicates at the same lines, the same counts. A writing thread that fails rejects the file
// with its reason and leaves nothing behind.
import Database from 'better-sqlite3';
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { App } from '../../src/app.js';
import { receiveFile } from '../../src/intake/receive.js';
import { parseFile } from '../../src/parse/parse-file.js';
import { StagingSink, THREADED_STAGING_BYTES } from '../../src/snapshot/staging.js';
import { makeWorkspace, usersCsv, type Workspace } from '../helpers/workspace.js';

let ws: Workspace;
let app: App;
beforeEach(() => {
  ws = makeWorkspace();
  ws.tenant('acme');
  app = ws.open(() => new Date('2026-02-01T01:00:00Z'));
});
afterEach(() => ws.cleanup());

/** 3,000 users with an externalId repeated every 701st row and a username repeated every 997th. */
function usersWithDuplicates(n: number): string {
  return usersCsv(Array.from({ length: n }, (_, i) => ({
    id: i > 0 && i % 701 === 0 ? 'u0' : `u${i}`,
    username: i > 0 && i % 997 === 0 ? 'u1@example.com' : undefined,
  })));
}

async function stage(csv: string, threaded: boolean) {
  const sink = new StagingSink(app.config.paths.tmpDir, { threaded });
  const tenant = app.tenant('acme');
  const result = await parseFile(Readable.from([Buffer.from(csv)]), sink, { type: 'users', spec: tenant.files.users!, fileName: 'users.csv', maxInvalidRowPercent: 20 });
  sink.finish();
  const db = new Database(sink.file, { readonly: true });
  const rows = db.prepare('SELECT line, external_id, username, data, hash FROM rows ORDER BY line').raw().all();
  const indexed = db.prepare('SELECT external_id, hash, line FROM rows ORDER BY external_id').raw().all();
  db.close();
  sink.discard();
  expect(fs.existsSync(sink.file)).toBe(false);
  return { result, rows, indexed };
}

describe('staging on a second thread', () => {
  it('stores the same rows and reports the same duplicates at the same lines as staging inline', async () => {
    const csv = usersWithDuplicates(3000);
    const inline = await stage(csv, false);
    const threaded = await stage(csv, true);
    expect(inline.result.problems.filter((p) => /duplicate/.test(p.message))).toHaveLength(4 + 3);
    expect(threaded.result).toEqual(inline.result);
    expect(threaded.rows).toEqual(inline.rows);
    expect(threaded.indexed).toEqual(inline.indexed);
  });

  it('a file with too many duplicates is rejected the same way', async () => {
    const csv = usersCsv(Array.from({ length: 50 }, (_, i) => ({ id: `u${i % 10}` })));
    const threaded = await stage(csv, true);
    expect(threaded.result.status).toBe('rejected');
    expect(threaded.result).toEqual((await stage(csv, false)).result);
  });

  it('a writing thread that cannot open its file fails the parse with its reason, not an abort', async () => {
    const tenant = app.tenant('acme');
    const dir = path.join(ws.dir, 'stage');
    const sink = new StagingSink(dir, { threaded: true });
    // Gone before the thread (still starting) opens its rows file there.
    fs.rmSync(dir, { recursive: true, force: true });
    const outcome = await parseFile(Readable.from([Buffer.from(usersWithDuplicates(2000))]), sink, { type: 'users', spec: tenant.files.users!, fileName: 'users.csv', maxInvalidRowPercent: 20 })
      .then(() => null, (err: Error) => err);
    sink.discard();
    expect(outcome?.message).toMatch(/unable to open database file|directory does not exist/i);
    expect(fs.existsSync(dir)).toBe(false);
  });

  it('a large users file is received through the writing thread and becomes the snapshot', async () => {
    const rows = Array.from({ length: 30_000 }, (_, i) => ({ id: `big${i}`, title: 'A title long enough to make the file large '.repeat(3) }));
    const file = ws.file('users.csv', usersCsv(rows));
    expect(fs.statSync(file).size).toBeGreaterThanOrEqual(THREADED_STAGING_BYTES);
    const received = await receiveFile(app, app.tenant('acme'), file);
    expect(received).toMatchObject({ status: 'accepted', dataRows: 30_000, validRows: 30_000 });
    const snapshot = app.db.prepare("SELECT rows_file FROM snapshots WHERE tenant = 'acme' AND type = 'users'").pluck().get() as string;
    const db = new Database(path.join(path.dirname(app.db.name), 'snapshots', snapshot), { readonly: true });
    expect(db.prepare('SELECT count(*) FROM rows').pluck().get()).toBe(30_000);
    db.close();
    expect(fs.readdirSync(app.config.paths.tmpDir).filter((f) => f.startsWith('staging-'))).toEqual([]);
  });
});
