// Every file-level bad input of issue 2 §3, through the whole pipeline: the file is rejected with a clear
// error, the report says where and how to fix it, and the directory is exactly as it was.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { reconcile } from '../../src/apply/run.js';
import type { App } from '../../src/app.js';
import { receiveFile } from '../../src/intake/receive.js';
import { readDirectory } from '../../src/targets/embedded.js';
import { makeWorkspace, REPO, type Workspace } from '../helpers/workspace.js';

const FIXTURES = path.join(REPO, 'test/fixtures/parse');
let ws: Workspace;
let app: App;

beforeAll(async () => {
  ws = makeWorkspace();
  ws.tenant('acme');
  app = ws.open();
  const tenant = app.tenant('acme');
  const ids = [];
  for (const f of ['wt_groups.csv', 'wt_segments.csv', 'wt_users.csv']) ids.push((await receiveFile(app, tenant, path.join(REPO, 'examples', f))).id);
  await reconcile(app, tenant, { kind: 'ingest', fileIds: ids });
});
afterAll(() => ws.cleanup());

const cases: [string, string, RegExp][] = [
  ['users-windows1252.csv', 'bad_users.csv', /not valid UTF-8: line \d+, byte \d+/],
  ['users-comma-header.csv', 'bad_users.csv', /separated by ','/],
  ['users-comma-quoted.csv', 'bad_users.csv', /separated by ','/],
  ['users-tab-header.csv', 'bad_users.csv', /tab/],
  ['users-moved-columns.csv', 'bad_users.csv', /column 3: expected "Lastname", found "Username"/],
  ['users-extra-column.csv', 'bad_users.csv', /17 columns|column 17/],
  ['users-empty.csv', 'bad_users.csv', /no data rows/],
  ['users-header-only.csv', 'bad_users.csv', /no data rows/],
  ['users-unclosed-quote.csv', 'bad_users.csv', /never closed/],
  ['groups-cycle.csv', 'bad_groups.csv', /cycle: /],
];

describe('bad files change nothing', () => {
  it.each(cases)('%s', async (fixture, name, message) => {
    const before = readDirectory(app.db, 'acme');
    const copy = ws.file(name, fs.readFileSync(path.join(FIXTURES, fixture)));
    const received = await receiveFile(app, app.tenant('acme'), copy);
    expect(received.status).toBe('rejected');
    const report = (await reconcile(app, app.tenant('acme'), { kind: 'ingest', fileIds: [received.id] }))!;
    expect(report.status).toBe('rejected');
    const fileError = report.problems.find((p) => p.level === 'file')!;
    expect(fileError.message).toMatch(message);
    expect(fileError.file).toBe(name);
    expect(fileError.hint).toBeTruthy();
    expect(report.operations).toEqual([]);
    expect(readDirectory(app.db, 'acme')).toEqual(before);
  });

  it('a file matching no pattern is rejected and named', async () => {
    const before = readDirectory(app.db, 'acme');
    const received = await receiveFile(app, app.tenant('acme'), ws.file('people.csv', 'a;b\n1;2\n'));
    expect(received.problems[0].message).toMatch(/"people\.csv" matches none of the tenant's file patterns \(users "\*user\*\.csv", groups "\*group\*\.csv", segments "\*segment\*\.csv"\)/);
    expect(readDirectory(app.db, 'acme')).toEqual(before);
  });

  it('too many invalid rows rejects the file', async () => {
    const before = readDirectory(app.db, 'acme');
    const header = fs.readFileSync(path.join(REPO, 'examples/wt_users.csv'), 'utf8').split('\n')[0];
    const rows = Array.from({ length: 10 }, (_, i) => `u${i};A;B;u${i};${i < 3 ? 'broken' : `u${i}@x.se`};;;;;;;;;;Active;`);
    const received = await receiveFile(app, app.tenant('acme'), ws.file('many_users.csv', [header, ...rows].join('\n')));
    expect(received.status).toBe('rejected');
    expect(received.problems[0].message).toBe('too many invalid rows: 3 of 10 (30%) exceed the limit of 20%');
    expect(received.problems.filter((p) => p.level === 'row').map((p) => p.line)).toEqual([2, 3, 4]);
    expect(readDirectory(app.db, 'acme')).toEqual(before);
  });
});

describe('a file where every row is wrong', () => {
  it('is rejected with the first 1000 row problems listed and the rest counted', async () => {
    const header = fs.readFileSync(path.join(REPO, 'examples/wt_users.csv'), 'utf8').split('\n')[0];
    const rows = Array.from({ length: 5000 }, (_, i) => `u${i};A;B;u${i};u${i}@x.se;;;01/02/1980;;;;;;;Active;`);
    const received = await receiveFile(app, app.tenant('acme'), ws.file('dates_users.csv', [header, ...rows].join('\n')));
    expect(received.status).toBe('rejected');
    expect(received.problems[0].message).toBe('too many invalid rows: 5000 of 5000 (100%) exceed the limit of 20%');
    expect(received.problems.filter((p) => p.level === 'row')).toHaveLength(1000);
    expect(received.problems.at(-1)!.message).toMatch(/^4000 more row problems are not listed/);
  });
});
