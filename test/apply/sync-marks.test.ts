// Sync marks let a run skip users known to be unchanged. That must never change a plan: over many random days
// (rows changed, added, dropped, made invalid; hand-made edits in WT; rules and group files changing), the plan a
// run makes with its marks must equal the full plan, operation for operation.
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { reconcile } from '../../src/apply/run.js';
import type { App } from '../../src/app.js';
import { receiveFile } from '../../src/intake/receive.js';
import { buildPlan } from '../../src/plan/plan.js';
import { loadDesired } from '../../src/store/snapshots.js';
import { addManual, readDirectory } from '../../src/targets/embedded.js';
import { makeWorkspace, usersCsv, type Workspace } from '../helpers/workspace.js';

function rng(seed: number) {
  return () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed / 0x7fffffff;
  };
}

interface Person { id: string; title: string; groups: string; admin: string; segments: string; status: string; email?: string }

let ws: Workspace;
let app: App;
let clock: Date;
beforeEach(() => {
  ws = makeWorkspace();
  clock = new Date('2026-03-01T01:00:00Z');
  app = ws.open(() => clock);
});
afterEach(() => ws.cleanup());

const strip = (ops: object[]) => ops.map((o) => {
  const { seq, status, error, ...rest } = o as Record<string, unknown>;
  return rest;
});

describe('a run with sync marks plans exactly what a full plan would', () => {
  it.each([1, 2, 3, 4, 5])('over 30 random days (seed %i)', async (seed) => {
    const rand = rng(seed);
    const pick = <T,>(xs: T[]) => xs[Math.floor(rand() * xs.length)];
    let groups = ['g1', 'g2', 'g3', 'g4'];
    const groupsCsv = () => ['Group name;GroupID;Parent groupID', ...groups.map((g, i) => `Group ${g};${g};${i > 0 && g !== 'g1' ? 'g1' : ''}`)].join('\n') + '\n';
    let people: Person[] = Array.from({ length: 40 }, (_, i) => ({ id: `u${i}`, title: 'T', groups: 'g2', admin: i % 7 === 0 ? 'g3' : '', segments: 's1', status: 'Active' }));
    let rules: Record<string, string | undefined> = {};
    let skippedUsers = 0;
    let referenceErrors = 0;
    ws.tenant('acme', { safeguards: { maxRemovalPercent: 100, maxRemovals: 1000 } });

    for (let day = 0; day < 30; day++) {
      clock = new Date(clock.getTime() + 86_400_000);
      // The day's changes.
      people = people.filter(() => rand() > 0.03);
      for (const p of people) {
        const r = rand();
        if (r < 0.08) p.title = `T${day}`;
        else if (r < 0.12) p.groups = pick(groups);
        else if (r < 0.14) p.admin = rand() < 0.5 ? '' : pick(groups);
        else if (r < 0.16) p.status = p.status === 'Active' ? 'Inactive' : 'Active';
        else if (r < 0.17) p.email = 'not-an-email';
        else if (r < 0.2) delete p.email;
      }
      if (rand() < 0.3) people.push({ id: `n${day}`, title: 'New', groups: pick(groups), admin: '', segments: 's2', status: 'Active' });
      const files: Record<string, string> = { 'users.csv': usersCsv(people.map((p) => ({ id: p.id, title: p.title, groups: p.groups, admin: p.admin, segments: p.segments, status: p.status, email: p.email }))) };
      if (day === 0) files['segments.csv'] = 'SegmentName;SegmentID\nOne;s1\nTwo;s2\n';
      if (day === 0 || rand() < 0.2) {
        // New groups come, and a group some users still name goes (their rows then fail the reference check).
        if (day > 0) groups = rand() < 0.5 ? [...groups, `g${5 + day}`] : groups.filter((g) => g === 'g1' || rand() < 0.7);
        files['groups.csv'] = groupsCsv();
      }
      if (rand() < 0.1) {
        rules = { ...rules, ...pick([{ membershipUpdate: 'overwrite' }, { membershipUpdate: 'never' }, { userStatusUpdate: 'keepInactive' }, { segmentConnectionUpdate: 'overwrite' }]) };
        ws.tenant('acme', { rules, safeguards: { maxRemovalPercent: 100, maxRemovals: 1000 } });
      }
      // Hand-made changes in WT between runs.
      const dir = readDirectory(app.db, 'acme');
      const live = dir.users.filter((u) => !u.removedAt);
      if (live.length && rand() < 0.4) {
        const manual = addManual(app.db, 'acme', clock.toISOString());
        const u = pick(live);
        const g = pick(dir.groups);
        if (rand() < 0.5 && g) manual.membership(u.id, g.id, rand() < 0.5 ? 'admin' : 'member');
        else manual.status(u.id, 'inactive');
      }

      const tenant = app.tenant('acme');
      const ids: number[] = [];
      const fileProblems = [];
      for (const [name, body] of Object.entries(files)) {
        const received = await receiveFile(app, tenant, ws.file(name, body));
        ids.push(received.id);
        fileProblems.push(...received.problems);
      }
      const full = buildPlan(loadDesired(app.db, 'acme'), readDirectory(app.db, 'acme'), {
        tenant: 'acme', rules: tenant.rules, now: clock.toISOString(), maxRemovals: tenant.safeguards.maxRemovals, maxRemovalPercent: tenant.safeguards.maxRemovalPercent,
      });
      const marks = await app.target(tenant).syncMarks!('acme');
      const report = await reconcile(app, tenant, { kind: 'ingest', fileIds: ids });
      if (!report) continue; // every file a duplicate: no run that day (a hand-made drift waits for the next one)
      if (report.status === 'rejected') continue; // no file accepted (e.g. too many invalid emails): nothing planned
      expect(strip(report.operations), `day ${day}`).toEqual(strip(full.ops));
      expect(report.counts.unchanged, `day ${day}`).toBe(full.unchanged.users + full.unchanged.groups + full.unchanged.segments);
      expect(report.problems, `day ${day}`).toEqual([...fileProblems, ...full.problems]);
      skippedUsers += marks.size;
      referenceErrors += full.problems.filter((p) => p.column === 'memberOf' || p.column === 'adminOf').length;
    }
    // The marks were really used: most users were skipped on most days.
    expect(skippedUsers).toBeGreaterThan(300);
    expect(referenceErrors).toBeGreaterThan(0);
  });
});

