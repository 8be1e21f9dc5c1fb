// The journal: phases concatenated in apply order, outcomes recorded by range or one by one, the report's JSON
// spliced from the stored text exactly as the objects would serialise, and a run resumed at its first planned op.
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { reconcile, resumeUnfinished } from '../../src/apply/run.js';
import type { App } from '../../src/app.js';
import { receiveFile } from '../../src/intake/receive.js';
import type { Operation } from '../../src/plan/types.js';
import {
  holdUserRemovals, journalEntries, journalJson, JournalWriter, plannedBatch, pruneJournals, recordOutcomes,
} from '../../src/store/journal.js';
import { createRun, getRun } from '../../src/store/runs.js';
import { reportLines } from '../../src/report/text.js';
import { tenantDirs } from '../../src/app.js';
import fs from 'node:fs';
import path from 'node:path';
import { directoryView } from '../../src/targets/directory-view.js';
import { readDirectory } from '../../src/targets/embedded.js';
import type { ApplySettings, JournalOperation, Outcome, Target } from '../../src/targets/target.js';
import { makeWorkspace, usersCsv, type Workspace } from '../helpers/workspace.js';

let ws: Workspace;
let app: App;
beforeEach(() => {
  ws = makeWorkspace();
  ws.tenant('acme', { safeguards: { maxRemovals: 1000, maxRemovalPercent: 100 } });
  app = ws.open(() => new Date('2026-02-01T01:00:00Z'));
});
afterEach(() => ws.cleanup());

/** A copy of a target with some fields replaced: a test double that still applies for real. */
function copyOf(target: Target, fields: Record<string, unknown>): Target {
  return Object.assign(Object.create(Object.getPrototypeOf(target)), target, fields);
}

/** `target` with the `next` and `record` the engine hands its applyBatches passed through wrappers. */
function pullingThrough(target: Target, wrap: {
  next?: (next: () => JournalOperation[], tenant: string, settings: ApplySettings) => () => JournalOperation[];
  record?: (record: (outcomes: Outcome[]) => void) => (outcomes: Outcome[]) => void;
}): Target {
  const applyBatches = target.applyBatches!.bind(target);
  target.applyBatches = (tenant, next, settings, record, remaining) =>
    applyBatches(tenant, wrap.next?.(next, tenant, settings) ?? next, settings, wrap.record?.(record) ?? record, remaining);
  return target;
}

const create = (id: string): Operation => ({ op: 'create', entity: 'user', externalId: id, after: { externalId: id, firstName: 'F', lastName: 'L', username: `${id}@x` } });
const link = (id: string): Operation => ({ op: 'link', entity: 'membership', userId: id, groupId: 'g', role: 'member' });
const remove = (id: string, n: number): Operation => ({ op: 'remove', entity: 'user', externalId: id, id: n, name: `user ${id}` });

describe('JournalWriter', () => {
  it('numbers interleaved phases in apply order and drops a discarded phase', () => {
    const runId = createRun(app.db, 'acme', { kind: 'ingest', fileIds: [] }, 'now');
    const w = new JournalWriter(app.db, runId);
    w.add('groupUpserts', { op: 'create', entity: 'group', externalId: 'g', after: { name: 'G', parentId: null } });
    w.add('userUpserts', create('a'));
    w.add('links', link('a'), 'mark-a');
    w.add('purges', { op: 'purge', entity: 'user', externalId: 'z', id: 9, name: 'Z' });
    w.add('userRemovals', remove('b', 2));
    w.add('userUpserts', create('c'), 'mark-c');
    w.add('links', link('c'));
    w.add('segmentRemovals', { op: 'remove', entity: 'segment', externalId: 's', id: 1, name: 'S' });
    expect(w.finish()).toBe(8);
    const entries = [...journalEntries(app.db, runId)];
    expect(entries.map((e) => [e.seq, e.op, e.entity, 'externalId' in e ? e.externalId : e.userId])).toEqual([
      [1, 'create', 'group', 'g'], [2, 'create', 'user', 'a'], [3, 'create', 'user', 'c'], [4, 'link', 'membership', 'a'],
      [5, 'link', 'membership', 'c'], [6, 'remove', 'user', 'b'], [7, 'remove', 'segment', 's'], [8, 'purge', 'user', 'z'],
    ]);
    expect(plannedBatch(app.db, runId, 0, 10).filter((e) => e.mark).map((e) => [e.seq, e.mark])).toEqual([[3, 'mark-c'], [4, 'mark-a']]);

    const other = createRun(app.db, 'acme', { kind: 'ingest', fileIds: [] }, 'now');
    const w2 = new JournalWriter(app.db, other);
    w2.add('userUpserts', create('a'));
    w2.add('userRemovals', remove('b', 2));
    w2.discard('userRemovals');
    w2.add('purges', { op: 'purge', entity: 'user', externalId: 'z', id: 9, name: 'Z' });
    expect(w2.finish()).toBe(2);
    expect([...journalEntries(app.db, other)].map((e) => e.op)).toEqual(['create', 'purge']);
  });
});

