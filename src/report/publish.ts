// Publishing a run's report where the customer reads it: /reports/ in their SFTP folder, as text and JSON. The one
// place that writes there (runs, approvals and failed fetches alike).
import fs from 'node:fs';
import path from 'node:path';
import { ensureTenantDirs, type App } from '../app.js';
import { markPublished } from '../store/runs.js';
import type { Report } from './report.js';
import { reportJson, reportLines, writeChunked } from './text.js';

/** Writes the report where the customer reads it: /reports/ in their SFTP folder, as text and JSON. */
export function publish(app: App, report: Report): Report {
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
