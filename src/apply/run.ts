// A reconciliation run: desired state + directory → plan (into the journal) → safeguards → apply in batches →
// report, stored and published. A run cut off anywhere continues from its journal on the next start.
import type { App } from '../app.js';
import type { TenantConfig } from '../config/schema.js';
import type { Problem } from '../model.js';
import { buildReport, countsOf, streamedReport, type Report, type ReportFile } from '../report/report.js';
import { publish } from '../report/publish.js';
import { attachFilesToRun, getFile, markInterrupted, unreconciledFiles } from '../store/files.js';
import { appendToJournal, journalCounts, journalEntries, journalSource, pruneJournals, runInProgress, storedPlan } from '../store/journal.js';
import { createRun, finishRun, getRun, heldRemovalIds, pendingRuns, runSummary, setRunStatus, supersedeHeldRuns, unpublishedRunIds, type RunTrigger } from '../store/runs.js';
import { removeOrphanSnapshotFiles } from '../store/snapshots.js';
import type { Target } from '../targets/target.js';
import { applyJournal, planIntoJournal, planSettings, type ApplyProgress } from './engine.js';

export class RunError extends Error {}

export interface RunOptions {
  /** Called after each applied batch (the CLI's progress line). */
  onApplyProgress?: ApplyProgress;
}

function reportFiles(app: App, fileIds: number[]): { files: ReportFile[]; problems: Problem[] } {
  const rows = fileIds.map((id) => getFile(app.db, id)).filter((f) => f !== undefined);
  return {
    files: rows.map((f) => ({ id: f.id, name: f.name, type: f.type, sha256: f.sha256, size: f.size, status: f.status, dataRows: f.dataRows, validRows: f.validRows })),
    problems: rows.flatMap((f) => f.problems),
  };
}

/**
 * Reconciles a tenant after files arrived (or on schedule). Returns null when there is nothing to do
 * (every file a duplicate, or a schedule with nothing new). A run where no file was accepted reports the
 * rejections and plans nothing. With `existingRunId` (a restart), a run that has its journal continues from it.
 */
export async function reconcile(app: App, tenant: TenantConfig, trigger: RunTrigger, existingRunId?: number, options: RunOptions = {}): Promise<Report | null> {
  const { files, problems: fileProblems } = reportFiles(app, trigger.fileIds);
  if (trigger.fileIds.length > 0 && files.every((f) => f.status === 'duplicate')) return null;
  const target = app.target(tenant);
  if (existingRunId !== undefined && storedPlan(app.db, existingRunId)) {
    return applyAndReport(app, tenant, target, existingRunId, { files, fileProblems, trigger: trigger.kind }, options);
  }
  const createdAt = app.now().toISOString();
  const rejectedOnly = trigger.fileIds.length > 0 && !files.some((f) => f.status === 'accepted');
  if (rejectedOnly) {
    const runId = existingRunId ?? createRun(app.db, tenant.id, trigger, createdAt);
    attachFilesToRun(app.db, trigger.fileIds, runId);
    const report = buildReport({ runId, tenant: tenant.id, trigger: trigger.kind, createdAt, files, fileProblems, status: 'rejected', plan: null, results: null });
    finishRun(app.db, runId, { status: 'rejected', report, now: app.now().toISOString() });
    return publish(app, report);
  }
  await target.prepare?.(tenant.id);
  const runId = await planAfterRunsInProgress(app, tenant, () => planIntoJournal(app, tenant, target, {
    createdAt, existingRunId,
    runId: () => {
      const id = existingRunId ?? createRun(app.db, tenant.id, trigger, createdAt);
      attachFilesToRun(app.db, trigger.fileIds, id);
      return id;
    },
    opts: { settings: planSettings(tenant, createdAt), syncMarks: true },
    // A scheduled run with no new file and nothing to change leaves no trace (no run, no report).
    accept: (summary, operations) => trigger.fileIds.length > 0 || existingRunId !== undefined || operations > 0 || summary.problems.length > 0,
  }));
  if (runId === null) return null;
  return applyAndReport(app, tenant, target, runId, { files, fileProblems, trigger: trigger.kind }, options);
}

/** Applies what is still planned in a run's journal, records the run's outcome and publishes its report. */
async function applyAndReport(
  app: App, tenant: TenantConfig, target: Target, runId: number,
  base: { files: ReportFile[]; fileProblems: Problem[]; trigger: string; approves?: number }, options: RunOptions,
): Promise<Report> {
  const plan = storedPlan(app.db, runId)!;
  await applyJournal(app, tenant, target, runId, { now: plan.createdAt, removalGraceDays: tenant.removalGraceDays }, options.onApplyProgress);
  // A quarantined target took only part of the run (or none): the run failed, its report says why.
  const quarantine = target.quarantine?.(tenant.id) ?? null;
  const status = quarantine ? 'quarantined' : plan.safeguard.held ? 'held' : 'applied';
  const problems = [...base.fileProblems, ...plan.problems, ...(quarantine ? [quarantineProblem(tenant.id, quarantine)] : [])];
  const unchanged = plan.unchanged.users + plan.unchanged.groups + plan.unchanged.segments;
  const summary = {
    runId, tenant: tenant.id, status, trigger: base.trigger, createdAt: plan.createdAt, files: base.files,
    counts: countsOf(journalCounts(app.db, runId), unchanged, problems), safeguard: plan.safeguard, problems,
  };
  const report = streamedReport(summary, journalSource(app.db, runId));
  app.db.transaction(() => {
    // An approval stopped by a quarantine sent nothing: the held run stays held, to approve again after `resume`.
    if (base.approves !== undefined) {
      if (!quarantine) setRunStatus(app.db, base.approves, 'approved');
    }
    else supersedeHeldRuns(app.db, tenant.id, runId);
    finishRun(app.db, runId, { status: status === 'quarantined' ? 'failed' : status, report, now: app.now().toISOString() });
  })();
  if (quarantine) app.logger.error({ tenant: tenant.id, runId, status, reason: quarantine.reason, counts: summary.counts }, 'run stopped: target quarantined');
  else app.logger.info({ tenant: tenant.id, runId, status, counts: summary.counts }, 'run finished');
  publish(app, report);
  pruneOldJournals(app, tenant.id);
  return report;
}

