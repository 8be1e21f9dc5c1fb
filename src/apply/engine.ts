// The reconcile engine: a run's plan is streamed into the journal (one transaction, so a run either has its whole
// plan or none), then applied from the journal in batches, each batch's outcomes recorded as the target reports
// them. A restart continues at the first operation still `planned` (docs/engine.md).
import type { App } from '../app.js';
import type { TenantConfig } from '../config/schema.js';
import { planStream, type PlanSettings } from '../plan/plan.js';
import type { DesiredUsers, Operation, Phase, PlanSink, PlanSummary } from '../plan/types.js';
import {
  failedUsers, holdUserRemovals, journalProgress, JournalWriter, plannedBatch, recordOutcomes, runInProgress, savePlan, userOf, type StoredPlan,
} from '../store/journal.js';
import { loadDesiredTree, openDesiredUsers } from '../store/snapshots.js';
import type { ApplySettings, JournalOperation, Outcome, Target } from '../targets/target.js';
import { syncContext, syncMark } from './sync-marks.js';

export function planSettings(tenant: TenantConfig, now: string, approved = false): PlanSettings {
  return {
    tenant: tenant.id, rules: tenant.rules, now, approved,
    maxRemovals: tenant.safeguards.maxRemovals, maxRemovalPercent: tenant.safeguards.maxRemovalPercent,
  };
}

export interface PlanOptions {
  settings: PlanSettings;
  /** Skip users whose sync mark says their row is applied, and mark the ones planned (a run; not check or approve). */
  syncMarks: boolean;
  /** Keeps only some operations (an approval keeps the held removals). */
  keep?: (phase: Phase, op: Operation) => boolean;
}

/**
 * Plans the tenant's latest snapshots against the target's directory into `sink`. Users stream from the snapshot's
 * rows file and the directory, both in external-ID order; only groups and segments are held whole.
 */
export function planTenant(app: App, tenant: TenantConfig, target: Target, sink: PlanSink, opts: PlanOptions, users?: DesiredUsers, tree = loadDesiredTree(app.db, tenant.id)): PlanSummary {
  const reader = target.reader(tenant.id);
  const marks = opts.syncMarks && target.markSynced !== undefined;
  // With most users marked (a daily run), most rows are skipped unread: read the snapshot by its index.
  const stored = users ? undefined : openDesiredUsers(app.db, tenant.id, () => !marks || (reader.markedShare?.() ?? 0) < 0.5);
  const desiredUsers = users ?? stored;
  try {
    const useMarks = marks && desiredUsers !== undefined;
    const context = useMarks ? syncContext({ usersFields: [...desiredUsers!.fields], groups: tree.groups?.id, segments: tree.segments?.id }, tenant.rules) : '';
    const keep = opts.keep;
    const filtered: PlanSink = keep ? { add: (phase, op, mark) => keep(phase, op) && sink.add(phase, op, mark), discard: (p) => sink.discard(p), unchanged: sink.unchanged?.bind(sink) } : sink;
    return planStream({
      groups: tree.groups, segments: tree.segments, users: desiredUsers, tree: reader.tree(), directoryUsers: reader.users(),
      markOf: useMarks ? (row) => (row.hash ? syncMark(row.hash, context) : undefined) : undefined,
    }, opts.settings, filtered);
  } finally {
    stored?.close();
  }
}

/**
 * Plans a run into its journal, in one transaction with the run's plan summary: a crash while planning leaves no
 * trace of the plan. Removals over the safeguard are held before anything is applied. `accept` may refuse the plan
 * (nothing to do): the transaction is then rolled back and the run is never recorded. 'busy': another run of the
 * tenant is still being applied; finish it first.
 */
