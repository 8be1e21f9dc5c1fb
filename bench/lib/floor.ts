// The floor of a first load (bench:ingest, issue #7 §4): the least work any implementation of the contract does for
// day 1, measured in the same run as the baseline. A first load must (1) store the snapshot (the baseline itself:
// parse + INSERT every row), (2) write every user, membership and segment link into the directory, and (3) write a
// report that lists every operation, as text and as JSON. (2) and (3) are timed here as the product's parser feeding
// a sink that does only that work, minus the parse alone, so each is the cost of its writes and nothing else:
// no journal, no plan, no reads, no checks. Their sum with the baseline is what no day 1 can go below.
import Database from 'better-sqlite3';
import fs from 'node:fs';
import path from 'node:path';
import type { EntityRecord, UserRecord } from '../../src/model.js';
import { parseFile, type ParseOptions, type RowSink } from '../../src/parse/parse-file.js';
import type { Operation } from '../../src/plan/types.js';
import { describeOperation, writeChunked } from '../../src/report/text.js';
import { migrate } from '../../src/store/db.js';

const SCALARS = [
  ['firstName', 'first_name'], ['lastName', 'last_name'], ['username', 'username'], ['email', 'email'], ['phone', 'phone'],
  ['title', 'title'], ['birthday', 'birthday'], ['employedSince', 'employed_since'], ['employedUntil', 'employed_until'],
  ['gender', 'gender'], ['status', 'status'], ['language', 'language'],
] as const;

/** Every user with its memberships and segment links into the product's directory tables (its schema and indexes), one transaction. */
class DirectorySink implements RowSink {
  private readonly insertUser: Database.Statement;
  private readonly insertMembership: Database.Statement;
  private readonly insertLink: Database.Statement;
  constructor(private readonly db: Database.Database, private readonly groups: Map<string, number>, private readonly segments: Map<string, number>) {
    const cols = ['tenant', 'external_id', ...SCALARS.map(([, c]) => c), 'created_at', 'updated_at'];
    this.insertUser = db.prepare(`INSERT INTO dir_users (${cols.join(', ')}) VALUES (${cols.map(() => '?').join(', ')})`);
    this.insertMembership = db.prepare("INSERT INTO dir_memberships (user_id, group_id, role, origin) VALUES (?, ?, ?, 'integration')");
    this.insertLink = db.prepare("INSERT INTO dir_segment_links (user_id, segment_id, origin) VALUES (?, ?, 'integration')");
    db.exec('BEGIN');
  }
  add(record: EntityRecord): null {
    const u = record as UserRecord;
    const now = '2026-01-01T00:00:00.000Z';
    const id = this.insertUser.run('bench', u.externalId, ...SCALARS.map(([f]) => u[f] ?? null), now, now).lastInsertRowid;
    const roles = new Map<string, string>();
    for (const g of u.memberOf ?? []) roles.set(g, 'member');
    for (const g of u.adminOf ?? []) roles.set(g, 'admin');
    for (const [g, role] of roles) this.insertMembership.run(id, this.groups.get(g), role);
    for (const s of new Set(u.segments ?? [])) this.insertLink.run(id, this.segments.get(s));
    return null;
  }
  finish(): void {
    this.db.exec('COMMIT');
  }
}

/** Every user's create operation as the report's text line and JSON entry, written to two files in chunks. */
class ReportSink implements RowSink {
  private seq = 0;
  private readonly text: number;
  private readonly json: number;
  private readonly pending: { text: string[]; json: string[] } = { text: [], json: [] };
  constructor(dir: string) {
    this.text = fs.openSync(path.join(dir, 'floor-report.txt'), 'w');
    this.json = fs.openSync(path.join(dir, 'floor-report.json'), 'w');
  }
  add(record: EntityRecord): null {
    const u = record as UserRecord;
    const after: Record<string, string | null> = { externalId: u.externalId };
    for (const [f] of SCALARS) after[f] = u[f] ?? null;
    const roles = new Map<string, 'member' | 'admin'>();
    for (const g of u.memberOf ?? []) roles.set(g, 'member');
    for (const g of u.adminOf ?? []) roles.set(g, 'admin');
    const seq = ++this.seq;
    // The report's entry: the operation with its seq and status (src/store/journal.ts), built once.
    const entry: Operation & { seq: number; status: 'done' } = {
      op: 'create', entity: 'user', externalId: u.externalId, after, memberships: [...roles].map(([groupId, role]) => ({ groupId, role })),
      segments: [...new Set(u.segments ?? [])], seq, status: 'done',
    };
    this.pending.text.push(`  ${String(seq).padStart(5)}  ${describeOperation(entry)}\n`);
    this.pending.json.push(`${seq > 1 ? ',' : ''}${JSON.stringify(entry)}`);
    if (this.pending.text.length >= 1000) this.flush();
    return null;
  }
  private flush(): void {
    writeChunked(this.pending.text, (chunk) => fs.writeSync(this.text, chunk));
    writeChunked(this.pending.json, (chunk) => fs.writeSync(this.json, chunk));
    this.pending.text = [];
    this.pending.json = [];
  }
  finish(): void {
    this.flush();
    fs.closeSync(this.text);
    fs.closeSync(this.json);
  }
}

