// kill -9 of a real `wt-sync ingest` process at random points of a 50k-user first load and of a day-2 run. Each
// batch commits with its journal outcomes, so after the kill the directory holds exactly the operations the journal
// calls done; a restart continues at the first operation still planned and ends with the very directory an
// uninterrupted run makes: nothing lost, nothing applied twice.
import Database from 'better-sqlite3';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { reconcile, resumeUnfinished } from '../../src/apply/run.js';
import { tenantDirs, type App } from '../../src/app.js';
import { receiveFile } from '../../src/intake/receive.js';
import { directoryView } from '../../src/targets/directory-view.js';
import { readDirectory } from '../../src/targets/embedded.js';
import { makeWorkspace, spawnCli, usersCsv, type Workspace } from '../helpers/workspace.js';

const USERS = 50_000;
const TENANT = { safeguards: { maxRemovals: 100_000, maxRemovalPercent: 100 } };
const GROUPS = 'Group name;GroupID;Parent groupID\nProduct;prod;\nDev;dev;prod\nOps;ops;prod\n';
const SEGMENTS = 'SegmentName;SegmentID\nSweden;swe\nNorway;nor\n';
const id = (i: number) => `u${String(i).padStart(6, '0')}`;
const DAY1 = usersCsv(Array.from({ length: USERS }, (_, i) => ({ id: id(i), groups: i % 2 ? 'dev' : 'prod', segments: 'swe', title: 'T' })));
// Day 2: 5 % new titles, 1 % moved to another group, 200 gone, 300 new: updates, links, unlinks, creates, removals.
const DAY2 = usersCsv([
  ...Array.from({ length: USERS }, (_, i) => i).filter((i) => i % 250 !== 7).map((i) => ({
    id: id(i), groups: i % 100 === 3 ? 'ops' : i % 2 ? 'dev' : 'prod', segments: i % 100 === 5 ? 'nor' : 'swe', title: i % 20 === 1 ? 'T2' : 'T',
  })),
  ...Array.from({ length: 300 }, (_, i) => ({ id: id(USERS + i), groups: 'ops', segments: 'nor' })),
]);

/** Seeded, so a failure can be replayed: kill delays in ms after the log line that anchors them. */
function rng(seed: number) {
  return () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed / 0x7fffffff;
  };
}

let reference: { day1: unknown; day2: unknown };
let day1Data: string; // the data folder after an uninterrupted day 1, the starting point of each day-2 kill
const spaces: Workspace[] = [];

function workspace(withDay1: boolean): Workspace {
  const ws = makeWorkspace();
  spaces.push(ws);
  ws.tenant('acme', TENANT);
  if (withDay1) fs.cpSync(day1Data, path.join(ws.dir, 'data'), { recursive: true });
  return ws;
}

/** The directory without timestamps (a removal's date is the run's own clock). */
function directoryOf(app: App): unknown {
  const view = directoryView(readDirectory(app.db, 'acme'));
  return { ...view, users: view.users.map((u) => ({ ...u, removedAt: u.removedAt !== null, purgeAfter: u.purgeAfter !== null })) };
}

async function ingestInProcess(app: App, files: Record<string, string>, ws: Workspace) {
  const ids = [];
  for (const [name, body] of Object.entries(files)) ids.push((await receiveFile(app, app.tenant('acme'), ws.file(name, body))).id);
  return (await reconcile(app, app.tenant('acme'), { kind: 'ingest', fileIds: ids }))!;
}

beforeAll(async () => {
  const ws = workspace(false);
  const app = ws.open();
  await ingestInProcess(app, { 'groups.csv': GROUPS, 'segments.csv': SEGMENTS, 'users.csv': DAY1 }, ws);
  const day1 = directoryOf(app);
  app.close();
  day1Data = path.join(ws.dir, 'day1-data');
  fs.cpSync(path.join(ws.dir, 'data'), day1Data, { recursive: true });
  const again = ws.open();
  await ingestInProcess(again, { 'users.csv': DAY2 }, ws);
  reference = { day1, day2: directoryOf(again) };
  again.close();
}, 120_000);
afterAll(() => {
  for (const ws of spaces) ws.cleanup();
});

/** Runs `ingest` and SIGKILLs it `delayMs` after the first log line containing `anchor`. */
function ingestKilled(ws: Workspace, files: string[], anchor: string, delayMs: number): Promise<NodeJS.Signals | null> {
  return new Promise((resolve) => {
    const child = spawnCli(ws, ['ingest', '--tenant', 'acme', ...files], { WT_SYNC_LOG_LEVEL: 'info' });
    let buffered = '';
    let armed = false;
    child.stderr.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      if (!armed && buffered.includes(anchor)) {
        armed = true;
        setTimeout(() => child.kill('SIGKILL'), delayMs);
      }
    });
    child.on('exit', (_code, signal) => resolve(signal));
  });
}