export function planIntoJournal(app: App, tenant: TenantConfig, target: Target, args: {
  runId: () => number; existingRunId?: number; createdAt: string; opts: PlanOptions; accept?: (summary: PlanSummary, operations: number) => boolean;
  /** Runs in the same transaction once the plan is written (e.g. moot entries of an approval). */
  after?: (runId: number) => Partial<StoredPlan> | void;
}): number | null | 'busy' {
  const refused = Symbol('nothing to do');
  const busy = Symbol('another run in progress');
  try {
    return app.db.transaction(() => {
      // Checked under the write lock: a run of this tenant still applying (in another process) must end first, or
      // this plan would be made against a half-applied directory.
      if (runInProgress(app.db, tenant.id, args.existingRunId) !== undefined) throw busy;
      const runId = args.runId();
      const writer = new JournalWriter(app.db, runId);
      const marks: [string, string][] = [];
      const flushMarks = () => {
        if (marks.length) target.markSynced?.(tenant.id, marks.splice(0));
      };
      const sink: PlanSink = {
        add: (phase, op, mark) => writer.add(phase, op, mark),
        discard: (phase) => writer.discard(phase),
        // A user planned in full whose directory entry already matches its row: marked now, in this transaction.
        unchanged: (externalId, mark) => {
          marks.push([externalId, mark]);
          if (marks.length >= 1000) flushMarks();
        },
      };
      const summary = planTenant(app, tenant, target, sink, args.opts);
      flushMarks();
      const operations = writer.finish();
      if (args.accept && !args.accept(summary, operations)) throw refused;
      if (summary.safeguard.held) holdUserRemovals(app.db, runId);
      const { counts: _counts, ...decided } = summary;
      savePlan(app.db, runId, { ...decided, createdAt: args.createdAt, operations, ...args.after?.(runId) });
      return runId;
    }).immediate();
  } catch (err) {
    if (err === refused) return null;
    if (err === busy) return 'busy';
    throw err;
  }
}

class StaleBatch extends Error {}

export type ApplyProgress = (done: number, total: number) => void;

/**
 * Applies a run's journal from its first operation still planned, batch by batch, in order. A user with a failed
 * operation loses its sync mark, and its later operations in the run set none: its directory entry is half-way.
 */
export async function applyJournal(app: App, tenant: TenantConfig, target: Target, runId: number, settings: ApplySettings, onProgress?: ApplyProgress): Promise<void> {
  const db = app.db;
  const failed = failedUsers(db, runId);
  const { planned, total } = journalProgress(db, runId);
  if (planned === 0) return;
  const size = target.batchSize ?? 500;
  let done = total - planned;
  let lastLog = Date.now();
  let lastTenth = Math.floor((done * 10) / total);
  app.logger.info({ tenant: tenant.id, runId, ops: total, planned }, 'applying plan');
  let after = 0;
  // The batch last read: the one `record` is called for (a target records a batch before it reads the next).
  let bySeq = new Map<number, JournalOperation>();
  const nextBatch = (): JournalOperation[] => {
    if (target.quarantine?.(tenant.id)) return []; // nothing more is sent; the rest stays planned (docs/targets.md)
    const batch = plannedBatch(db, runId, after, size);
    bySeq = new Map(batch.map((e) => [e.seq, e]));
    for (const e of batch) {
      if (e.mark !== undefined && failed.has(userOf(e.op) ?? '')) delete e.mark;
    }
    if (batch.length > 0) after = batch[batch.length - 1].seq;
    return batch;
  };
  const record = (outcomes: Outcome[]) => {
    // Another process applying the same run got there first: throwing rolls back a transactional target's
    // batch (nothing applied twice); the loop then reads on from what is still planned.
    if (recordOutcomes(db, runId, outcomes, outcomes.length === bySeq.size) !== outcomes.length) throw new StaleBatch();
    const newlyFailed: [string, null][] = [];
    for (const o of outcomes) {
      const user = o.status === 'failed' ? userOf(bySeq.get(o.seq)!.op) : null;
      if (user !== null && !failed.has(user)) {
        failed.add(user);
        newlyFailed.push([user, null]);
      }
    }
    if (newlyFailed.length) target.markSynced?.(tenant.id, newlyFailed);
  };
  const progress = (n: number) => {
    done += n;
    onProgress?.(done, total);
    const tenth = Math.floor((done * 10) / total);
    if (tenth > lastTenth || Date.now() - lastLog > 10_000) {
      app.logger.info({ tenant: tenant.id, runId, done, total }, `applied ${Math.round((done * 100) / total)}%`);
      lastTenth = tenth;
      lastLog = Date.now();
    }
  };
  for (;;) {
    try {
      if (target.applyBatches) {
        // A local target takes batches as it pulls them, several to a transaction; progress as each is recorded.
        await target.applyBatches(tenant.id, nextBatch, settings, (outcomes) => {
          record(outcomes);
          progress(outcomes.length);
        }, total - done);
        return;
      }
      const batch = nextBatch();
      if (batch.length === 0) return;
      await target.applyBatch(tenant.id, batch, settings, record);
      progress(batch.length);
    } catch (err) {
      if (!(err instanceof StaleBatch)) throw err;
      app.logger.warn({ tenant: tenant.id, runId }, 'another process is applying this run; reading on from what is still planned');
      // What the rolled-back transaction did is undone: read on from the journal as it is.
      after = 0;
      done = total - journalProgress(db, runId).planned;
      lastTenth = Math.floor((done * 10) / total);
      failed.clear();
      for (const user of failedUsers(db, runId)) failed.add(user);
    }
  }
}