describe('outcomes and the report text', () => {
  it('records done by range and failures one by one; JSON spliced from the stored text equals the objects', () => {
    const runId = createRun(app.db, 'acme', { kind: 'ingest', fileIds: [] }, 'now');
    const w = new JournalWriter(app.db, runId);
    for (const id of ['a', 'b', 'c', 'd']) w.add('userUpserts', create(id));
    w.add('userRemovals', remove('e', 5));
    w.add('userRemovals', remove('f', 6));
    w.finish();
    expect(holdUserRemovals(app.db, runId)).toBe(2);
    const batch = plannedBatch(app.db, runId, 0, 3);
    expect(batch.map((e) => e.seq)).toEqual([1, 2, 3]);
    recordOutcomes(app.db, runId, [{ seq: 1, status: 'done' }, { seq: 2, status: 'failed', error: 'username "b@x" is "taken"' }, { seq: 3, status: 'done' }], true);
    // The next batch starts at the first op still planned; held ones are not handed out.
    expect(plannedBatch(app.db, runId, 0, 10).map((e) => e.seq)).toEqual([4]);
    recordOutcomes(app.db, runId, [{ seq: 4, status: 'done' }]);
    expect(plannedBatch(app.db, runId, 0, 10)).toEqual([]);
    const entries = [...journalEntries(app.db, runId)];
    expect(entries.map((e) => [e.seq, e.status, e.held ?? false, e.error ?? null])).toEqual([
      [1, 'done', false, null], [2, 'failed', false, 'username "b@x" is "taken"'], [3, 'done', false, null], [4, 'done', false, null], [5, 'held', true, null], [6, 'held', true, null],
    ]);
    expect([...journalJson(app.db, runId)]).toEqual(entries.map((e) => JSON.stringify(e)));
  });
});

