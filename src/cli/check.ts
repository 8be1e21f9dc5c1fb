// `wt-sync check --tenant T FILE…`: validate files offline and show the plan against the current directory.
// Nothing is recorded or changed: rows are staged into private files and the plan goes to a throwaway journal
// (src/apply/dry-run.ts), both deleted at the end.
import type { Command } from 'commander';
import fs from 'node:fs';
import path from 'node:path';
import { checkPlan, type CheckedSnapshot } from '../apply/dry-run.js';
import { fileTypeOf } from '../intake/file-type.js';
import { sha256File } from '../intake/sha256.js';
import type { Problem } from '../model.js';
import { parseFile } from '../parse/parse-file.js';
import { buildReport, type ReportFile } from '../report/report.js';
import { StagingSink } from '../snapshot/staging.js';
import { EXIT, printReport, requireFiles, requireTenant, withApp, type GlobalOptions } from './common.js';

export function register(program: Command): void {
  program
    .command('check')
    .description('validate files offline and print the report and the plan against the current directory; changes nothing')
    .requiredOption('--tenant <id>', 'tenant id')
    .argument('<files...>', 'CSV files')
    .option('--json', 'print the report as JSON')
    .action(async (files: string[], opts: GlobalOptions & { tenant: string }, cmd: Command) => {
      const o = { ...cmd.optsWithGlobals(), ...opts } as GlobalOptions & { tenant: string };
      process.exitCode = await withApp(o, async (app) => {
        const tenant = requireTenant(app, o.tenant);
        requireFiles(files);
        // Files checked replace the stored snapshots of their type; the other types are read from the store.
        const reportFiles: ReportFile[] = [];
        const problems: Problem[] = [];
        const staged: StagingSink[] = [];
        const snapshots: CheckedSnapshot[] = [];
        try {
          for (const [i, file] of files.entries()) {
            const name = path.basename(file);
            const match = fileTypeOf(tenant, name);
            const entry: ReportFile = { id: -(i + 1), name, type: match.type, sha256: await sha256File(file), size: fs.statSync(file).size, status: 'rejected', dataRows: null, validRows: null };
            reportFiles.push(entry);
            if (match.type === null) {
              problems.push({ level: 'file', file: name, message: match.reason });
              continue;
            }
            const spec = tenant.files[match.type]!;
            // Staged into a private file, as a received file is, but never moved into the store.
            const sink = new StagingSink(app.config.paths.tmpDir);
            staged.push(sink);
            const result = await parseFile(fs.createReadStream(file), sink, { type: match.type, spec, fileName: name, maxInvalidRowPercent: tenant.safeguards.maxInvalidRowPercent });
            sink.finish();
            problems.push(...result.problems);
            Object.assign(entry, { status: result.status, dataRows: result.dataRows, validRows: result.validRows });
            if (result.status !== 'accepted') continue;
            snapshots.push({
              type: match.type, name, rowsFile: sink.file,
              protectedIds: new Set(result.problems.filter((p) => p.level === 'row' && p.entityId).map((p) => p.entityId!)),
              fields: new Set(spec.columns.filter((c) => c !== 'ignore')),
            });
          }
          const rejected = reportFiles.some((f) => f.status === 'rejected');
          if (snapshots.length === 0) {
            const report = buildReport({
              runId: 0, tenant: tenant.id, status: 'check: rejected', trigger: 'check', createdAt: app.now().toISOString(), files: reportFiles, fileProblems: problems, plan: null, results: null,
            });
            printReport(o, report);
            return rejected ? EXIT.failed : EXIT.ok;
          }
          const checked = await checkPlan(app, tenant, snapshots, { files: reportFiles, fileProblems: problems });
          try {
            printReport(o, checked.report);
          } finally {
            checked.close();
          }
          return rejected ? EXIT.failed : EXIT.ok;
        } finally {
          for (const sink of staged) sink.discard();
        }
      });
    });
}