/** What the killed process left: per journal status, the users in the directory, the created users the journal calls done. */
function leftOver(ws: Workspace) {
  const db = new Database(path.join(ws.dir, 'data/wt-sync.sqlite'), { readonly: true });
  try {
    const statuses = Object.fromEntries((db.prepare('SELECT status, count(*) AS n FROM journal GROUP BY status').all() as { status: string; n: number }[]).map((r) => [r.status, r.n]));
    const one = (sql: string) => db.prepare(sql).pluck().get() as number;
    return {
      statuses,
      users: one('SELECT count(*) FROM dir_users'),
      createdDone: one("SELECT count(*) FROM journal WHERE op = 'create' AND entity = 'user' AND status = 'done'"),
      pending: one("SELECT count(*) FROM runs WHERE status = 'pending'"),
    };
  } finally {
    db.close();
  }
}

async function restartAndCompare(ws: Workspace, expected: unknown, expectedOps: number) {
  const app = ws.open();
  await resumeUnfinished(app, new Set(['acme']));
  expect(directoryOf(app)).toEqual(expected);
  // Every operation applied exactly once: the journal of the run that was killed says done, all of it.
  const runs = app.db.prepare("SELECT id, status FROM runs WHERE tenant = 'acme' ORDER BY id").all() as { id: number; status: string }[];
  const last = runs[runs.length - 1];
  expect(last.status).toBe('applied');
  expect(app.db.prepare("SELECT status, count(*) AS n FROM journal WHERE run_id = ? GROUP BY status").all(last.id)).toEqual([{ status: 'done', n: expectedOps }]);
  const reports = fs.readdirSync(tenantDirs(app.config.paths, 'acme').reports);
  expect(reports.filter((f) => f.endsWith(`-run-${last.id}.json`))).toHaveLength(1);
  app.close();
}

describe('kill -9 at random points of a run, then restart', () => {
  const rand = rng(7);
  // Day 1: mostly while applying (≈10 batches), some while receiving or planning.
  const day1Kills = [
    ...Array.from({ length: 5 }, () => ({ anchor: '"msg":"applying plan"', delay: Math.floor(rand() * 1500) })),
    ...Array.from({ length: 2 }, () => ({ anchor: '"file":"users.csv"', delay: Math.floor(rand() * 400) })),
  ];
  const day2Kills = [
    ...Array.from({ length: 3 }, () => ({ anchor: '"msg":"applying plan"', delay: Math.floor(rand() * 150) })),
    ...Array.from({ length: 2 }, () => ({ anchor: '"msg":"file accepted"', delay: Math.floor(rand() * 300) })),
  ];
  let midApply = 0;
  let killed = 0;

  it.each(day1Kills)('day 1 (50k users), killed $delay ms after $anchor', async ({ anchor, delay }) => {
    const ws = workspace(false);
    const files = [ws.file('groups.csv', GROUPS), ws.file('segments.csv', SEGMENTS), ws.file('users.csv', DAY1)];
    if ((await ingestKilled(ws, files, anchor, delay)) === 'SIGKILL') killed++;
    if (fs.existsSync(path.join(ws.dir, 'data/wt-sync.sqlite'))) {
      const left = leftOver(ws);
      // Each batch committed with its outcomes: the users in the directory are exactly the creates marked done.
      expect(left.users).toBe(left.createdDone);
      if (left.statuses.done && left.statuses.planned) midApply++;
    }
    await restartAndCompare(ws, reference.day1, USERS + 5);
  }, 60_000);

  it.each(day2Kills)('day 2 (50k users, ~4,000 changes), killed $delay ms after $anchor', async ({ anchor, delay }) => {
    const ws = workspace(true);
    if ((await ingestKilled(ws, [ws.file('users.csv', DAY2)], anchor, delay)) === 'SIGKILL') killed++;
    await restartAndCompare(ws, reference.day2, await day2Ops());
  }, 60_000);

  it('the kills landed before the run ended, some in the middle of an apply', () => {
    expect(killed).toBeGreaterThanOrEqual(10);
    expect(midApply).toBeGreaterThan(0);
  });
});

let day2OpCount: number | undefined;
/** The number of operations of the uninterrupted day-2 run. */
async function day2Ops(): Promise<number> {
  if (day2OpCount !== undefined) return day2OpCount;
  const ws = workspace(true);
  const app = ws.open();
  const report = await ingestInProcess(app, { 'users.csv': DAY2 }, ws);
  day2OpCount = report.operations.length;
  app.close();
  return day2OpCount;
}