describe('outcomes as a watermark', () => {
  const stored = (runId: number) => app.db.prepare('SELECT seq, status FROM journal_ops WHERE run_id = ? ORDER BY seq').raw().all(runId);
  const shown = (runId: number) => app.db.prepare('SELECT seq, status FROM journal WHERE run_id = ? ORDER BY seq').raw().all(runId);
  const appliedSeq = (runId: number) => app.db.prepare('SELECT applied_seq FROM runs WHERE id = ?').pluck().get(runId);

  it('a whole batch moves the watermark and writes only its failures; the view shows each status as it is', () => {
    const runId = createRun(app.db, 'acme', { kind: 'ingest', fileIds: [] }, 'now');
    const w = new JournalWriter(app.db, runId);
    for (const id of ['a', 'b', 'c', 'd']) w.add('userUpserts', create(id));
    w.finish();
    expect(recordOutcomes(app.db, runId, [{ seq: 1, status: 'done' }, { seq: 2, status: 'failed', error: 'no' }, { seq: 3, status: 'done' }], true)).toBe(3);
    expect(appliedSeq(runId)).toBe(3);
    expect(stored(runId)).toEqual([[1, 'planned'], [2, 'failed'], [3, 'planned'], [4, 'planned']]);
    expect(shown(runId)).toEqual([[1, 'done'], [2, 'failed'], [3, 'done'], [4, 'planned']]);
    // The same batch recorded again (another process got there first): nothing is recorded.
    expect(recordOutcomes(app.db, runId, [{ seq: 1, status: 'done' }, { seq: 2, status: 'done' }, { seq: 3, status: 'done' }], true)).toBe(0);
    expect(shown(runId)).toEqual([[1, 'done'], [2, 'failed'], [3, 'done'], [4, 'planned']]);
  });

  it('a whole batch after an operation still without outcome is written row by row, the watermark stays', () => {
    const runId = createRun(app.db, 'acme', { kind: 'ingest', fileIds: [] }, 'now');
    const w = new JournalWriter(app.db, runId);
    for (const id of ['a', 'b', 'c', 'd']) w.add('userUpserts', create(id));
    w.finish();
    // seq 1 was sent but its outcome never came back (a remote target cut off): it must stay planned.
    expect(recordOutcomes(app.db, runId, [{ seq: 2, status: 'done' }, { seq: 3, status: 'failed', error: 'no' }], true)).toBe(2);
    expect(appliedSeq(runId)).toBe(0);
    expect(shown(runId)).toEqual([[1, 'planned'], [2, 'done'], [3, 'failed'], [4, 'planned']]);
    expect(plannedBatch(app.db, runId, 0, 10).map((e) => e.seq)).toEqual([1, 4]);
  });

  it('a database with journals from before the watermark keeps every status after the migration', async () => {
    const { default: Database } = await import('better-sqlite3');
    const { MIGRATIONS } = await import('../../src/store/migrations.js');
    const { migrate } = await import('../../src/store/db.js');
    const db = new Database(':memory:');
    db.exec('CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)');
    MIGRATIONS.slice(0, 2).forEach((sql, i) => {
      db.exec(sql);
      db.prepare('INSERT INTO schema_migrations VALUES (?, ?)').run(i + 1, 'then');
    });
    const runId = createRun(db, 'acme', { kind: 'ingest', fileIds: [] }, 'now');
    const insert = db.prepare("INSERT INTO journal (run_id, seq, op, entity, entity_id, data, status, error) VALUES (?, ?, 'create', 'user', ?, ?, ?, ?)");
    const statuses = ['done', 'failed', 'held', 'moot', 'planned'];
    statuses.forEach((st, i) => insert.run(runId, i + 1, `u${i}`, JSON.stringify(create(`u${i}`)), st, st === 'failed' ? 'no' : null));
    migrate(db);
    expect(db.prepare('SELECT seq, status, error FROM journal WHERE run_id = ? ORDER BY seq').raw().all(runId)).toEqual(statuses.map((st, i) => [i + 1, st, st === 'failed' ? 'no' : null]));
    expect(plannedBatch(db, runId, 0, 10).map((e) => e.seq)).toEqual([5]);
    expect(recordOutcomes(db, runId, [{ seq: 5, status: 'done' }], true)).toBe(1);
    expect(db.prepare("SELECT count(*) FROM journal WHERE status = 'done'").pluck().get()).toBe(2);
    db.close();
  });
});