describe('sync marks and failed operations', () => {
  it('a user whose run partly failed is planned again, even when the next row is the one marked before', async () => {
    ws.tenant('acme');
    const tenant = () => app.tenant('acme');
    const ingest = async (files: Record<string, string>) => {
      const ids = [];
      for (const [name, body] of Object.entries(files)) ids.push((await receiveFile(app, tenant(), ws.file(name, body))).id);
      return (await reconcile(app, tenant(), { kind: 'ingest', fileIds: ids }))!;
    };
    const rowA = usersCsv([{ id: 'u1', groups: 'g1' }, { id: 'u2', groups: 'g1' }]);
    await ingest({ 'groups.csv': 'Group name;GroupID;Parent groupID\nOne;g1;\nTwo;g2;\n', 'users.csv': rowA });
    addManual(app.db, 'acme', clock.toISOString()).user({ firstName: 'Hand', lastName: 'Made', username: 'taken@example.com' });
    // The username change fails; the new membership of g2 goes through: u1 is now half-applied.
    const partial = await ingest({ 'users.csv': usersCsv([{ id: 'u1', groups: 'g1,g2', username: 'taken@example.com' }, { id: 'u2', groups: 'g1' }]) });
    expect(partial.operations.map((o) => [o.op, o.status])).toEqual([['update', 'failed'], ['link', 'done']]);
    // Back to the first row: the full plan unlinks g2 again, and so must the run.
    const back = await ingest({ 'users.csv': rowA + '\n' });
    expect(back.operations.map((o) => [o.op, 'groupId' in o ? o.groupId : undefined, o.status])).toEqual([['unlink', 'g2', 'done']]);
  });
});

