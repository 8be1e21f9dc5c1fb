// The journal: a run's plan as stored data, one row per operation in apply order, each with its outcome.
// planned → done | failed (with the error); held (a safeguard kept it back); moot (an approval found it no longer
// applies). Written while planning, read in batches while applying, streamed for the report (docs/engine.md).
// Every access goes through this file, so another store (PostgreSQL) can stand beside the SQLite one.
//
// Outcomes are a watermark: the run's `applied_seq` says every operation up to it has its outcome, so a row still
// stored `planned` at or below it is done; failures are stored on their rows. Recording a batch is then one small
// UPDATE, not a rewrite of each of its rows (a first load would rewrite 100k of them).
import type { Operation, Phase, PlanSink, PlanSummary } from '../plan/types.js';
import { PHASES } from '../plan/types.js';
import type { OperationsSource } from '../report/report.js';
import type { Db } from './db.js';

export type JournalStatus = 'planned' | 'done' | 'failed' | 'held' | 'moot';

/** An operation as the engine hands it to a target. */
export interface JournalOperation {
  seq: number;
  op: Operation;
  /** The user's sync mark to set once this operation is done (its last one in the run); absent: clear it. */
  mark?: string;
}

/** The external ID of the user an operation changes, if any. */
export function userOf(op: Operation): string | null {
  if ('userId' in op) return op.userId;
  return op.entity === 'user' ? op.externalId : null;
}

function entityIdOf(op: Operation): string | null {
  if ('userId' in op) return op.userId;
  return op.externalId;
}

/**
 * Writes a streamed plan into a run's journal. The planner emits the users' parts (upserts, links, removals,
 * purges) interleaved, one user at a time; upserts go straight to the journal, later parts wait in a temporary
 * table (on disk, not in memory) and follow in apply order at `finish`. Call inside one transaction.
 */
export class JournalWriter implements PlanSink {
  private seq = 0;
  private readonly n = new Map<Phase, number>();
  private readonly insert;
  private readonly spill;

  constructor(private readonly db: Db, private readonly runId: number) {
    db.exec('CREATE TEMP TABLE IF NOT EXISTS journal_spill (phase INTEGER NOT NULL, n INTEGER NOT NULL, op TEXT NOT NULL, entity TEXT NOT NULL, entity_id TEXT, data TEXT NOT NULL, mark TEXT, PRIMARY KEY (phase, n)) WITHOUT ROWID');
    db.exec('DELETE FROM journal_spill');
    this.insert = db.prepare("INSERT INTO journal_ops (run_id, seq, op, entity, entity_id, data, status, mark) VALUES (?, ?, ?, ?, ?, ?, 'planned', ?)");
    this.spill = db.prepare('INSERT INTO journal_spill (phase, n, op, entity, entity_id, data, mark) VALUES (?, ?, ?, ?, ?, ?, ?)');
  }

  add(phase: Phase, op: Operation, mark?: string): void {
    const p = PHASES.indexOf(phase);
    // Groups, segments and user upserts arrive in order; everything after them may interleave with upserts.
    if (p <= PHASES.indexOf('userUpserts')) {
      this.insert.run(this.runId, ++this.seq, op.op, op.entity, entityIdOf(op), JSON.stringify(op), mark ?? null);
      return;
    }
    const n = (this.n.get(phase) ?? 0) + 1;
    this.n.set(phase, n);
    this.spill.run(p, n, op.op, op.entity, entityIdOf(op), JSON.stringify(op), mark ?? null);
  }

  discard(phase: Phase): void {
    this.db.prepare('DELETE FROM journal_spill WHERE phase = ?').run(PHASES.indexOf(phase));
    this.n.delete(phase);
  }

  /** Appends the waiting parts in apply order; returns the number of operations in the journal. */
  finish(): number {
    const moved = this.db.prepare(`INSERT INTO journal_ops (run_id, seq, op, entity, entity_id, data, status, mark)
      SELECT ?, ? + row_number() OVER (ORDER BY phase, n), op, entity, entity_id, data, 'planned', mark FROM journal_spill ORDER BY phase, n`)
      .run(this.runId, this.seq).changes;
    this.db.exec('DELETE FROM journal_spill');
    this.seq += moved;
    return this.seq;
  }
}
/** The run's watermark: every operation up to this seq has its outcome (a row still `planned` there is done). */
function appliedSeq(db: Db, runId: number): number {
  return (db.prepare('SELECT applied_seq FROM runs WHERE id = ?').pluck().get(runId) as number | undefined) ?? 0;
}

/**
 * A stored row's status as it is: `planned` up to the watermark means done. The view `journal` says the same in SQL;
 * reading the report through it (a join per row) measured 20 % slower than this over 200k operations.
 */
function statusOf(stored: JournalStatus, seq: number, applied: number): JournalStatus {
  return stored === 'planned' && seq <= applied ? 'done' : stored;
}

/** The safeguard's decision: every user removal of the run waits for approval. */
export function holdUserRemovals(db: Db, runId: number): number {
  return db.prepare("UPDATE journal_ops SET status = 'held' WHERE run_id = ? AND op = 'remove' AND entity = 'user' AND status = 'planned' AND seq > ?").run(runId, appliedSeq(db, runId)).changes;
}