describe('a target cut off in the middle of a batch', () => {
  it('keeps the outcomes it recorded; the next start continues at the first planned op, applying nothing twice', async () => {
    const rows = Array.from({ length: 30 }, (_, i) => ({ id: `u${String(i).padStart(2, '0')}`, groups: 'g1' }));
    const files = { 'groups.csv': 'Group name;GroupID;Parent groupID\nOne;g1;\n', 'users.csv': usersCsv(rows) };
    const ids = [];
    for (const [name, body] of Object.entries(files)) ids.push((await receiveFile(app, app.tenant('acme'), ws.file(name, body))).id);

    // A remote-style target: one call per operation, each outcome recorded as soon as it is known, and the
    // connection lost after 12 calls. Each call is applied to the embedded directory on its own.
    const embedded = app.target(app.tenant('acme'));
    const calls: number[] = [];
    let budget = 12;
    const remote: Target = {
      kind: 'remote-test', batchSize: 10,
      load: (t) => embedded.load(t), reader: (t) => embedded.reader(t), markSynced: embedded.markSynced?.bind(embedded),
      async applyBatch(tenant, batch, settings, record) {
        const outcomes = [];
        for (const op of batch) {
          if (budget-- <= 0) throw new Error('connection reset by peer');
          calls.push(op.seq);
          const [outcome] = await embedded.applyBatch(tenant, [op], settings, () => {});
          record([outcome]);
          outcomes.push(outcome);
        }
        return outcomes;
      },
    };
    const original = app.target.bind(app);
    app.target = () => remote;
    await expect(reconcile(app, app.tenant('acme'), { kind: 'ingest', fileIds: ids })).rejects.toThrow(/connection reset/);
    expect(calls).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
    expect(readDirectory(app.db, 'acme').users).toHaveLength(11); // the group, then 11 users
    const run = app.db.prepare("SELECT id, status FROM runs WHERE status = 'pending'").get() as { id: number };
    expect(app.db.prepare("SELECT status, count(*) AS n FROM journal WHERE run_id = ? GROUP BY status ORDER BY status").all(run.id)).toEqual([{ status: 'done', n: 12 }, { status: 'planned', n: 19 }]);

    budget = Infinity;
    const [report] = await resumeUnfinished(app, new Set(['acme']));
    expect(calls).toEqual(Array.from({ length: 31 }, (_, i) => i + 1)); // each operation exactly once
    expect(report.counts).toMatchObject({ created: 31, failed: 0 });
    app.target = original;
    const view = directoryView(readDirectory(app.db, 'acme'));
    expect(view.users.map((u) => [u.externalId, u.memberOf])).toEqual(rows.map((r) => [r.id, ['g1']]));
    // Every user's mark was set by its operation: the next run with the same file skips them all.
    expect((await embedded.syncMarks!('acme')).size).toBe(30);
    const again = await reconcile(app, app.tenant('acme'), { kind: 'ingest', fileIds: [(await receiveFile(app, app.tenant('acme'), ws.file('users.csv', usersCsv(rows) + '\n'))).id] });
    expect(again!.counts).toMatchObject({ unchanged: 31, created: 0, updated: 0 }); // 30 users and the group
  });
});

describe('progress of a long apply', () => {
  it('logs every 10 % and reports each batch to the caller', async () => {
    const rows = Array.from({ length: 40 }, (_, i) => ({ id: `p${String(i).padStart(2, '0')}` }));
    const id = (await receiveFile(app, app.tenant('acme'), ws.file('users.csv', usersCsv(rows)))).id;
    const embedded = app.target(app.tenant('acme'));
    app.target = () => copyOf(embedded, { batchSize: 4 });
    const lines: { msg: string; done?: number; total?: number }[] = [];
    app.logger = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line)) });
    const seen: [number, number][] = [];
    await reconcile(app, app.tenant('acme'), { kind: 'ingest', fileIds: [id] }, undefined, { onApplyProgress: (done, total) => seen.push([done, total]) });
    expect(seen).toEqual(Array.from({ length: 10 }, (_, i) => [4 * (i + 1), 40]));
    expect(lines.filter((l) => /^applied \d+%$/.test(l.msg)).map((l) => l.msg)).toEqual(Array.from({ length: 10 }, (_, i) => `applied ${10 * (i + 1)}%`));
  });
});