export interface Day1Floor {
  /** The directory's writes alone: (parse + write the directory) − parse. */
  directoryMs: number;
  directoryCpuMs: number;
  /** The report's rendering and writing alone: (parse + write the report) − parse. */
  reportMs: number;
  reportCpuMs: number;
}

type Timed = <T>(fn: () => Promise<T> | T) => Promise<[T, number, number]>;

/** Parses and validates, keeping nothing: what both sinks' times are taken against. */
class NoSink implements RowSink {
  add(): null {
    return null;
  }
}

/**
 * Times (2) and (3) of a first load, best of `repeat` each, against the parse alone (same parser, same reads, best of
 * as many rounds, interleaved with the others). Groups and segments are inserted first, untimed: thousands, not the
 * users' millions.
 */
export async function measureDay1Floor(o: {
  dir: string; usersFile: string; groups: string[]; segments: string[]; parseOpts: ParseOptions; repeat: number; timed: Timed;
}): Promise<Day1Floor> {
  const parse = (sink: RowSink) => parseFile(fs.createReadStream(o.usersFile, { highWaterMark: 1 << 20 }), sink, o.parseOpts);
  const runs = { parse: [] as number[][], directory: [] as number[][], report: [] as number[][] };
  for (let k = 0; k < o.repeat; k++) {
    const [, parseWall, parseCpu] = await o.timed(() => parse(new NoSink()));
    runs.parse.push([parseWall, parseCpu]);
    const file = path.join(o.dir, `floor-directory-${k}.sqlite`);
    const db = new Database(file);
    try {
      // The service database's settings (src/store/db.ts).
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
      db.pragma('cache_size = -16384');
      migrate(db);
      const groups = new Map<string, number>();
      const segments = new Map<string, number>();
      const g = db.prepare("INSERT INTO dir_groups (tenant, external_id, name) VALUES ('bench', ?, ?)");
      const s = db.prepare("INSERT INTO dir_segments (tenant, external_id, name) VALUES ('bench', ?, ?)");
      db.transaction(() => {
        for (const id of o.groups) groups.set(id, Number(g.run(id, id).lastInsertRowid));
        for (const id of o.segments) segments.set(id, Number(s.run(id, id).lastInsertRowid));
      })();
      const [, wall, cpu] = await o.timed(async () => {
        const sink = new DirectorySink(db, groups, segments);
        await parse(sink);
        sink.finish();
      });
      runs.directory.push([wall, cpu]);
    } finally {
      db.close();
      for (const suffix of ['', '-wal', '-shm']) fs.rmSync(file + suffix, { force: true });
    }
    const [, wall, cpu] = await o.timed(async () => {
      const sink = new ReportSink(o.dir);
      await parse(sink);
      sink.finish();
    });
    runs.report.push([wall, cpu]);
    for (const f of ['floor-report.txt', 'floor-report.json']) fs.rmSync(path.join(o.dir, f), { force: true });
  }
  // Best of each, minus the best parse: a floor errs low, never high.
  const least = (xs: number[][], i: number) => Math.min(...xs.map((x) => x[i]));
  return {
    directoryMs: least(runs.directory, 0) - least(runs.parse, 0), directoryCpuMs: least(runs.directory, 1) - least(runs.parse, 1),
    reportMs: least(runs.report, 0) - least(runs.parse, 0), reportCpuMs: least(runs.report, 1) - least(runs.parse, 1),
  };
}