/** Adds operations one by one, in order, after those already there (an approval's journal). */
export function appendToJournal(db: Db, runId: number, entries: { op: Operation; status: JournalStatus }[]): void {
  let seq = (db.prepare('SELECT max(seq) FROM journal_ops WHERE run_id = ?').pluck().get(runId) as number | null) ?? 0;
  const insert = db.prepare('INSERT INTO journal_ops (run_id, seq, op, entity, entity_id, data, status) VALUES (?, ?, ?, ?, ?, ?, ?)');
  for (const { op, status } of entries) insert.run(runId, ++seq, op.op, op.entity, entityIdOf(op), JSON.stringify(op), status);
}

/** The next operations still to apply, in order, after `afterSeq`. */
export function plannedBatch(db: Db, runId: number, afterSeq: number, limit: number): JournalOperation[] {
  const from = Math.max(afterSeq, appliedSeq(db, runId));
  const rows = db.prepare("SELECT seq, data, mark FROM journal_ops WHERE run_id = ? AND seq > ? AND status = 'planned' ORDER BY seq LIMIT ?").raw().all(runId, from, limit) as [number, string, string | null][];
  return rows.map(([seq, data, mark]) => (mark === null ? { seq, op: JSON.parse(data) as Operation } : { seq, op: JSON.parse(data) as Operation, mark }));
}

/** How many operations are still planned, and how many there are in all (progress). */
export function journalProgress(db: Db, runId: number): { planned: number; total: number } {
  return db.prepare("SELECT count(*) FILTER (WHERE status = 'planned' AND seq > ?) AS planned, count(*) AS total FROM journal_ops WHERE run_id = ?")
    .get(appliedSeq(db, runId), runId) as { planned: number; total: number };
}

export interface Outcome { seq: number; status: 'done' | 'failed'; error?: string }

/**
 * Records outcomes of operations still planned; returns how many it recorded (fewer: another process applied some
 * meanwhile). `wholeBatch`: the outcomes cover a batch from `plannedBatch` exactly. When, besides, no operation
 * before the batch is still without an outcome, the watermark moves to the batch's end and only the failed rows
 * are written; otherwise (a remote target recording call by call) each outcome is written on its row.
 */
export function recordOutcomes(db: Db, runId: number, outcomes: Outcome[], wholeBatch = false): number {
  if (outcomes.length === 0) return 0;
  const applied = appliedSeq(db, runId);
  const one = db.prepare("UPDATE journal_ops SET status = ?, error = ? WHERE run_id = ? AND seq = ? AND seq > ? AND status = 'planned'");
  const first = outcomes[0].seq;
  const contiguous = wholeBatch && first > applied
    && db.prepare("SELECT 1 FROM journal_ops WHERE run_id = ? AND seq > ? AND seq < ? AND status = 'planned' LIMIT 1").get(runId, applied, first) === undefined;
  if (!contiguous) {
    let recorded = 0;
    for (const o of outcomes) recorded += one.run(o.status, o.error ?? null, runId, o.seq, applied).changes;
    return recorded;
  }
  for (const o of outcomes) if (o.status === 'failed') one.run('failed', o.error ?? null, runId, o.seq, applied);
  db.prepare('UPDATE runs SET applied_seq = ? WHERE id = ?').run(outcomes[outcomes.length - 1].seq, runId);
  return outcomes.length;
}

/** A run of the tenant, other than `runId`, whose journal is still being applied. */
export function runInProgress(db: Db, tenant: string, runId?: number): number | undefined {
  return db.prepare("SELECT id FROM runs WHERE tenant = ? AND status = 'pending' AND plan IS NOT NULL AND id IS NOT ? ORDER BY id LIMIT 1").pluck().get(tenant, runId ?? null) as number | undefined;
}

/** Users with a failed operation in the run: their later operations must not set a sync mark. */
export function failedUsers(db: Db, runId: number): Set<string> {
  const rows = db.prepare("SELECT DISTINCT entity_id FROM journal_ops WHERE run_id = ? AND status = 'failed' AND entity IN ('user', 'membership', 'segmentLink') AND entity_id IS NOT NULL").pluck().all(runId) as string[];
  return new Set(rows);
}

/** Operations per kind and status (the report's counts), moot ones left out. */
export function journalCounts(db: Db, runId: number): { op: Operation['op']; status: JournalStatus; n: number }[] {
  const rows = db.prepare(`SELECT op, CASE WHEN status = 'planned' AND seq <= ? THEN 'done' ELSE status END AS state, count(*) AS n
    FROM journal_ops WHERE run_id = ? AND status <> 'moot' GROUP BY op, state`).raw().all(appliedSeq(db, runId), runId) as [Operation['op'], JournalStatus, number][];
  return rows.map(([op, status, n]) => ({ op, status, n }));
}

export function hasJournal(db: Db, runId: number): boolean {
  return db.prepare('SELECT 1 FROM journal_ops WHERE run_id = ? LIMIT 1').get(runId) !== undefined;
}

