// Received files: what arrived, when, its hash, and what became of it.
import type { FileType, Problem } from '../model.js';
import type { Db } from './db.js';

export type FileStatus = 'received' | 'accepted' | 'rejected' | 'duplicate' | 'interrupted';

export interface FileRow {
  id: number;
  tenant: string;
  name: string;
  type: FileType | null;
  size: number;
  sha256: string;
  receivedAt: string;
  processedAt: string | null;
  status: FileStatus;
  problems: Problem[];
  dataRows: number | null;
  validRows: number | null;
  runId: number | null;
}

const SELECT = `SELECT id, tenant, name, type, size, sha256, received_at AS receivedAt, processed_at AS processedAt, status,
  problems, data_rows AS dataRows, valid_rows AS validRows, run_id AS runId FROM files`;

function toRow(r: Record<string, unknown> | undefined): FileRow | undefined {
  return r ? ({ ...r, problems: JSON.parse(r.problems as string) } as FileRow) : undefined;
}

export function recordFile(db: Db, f: { tenant: string; name: string; type: FileType | null; size: number; sha256: string; receivedAt: string }): number {
  return Number(
    db.prepare("INSERT INTO files (tenant, name, type, size, sha256, received_at, status) VALUES (?, ?, ?, ?, ?, ?, 'received')")
      .run(f.tenant, f.name, f.type, f.size, f.sha256, f.receivedAt).lastInsertRowid,
  );
}

export function finishFile(db: Db, id: number, f: { status: Exclude<FileStatus, 'received'>; problems: Problem[]; dataRows?: number; validRows?: number; processedAt: string }): void {
  db.prepare('UPDATE files SET status = ?, problems = ?, data_rows = ?, valid_rows = ?, processed_at = ? WHERE id = ?')
    .run(f.status, JSON.stringify(f.problems), f.dataRows ?? null, f.validRows ?? null, f.processedAt, id);
}

/**
 * The last accepted file of this type: the tenant's current snapshot, which a re-upload of the same bytes
 * would change nothing about. A rejected file is not a duplicate: sent again (e.g. after WT fixed the tenant's
 * setup) it is processed again.
 */
export function lastAcceptedFile(db: Db, tenant: string, type: FileType): FileRow | undefined {
  return toRow(db.prepare(`${SELECT} WHERE tenant = ? AND type = ? AND status = 'accepted' ORDER BY id DESC LIMIT 1`).get(tenant, type) as Record<string, unknown> | undefined);
}

export function attachFilesToRun(db: Db, fileIds: number[], runId: number): void {
  const stmt = db.prepare('UPDATE files SET run_id = ? WHERE id = ?');
  for (const id of fileIds) stmt.run(runId, id);
}

export function getFile(db: Db, id: number): FileRow | undefined {
  return toRow(db.prepare(`${SELECT} WHERE id = ?`).get(id) as Record<string, unknown> | undefined);
}

export function listFiles(db: Db, tenant?: string, limit = 50): FileRow[] {
  const rows = tenant
    ? db.prepare(`${SELECT} WHERE tenant = ? ORDER BY id DESC LIMIT ?`).all(tenant, limit)
    : db.prepare(`${SELECT} ORDER BY id DESC LIMIT ?`).all(limit);
  return (rows as Record<string, unknown>[]).map((r) => toRow(r) as FileRow);
}

/** Files processed (accepted or rejected) that no run has reported yet: what the next run of the tenant covers. */
export function unreconciledFiles(db: Db, tenant?: string): FileRow[] {
  const rows = tenant
    ? db.prepare(`${SELECT} WHERE run_id IS NULL AND status IN ('accepted', 'rejected') AND tenant = ? ORDER BY id`).all(tenant)
    : db.prepare(`${SELECT} WHERE run_id IS NULL AND status IN ('accepted', 'rejected') ORDER BY id`).all();
  return (rows as Record<string, unknown>[]).map((r) => toRow(r) as FileRow);
}

/**
 * Files left `received` by a process that stopped while parsing them (older than `before`, so that a parse
 * still running in another process is not touched) become `interrupted`; the file itself is received again.
 */
export function markInterrupted(db: Db, before: string): number {
  return db.prepare("UPDATE files SET status = 'interrupted' WHERE status = 'received' AND received_at < ?").run(before).changes;
}

/**
 * The same file (tenant, name, bytes) received again while an older record of it is still `received`: the older
 * one was cut by a crash and is taken up by the new record, so it is `interrupted` at once (not a phantom
 * in-flight file until the hour of markInterrupted has passed).
 */
export function supersedeCutOffRecords(db: Db, f: { id: number; tenant: string; name: string; sha256: string }): number {
  return db
    .prepare("UPDATE files SET status = 'interrupted' WHERE tenant = ? AND name = ? AND sha256 = ? AND status = 'received' AND id < ?")
    .run(f.tenant, f.name, f.sha256, f.id).changes;
}
