// Accepted snapshots per tenant and type; the latest of each type is the tenant's desired state.
import type { FileType, GroupRecord, Problem, SegmentRecord, UserRecord } from '../model.js';
import Database from 'better-sqlite3';
import fs from 'node:fs';
import path from 'node:path';
import type { DesiredSnapshot, DesiredState, DesiredUserRow, DesiredUsers, Located } from '../plan/types.js';
import { inTransaction, type Db } from './db.js';
import { finishFile } from './files.js';
import { decodeRow } from '../snapshot/row-format.js';

/** Older snapshots kept per tenant and type, for inspection; the rest are dropped to bound the disk. */
const KEEP_SNAPSHOTS = 3;

export interface AcceptedFile {
  tenant: string;
  type: FileType;
  fileId: number;
  /** The finished staging file (see src/snapshot/staging.ts); it is moved, not copied. */
  stagingFile: string;
  fields: string[];
  problems: Problem[];
  dataRows: number;
  validRows: number;
  now: string;
}

/** Snapshot row files live beside the database. */
function snapshotsDir(db: Db): string {
  return path.join(path.dirname(db.name), 'snapshots');
}

/**
 * Makes the staged rows the tenant's snapshot of their type and marks the file accepted. The rows file is
 * fsynced and moved into place first, then one transaction records it: a crash in between leaves only an
 * unreferenced file, removed by `removeOrphanSnapshotFiles`.
 */
export function commitSnapshot(db: Db, a: AcceptedFile): number {
  const dir = snapshotsDir(db);
  fs.mkdirSync(dir, { recursive: true });
  const name = `${a.tenant}-${a.type}-${a.fileId}.sqlite`;
  const fd = fs.openSync(a.stagingFile, 'r+');
  fs.fsyncSync(fd);
  fs.closeSync(fd);
  fs.renameSync(a.stagingFile, path.join(dir, name));
  const dropped: string[] = [];
  const id = inTransaction(db, () => {
    const id = Number(db.prepare('INSERT INTO snapshots (tenant, type, file_id, fields, rows_file, created_at) VALUES (?, ?, ?, ?, ?, ?)')
      .run(a.tenant, a.type, a.fileId, JSON.stringify(a.fields), name, a.now).lastInsertRowid);
    const addProblem = db.prepare('INSERT INTO snapshot_problems (snapshot_id, entity_id, problem) VALUES (?, ?, ?)');
    for (const p of a.problems) if (p.level === 'row') addProblem.run(id, p.entityId ?? null, JSON.stringify(p));
    finishFile(db, a.fileId, { status: 'accepted', problems: a.problems, dataRows: a.dataRows, validRows: a.validRows, processedAt: a.now });
    const old = db.prepare('SELECT id, rows_file FROM snapshots WHERE tenant = ? AND type = ? ORDER BY id DESC LIMIT -1 OFFSET ?').all(a.tenant, a.type, KEEP_SNAPSHOTS) as { id: number; rows_file: string }[];
    const drop = db.prepare('DELETE FROM snapshots WHERE id = ?');
    for (const o of old) {
      drop.run(o.id);
      dropped.push(o.rows_file);
    }
    return id;
  });
  for (const f of dropped) fs.rmSync(path.join(dir, f), { force: true });
  return id;
}

/** After a crash: rows files no snapshot refers to, and staging files left behind for more than a day. */
export function removeOrphanSnapshotFiles(db: Db, tmpDir: string, now: Date): void {
  const dir = snapshotsDir(db);
  if (fs.existsSync(dir)) {
    const known = new Set(db.prepare('SELECT rows_file FROM snapshots').pluck().all() as string[]);
    for (const f of fs.readdirSync(dir)) if (!known.has(f)) fs.rmSync(path.join(dir, f), { force: true });
  }
  if (fs.existsSync(tmpDir)) {
    for (const f of fs.readdirSync(tmpDir)) {
      const p = path.join(tmpDir, f);
      if (f.startsWith('staging-') && now.getTime() - fs.statSync(p).mtimeMs > 86_400_000) fs.rmSync(p, { force: true });
    }
  }
}

interface LatestSnapshot { id: number; fields: string; rowsFile: string; name: string }

function latest(db: Db, tenant: string, type: FileType): LatestSnapshot | undefined {
  return db
    .prepare('SELECT s.id, s.fields, s.rows_file AS rowsFile, f.name FROM snapshots s JOIN files f ON f.id = s.file_id WHERE s.tenant = ? AND s.type = ? ORDER BY s.id DESC LIMIT 1')
    .get(tenant, type) as LatestSnapshot | undefined;
}

/** What decides, besides a user's own row, how that user is planned: see src/apply/sync-marks.ts. */
export interface SnapshotContext { usersFields?: string[]; groups?: number; segments?: number }

