// The reconciliation report of one run: what changed, what was held, what failed, and every problem found.
import type { FileType, Problem } from '../model.js';
import type { Plan, PlannedOperation, SafeguardCheck } from '../plan/types.js';

export interface ReportFile {
  id: number;
  name: string;
  type: FileType | null;
  sha256: string;
  size: number;
  status: 'accepted' | 'rejected' | 'duplicate' | 'received' | 'interrupted';
  dataRows: number | null;
  validRows: number | null;
}

export type ReportOperation = PlannedOperation & { status: 'done' | 'failed' | 'held' | 'planned'; error?: string };

/** An operation's outcome as an in-memory report reads it (check: none). */
export interface OperationResult { seq: number; status: 'done' | 'failed' | 'held'; error?: string }

export interface ReportCounts {
  created: number;
  updated: number;
  removed: number;
  restored: number;
  purged: number;
  linked: number;
  unlinked: number;
  unchanged: number;
  held: number;
  failed: number;
  fileErrors: number;
  rowErrors: number;
  warnings: number;
}

export interface Report {
  runId: number;
  tenant: string;
  /** What the run did: applied, held (removals await approval), rejected (no file accepted), a dry-run check, … */
  status: string;
  trigger: string;
  createdAt: string;
  files: ReportFile[];
  counts: ReportCounts;
  safeguard: SafeguardCheck | null;
  operations: ReportOperation[];
  problems: Problem[];
  /** Set on a stored run past `journalDays`: its operations were dropped then (the published report has them). */
  operationsPrunedAt?: string;
}

const COUNTER = { create: 'created', update: 'updated', remove: 'removed', restore: 'restored', purge: 'purged', link: 'linked', unlink: 'unlinked' } as const;

function emptyCounts(unchanged: number): ReportCounts {
  return { created: 0, updated: 0, removed: 0, restored: 0, purged: 0, linked: 0, unlinked: 0, unchanged, held: 0, failed: 0, fileErrors: 0, rowErrors: 0, warnings: 0 };
}

function countProblems(counts: ReportCounts, problems: Problem[]): void {
  for (const p of problems) {
    if (p.level === 'file') counts.fileErrors++;
    else if (p.level === 'row') counts.rowErrors++;
    else counts.warnings++;
  }
}

/** The report's counts from the journal's counts per kind and status, without reading its operations. */
export function countsOf(ops: { op: PlannedOperation['op']; status: string; n: number }[], unchanged: number, problems: Problem[]): ReportCounts {
  const counts = emptyCounts(unchanged);
  for (const { op, status, n } of ops) {
    if (status === 'held') counts.held += n;
    else if (status === 'failed') counts.failed += n;
    else counts[COUNTER[op]] += n;
  }
  countProblems(counts, problems);
  return counts;
}

const SOURCE = Symbol('operations source');

/** Where a streamed report's operations come from (a run's journal): as objects, as JSON texts, or both from one read. */
export interface OperationsSource {
  entries(): Iterable<ReportOperation>;
  json(): Iterable<string>;
  both(): Iterable<[ReportOperation, string]>;
}

/** The report without its operations, read without touching them (they may live in the journal). */
export function reportSummary(r: Report): Omit<Report, 'operations'> {
  const summary: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(Object.getOwnPropertyDescriptors(r))) if (k !== 'operations') summary[k] = v.value;
  return summary as Omit<Report, 'operations'>;
}

/**
 * A report whose operations stay in the journal: writing it (text, JSON) streams them page by page; reading
 * `operations` (tests, small reports) reads them all into memory once.
 */
export function streamedReport(summary: Omit<Report, 'operations'>, source: OperationsSource): Report {
  let all: ReportOperation[] | undefined;
  const report = { ...summary } as Report;
  Object.defineProperty(report, 'operations', { enumerable: true, get: () => (all ??= [...source.entries()]) });
  Object.defineProperty(report, SOURCE, { enumerable: false, value: source });
  return report;
}

function sourceOf(r: Report): OperationsSource | undefined {
  return (r as unknown as Record<symbol, OperationsSource | undefined>)[SOURCE];
}

/** A report's operations as JSON texts, when they can be had without building the objects. */
export function operationsJsonOf(r: Report): Iterable<string> {
  const source = sourceOf(r);
  if (source) return source.json();
  return (function* () {
    for (const o of operationsOf(r)) yield JSON.stringify(o);
  })();
}

/** A report's operations, streamed from the journal when they live there. */
export function operationsOf(r: Report): Iterable<ReportOperation> {
  return sourceOf(r)?.entries() ?? r.operations;
}

/** Each operation with its JSON text, from one read of the journal (a report written as text and JSON at once). */
export function operationsWithJsonOf(r: Report): Iterable<[ReportOperation, string]> {
  const source = sourceOf(r);
  if (source) return source.both();
  return (function* () {
    for (const o of r.operations) yield [o, JSON.stringify(o)] as [ReportOperation, string];
  })();
}

/** An in-memory report from an in-memory plan (check). */
export function buildReport(args: {
  runId: number;
  tenant: string;
  status: string;
  trigger: string;
  createdAt: string;
  files: ReportFile[];
  fileProblems: Problem[];
  plan: Plan | null;
  results: OperationResult[] | null;
}): Report {
  const { plan, results } = args;
  const bySeq = new Map<number, OperationResult>();
  if (results) for (const r of results) bySeq.set(r.seq, r);
  const problems = plan ? [...args.fileProblems, ...plan.problems] : args.fileProblems;
  const counts = emptyCounts(plan ? plan.unchanged.users + plan.unchanged.groups + plan.unchanged.segments : 0);
  // One pass, and the outcome is written onto the plan's own op objects (the plan is finished with once it is
  // reported): a first load can hold hundreds of thousands of operations, and copies of them cost seconds of GC.
  const operations = (plan?.ops ?? []) as ReportOperation[];
  for (const op of operations) {
    const r = bySeq.get(op.seq);
    op.status = r?.status ?? (op.held ? 'held' : 'planned');
    if (r?.error) op.error = r.error;
    if (op.status === 'held') counts.held++;
    else if (op.status === 'failed') counts.failed++;
    else counts[COUNTER[op.op]]++;
  }
  countProblems(counts, problems);
  return {
    runId: args.runId, tenant: args.tenant, status: args.status, trigger: args.trigger, createdAt: args.createdAt,
    files: args.files, counts, safeguard: plan?.safeguard ?? null, operations, problems,
  };
}
