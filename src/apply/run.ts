// A reconciliation run: desired state + directory → plan → safeguards → apply → report, stored and published.
// The embedded target commits the changes and the run's outcome together, so a crash redoes the run from scratch.
import fs from 'node:fs';
import path from 'node:path';
import { ensureTenantDirs, type App } from '../app.js';
import type { TenantConfig } from '../config/schema.js';
import type { Problem } from '../model.js';
import { buildPlan } from '../plan/plan.js';
import type { Plan } from '../plan/types.js';
import { buildReport, type Report, type ReportFile } from '../report/report.js';
import { reportJson, reportLines, writeChunked } from '../report/text.js';
import { attachFilesToRun, getFile, markInterrupted, unreconciledFiles } from '../store/files.js';
import { createRun, finishRun, getRun, heldRemovalIds, markPublished, pendingRuns, runSummary, setRunStatus, supersedeHeldRuns, unpublishedRunIds, type RunTrigger } from '../store/runs.js';
import { loadDesired, removeOrphanSnapshotFiles, type SnapshotContext } from '../store/snapshots.js';
import type { OperationResult, Target } from '../targets/target.js';
import { syncContext, syncMark } from './sync-marks.js';

export class RunError extends Error {}

function planSettings(tenant: TenantConfig, now: string, approved = false) {
  return {
    tenant: tenant.id, rules: tenant.rules, now, approved,
    maxRemovals: tenant.safeguards.maxRemovals, maxRemovalPercent: tenant.safeguards.maxRemovalPercent,
  };
}

function reportFiles(app: App, fileIds: number[]): { files: ReportFile[]; problems: Problem[] } {
  const rows = fileIds.map((id) => getFile(app.db, id)).filter((f) => f !== undefined);
  return {
    files: rows.map((f) => ({ id: f.id, name: f.name, type: f.type, sha256: f.sha256, size: f.size, status: f.status, dataRows: f.dataRows, validRows: f.validRows })),
    problems: rows.flatMap((f) => f.problems),
  };
}

/** Plans against the current directory without changing anything (what `check` shows). */
export async function dryRunPlan(app: App, tenant: TenantConfig, desired = loadDesired(app.db, tenant.id)): Promise<Plan> {
  const dir = await app.target(tenant).load(tenant.id);
  return buildPlan(desired, dir, planSettings(tenant, app.now().toISOString()));
}

/**
 * Reconciles a tenant after files arrived (or on schedule). Returns null when there is nothing to do
 * (every file a duplicate, or a schedule with nothing new). A run where no file was accepted reports the
 * rejections and plans nothing.
 */
export async function reconcile(app: App, tenant: TenantConfig, trigger: RunTrigger, existingRunId?: number): Promise<Report | null> {
  const { files, problems: fileProblems } = reportFiles(app, trigger.fileIds);
  if (trigger.fileIds.length > 0 && files.every((f) => f.status === 'duplicate')) return null;
  const createdAt = app.now().toISOString();
  const rejectedOnly = trigger.fileIds.length > 0 && !files.some((f) => f.status === 'accepted');
  const target = app.target(tenant);
  const planned = rejectedOnly ? null : await planWithSyncMarks(app, tenant, target, createdAt);
  const plan = planned?.plan ?? null;
  // A scheduled run with no new file and nothing to change leaves no trace (no run, no report).
  if (plan && trigger.fileIds.length === 0 && existingRunId === undefined && plan.ops.length === 0 && plan.problems.length === 0) return null;
  const runId = existingRunId ?? createRun(app.db, tenant.id, trigger, createdAt);
  attachFilesToRun(app.db, trigger.fileIds, runId);
  const base = { runId, tenant: tenant.id, trigger: trigger.kind, createdAt, files, fileProblems };

  if (!plan) {
    const report = buildReport({ ...base, status: 'rejected', plan: null, results: null });
    finishRun(app.db, runId, { status: 'rejected', report, now: app.now().toISOString() });
    return publish(app, report);
  }

  const status = plan.safeguard.held ? 'held' : 'applied';
  let report: Report | undefined;
  app.logger.info({ tenant: tenant.id, runId, ops: plan.ops.length }, 'applying plan');
  await target.apply(tenant.id, plan.ops, { now: createdAt, removalGraceDays: tenant.removalGraceDays }, (results) => {
    report = buildReport({ ...base, status, plan, results });
    supersedeHeldRuns(app.db, tenant.id, runId);
    finishRun(app.db, runId, { status, report, now: app.now().toISOString() });
    target.markSynced?.(tenant.id, planned!.marks(results));
  });
  app.logger.info({ tenant: tenant.id, runId, status, counts: report!.counts }, 'run finished');
  return publish(app, report!);
}

