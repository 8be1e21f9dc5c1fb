// Accepted snapshots per tenant and type; the latest of each type is the tenant's desired state.
import type { FileType, GroupRecord, Problem, SegmentRecord, UserRecord } from '../model.js';
import type { DesiredSnapshot, DesiredState } from '../plan/types.js';
import { inTransaction, type Db } from './db.js';
import { finishFile } from './files.js';

/** Older snapshots kept per tenant and type, for inspection; the rest are dropped to bound the database. */
const KEEP_SNAPSHOTS = 3;

export interface AcceptedFile {
  tenant: string;
  type: FileType;
  fileId: number;
  stagingFile: string;
  fields: string[];
  problems: Problem[];
  dataRows: number;
  validRows: number;
  now: string;
}

/** Copies the staged rows into the database and marks the file accepted, all in one transaction. */
export function commitSnapshot(db: Db, a: AcceptedFile): number {
  db.prepare('ATTACH DATABASE ? AS staging').run(a.stagingFile);
  try {
    return inTransaction(db, () => {
      const id = Number(db.prepare('INSERT INTO snapshots (tenant, type, file_id, fields, created_at) VALUES (?, ?, ?, ?, ?)')
        .run(a.tenant, a.type, a.fileId, JSON.stringify(a.fields), a.now).lastInsertRowid);
      db.prepare('INSERT INTO snapshot_rows (snapshot_id, line, external_id, data) SELECT ?, line, external_id, data FROM staging.rows ORDER BY line').run(id);
      const addProblem = db.prepare('INSERT INTO snapshot_problems (snapshot_id, entity_id, problem) VALUES (?, ?, ?)');
      for (const p of a.problems) if (p.level === 'row') addProblem.run(id, p.entityId ?? null, JSON.stringify(p));
      finishFile(db, a.fileId, { status: 'accepted', problems: a.problems, dataRows: a.dataRows, validRows: a.validRows, processedAt: a.now });
      const old = db.prepare('SELECT id FROM snapshots WHERE tenant = ? AND type = ? ORDER BY id DESC LIMIT -1 OFFSET ?').pluck().all(a.tenant, a.type, KEEP_SNAPSHOTS) as number[];
      const drop = db.prepare('DELETE FROM snapshots WHERE id = ?');
      for (const oldId of old) drop.run(oldId);
      return id;
    });
  } finally {
    db.exec('DETACH DATABASE staging');
  }
}

export function loadDesired(db: Db, tenant: string): DesiredState {
  return {
    users: loadLatest<UserRecord>(db, tenant, 'users'),
    groups: loadLatest<GroupRecord>(db, tenant, 'groups'),
    segments: loadLatest<SegmentRecord>(db, tenant, 'segments'),
  };
}

function loadLatest<T>(db: Db, tenant: string, type: FileType): DesiredSnapshot<T> | undefined {
  const snap = db
    .prepare('SELECT s.id, s.fields, f.name FROM snapshots s JOIN files f ON f.id = s.file_id WHERE s.tenant = ? AND s.type = ? ORDER BY s.id DESC LIMIT 1')
    .get(tenant, type) as { id: number; fields: string; name: string } | undefined;
  if (!snap) return undefined;
  const records = (db.prepare('SELECT line, data FROM snapshot_rows WHERE snapshot_id = ? ORDER BY line').raw().all(snap.id) as [number, string][])
    .map(([line, data]) => ({ line, record: JSON.parse(data) as T }));
  const protectedIds = new Set(db.prepare('SELECT entity_id FROM snapshot_problems WHERE snapshot_id = ? AND entity_id IS NOT NULL').pluck().all(snap.id) as string[]);
  return { file: snap.name, records, protectedIds, fields: new Set(JSON.parse(snap.fields) as string[]) };
}