const PAGE = 2000;

/**
 * The journal in order, page by page (never the whole of it in memory): each entry as the report shows it, the
 * operation with its `seq`, `held` when held, its status and error. Moot entries are left out.
 */
export type JournalReportEntry = Operation & { seq: number; held?: boolean; status: Exclude<JournalStatus, 'moot'>; error?: string };

/** Each entry's stored row, page by page, with its status as it is. */
function* journalRows(db: Db, runId: number): Generator<[seq: number, data: string, status: Exclude<JournalStatus, 'moot'>, error: string | null]> {
  const applied = appliedSeq(db, runId);
  const page = db.prepare("SELECT seq, data, status, error FROM journal_ops WHERE run_id = ? AND seq > ? AND status <> 'moot' ORDER BY seq LIMIT ?").raw();
  for (let after = 0; ;) {
    const rows = page.all(runId, after, PAGE) as [number, string, Exclude<JournalStatus, 'moot'>, string | null][];
    for (const row of rows) {
      row[2] = statusOf(row[2], row[0], applied) as Exclude<JournalStatus, 'moot'>;
      yield row;
    }
    if (rows.length < PAGE) return;
    after = rows[rows.length - 1][0];
  }
}

function entryOf(seq: number, data: string, status: JournalReportEntry['status'], error: string | null): JournalReportEntry {
  const entry = JSON.parse(data) as JournalReportEntry;
  entry.seq = seq;
  if (status === 'held') entry.held = true;
  entry.status = status;
  if (error !== null) entry.error = error;
  return entry;
}

/** The stored operation's JSON with `seq`, `held`, `status` and `error` appended, spliced as text (no parse). */
function jsonOf(seq: number, data: string, status: JournalReportEntry['status'], error: string | null): string {
  return `${data.slice(0, -1)},"seq":${seq}${status === 'held' ? ',"held":true' : ''},"status":"${status}"${error === null ? '' : `,"error":${JSON.stringify(error)}`}}`;
}

export function* journalEntries(db: Db, runId: number): Generator<JournalReportEntry> {
  for (const [seq, data, status, error] of journalRows(db, runId)) yield entryOf(seq, data, status, error);
}

/** The same entries as `journalEntries`, as the report's JSON (a first load's report is written without parsing 1M operations twice). */
export function* journalJson(db: Db, runId: number): Generator<string> {
  for (const [seq, data, status, error] of journalRows(db, runId)) yield jsonOf(seq, data, status, error);
}

/** Both at once, from one read of the journal: a published report writes its text and its JSON side by side. */
export function* journalEntriesWithJson(db: Db, runId: number): Generator<[JournalReportEntry, string]> {
  for (const [seq, data, status, error] of journalRows(db, runId)) yield [entryOf(seq, data, status, error), jsonOf(seq, data, status, error)];
}

/**
 * Drops the journals of a tenant's runs finished before `before`: a first load of 1M users writes ~450 MB of them,
 * which nothing needs once the run is over (its report was published with every operation, its summary and counts
 * stay on the run). Held runs keep theirs (an approval reads them), unfinished ones too. SQLite reuses the freed
 * pages, so the database stops growing rather than shrinking. Returns the runs pruned.
 */
export function pruneJournals(db: Db, tenant: string, before: string, now: string): number[] {
  const runs = db.prepare("SELECT id FROM runs WHERE tenant = ? AND status NOT IN ('pending', 'held') AND finished_at < ? AND journal_pruned_at IS NULL ORDER BY id")
    .pluck().all(tenant, before) as number[];
  const drop = db.prepare('DELETE FROM journal_ops WHERE run_id = ?');
  const mark = db.prepare('UPDATE runs SET journal_pruned_at = ? WHERE id = ?');
  for (const id of runs) db.transaction(() => { drop.run(id); mark.run(now, id); })();
  return runs;
}

/** A run's journal as a report's operations. */
export function journalSource(db: Db, runId: number): OperationsSource {
  return { entries: () => journalEntries(db, runId), json: () => journalJson(db, runId), both: () => journalEntriesWithJson(db, runId) };
}

/** Directory IDs of the user removals a run held back. */
export function heldUserRemovals(db: Db, runId: number): number[] {
  return db.prepare("SELECT json_extract(data, '$.id') FROM journal_ops WHERE run_id = ? AND status = 'held' AND op = 'remove' AND entity = 'user' ORDER BY seq").pluck().all(runId) as number[];
}

/** What the planner decided as a whole, stored on the run beside its journal. */
export type StoredPlan = Omit<PlanSummary, 'counts'> & { createdAt: string; operations: number };

export function savePlan(db: Db, runId: number, plan: StoredPlan): void {
  db.prepare('UPDATE runs SET plan = ? WHERE id = ?').run(JSON.stringify(plan), runId);
}

export function storedPlan(db: Db, runId: number): StoredPlan | undefined {
  const raw = db.prepare('SELECT plan FROM runs WHERE id = ?').pluck().get(runId) as string | null | undefined;
  return raw ? (JSON.parse(raw) as StoredPlan) : undefined;
}
