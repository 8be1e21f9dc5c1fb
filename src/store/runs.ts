// Reconciliation runs: their trigger and their report; the report's operations are the run's journal (journal.ts).
import { reportSummary, streamedReport, type Report, type ReportOperation } from '../report/report.js';
import type { Db } from './db.js';
import { hasJournal, heldUserRemovals, journalSource } from './journal.js';

export type RunStatus = 'pending' | 'applied' | 'held' | 'approved' | 'superseded' | 'rejected' | 'failed';

export interface RunTrigger {
  kind: 'upload' | 'ingest' | 'schedule' | 'approval' | 'resume' | 'pull' | 'fetch';
  fileIds: number[];
  /** For an approval: the held run it approves. */
  approves?: number;
}

export interface RunRow {
  id: number;
  tenant: string;
  status: RunStatus;
  trigger: RunTrigger;
  createdAt: string;
  finishedAt: string | null;
  report: Report | null;
}

const SELECT = 'SELECT id, tenant, status, trigger, created_at AS createdAt, finished_at AS finishedAt, report, journal_pruned_at AS journalPrunedAt FROM runs';

function toRun(db: Db, r: Record<string, unknown> | undefined): RunRow | undefined {
  if (!r) return undefined;
  const id = r.id as number;
  const summary = r.report ? (JSON.parse(r.report as string) as Omit<Report, 'operations'>) : null;
  // Operations stream from the journal; runs stored before it keep theirs in run_operations.
  // A run past journalDays has no operations left here (its published report has them).
  const pruned = r.journalPrunedAt as string | null;
  const report = summary && (pruned ? { ...summary, operations: [], operationsPrunedAt: pruned }
    : hasJournal(db, id) ? streamedReport(summary, journalSource(db, id)) : { ...summary, operations: legacyOperations(db, id) });
  const { journalPrunedAt: _p, ...row } = r;
  return { ...(row as unknown as RunRow), trigger: JSON.parse(r.trigger as string), report };
}

/** Operations of runs finished before the journal existed (schema version 1). */
function legacyOperations(db: Db, runId: number): ReportOperation[] {
  const batches = db.prepare('SELECT operations FROM run_operations WHERE run_id = ? ORDER BY first_seq').pluck().all(runId) as string[];
  return batches.flatMap((b) => JSON.parse(b) as ReportOperation[]);
}

/** Directory IDs of the user removals a run held back. */
export function heldRemovalIds(db: Db, runId: number): number[] {
  if (hasJournal(db, runId)) return heldUserRemovals(db, runId);
  return legacyOperations(db, runId).flatMap((o) => (o.status === 'held' && o.op === 'remove' && o.entity === 'user' ? [o.id] : []));
}

export function createRun(db: Db, tenant: string, trigger: RunTrigger, now: string): number {
  return Number(db.prepare("INSERT INTO runs (tenant, status, trigger, created_at) VALUES (?, 'pending', ?, ?)").run(tenant, JSON.stringify(trigger), now).lastInsertRowid);
}

/** Stores the outcome: the report's summary on the run; its operations are the run's journal. */
export function finishRun(db: Db, id: number, r: { status: RunStatus; report: Report; now: string }): void {
  db.prepare('UPDATE runs SET status = ?, report = ?, finished_at = ? WHERE id = ?').run(r.status, JSON.stringify(reportSummary(r.report)), r.now, id);
}

export function markPublished(db: Db, id: number, now: string): void {
  db.prepare('UPDATE runs SET published_at = ? WHERE id = ?').run(now, id);
}

/** Finished runs whose report never reached the customer's folder (a crash right after the apply). */
export function unpublishedRunIds(db: Db): number[] {
  return db.prepare('SELECT id FROM runs WHERE report IS NOT NULL AND published_at IS NULL ORDER BY id').pluck().all() as number[];
}

export function setRunStatus(db: Db, id: number, status: RunStatus): void {
  db.prepare('UPDATE runs SET status = ? WHERE id = ?').run(status, id);
}

/** Held runs of a tenant become moot once a newer run has planned against a newer state. */
export function supersedeHeldRuns(db: Db, tenant: string, newerThan: number): void {
  db.prepare("UPDATE runs SET status = 'superseded' WHERE tenant = ? AND status = 'held' AND id < ?").run(tenant, newerThan);
}

/** A run without its report body. */
export function runSummary(db: Db, id: number): Omit<RunRow, 'report'> | undefined {
  const r = db.prepare('SELECT id, tenant, status, trigger, created_at AS createdAt, finished_at AS finishedAt FROM runs WHERE id = ?').get(id) as Record<string, unknown> | undefined;
  return r ? { ...(r as unknown as RunRow), trigger: JSON.parse(r.trigger as string) } : undefined;
}

export function getRun(db: Db, id: number): RunRow | undefined {
  return toRun(db, db.prepare(`${SELECT} WHERE id = ?`).get(id) as Record<string, unknown> | undefined);
}

export function latestRun(db: Db, tenant: string): RunRow | undefined {
  return toRun(db, db.prepare(`${SELECT} WHERE tenant = ? AND status <> 'pending' ORDER BY id DESC LIMIT 1`).get(tenant) as Record<string, unknown> | undefined);
}

export function pendingRuns(db: Db): RunRow[] {
  return (db.prepare(`${SELECT} WHERE status = 'pending' ORDER BY id`).all() as Record<string, unknown>[]).map((r) => toRun(db, r) as RunRow);
}

/** Runs without their (possibly large) report bodies. */
export function listRuns(db: Db, tenant?: string, limit = 20): Omit<RunRow, 'report'>[] {
  const sql = 'SELECT id, tenant, status, trigger, created_at AS createdAt, finished_at AS finishedAt FROM runs';
  const rows = (tenant ? db.prepare(`${sql} WHERE tenant = ? ORDER BY id DESC LIMIT ?`).all(tenant, limit) : db.prepare(`${sql} ORDER BY id DESC LIMIT ?`).all(limit)) as Record<string, unknown>[];
  return rows.map((r) => ({ ...(r as unknown as RunRow), trigger: JSON.parse(r.trigger as string) }));
}