/** After a run: the journals of the tenant's runs finished more than `journalDays` ago are dropped (docs/engine.md). */
function pruneOldJournals(app: App, tenant: string): void {
  const now = app.now();
  const before = new Date(now.getTime() - app.config.service.journalDays * 86_400_000).toISOString();
  try {
    const pruned = pruneJournals(app.db, tenant, before, now.toISOString());
    if (pruned.length) app.logger.info({ tenant, runs: pruned, journalDays: app.config.service.journalDays }, 'old journals dropped');
  } catch (err) {
    // Housekeeping never fails the run it follows; the next run tries again.
    app.logger.warn({ tenant, err }, 'old journals could not be dropped');
  }
}

function quarantineProblem(tenant: string, q: { reason: string; since: string }): Problem {
  return {
    level: 'warning', file: '(target)',
    message: `the target is quarantined since ${q.since}: ${q.reason}. Operations still planned were not sent; they are planned again by the next run`,
    hint: `fix the cause, then run \`wt-sync resume --tenant ${tenant}\``,
  };
}

/**
 * Plans once no other run of the tenant is being applied: one left by a crash, or applying in another process
 * (`wt-sync ingest` beside `serve`), is finished first — both processes may work on it, and each batch is applied
 * once — so a plan is never made against a half-applied directory.
 */
async function planAfterRunsInProgress(app: App, tenant: TenantConfig, plan: () => number | null | 'busy'): Promise<number | null> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const runId = plan();
    if (runId !== 'busy') return runId;
    const inProgress = runInProgress(app.db, tenant.id);
    const run = inProgress === undefined ? undefined : getRun(app.db, inProgress);
    if (!run) continue;
    app.logger.warn({ tenant: tenant.id, runId: run.id }, 'finishing a run still in progress first');
    if (run.trigger.approves !== undefined) await approveRun(app, tenant, run.trigger.approves, run.id);
    else await reconcile(app, tenant, run.trigger, run.id);
  }
  throw new RunError(`tenant ${tenant.id}: runs kept being started by another process; try again`);
}

/**
 * Applies the removals a held run kept back. They are re-checked against the latest snapshot first:
 * a user who is back in it, or already gone, is moot and left alone (recorded `moot` in the journal).
 */
export async function approveRun(app: App, tenant: TenantConfig, heldRunId: number, existingRunId?: number): Promise<Report> {
  const held = runSummary(app.db, heldRunId);
  if (!held || held.tenant !== tenant.id) throw new RunError(`run ${heldRunId} does not exist for tenant ${tenant.id}`);
  if (held.status === 'superseded') throw new RunError(`run ${heldRunId} was superseded by a later run; approve the latest held run (see \`wt-sync status --tenant ${tenant.id}\`)`);
  if (held.status !== 'held' && !(held.status === 'approved' && existingRunId)) throw new RunError(`run ${heldRunId} is not held (status: ${held.status}); only held runs can be approved`);
  const base = { files: [], fileProblems: [], trigger: `approval of run ${heldRunId}`, approves: heldRunId };
  const target = app.target(tenant);
  if (existingRunId !== undefined && storedPlan(app.db, existingRunId)) return applyAndReport(app, tenant, target, existingRunId, base, {});

  const heldIds = new Set(heldRemovalIds(app.db, heldRunId));
  const createdAt = app.now().toISOString();
  await target.prepare?.(tenant.id);
  const found = new Set<number>();
  const runId = (await planAfterRunsInProgress(app, tenant, () => planIntoJournal(app, tenant, target, {
    createdAt, existingRunId,
    runId: () => existingRunId ?? createRun(app.db, tenant.id, { kind: 'approval', fileIds: [], approves: heldRunId }, createdAt),
    opts: {
      settings: planSettings(tenant, createdAt, true), syncMarks: false,
      keep: (_phase, op) => {
        if (op.op !== 'remove' || op.entity !== 'user' || !heldIds.has(op.id)) return false;
        found.add(op.id);
        return true;
      },
    },
    after: (id) => {
      // The held removals that no longer apply stay in the approval's journal as moot, out of its report.
      const moot = [...journalEntries(app.db, heldRunId)].filter((e) => e.status === 'held' && e.op === 'remove' && e.entity === 'user' && !found.has(e.id));
      appendToJournal(app.db, id, moot.map(({ seq: _s, held: _h, status: _st, error: _e, ...op }) => ({ op, status: 'moot' as const })));
      const mootCount = heldIds.size - found.size; // also for a held run stored before the journal
      const problems: Problem[] = mootCount > 0
        ? [{ level: 'warning', file: '(approval)', message: `${mootCount} of ${heldIds.size} held removals are moot: those users are back in the latest snapshot or already changed, and were left alone` }]
        : [];
      app.logger.info({ tenant: tenant.id, runId: id, approves: heldRunId, removed: found.size, moot: mootCount }, 'held removals approved');
      return { problems, unchanged: { users: 0, groups: 0, segments: 0 } };
    },
  })))!;
  return applyAndReport(app, tenant, target, runId, base, {});
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