describe('several batches to a transaction (applyBatches, the embedded directory)', () => {
  // 100 users in batches of 3: a run of 100 operations takes transactions of a tenth of it (10 operations or more,
  // so four batches each). A kill while the engine reads the next batch (its 3rd read: inside the first
  // transaction; its 6th: inside the second) leaves exactly the transactions committed before it.
  it.each([
    { killAt: 3, done: 0 },
    { killAt: 6, done: 12 },
  ])('a kill at the engine\'s read $killAt leaves $done operations applied, the directory with them, and a restart finishes', async ({ killAt, done }) => {
    const rows = Array.from({ length: 100 }, (_, i) => ({ id: `t${String(i).padStart(3, '0')}` }));
    const id = (await receiveFile(app, app.tenant('acme'), ws.file('users.csv', usersCsv(rows)))).id;
    const embedded = app.target(app.tenant('acme'));
    let reads = 0;
    const original = app.target.bind(app);
    const target = pullingThrough(copyOf(embedded, { batchSize: 3 }), {
      next: (next) => () => {
        if (++reads === killAt) throw new Error('killed');
        return next();
      },
    });
    app.target = () => target;
    await expect(reconcile(app, app.tenant('acme'), { kind: 'ingest', fileIds: [id] })).rejects.toThrow('killed');
    app.target = original;
    const statuses = app.db.prepare('SELECT status, count(*) AS n FROM journal GROUP BY status ORDER BY status').all();
    expect(statuses).toEqual(done ? [{ status: 'done', n: done }, { status: 'planned', n: 100 - done }] : [{ status: 'planned', n: 100 }]);
    expect(readDirectory(app.db, 'acme').users).toHaveLength(done);
    expect(app.db.pragma('foreign_keys', { simple: true })).toBe(1); // off only inside a batch of creates
    const [report] = await resumeUnfinished(app, new Set(['acme']));
    expect(report.counts).toMatchObject({ created: 100, failed: 0 });
    expect(readDirectory(app.db, 'acme').users.map((u) => u.externalId)).toEqual(rows.map((r) => r.id));
    expect(app.db.prepare('SELECT status, count(*) AS n FROM journal GROUP BY status').all()).toEqual([{ status: 'done', n: 100 }]);
  });
});

describe('the page cache of a large run', () => {
  it('is 64 MB while a run of largeRun operations or more is applied, and what it was again after', async () => {
    const rows = Array.from({ length: 20 }, (_, i) => ({ id: `c${String(i).padStart(2, '0')}` }));
    const embedded = app.target(app.tenant('acme'));
    const seen: number[] = [];
    const original = app.target.bind(app);
    const target = pullingThrough(copyOf(embedded, { batchSize: 5, largeRun: 20 }), {
      record: (record) => (outcomes) => {
        seen.push(app.db.pragma('cache_size', { simple: true }) as number);
        record(outcomes);
      },
    });
    app.target = () => target;
    const before = app.db.pragma('cache_size', { simple: true });
    await reconcile(app, app.tenant('acme'), { kind: 'ingest', fileIds: [(await receiveFile(app, app.tenant('acme'), ws.file('users.csv', usersCsv(rows)))).id] });
    expect(seen).toEqual([-65536, -65536, -65536, -65536]);
    expect(app.db.pragma('cache_size', { simple: true })).toBe(before);
    // A smaller run keeps the usual cache.
    seen.length = 0;
    await reconcile(app, app.tenant('acme'), { kind: 'ingest', fileIds: [(await receiveFile(app, app.tenant('acme'), ws.file('users.csv', usersCsv([...rows, { id: 'c99' }])))).id] });
    expect(seen).toEqual([before]);
    app.target = original;
  });
});

