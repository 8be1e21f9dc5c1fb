// The floor of a first load (bench:ingest, issue #7 §4): the least work any implementation of the contract does for
// day 1, measured in the same run as the baseline. A first load must (1) store the snapshot (the baseline itself:
// parse + INSERT every row), (2) write every user, membership and segment link into the directory, and (3) write a
// report that lists every operation, as text and as JSON. (2) and (3) are timed here from the staged rows, read in
// external-ID order as a run reads them (so the directory's external-ID index is appended to, as in the product),
// into a sink that does only that work, minus the same read alone: each is the cost of its writes and nothing else.
// No journal, no plan, no reads of the directory, no checks. With the baseline, their sum is what no day 1 goes below.
import Database from 'better-sqlite3';
import fs from 'node:fs';
import path from 'node:path';
import { USER_SCALAR_FIELDS, type UserRecord } from '../../src/model.js';
import { desiredMemberships, userFields } from '../../src/plan/plan.js';
import type { Operation } from '../../src/plan/types.js';
import { describeOperation, writeChunked } from '../../src/report/text.js';
import { migrate, PAGE_CACHE } from '../../src/store/db.js';
import { openUsersRows } from '../../src/store/snapshots.js';
import { LARGE_RUN, LARGE_RUN_CACHE, USER_COLUMNS } from '../../src/targets/embedded.js';

/** Takes each user in turn. */
interface UserSink {
  add(u: UserRecord): void;
  finish(): void;
}

/** Every user field is mapped (the bench's tenant maps them all). */
const ALL_FIELDS = new Set<string>(USER_SCALAR_FIELDS);
const SCALAR_COLUMNS = USER_SCALAR_FIELDS.map((f) => USER_COLUMNS[f]);

/** Every user with its memberships and segment links into the product's directory tables (its schema and indexes), one transaction. */
class DirectorySink implements UserSink {
  private readonly insertUser: Database.Statement;
  private readonly insertMembership: Database.Statement;
  private readonly insertLink: Database.Statement;
  constructor(private readonly db: Database.Database, private readonly groups: Map<string, number>, private readonly segments: Map<string, number>) {
    const cols = ['tenant', 'external_id', ...SCALAR_COLUMNS, 'created_at', 'updated_at'];
    this.insertUser = db.prepare(`INSERT INTO dir_users (${cols.join(', ')}) VALUES (${cols.map(() => '?').join(', ')})`);
    this.insertMembership = db.prepare("INSERT INTO dir_memberships (user_id, group_id, role, origin) VALUES (?, ?, ?, 'integration')");
    this.insertLink = db.prepare("INSERT INTO dir_segment_links (user_id, segment_id, origin) VALUES (?, ?, 'integration')");
    db.exec('BEGIN');
  }
  add(u: UserRecord): void {
    const now = '2026-01-01T00:00:00.000Z';
    const id = this.insertUser.run('bench', u.externalId, ...USER_SCALAR_FIELDS.map((f) => u[f] ?? null), now, now).lastInsertRowid;
    for (const m of desiredMemberships(u)) this.insertMembership.run(id, this.groups.get(m.groupId), m.role);
    for (const s of new Set(u.segments ?? [])) this.insertLink.run(id, this.segments.get(s));
  }
  finish(): void {
    this.db.exec('COMMIT');
  }
}

/**
 * Every user's create operation as the report's text line and JSON entry, written to two files in chunks. Only the
 * users' creates: the 2,050 of groups and segments are left out (the floor errs low).
 */
class ReportSink implements UserSink {
  private seq = 0;
  private readonly text: number;
  private readonly json: number;
  private readonly pending: { text: string[]; json: string[] } = { text: [], json: [] };
  /** UTF-16 code units pending: flushed at about 1 MB, the product's chunk (src/report/text.ts). */
  private pendingLength = 0;
  constructor(dir: string) {
    this.text = fs.openSync(path.join(dir, 'floor-report.txt'), 'w');
    this.json = fs.openSync(path.join(dir, 'floor-report.json'), 'w');
  }
  add(u: UserRecord): void {
    const seq = ++this.seq;
    // The report's entry: the planner's create (src/plan/plan.ts) with its seq and status (src/store/journal.ts), built once.
    const entry: Operation & { seq: number; status: 'done' } = {
      op: 'create', entity: 'user', externalId: u.externalId, after: userFields(u, ALL_FIELDS), memberships: desiredMemberships(u),
      segments: [...new Set(u.segments ?? [])], seq, status: 'done',
    };
    const text = `  ${String(seq).padStart(5)}  ${describeOperation(entry)}\n`;
    const json = `${seq > 1 ? ',' : ''}${JSON.stringify(entry)}`;
    this.pending.text.push(text);
    this.pending.json.push(json);
    this.pendingLength += Math.max(text.length, json.length);
    if (this.pendingLength >= 1 << 20) this.flush();
  }
  private flush(): void {
    writeChunked(this.pending.text, (chunk) => fs.writeSync(this.text, chunk));
    writeChunked(this.pending.json, (chunk) => fs.writeSync(this.json, chunk));
    this.pending.text = [];
    this.pending.json = [];
    this.pendingLength = 0;
  }
  finish(): void {
    this.flush();
    fs.closeSync(this.text);
    fs.closeSync(this.json);
  }
}

