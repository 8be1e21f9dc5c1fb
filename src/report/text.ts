// Reports and problems as text for people (the customer's /reports/ folder, the CLI).
import type { Problem } from '../model.js';
import type { Operation } from '../plan/types.js';
import type { Report, ReportOperation } from './report.js';

const q = (v: string | null | undefined) => (v === null || v === undefined ? '(empty)' : JSON.stringify(v));

export function describeOperation(op: Operation): string {
  switch (op.op) {
    case 'create': {
      const fields = Object.entries(op.after).filter(([k, v]) => k !== 'externalId' && v !== null).map(([k, v]) => `${k}=${q(v)}`);
      return `create ${op.entity} ${q(op.externalId)}${fields.length ? `: ${fields.join(', ')}` : ''}`;
    }
    case 'update':
      return `update ${op.entity} ${q(op.externalId)}: ${op.changes.map((c) => `${c.field} ${q(c.before)} → ${q(c.after)}`).join('; ')}`;
    case 'restore':
      return `restore user ${q(op.externalId)}`;
    case 'remove':
    case 'purge':
      return `${op.op} ${op.entity} ${op.externalId === null ? `#${op.id}` : q(op.externalId)} (${op.name})`;
    case 'link':
      return op.entity === 'membership'
        ? `link user ${q(op.userId)} to group ${q(op.groupId)} as ${op.role}${op.before ? ` (was ${op.before})` : ''}`
        : `link user ${q(op.userId)} to segment ${q(op.segmentId)}`;
    case 'unlink':
      return op.entity === 'membership'
        ? `unlink user ${q(op.userId)} from group ${q(op.groupId)} (${op.role}, ${op.origin})`
        : `unlink user ${q(op.userId)} from segment ${q(op.segmentId)} (${op.origin})`;
  }
}

export function describeProblem(p: Problem): string {
  const where = [p.file, p.line !== undefined ? `line ${p.line}` : null, p.column ? `column "${p.column}"` : null, p.byteOffset !== undefined ? `byte ${p.byteOffset}` : null]
    .filter(Boolean)
    .join(', ');
  const value = p.value !== undefined && p.value !== '' ? ` (value ${JSON.stringify(p.value)})` : '';
  return `${where}: ${p.message}${value}${p.hint ? `\n    how to fix: ${p.hint}` : ''}`;
}

function opLine(o: ReportOperation): string {
  const mark = o.status === 'done' || o.status === 'planned' ? '' : ` [${o.status.toUpperCase()}${o.error ? `: ${o.error}` : ''}]`;
  return `  ${String(o.seq).padStart(5)}  ${describeOperation(o)}${mark}`;
}

export function renderReport(r: Report): string {
  const out: string[] = [];
  out.push(`wt-sync report — run ${r.runId}, tenant ${r.tenant}`);
  out.push(`status: ${r.status}   trigger: ${r.trigger}   at: ${r.createdAt}`);
  if (r.files.length) {
    out.push('', 'files:');
    for (const f of r.files) {
      const rows = f.dataRows !== null ? `, ${f.validRows}/${f.dataRows} rows valid` : '';
      out.push(`  ${f.name} (${f.type ?? 'unknown type'}, ${f.size} bytes, sha256 ${f.sha256.slice(0, 16)}…): ${f.status}${rows}`);
    }
  }
  const c = r.counts;
  out.push('', `counts: created ${c.created}, updated ${c.updated}, removed ${c.removed}, restored ${c.restored}, purged ${c.purged}, linked ${c.linked}, unlinked ${c.unlinked}, unchanged ${c.unchanged}, held ${c.held}, failed ${c.failed}, file errors ${c.fileErrors}, row errors ${c.rowErrors}, warnings ${c.warnings}`);
  if (r.safeguard?.held) {
    out.push('', `HELD: ${r.safeguard.reason}.`, `  The removals below wait for an operator: wt-sync approve --tenant ${r.tenant} ${r.runId}`, '  Everything else in this run was applied.');
  }
  const section = (title: string, items: string[]) => {
    if (items.length === 0) return;
    out.push('', `${title}:`);
    for (const item of items) out.push(item); // no spread: a first load can list hundreds of thousands
  };
  const problems = (level: Problem['level']) => r.problems.filter((p) => p.level === level).map((p) => `  ${describeProblem(p)}`);
  section('file errors (the file was rejected, nothing in it was applied)', problems('file'));
  section('row errors (these rows were skipped; the users/groups they name were left as they are)', problems('row'));
  section('warnings (applied)', problems('warning'));
  section('operations', r.operations.map(opLine));
  return out.join('\n') + '\n';
}