describe('two processes on one tenant', () => {
  async function cutOffRun(rows: { id: string }[]) {
    const ids = [];
    for (const [name, body] of Object.entries({ 'users.csv': usersCsv(rows) })) ids.push((await receiveFile(app, app.tenant('acme'), ws.file(name, body))).id);
    const embedded = app.target(app.tenant('acme'));
    let budget = 1;
    const original = app.target.bind(app);
    // Batch by batch (applyBatch, as a remote target applies), so the kill lands between two batches.
    app.target = () => copyOf(embedded, {
      batchSize: 5,
      applyBatches: undefined,
      applyBatch: (...args: Parameters<Target['applyBatch']>) => {
        if (budget-- <= 0) throw new Error('killed');
        return embedded.applyBatch(...args);
      },
    });
    await expect(reconcile(app, app.tenant('acme'), { kind: 'ingest', fileIds: ids })).rejects.toThrow('killed');
    app.target = original;
  }

  it('a new run first finishes the run still in progress, then plans against the finished directory', async () => {
    const rows = Array.from({ length: 12 }, (_, i) => ({ id: `w${String(i).padStart(2, '0')}` }));
    await cutOffRun(rows);
    expect(readDirectory(app.db, 'acme').users).toHaveLength(5);
    const next = await reconcile(app, app.tenant('acme'), { kind: 'ingest', fileIds: [(await receiveFile(app, app.tenant('acme'), ws.file('users.csv', usersCsv(rows.slice(1))))).id] });
    const runs = app.db.prepare("SELECT id, status FROM runs ORDER BY id").all() as { id: number; status: string }[];
    expect(runs.map((r) => r.status)).toEqual(['applied', 'applied']);
    // Planned against all twelve: one removal, no create.
    expect(next!.operations.map((o) => [o.op, 'externalId' in o ? o.externalId : null])).toEqual([['remove', 'w00']]);
  });

  it('a batch another process applied first is rolled back and skipped: nothing applied twice', async () => {
    const rows = Array.from({ length: 12 }, (_, i) => ({ id: `v${String(i).padStart(2, '0')}` }));
    await cutOffRun(rows);
    const other = ws.open(() => new Date('2026-02-01T01:00:00Z'));
    const embedded = app.target(app.tenant('acme'));
    let raced = false;
    app.target = () => copyOf(embedded, {
      batchSize: 5,
      applyBatches: undefined,
      applyBatch: async (...args: Parameters<Target['applyBatch']>) => {
        // The other process finishes the whole run between this one reading its batch and applying it.
        if (!raced) await resumeUnfinished(other, new Set(['acme']));
        raced = true;
        return embedded.applyBatch(...args);
      },
    });
    await resumeUnfinished(app, new Set(['acme']));
    expect(raced).toBe(true);
    expect(readDirectory(app.db, 'acme').users.map((u) => u.externalId)).toEqual(rows.map((r) => r.id));
    expect(app.db.prepare("SELECT status, count(*) AS n FROM journal GROUP BY status").all()).toEqual([{ status: 'done', n: 12 }]);
    expect((app.db.prepare("SELECT status FROM runs").pluck().all())).toEqual(['applied']);
  });

  it('a transaction whose first batch another process applied meanwhile is rolled back whole (applyBatches)', async () => {
    const rows = Array.from({ length: 12 }, (_, i) => ({ id: `r${String(i).padStart(2, '0')}` }));
    await cutOffRun(rows); // 5 applied, 7 planned
    const other = ws.open(() => new Date('2026-02-01T01:00:00Z'));
    const otherTarget = other.target(other.tenant('acme'));
    const runId = app.db.prepare("SELECT id FROM runs WHERE status = 'pending'").pluck().get() as number;
    const embedded = app.target(app.tenant('acme'));
    let reads = 0;
    const target = pullingThrough(copyOf(embedded, { batchSize: 5 }), {
      next: (next, tenant, settings) => () => {
        const batch = next();
        // The other process applies this very batch, with its outcomes, between this one reading it and applying it
        // (the embedded applyBatch runs to its commit before it returns).
        if (reads++ === 0) void otherTarget.applyBatch(tenant, batch, settings, (outcomes) => recordOutcomes(other.db, runId, outcomes, true));
        return batch;
      },
    });
    app.target = () => target;
    await resumeUnfinished(app, new Set(['acme']));
    expect(reads).toBeGreaterThan(2); // read again after the rollback
    expect(readDirectory(app.db, 'acme').users.map((u) => u.externalId)).toEqual(rows.map((r) => r.id));
    expect(app.db.prepare("SELECT status, count(*) AS n FROM journal GROUP BY status").all()).toEqual([{ status: 'done', n: 12 }]);
    expect((app.db.prepare("SELECT status FROM runs").pluck().all())).toEqual(['applied']);
  });
});

