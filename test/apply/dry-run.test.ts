// `check` plans into a throwaway journal: the report is what a run would apply, and nothing of the service's
// state changes — no run, no journal row, no sync mark, no file left in tmp/.
import fs from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { checkPlan } from '../../src/apply/dry-run.js';
import { reconcile } from '../../src/apply/run.js';
import type { App } from '../../src/app.js';
import { receiveFile } from '../../src/intake/receive.js';
import { parseFile } from '../../src/parse/parse-file.js';
import { StagingSink } from '../../src/snapshot/staging.js';
import { makeWorkspace, usersCsv, type Workspace } from '../helpers/workspace.js';

let ws: Workspace;
let app: App;
beforeEach(() => {
  ws = makeWorkspace();
  ws.tenant('acme', { safeguards: { maxRemovals: 1, maxRemovalPercent: 100 } });
  app = ws.open(() => new Date('2026-02-01T01:00:00Z'));
});
afterEach(() => ws.cleanup());

describe('checkPlan', () => {
  it('reports the plan a run would make, held removals included, and changes nothing', async () => {
    const rows = Array.from({ length: 6 }, (_, i) => ({ id: `c${i}`, groups: 'g1' }));
    const ids = [];
    for (const [name, body] of Object.entries({ 'groups.csv': 'Group name;GroupID;Parent groupID\nOne;g1;\n', 'users.csv': usersCsv(rows) })) {
      ids.push((await receiveFile(app, app.tenant('acme'), ws.file(name, body))).id);
    }
    await reconcile(app, app.tenant('acme'), { kind: 'ingest', fileIds: ids });
    const state = () => ({
      journal: app.db.prepare('SELECT count(*) FROM journal').pluck().get(),
      runs: app.db.prepare('SELECT count(*) FROM runs').pluck().get(),
      users: app.db.prepare('SELECT external_id, title, synced, removed_at FROM dir_users ORDER BY id').all(),
    });
    const before = state();

    // Two users gone (above maxRemovals 1: held) and one with a new title.
    const tenant = app.tenant('acme');
    const file = ws.file('users.csv', usersCsv([...rows.slice(0, 3), { ...rows[3], title: 'Chief' }]));
    const sink = new StagingSink(app.config.paths.tmpDir, 'users');
    const result = await parseFile(fs.createReadStream(file), sink, { type: 'users', spec: tenant.files.users!, fileName: 'users.csv', maxInvalidRowPercent: 20 });
    sink.finish();
    const checked = await checkPlan(app, tenant, [{ type: 'users', name: 'users.csv', rowsFile: sink.file, fields: new Set(tenant.files.users!.columns.filter((c) => c !== 'ignore')), protectedIds: new Set() }], { files: [], fileProblems: result.problems });
    const { report } = checked;
    expect(report.status).toBe('check: would hold removals');
    expect(report.counts).toMatchObject({ updated: 1, held: 2, removed: 0 });
    expect(report.operations.map((o) => [o.op, 'externalId' in o ? o.externalId : null, o.status])).toEqual([
      ['update', 'c3', 'planned'], ['remove', 'c4', 'held'], ['remove', 'c5', 'held'],
    ]);
    checked.close();
    sink.discard();
    expect(state()).toEqual(before);
    expect(fs.readdirSync(app.config.paths.tmpDir)).toEqual([]);
  });
});