export interface Day1Floor {
  /** The directory's writes alone: (read the staged users + write the directory) − the read. */
  directoryMs: number;
  directoryCpuMs: number;
  /** The report's rendering and writing alone: (read the staged users + write the report) − the read. */
  reportMs: number;
  reportCpuMs: number;
}

type Timed = <T>(fn: () => Promise<T> | T) => Promise<[T, number, number]>;

/**
 * Times (2) and (3) of a first load, best of `repeat` each, against the read of the staged users alone (best of as
 * many rounds, interleaved with the others). `rowsFile`: the users file staged by the product (src/snapshot/staging.ts).
 * Groups and segments are inserted first, untimed: thousands, not the users' millions. The directory has the page
 * cache the product's apply has for `users` creates (more for a large run, EmbeddedTarget.largeRun) and no foreign-key
 * checks (as the product's batches of creates): a floor errs low, never high.
 */
export async function measureDay1Floor(o: { dir: string; rowsFile: string; users: number; groups: string[]; segments: string[]; repeat: number; timed: Timed }): Promise<Day1Floor> {
  const each = (sink: UserSink | null) => {
    const users = openUsersRows(o.rowsFile, { file: 'users', fields: new Set(), protectedIds: new Set() });
    try {
      for (const row of users.rows) {
        const u = row.record();
        sink?.add(u);
      }
      sink?.finish();
    } finally {
      users.close();
    }
  };
  const runs = { read: [] as number[][], directory: [] as number[][], report: [] as number[][] };
  for (let k = 0; k < o.repeat; k++) {
    const [, readWall, readCpu] = await o.timed(() => each(null));
    runs.read.push([readWall, readCpu]);
    const file = path.join(o.dir, `floor-directory-${k}.sqlite`);
    const db = new Database(file);
    try {
      // The service database's settings (src/store/db.ts), with the apply's cache and without foreign keys.
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
      // The apply counts every operation still planned: the users' creates and the groups' and segments'.
      db.pragma(`cache_size = ${o.users + o.groups.length + o.segments.length >= LARGE_RUN ? LARGE_RUN_CACHE : PAGE_CACHE}`);
      migrate(db);
      db.pragma('foreign_keys = OFF');
      const groups = new Map<string, number>();
      const segments = new Map<string, number>();
      const g = db.prepare("INSERT INTO dir_groups (tenant, external_id, name) VALUES ('bench', ?, ?)");
      const s = db.prepare("INSERT INTO dir_segments (tenant, external_id, name) VALUES ('bench', ?, ?)");
      db.transaction(() => {
        for (const id of o.groups) groups.set(id, Number(g.run(id, id).lastInsertRowid));
        for (const id of o.segments) segments.set(id, Number(s.run(id, id).lastInsertRowid));
      })();
      const [, wall, cpu] = await o.timed(() => each(new DirectorySink(db, groups, segments)));
      runs.directory.push([wall, cpu]);
    } finally {
      db.close();
      for (const suffix of ['', '-wal', '-shm']) fs.rmSync(file + suffix, { force: true });
    }
    const [, wall, cpu] = await o.timed(() => each(new ReportSink(o.dir)));
    runs.report.push([wall, cpu]);
    for (const f of ['floor-report.txt', 'floor-report.json']) fs.rmSync(path.join(o.dir, f), { force: true });
  }
  // Best of each, minus the best read: a floor errs low, never high.
  const least = (xs: number[][], i: number) => Math.min(...xs.map((x) => x[i]));
  return {
    directoryMs: least(runs.directory, 0) - least(runs.read, 0), directoryCpuMs: least(runs.directory, 1) - least(runs.read, 1),
    reportMs: least(runs.report, 0) - least(runs.read, 0), reportCpuMs: least(runs.report, 1) - least(runs.read, 1),
  };
}

/**
 * The floor of a full check beside the baseline (which stands for staging the checked file): every directory user
 * read with its fields, memberships and segment links, in external-ID order, a page of 1,000 at a time, raw rows
 * and nothing built from them. A check must at least read them all to compare each user with its row.
 */
export function readWholeDirectory(db: Database.Database, tenant: string): number {
  const page = db.prepare(`SELECT id, external_id, removed_at, purge_after, synced, ${SCALAR_COLUMNS.join(', ')} FROM dir_users
    WHERE tenant = ? AND external_id IS NOT NULL AND external_id > ? ORDER BY external_id LIMIT ?`).raw();
  const memberships = db.prepare('SELECT user_id, group_id, role, origin FROM dir_memberships WHERE user_id IN (SELECT value FROM json_each(?))').raw();
  const links = db.prepare('SELECT user_id, segment_id, origin FROM dir_segment_links WHERE user_id IN (SELECT value FROM json_each(?))').raw();
  let read = 0;
  for (let after = ''; ;) {
    const rows = page.all(tenant, after, 1000) as unknown[][];
    const ids = JSON.stringify(rows.map((r) => r[0]));
    read += rows.length + memberships.all(ids).length + links.all(ids).length;
    if (rows.length < 1000) return read;
    after = rows[rows.length - 1][1] as string;
  }
}
