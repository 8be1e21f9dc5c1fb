// Reconciliation runs: their trigger and their report, which holds the plan's operations with each outcome.
import type { Report } from '../report/report.js';
import type { Db } from './db.js';

export type RunStatus = 'pending' | 'applied' | 'held' | 'approved' | 'superseded' | 'rejected' | 'failed';

export interface RunTrigger {
  kind: 'upload' | 'ingest' | 'schedule' | 'approval' | 'resume';
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

const SELECT = 'SELECT id, tenant, status, trigger, created_at AS createdAt, finished_at AS finishedAt, report FROM runs';

function toRun(r: Record<string, unknown> | undefined): RunRow | undefined {
  if (!r) return undefined;
  return {
    ...(r as unknown as RunRow),
    trigger: JSON.parse(r.trigger as string),
    report: r.report ? JSON.parse(r.report as string) : null,
  };
}

export function createRun(db: Db, tenant: string, trigger: RunTrigger, now: string): number {
  return Number(db.prepare("INSERT INTO runs (tenant, status, trigger, created_at) VALUES (?, 'pending', ?, ?)").run(tenant, JSON.stringify(trigger), now).lastInsertRowid);
}

/** Stores the outcome; returns the report as JSON so callers can publish the same bytes. */
export function finishRun(db: Db, id: number, r: { status: RunStatus; report: Report; now: string }): string {
  const json = JSON.stringify(r.report);
  db.prepare('UPDATE runs SET status = ?, report = ?, finished_at = ? WHERE id = ?').run(r.status, json, r.now, id);
  return json;
}

export function setRunStatus(db: Db, id: number, status: RunStatus): void {
  db.prepare('UPDATE runs SET status = ? WHERE id = ?').run(status, id);
}

/** Held runs of a tenant become moot once a newer run has planned against a newer state. */
export function supersedeHeldRuns(db: Db, tenant: string, newerThan: number): void {
  db.prepare("UPDATE runs SET status = 'superseded' WHERE tenant = ? AND status = 'held' AND id < ?").run(tenant, newerThan);
}

export function getRun(db: Db, id: number): RunRow | undefined {
  return toRun(db.prepare(`${SELECT} WHERE id = ?`).get(id) as Record<string, unknown> | undefined);
}

export function latestRun(db: Db, tenant: string): RunRow | undefined {
  return toRun(db.prepare(`${SELECT} WHERE tenant = ? AND status <> 'pending' ORDER BY id DESC LIMIT 1`).get(tenant) as Record<string, unknown> | undefined);
}

export function pendingRuns(db: Db): RunRow[] {
  return (db.prepare(`${SELECT} WHERE status = 'pending' ORDER BY id`).all() as Record<string, unknown>[]).map((r) => toRun(r) as RunRow);
}

/** Runs without their (possibly large) report bodies. */
export function listRuns(db: Db, tenant?: string, limit = 20): Omit<RunRow, 'report'>[] {
  const sql = 'SELECT id, tenant, status, trigger, created_at AS createdAt, finished_at AS finishedAt FROM runs';
  const rows = (tenant ? db.prepare(`${sql} WHERE tenant = ? ORDER BY id DESC LIMIT ?`).all(tenant, limit) : db.prepare(`${sql} ORDER BY id DESC LIMIT ?`).all(limit)) as Record<string, unknown>[];
  return rows.map((r) => ({ ...(r as unknown as RunRow), trigger: JSON.parse(r.trigger as string) }));
}
