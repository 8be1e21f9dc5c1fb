// Aggregates over files and runs for the service's metrics, staleness and notifications (HTTP /metrics, status,
// mails). Small queries over indexed tables; nothing here loads a run's operations.
import type { ReportCounts } from '../report/report.js';
import type { Db } from './db.js';
import type { FileStatus } from './files.js';
import type { RunStatus } from './runs.js';

export interface TenantCount<S extends string> { tenant: string; status: S; count: number }

export function fileCountsByStatus(db: Db): TenantCount<FileStatus>[] {
  return db.prepare('SELECT tenant, status, count(*) AS count FROM files GROUP BY tenant, status').all() as TenantCount<FileStatus>[];
}

export function runCountsByStatus(db: Db): TenantCount<RunStatus>[] {
  return db.prepare('SELECT tenant, status, count(*) AS count FROM runs GROUP BY tenant, status').all() as TenantCount<RunStatus>[];
}

/** Per tenant: user removals held back by runs still waiting for approval. */
export function heldRemovalCounts(db: Db): Map<string, number> {
  const rows = db.prepare("SELECT tenant, sum(coalesce(json_extract(report, '$.counts.held'), 0)) AS held FROM runs WHERE status = 'held' GROUP BY tenant").all() as { tenant: string; held: number }[];
  return new Map(rows.map((r) => [r.tenant, r.held]));
}

/** Per tenant: when its latest file arrived (ISO time). */
export function lastFileTimes(db: Db): Map<string, string> {
  const rows = db.prepare('SELECT tenant, max(received_at) AS at FROM files GROUP BY tenant').all() as { tenant: string; at: string }[];
  return new Map(rows.map((r) => [r.tenant, r.at]));
}

/** Per tenant: when its latest run that changed the directory finished (applied, or applied except held removals). */
export function lastSuccessfulRunTimes(db: Db): Map<string, string> {
  const rows = db.prepare("SELECT tenant, max(finished_at) AS at FROM runs WHERE status IN ('applied', 'held', 'approved') AND finished_at IS NOT NULL GROUP BY tenant").all() as { tenant: string; at: string }[];
  return new Map(rows.map((r) => [r.tenant, r.at]));
}

export interface FinishedRun {
  id: number;
  tenant: string;
  status: RunStatus;
  trigger: string;
  createdAt: string;
  finishedAt: string;
  counts: ReportCounts | null;
}

/** A position in the order runs finish in: after this finish time, and after this id among equal times. */
export interface RunCursor { finishedAt: string; id: number }

/** Runs that finished after the cursor, in the order they finished. */
export function runsFinishedAfter(db: Db, cursor: RunCursor, limit = 100): FinishedRun[] {
  const rows = db.prepare(`SELECT id, tenant, status, json_extract(trigger, '$.kind') AS trigger, created_at AS createdAt, finished_at AS finishedAt,
      json_extract(report, '$.counts') AS counts FROM runs
    WHERE finished_at IS NOT NULL AND (finished_at > ? OR (finished_at = ? AND id > ?)) ORDER BY finished_at, id LIMIT ?`)
    .all(cursor.finishedAt, cursor.finishedAt, cursor.id, limit) as (Omit<FinishedRun, 'counts'> & { counts: string | null })[];
  return rows.map((r) => ({ ...r, counts: r.counts ? (JSON.parse(r.counts) as ReportCounts) : null }));
}

/** Where the finished runs end now: a feed started here reports only runs that finish later. */
export function latestRunCursor(db: Db): RunCursor {
  const r = db.prepare('SELECT finished_at AS finishedAt, id FROM runs WHERE finished_at IS NOT NULL ORDER BY finished_at DESC, id DESC LIMIT 1').get() as RunCursor | undefined;
  return r ?? { finishedAt: '', id: 0 };
}
