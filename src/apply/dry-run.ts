// `check`: the plan a run would make, written to a throwaway journal (a private SQLite file under tmp/), so a
// check of a million users streams its report like a run does. Nothing of the service's state is read for writing:
// no run, no sync mark, no journal in the service database.
import Database from 'better-sqlite3';
import fs from 'node:fs';
import path from 'node:path';
import type { App } from '../app.js';
import type { TenantConfig } from '../config/schema.js';
import type { FileType, GroupRecord, Problem, SegmentRecord } from '../model.js';
import { countsOf, streamedReport, type Report, type ReportFile } from '../report/report.js';
import { migrate } from '../store/db.js';
import { holdUserRemovals, journalCounts, journalSource, JournalWriter } from '../store/journal.js';
import { createRun } from '../store/runs.js';
import { loadDesiredTree, openUsersRows, readRows } from '../store/snapshots.js';
import { planSettings, planTenant } from './engine.js';

/** A file that passed its check, staged into a rows file (src/snapshot/staging.ts). */
export interface CheckedSnapshot {
  type: FileType;
  name: string;
  rowsFile: string;
  fields: Set<string>;
  protectedIds: Set<string>;
}

/**
 * Plans the checked snapshots (each replacing the stored one of its type) against the current directory. The
 * report streams from the throwaway journal: use it before `close`, which deletes the journal.
 */
export async function checkPlan(app: App, tenant: TenantConfig, snapshots: CheckedSnapshot[], base: { files: ReportFile[]; fileProblems: Problem[] }): Promise<{ report: Report; close(): void }> {
  const createdAt = app.now().toISOString();
  fs.mkdirSync(app.config.paths.tmpDir, { recursive: true });
  // Named like a staging file, so one left behind by a crash is cleaned up with those (removeOrphanSnapshotFiles).
  const file = path.join(app.config.paths.tmpDir, `staging-check-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}.sqlite`);
  const db = new Database(file);
  const close = () => {
    if (db.open) db.close();
    fs.rmSync(file, { force: true });
  };
  try {
    db.pragma('journal_mode = OFF');
    db.pragma('synchronous = OFF');
    migrate(db);
    const runId = createRun(db, tenant.id, { kind: 'ingest', fileIds: [] }, createdAt);
    const of = (type: FileType) => snapshots.filter((s) => s.type === type).at(-1);
    const stored = loadDesiredTree(app.db, tenant.id);
    const snapshot = <T>(s: CheckedSnapshot) => ({ file: s.name, records: readRows<T>(s.rowsFile, s.type), protectedIds: s.protectedIds, fields: s.fields });
    const groups = of('groups');
    const segments = of('segments');
    const tree = { groups: groups ? snapshot<GroupRecord>(groups) : stored.groups, segments: segments ? snapshot<SegmentRecord>(segments) : stored.segments };
    const usersFile = of('users');
    const users = usersFile && openUsersRows(usersFile.rowsFile, { file: usersFile.name, fields: usersFile.fields, protectedIds: usersFile.protectedIds });
    const writer = new JournalWriter(db, runId);
    let summary;
    try {
      summary = db.transaction(() => {
        const s = planTenant(app, tenant, app.target(tenant), writer, { settings: planSettings(tenant, createdAt), syncMarks: false }, users, tree);
        writer.finish();
        if (s.safeguard.held) holdUserRemovals(db, runId);
        return s;
      })();
    } finally {
      users?.close();
    }
    const problems = [...base.fileProblems, ...summary.problems];
    const unchanged = summary.unchanged.users + summary.unchanged.groups + summary.unchanged.segments;
    const report = streamedReport({
      runId: 0, tenant: tenant.id, status: summary.safeguard.held ? 'check: would hold removals' : 'check: would apply', trigger: 'check', createdAt,
      files: base.files, counts: countsOf(journalCounts(db, runId), unchanged, problems), safeguard: summary.safeguard, problems,
    }, journalSource(db, runId));
    return { report, close };
  } catch (err) {
    close();
    throw err;
  }
}
