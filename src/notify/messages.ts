// What the mails say: a run's summary with its full text report attached, and a tenant gone stale. Pure.
import type { Problem } from '../model.js';
import type { Report } from '../report/report.js';
import { describeProblem, reportLines } from '../report/text.js';
import type { Staleness } from './staleness.js';

export interface MailContent {
  subject: string;
  text: string;
  attachments: { filename: string; content: string }[];
}

/** An attachment larger than this is cut (the whole report stays in the customer's /reports/ folder). */
export const MAX_ATTACHMENT_CHARS = 8 * 1024 * 1024;

function countsLine(r: Report): string {
  const c = r.counts;
  const parts = [`${c.created} created`, `${c.updated} updated`, `${c.removed} removed`];
  if (c.restored) parts.push(`${c.restored} restored`);
  if (c.held) parts.push(`${c.held} held`);
  if (c.failed) parts.push(`${c.failed} failed`);
  if (c.fileErrors) parts.push(`${c.fileErrors} file error${c.fileErrors > 1 ? 's' : ''}`);
  if (c.rowErrors) parts.push(`${c.rowErrors} row error${c.rowErrors > 1 ? 's' : ''}`);
  return parts.join(', ');
}

export function reportFileName(r: Report): string {
  const stamp = r.createdAt.replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  return `${stamp}-run-${r.runId}.txt`;
}

function attachment(r: Report): string {
  let text = '';
  for (const line of reportLines(r)) {
    if (text.length + line.length > MAX_ATTACHMENT_CHARS) {
      return `${text}\n… the report is longer than this attachment allows; the whole report is ${reportFileName(r)} in your /reports/ folder.\n`;
    }
    text += line;
  }
  return text;
}

export function runMail(r: Report, tenantName: string): MailContent {
  const held = r.safeguard?.held === true;
  const outcome = r.status === 'rejected' ? 'rejected' : held ? 'held for approval' : r.counts.failed > 0 ? 'applied with failures' : r.status;
  const subject = `wt-sync ${tenantName} (${r.tenant}): run ${r.runId} ${outcome}: ${countsLine(r)}`;
  const c = r.counts;
  const lines = [
    `Tenant: ${tenantName} (${r.tenant})`,
    `Run ${r.runId}, ${r.trigger}, ${r.createdAt}: ${outcome}`,
    '',
    ...(r.files.length ? ['Files:', ...r.files.map((f) => `  ${f.name}: ${f.status}${f.dataRows !== null ? `, ${f.validRows} of ${f.dataRows} rows valid` : ''}`), ''] : []),
    'Counts:',
    `  created ${c.created}, updated ${c.updated}, removed ${c.removed}, restored ${c.restored}, purged ${c.purged}`,
    `  linked ${c.linked}, unlinked ${c.unlinked}, unchanged ${c.unchanged}`,
    `  held ${c.held}, failed ${c.failed}`,
    `  file errors ${c.fileErrors}, row errors ${c.rowErrors}, warnings ${c.warnings}`,
    '',
  ];
  if (r.status === 'rejected') {
    lines.push('No file of this run was accepted, so nothing changed in Winningtemp. Why:', ...firstProblems(r.problems, 'file'), '',
      'Fix the file and upload it again; the attached report lists every problem.', '');
  } else if (held) {
    lines.push(`HELD: ${r.safeguard!.reason}.`, `${c.held} user removals wait for approval; everything else in this run was applied.`,
      'If the removals are intended, ask Winningtemp to approve them. Winningtemp approves with:',
      `  wt-sync approve --tenant ${r.tenant} ${r.runId}`,
      `  (or POST /api/v1/tenants/${r.tenant}/runs/${r.runId}/approve)`,
      'If they are not intended (a file cut short, a wrong export), upload the corrected file: a later run replaces this one.', '');
  }
  if (r.status !== 'rejected' && c.rowErrors > 0) lines.push('Rows skipped (first ones; all in the attached report):', ...firstProblems(r.problems, 'row'), '');
  lines.push(`The full report is attached and is in your /reports/ folder as ${reportFileName(r)}.`);
  return { subject, text: lines.join('\n') + '\n', attachments: [{ filename: reportFileName(r), content: attachment(r) }] };
}

function firstProblems(problems: Problem[], level: Problem['level'], n = 5): string[] {
  const of = problems.filter((p) => p.level === level);
  return [...of.slice(0, n).map((p) => `  ${describeProblem(p)}`), ...(of.length > n ? [`  … and ${of.length - n} more`] : [])];
}

export function staleMail(tenant: { id: string; name: string }, s: Staleness): MailContent {
  const since = s.lastFileAt ? `the last file arrived ${s.lastFileAt}` : 'no file has arrived yet';
  return {
    subject: `wt-sync ${tenant.name} (${tenant.id}): no file for more than ${s.everyHours} hours`,
    text: [
      `Tenant: ${tenant.name} (${tenant.id})`,
      '',
      `Winningtemp expects a file from you at least every ${s.everyHours} hours, and ${since}.`,
      'Until a new file arrives, changes in your organisation do not reach Winningtemp.',
      '',
      'Please check that your export job still runs and can log in to the SFTP server. This mail is sent once;',
      'the next file ends the alert.',
    ].join('\n') + '\n',
    attachments: [],
  };
}
