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
  status: 'accepted' | 'rejected' | 'duplicate' | 'received';
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
  const bySeq = new Map((results ?? []).map((r) => [r.seq, r]));
  const operations: ReportOperation[] = (plan?.ops ?? []).map((op) => {
    const r = bySeq.get(op.seq);
    const status = r?.status ?? (op.held ? 'held' : 'planned');
    return r?.error ? { ...op, status, error: r.error } : { ...op, status };
  });
  const problems = [...args.fileProblems, ...(plan?.problems ?? [])];
  const counted = operations.filter((o) => o.status === 'done' || o.status === 'planned');
  const count = (kind: string) => counted.filter((o) => o.op === kind).length;
  const counts: ReportCounts = {
    created: count('create'),
    updated: count('update'),
    removed: count('remove'),
    restored: count('restore'),
    purged: count('purge'),
    linked: count('link'),
    unlinked: count('unlink'),
    unchanged: plan ? plan.unchanged.users + plan.unchanged.groups + plan.unchanged.segments : 0,
    held: operations.filter((o) => o.status === 'held').length,
    failed: operations.filter((o) => o.status === 'failed').length,
    fileErrors: problems.filter((p) => p.level === 'file').length,
    rowErrors: problems.filter((p) => p.level === 'row').length,
    warnings: problems.filter((p) => p.level === 'warning').length,
  };
  return {
    runId: args.runId, tenant: args.tenant, status: args.status, trigger: args.trigger, createdAt: args.createdAt,
    files: args.files, counts, safeguard: plan?.safeguard ?? null, operations, problems,
  };
}