/**
 * Plans a run, leaving out users the target marks as in sync (src/apply/sync-marks.ts), and says which users'
 * rows the run will have applied in full once its results are known.
 */
async function planWithSyncMarks(app: App, tenant: TenantConfig, target: Target, now: string) {
  const useMarks = target.syncMarks !== undefined && target.version !== undefined;
  const versionBefore = useMarks ? await target.version!(tenant.id) : 0;
  const marks = useMarks ? await target.syncMarks!(tenant.id) : undefined;
  // The context comes from the very snapshots read, so a file accepted meanwhile cannot mix two states.
  let context = '';
  const contextOf = (parts: SnapshotContext) => (context = syncContext(parts, tenant.rules));
  let desired = loadDesired(app.db, tenant.id, marks && ((parts) => {
    contextOf(parts);
    return (externalId, hash) => marks.get(externalId) === syncMark(hash, context);
  }));
  let dir = await target.load(tenant.id, desired.users?.inSync);
  if (useMarks && (await target.version!(tenant.id)) !== versionBefore) {
    // Another process wrote to the directory while this run read it: the marks may be stale, so plan in full.
    app.logger.info({ tenant: tenant.id }, 'directory changed while planning; planning every user');
    desired = loadDesired(app.db, tenant.id, (parts) => {
      contextOf(parts);
      return () => false;
    });
    dir = await target.load(tenant.id);
  }
  const plan = buildPlan(desired, dir, planSettings(tenant, now));
  return {
    plan,
    /**
     * The marks the run leaves: a new mark for each user of the file whose every operation went through, and
     * none (cleared) for one whose operations partly failed, since its directory entry is now half-way. Users
     * left as they are (row errors) keep theirs.
     */
    marks(results: OperationResult[]): [string, string | null][] {
      if (!desired.users) return [];
      const failed = new Set(results.filter((r) => r.status !== 'done').map((r) => r.seq));
      const leftAlone = new Set<string>(desired.users.protectedIds);
      // Row errors name users (unknown references); warnings may name groups, whose IDs can equal a user's.
      for (const p of plan.problems) if (p.level === 'row' && p.entityId) leftAlone.add(p.entityId);
      const failedUsers = new Set<string>();
      for (const op of plan.ops) {
        if (!failed.has(op.seq)) continue;
        if ('userId' in op) failedUsers.add(op.userId);
        else if (op.entity === 'user' && op.externalId) failedUsers.add(op.externalId);
      }
      return desired.users.records
        .filter((r) => r.hash && !leftAlone.has(r.record.externalId))
        .map((r) => [r.record.externalId, failedUsers.has(r.record.externalId) ? null : syncMark(r.hash!, context)]);
    },
  };
}

/**
 * Applies the removals a held run kept back. They are re-checked against the latest snapshot first:
 * a user who is back in it, or already gone, is moot and left alone.
 */