describe('journal retention (journalDays)', () => {
  it('drops the journals of runs finished more than journalDays ago after the next run; summaries and counts stay', async () => {
    let clock = new Date('2026-01-01T01:00:00Z');
    const timed = ws.open(() => clock);
    const tenant = timed.tenant('acme');
    const rows = Array.from({ length: 5 }, (_, i) => ({ id: `r${i}` }));
    const first = (await reconcile(timed, tenant, { kind: 'ingest', fileIds: [(await receiveFile(timed, tenant, ws.file('users.csv', usersCsv(rows)))).id] }))!;
    expect(timed.db.prepare('SELECT count(*) FROM journal_ops WHERE run_id = ?').pluck().get(first.runId)).toBe(5);
    const published = fs.readdirSync(tenantDirs(timed.config.paths, 'acme').reports).filter((f) => f.endsWith(`-run-${first.runId}.json`));

    // Day 30: a run, but the first is only 30 days old: kept (the default is 90 days).
    clock = new Date('2026-01-31T01:00:00Z');
    await reconcile(timed, tenant, { kind: 'ingest', fileIds: [(await receiveFile(timed, tenant, ws.file('users.csv', usersCsv(rows.slice(1))))).id] });
    expect(timed.db.prepare('SELECT count(*) FROM journal_ops WHERE run_id = ?').pluck().get(first.runId)).toBe(5);

    // Day 95: the next run drops the first run's journal, not its own nor the one of day 30.
    clock = new Date('2026-04-06T01:00:00Z');
    const third = (await reconcile(timed, tenant, { kind: 'ingest', fileIds: [(await receiveFile(timed, tenant, ws.file('users.csv', usersCsv(rows.slice(2))))).id] }))!;
    expect(timed.db.prepare('SELECT run_id, count(*) FROM journal_ops GROUP BY run_id ORDER BY run_id').raw().all()).toEqual([[first.runId + 1, 1], [third.runId, 1]]);
    const old = getRun(timed.db, first.runId)!;
    expect(old.report).toMatchObject({ status: 'applied', counts: { created: 5 }, operations: [], operationsPrunedAt: '2026-04-06T01:00:00.000Z' });
    expect([...reportLines(old.report!)].join('')).toMatch(/operations: dropped from the service's database on 2026-04-06T01:00:00.000Z \(journalDays\)/);
    // The customer's copy is untouched.
    const copy = JSON.parse(fs.readFileSync(path.join(tenantDirs(timed.config.paths, 'acme').reports, published[0]), 'utf8'));
    expect(copy.operations).toHaveLength(5);
    expect(getRun(timed.db, third.runId)!.report!.operations).toHaveLength(1);
  });

  it('never drops the journal of a held run (an approval needs it) or of a run still being applied', () => {
    const old = '2025-01-01T00:00:00.000Z';
    const runs = (['applied', 'held', 'pending', 'superseded'] as const).map((status) => {
      const id = createRun(app.db, 'acme', { kind: 'ingest', fileIds: [] }, old);
      const w = new JournalWriter(app.db, id);
      w.add('userRemovals', remove(`x${id}`, id));
      w.finish();
      app.db.prepare('UPDATE runs SET status = ?, finished_at = ? WHERE id = ?').run(status, status === 'pending' ? null : old, id);
      return id;
    });
    expect(pruneJournals(app.db, 'acme', '2026-01-01T00:00:00.000Z', '2026-02-01T00:00:00.000Z')).toEqual([runs[0], runs[3]]);
    expect(app.db.prepare('SELECT run_id FROM journal_ops ORDER BY run_id').pluck().all()).toEqual([runs[1], runs[2]]);
    expect(pruneJournals(app.db, 'acme', '2026-01-01T00:00:00.000Z', '2026-02-01T00:00:00.000Z')).toEqual([]);
    expect(pruneJournals(app.db, 'other', '2027-01-01T00:00:00.000Z', '2027-01-01T00:00:00.000Z')).toEqual([]);
  });
});