describe('sync marks and IDs shared by a user and a group', () => {
  it('a warning about a kept group does not freeze the mark of a user with the same ID', async () => {
    ws.tenant('acme');
    const day = async (files: Record<string, string>) => {
      clock = new Date(clock.getTime() + 86_400_000);
      const ids = [];
      for (const [name, body] of Object.entries(files)) ids.push((await receiveFile(app, app.tenant('acme'), ws.file(name, body))).id);
      return (await reconcile(app, app.tenant('acme'), { kind: 'ingest', fileIds: ids }))!;
    };
    await day({ 'groups.csv': 'Group name;GroupID;Parent groupID\nOne;g1;\n', 'users.csv': usersCsv([{ id: 'X1', title: 'A', groups: 'g1' }, { id: 'u2', groups: 'g1' }]) });
    const manual = addManual(app.db, 'acme', clock.toISOString());
    manual.group({ externalId: 'X1', name: 'Hand X1' }); // not in the group file, but kept by its hand-made child:
    manual.group({ name: 'Child', parentId: 'X1' }); // a warning naming "X1"
    const d2 = await day({ 'users.csv': usersCsv([{ id: 'X1', title: 'B', groups: 'g1' }, { id: 'u2', groups: 'g1' }]) });
    expect(d2.problems.map((p) => [p.level, p.entityId])).toEqual([['warning', 'X1']]);
    const d3 = await day({ 'users.csv': usersCsv([{ id: 'X1', title: 'A', groups: 'g1' }, { id: 'u2', groups: 'g1', title: 'x' }]) });
    expect(d3.operations.map((o) => [o.op, 'externalId' in o ? o.externalId : undefined])).toEqual([['update', 'X1'], ['update', 'u2']]);
  });
});

describe('sync marks and another process writing meanwhile', () => {
  // A run plans inside one write transaction: a writer cannot slip in between reading a user's mark and planning
  // it. (Before the journal, a directory version read before and after planning caught such a write.)
  it('a writer waits while a run plans, and the user it touched is planned by the next run', async () => {
    ws.tenant('acme');
    const rows = usersCsv([{ id: 'u1', groups: 'g1' }, { id: 'u2', groups: 'g1' }]);
    const groups = 'Group name;GroupID;Parent groupID\nOne;g1;\n';
    const ingest = async (files: Record<string, string>) => {
      const ids = [];
      for (const [name, body] of Object.entries(files)) ids.push((await receiveFile(app, app.tenant('acme'), ws.file(name, body))).id);
      return (await reconcile(app, app.tenant('acme'), { kind: 'ingest', fileIds: ids }))!;
    };
    await ingest({ 'groups.csv': groups, 'users.csv': rows });
    // Another process tries to pause u1 in WT while this run reads the directory.
    const other = new Database(app.db.name, { timeout: 0 });
    const pause = () => other.prepare("UPDATE dir_users SET status = 'inactive', synced = NULL WHERE external_id = 'u1'").run();
    let refused: unknown;
    const original = app.target.bind(app);
    app.target = (tenant) => {
      const target = original(tenant);
      return Object.assign(Object.create(Object.getPrototypeOf(target)), target, {
        reader: (id: string) => {
          const reader = target.reader(id);
          return {
            tree: () => reader.tree(),
            users: function* () {
              try {
                pause();
              } catch (err) {
                refused = err;
              }
              yield* reader.users();
            },
          };
        },
      });
    };
    const second = await ingest({ 'users.csv': rows + '\n' });
    expect(String(refused)).toMatch(/database is locked/);
    expect(second.operations).toEqual([]);
    app.target = original;
    pause(); // the writer's retry, once the run is done
    other.close();
    const third = await ingest({ 'users.csv': rows + '\n\n' });
    expect(third.operations.map((o) => [o.op, 'externalId' in o ? o.externalId : undefined, 'changes' in o ? o.changes : undefined])).toEqual([
      ['update', 'u1', [{ field: 'status', before: 'inactive', after: 'active' }]],
    ]);
  });
});