export async function approveRun(app: App, tenant: TenantConfig, heldRunId: number, existingRunId?: number): Promise<Report> {
  const held = runSummary(app.db, heldRunId);
  if (!held || held.tenant !== tenant.id) throw new RunError(`run ${heldRunId} does not exist for tenant ${tenant.id}`);
  if (held.status === 'superseded') throw new RunError(`run ${heldRunId} was superseded by a later run; approve the latest held run (see \`wt-sync status --tenant ${tenant.id}\`)`);
  if (held.status !== 'held' && !(held.status === 'approved' && existingRunId)) throw new RunError(`run ${heldRunId} is not held (status: ${held.status}); only held runs can be approved`);
  const heldIds = new Set(heldRemovalIds(app.db, heldRunId));

  const createdAt = app.now().toISOString();
  const runId = existingRunId ?? createRun(app.db, tenant.id, { kind: 'approval', fileIds: [], approves: heldRunId }, createdAt);
  const target = app.target(tenant);
  const fresh = buildPlan(loadDesired(app.db, tenant.id), await target.load(tenant.id), planSettings(tenant, createdAt, true));
  const ops = fresh.ops.filter((o) => o.op === 'remove' && o.entity === 'user' && heldIds.has(o.id));
  const moot = heldIds.size - ops.length;
  const problems: Problem[] = moot > 0
    ? [{ level: 'warning', file: '(approval)', message: `${moot} of ${heldIds.size} held removals are moot: those users are back in the latest snapshot or already changed, and were left alone` }]
    : [];
  const plan: Plan = { ...fresh, ops, problems: [], unchanged: { users: 0, groups: 0, segments: 0 } };
  let report: Report | undefined;
  await target.apply(tenant.id, ops, { now: createdAt, removalGraceDays: tenant.removalGraceDays }, (results) => {
    report = buildReport({ runId, tenant: tenant.id, status: 'applied', trigger: `approval of run ${heldRunId}`, createdAt, files: [], fileProblems: problems, plan, results });
    finishRun(app.db, runId, { status: 'applied', report, now: app.now().toISOString() });
    setRunStatus(app.db, heldRunId, 'approved');
  });
  app.logger.info({ tenant: tenant.id, runId, approves: heldRunId, removed: ops.length, moot }, 'held removals approved');
  return publish(app, report!);
}

/**
 * After a crash: runs that never finished are redone (their apply was rolled back whole), and files accepted
 * without a run get one. Returns the reports produced.
 */
export async function resumeUnfinished(app: App, tenantIds?: Set<string>): Promise<Report[]> {
  const reports: Report[] = [];
  removeOrphanSnapshotFiles(app.db, app.config.paths.tmpDir, app.now());
  markInterrupted(app.db, new Date(app.now().getTime() - 3600_000).toISOString());
  for (const id of unpublishedRunIds(app.db)) {
    const run = getRun(app.db, id)!;
    if (!tenantIds || tenantIds.has(run.tenant)) publish(app, run.report!);
  }
  for (const run of pendingRuns(app.db)) {
    if (tenantIds && !tenantIds.has(run.tenant)) continue;
    const tenant = app.tenant(run.tenant);
    app.logger.warn({ tenant: run.tenant, runId: run.id }, 'resuming unfinished run');
    const report = run.trigger.approves !== undefined
      ? await approveRun(app, tenant, run.trigger.approves, run.id)
      : await reconcile(app, tenant, run.trigger, run.id);
    if (report) reports.push(report);
  }
  const orphans = new Map<string, number[]>();
  for (const f of unreconciledFiles(app.db)) orphans.set(f.tenant, [...(orphans.get(f.tenant) ?? []), f.id]);
  for (const [tenantId, fileIds] of orphans) {
    if (tenantIds && !tenantIds.has(tenantId)) continue;
    const report = await reconcile(app, app.tenant(tenantId), { kind: 'resume', fileIds });
    if (report) reports.push(report);
  }
  return reports;
}

/** Writes the report where the customer reads it: /reports/ in their SFTP folder, as text and JSON. */
function publish(app: App, report: Report): Report {
  const dirs = ensureTenantDirs(app.config.paths, report.tenant);
  const stamp = report.createdAt.replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  const base = path.join(dirs.reports, `${stamp}-run-${report.runId}`);
  writeAtomic(`${base}.txt`, reportLines(report));
  writeAtomic(`${base}.json`, reportJson(report));
  markPublished(app.db, report.runId, app.now().toISOString());
  return report;
}

/** Written under a dot-name (hidden from the customer) and renamed: a reader never sees half a report. */
function writeAtomic(file: string, pieces: Iterable<string>): void {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.tmp`);
  const fd = fs.openSync(tmp, 'w');
  try {
    writeChunked(pieces, (chunk) => fs.writeSync(fd, chunk));
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
}