/** The tenant's desired state, whole in memory (tests, small tenants; a run streams the users instead). */
export function loadDesired(db: Db, tenant: string): DesiredState {
  const groups = loadLatest<GroupRecord>(db, tenant, 'groups');
  const segments = loadLatest<SegmentRecord>(db, tenant, 'segments');
  const users = loadLatest<UserRecord>(db, tenant, 'users');
  return { users, groups, segments };
}

/** The latest groups and segments snapshots (thousands of rows: in memory). */
export function loadDesiredTree(db: Db, tenant: string): Pick<DesiredState, 'groups' | 'segments'> {
  return { groups: loadLatest<GroupRecord>(db, tenant, 'groups'), segments: loadLatest<SegmentRecord>(db, tenant, 'segments') };
}

/**
 * The latest users snapshot as a stream of rows ordered by external ID (the planner's order, src/plan/order.ts),
 * read from its rows file; a row's record is parsed only when asked for. `whole()` says whether most rows will
 * be planned (see openUsersRows). `close` when done.
 */
export function openDesiredUsers(db: Db, tenant: string, whole: () => boolean = () => true): (DesiredUsers & { close(): void }) | undefined {
  const snap = latest(db, tenant, 'users');
  if (!snap) return undefined;
  const protectedIds = new Set(db.prepare('SELECT entity_id FROM snapshot_problems WHERE snapshot_id = ? AND entity_id IS NOT NULL').pluck().all(snap.id) as string[]);
  const file = path.join(snapshotsDir(db), snap.rowsFile);
  return openUsersRows(file, { id: snap.id, file: snap.name, fields: new Set(JSON.parse(snap.fields) as string[]), protectedIds }, whole());
}

/**
 * A rows file (a snapshot's, or a staging file only checked) as the planner's users stream. Two ways to read it in
 * external-ID order: when most rows will be planned (`whole`: a first load, check), the table is scanned and
 * sorted by SQLite (sequential reads; the sort spills to temporary files beyond the cache, so memory stays
 * bounded); when most will be skipped by their sync mark, the (external_id, hash) index of src/snapshot/staging.ts
 * is read alone and a row is fetched only when planned.
 */
export function openUsersRows(rowsFile: string, meta: Omit<DesiredUsers, 'rows'>, whole = true): DesiredUsers & { close(): void } {
  const rowsDb = new Database(rowsFile, { readonly: true, fileMustExist: true });
  // Also the sorter's memory: beyond it, the sort of a large file spills to temporary files.
  rowsDb.pragma('cache_size = -16384');
  let rows: () => Generator<DesiredUserRow>;
  if (whole) {
    const select = rowsDb.prepare('SELECT external_id, hash, line, data FROM rows NOT INDEXED ORDER BY external_id').raw();
    rows = function* () {
      for (const [externalId, hash, line, data] of select.iterate() as IterableIterator<[string, string, number, string]>) {
        yield { externalId, line, hash, record: () => decodeRow<UserRecord>('users', data) };
      }
    };
  } else {
    const select = rowsDb.prepare('SELECT external_id, hash, line FROM rows ORDER BY external_id').raw();
    const dataAt = rowsDb.prepare('SELECT data FROM rows WHERE line = ?').pluck();
    rows = function* () {
      for (const [externalId, hash, line] of select.iterate() as IterableIterator<[string, string, number]>) {
        yield { externalId, line, hash, record: () => decodeRow<UserRecord>('users', dataAt.get(line) as string) };
      }
    };
  }
  return {
    ...meta,
    rows: { [Symbol.iterator]: rows },
    close: () => rowsDb.close(),
  };
}

/** Every row of a rows file, in line order (groups and segments: thousands). */
export function readRows<T>(rowsFile: string, type: FileType): Located<T>[] {
  const rowsDb = new Database(rowsFile, { readonly: true, fileMustExist: true });
  const records: Located<T>[] = [];
  try {
    for (const [line, data, hash] of rowsDb.prepare('SELECT line, data, hash FROM rows ORDER BY line').raw().iterate() as IterableIterator<[number, string, string]>) {
      records.push({ line, record: decodeRow<T>(type, data), hash });
    }
  } finally {
    rowsDb.close();
  }
  return records;
}

function loadLatest<T>(db: Db, tenant: string, type: FileType): DesiredSnapshot<T> | undefined {
  const snap = latest(db, tenant, type);
  if (!snap) return undefined;
  const protectedIds = new Set(db.prepare('SELECT entity_id FROM snapshot_problems WHERE snapshot_id = ? AND entity_id IS NOT NULL').pluck().all(snap.id) as string[]);
  const records = readRows<T>(path.join(snapshotsDir(db), snap.rowsFile), type);
  return { id: snap.id, file: snap.name, records, protectedIds, fields: new Set(JSON.parse(snap.fields) as string[]) };
}
