// Publishing a run's report where the customer reads it: /reports/ in their SFTP folder, as text and JSON. The one
// place that writes there (runs, approvals and failed fetches alike).
import fs from 'node:fs';
import path from 'node:path';
import { ensureTenantDirs, type App } from '../app.js';
import { markPublished } from '../store/runs.js';
import type { Report } from './report.js';
import { writeTextAndJson } from './text.js';

/** Writes the report where the customer reads it: /reports/ in their SFTP folder, as text and JSON. */
export function publish(app: App, report: Report): Report {
  const dirs = ensureTenantDirs(app.config.paths, report.tenant);
  const stamp = report.createdAt.replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  const base = path.join(dirs.reports, `${stamp}-run-${report.runId}`);
  // Both files from one read of the journal; each is written under a dot-name (hidden from the customer) and
  // renamed, so a reader never sees half a report.
  const files = [`${base}.txt`, `${base}.json`];
  const tmps = files.map((f) => path.join(path.dirname(f), `.${path.basename(f)}.tmp`));
  const fds = tmps.map((t) => fs.openSync(t, 'w'));
  try {
    writeTextAndJson(report, (chunk) => fs.writeSync(fds[0], chunk), (chunk) => fs.writeSync(fds[1], chunk));
  } finally {
    for (const fd of fds) fs.closeSync(fd);
  }
  tmps.forEach((t, i) => fs.renameSync(t, files[i]));
  markPublished(app.db, report.runId, app.now().toISOString());
  return report;
}
