// The reconciliation report of one run: what changed, what was held, what failed, and every problem found.
import type { FileType, Problem } from '../model.js';
import type { Plan, PlannedOperation, SafeguardCheck } from '../plan/types.js';
import type { OperationResult } from '../targets/target.js';

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

export type ReportOperation = PlannedOperation & { status: OperationResult['status'] | 'planned'; error?: string };

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
}

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
  const counts: ReportCounts = {
    created: 0, updated: 0, removed: 0, restored: 0, purged: 0, linked: 0, unlinked: 0,
    unchanged: plan ? plan.unchanged.users + plan.unchanged.groups + plan.unchanged.segments : 0,
    held: 0, failed: 0, fileErrors: 0, rowErrors: 0, warnings: 0,
  };
  const COUNTER = { create: 'created', update: 'updated', remove: 'removed', restore: 'restored', purge: 'purged', link: 'linked', unlink: 'unlinked' } as const;
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
  for (const p of problems) {
    if (p.level === 'file') counts.fileErrors++;
    else if (p.level === 'row') counts.rowErrors++;
    else counts.warnings++;
  }
  return {
    runId: args.runId, tenant: args.tenant, status: args.status, trigger: args.trigger, createdAt: args.createdAt,
    files: args.files, counts, safeguard: plan?.safeguard ?? null, operations, problems,
  };
}
