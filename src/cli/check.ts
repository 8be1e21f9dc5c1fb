// `wt-sync check --tenant T FILE…` (or `--replay FETCH`): validate files offline and show the plan against the current directory.
// Nothing is recorded or changed: rows are staged into private files and the plan goes to a throwaway journal
// (src/apply/dry-run.ts), both deleted at the end.
import type { Command } from 'commander';
import fs from 'node:fs';
import path from 'node:path';
import { checkPlan, type CheckedSnapshot } from '../apply/dry-run.js';
import { fileTypeOf } from '../intake/file-type.js';
import { sha256File } from '../intake/sha256.js';
import type { FileType, Problem } from '../model.js';
import { parseFile } from '../parse/parse-file.js';
import { buildReport, type ReportFile } from '../report/report.js';
import type { App } from '../app.js';
import type { TenantConfig } from '../config/schema.js';
import { lineToRecord } from '../intake/record-numbers.js';
import type { Report } from '../report/report.js';
import { StagingSink } from '../snapshot/staging.js';
import { replayArchive } from '../sources/api.js';
import { fetchArchive, readFetchRecord } from '../sources/run-fetch.js';
import { FetchError } from '../sources/source.js';
import { EXIT, parseFileType, printReport, requireFiles, requireTenant, UsageError, withApp, type GlobalOptions } from './common.js';

export function register(program: Command): void {
  program
    .command('check')
    .description('validate files offline and print the report and the plan against the current directory; changes nothing')
    .requiredOption('--tenant <id>', 'tenant id')
    .argument('[files...]', 'CSV files')
    .option('--type <type>', 'read every file as users, groups or segments, whatever its name')
    .option('--replay <fetch>', "re-validate an archived fetch of the tenant's api source (its fetch id, see `wt-sync status`) instead of files")
    .option('--json', 'print the report as JSON')
    .action(async (files: string[], opts: GlobalOptions & { tenant: string; replay?: string; type?: string }, cmd: Command) => {
      const o = { ...cmd.optsWithGlobals(), ...opts } as GlobalOptions & { tenant: string; replay?: string; type?: string };
      process.exitCode = await withApp(o, async (app) => {
        const tenant = requireTenant(app, o.tenant);
        if (o.replay !== undefined) {
          if (files.length > 0) throw new UsageError('give either files or --replay FETCH, not both');
          return replay(app, tenant, o.replay, o);
        }
        const type = parseFileType(tenant, o.type);
        if (files.length === 0) throw new UsageError('missing files to check (or --replay FETCH)');
        requireFiles(files);
        return checkFiles(app, tenant, files.map((file) => ({ path: file, name: path.basename(file), type })), o);
      });
    });
}

/** Files to check: where they are, the name they are checked under, whether they render api records. */
export interface CheckInput {
  path: string;
  name: string;
  recordNumbers?: boolean;
  /** Read as this type whatever the name (`--type`). */
  type?: FileType;
}

/**
 * Validates files and plans them against the current directory (checked files replace the stored snapshots of
 * their type; the other types are read from the store), prints the report and returns the exit code: 1 when a file
 * is rejected. Records and changes nothing.
 */
export async function checkFiles(app: App, tenant: TenantConfig, files: CheckInput[], o: GlobalOptions, extraProblems: Problem[] = []): Promise<number> {
  const reportFiles: ReportFile[] = [];
  const problems: Problem[] = [...extraProblems];
  const staged: StagingSink[] = [];
  const snapshots: CheckedSnapshot[] = [];
  try {
    for (const [i, file] of files.entries()) {
      const name = file.name;
      const match = file.type ? { type: file.type } : fileTypeOf(tenant, name);
      const entry: ReportFile = { id: -(i + 1), name, type: match.type, sha256: await sha256File(file.path), size: fs.statSync(file.path).size, status: 'rejected', dataRows: null, validRows: null };
      reportFiles.push(entry);
      if (match.type === null) {
        problems.push({ level: 'file', file: name, message: match.reason });
        continue;
      }
      const spec = tenant.files[match.type]!;
      // Staged into a private file, as a received file is, but never moved into the store (and read only whole).
      const sink = new StagingSink(app.config.paths.tmpDir, match.type, { syncMarks: false });
      staged.push(sink);
      const result = await parseFile(fs.createReadStream(file.path), sink, { type: match.type, spec, fileName: name, maxInvalidRowPercent: tenant.safeguards.maxInvalidRowPercent });
      sink.finish();
      problems.push(...(file.recordNumbers ? result.problems.map(lineToRecord) : result.problems));
      Object.assign(entry, { status: result.status, dataRows: result.dataRows, validRows: result.validRows });
      if (result.status !== 'accepted') continue;
      snapshots.push({
        type: match.type, name, rowsFile: sink.file,
        protectedIds: new Set(result.problems.filter((p) => p.level === 'row' && p.entityId).map((p) => p.entityId!)),
        fields: new Set(spec.columns.filter((c) => c !== 'ignore')),
      });
    }
    const code = reportFiles.some((f) => f.status === 'rejected') ? EXIT.failed : EXIT.ok;
    if (snapshots.length === 0) {
      printReport(o, buildReport({
        runId: 0, tenant: tenant.id, status: 'check: rejected', trigger: 'check', createdAt: app.now().toISOString(), files: reportFiles, fileProblems: problems, plan: null, results: null,
      }));
      return code;
    }
    const checked = await checkPlan(app, tenant, snapshots, { files: reportFiles, fileProblems: problems });
    try {
      printReport(o, checked.report);
    } finally {
      checked.close();
    }
    return code;
  } finally {
    for (const sink of staged) sink.discard();
  }
}

/** `check --replay FETCH`: the archived responses of an api fetch, rendered and validated again, offline. */
async function replay(app: App, tenant: TenantConfig, fetchId: string, o: GlobalOptions): Promise<number> {
  if (tenant.source.type !== 'api') throw new UsageError(`tenant ${tenant.id} has source type "${tenant.source.type}": only api fetches are archived for replay`);
  const dir = fetchArchive(app, tenant.id, fetchId);
  if (!dir) throw new UsageError(`no archived fetch "${fetchId}" for tenant ${tenant.id} (wt-sync status --tenant ${tenant.id} shows the last fetch)`);
  // A failed fetch's archive stops at the failure: replaying it would check a partial set as if it were whole.
  const record = readFetchRecord(dir);
  if (record?.status === 'failed') {
    printReport(o, buildReport({
      runId: 0, tenant: tenant.id, status: 'check: fetch-failed', trigger: 'check', createdAt: app.now().toISOString(), files: [],
      fileProblems: [{ level: 'file', file: `api fetch ${fetchId}`, message: `this fetch failed (${record.error}${record.where ? ` — at ${record.where}` : ''}); its archive holds the responses up to the failure, so it is not replayed as a whole fetch`, hint: 'replay a fetch whose status is ok; the archived pages of this one are in ' + dir }],
      plan: null, results: null,
    }));
    return EXIT.failed;
  }
  fs.mkdirSync(app.config.paths.tmpDir, { recursive: true });
  const work = fs.mkdtempSync(path.join(app.config.paths.tmpDir, 'replay-'));
  try {
    let files;
    try {
      files = replayArchive(dir, tenant.source, tenant, work);
    } catch (err) {
      if (!(err instanceof FetchError)) throw err;
      const report = buildReport({
        runId: 0, tenant: tenant.id, status: 'check: fetch-failed', trigger: 'check', createdAt: app.now().toISOString(), files: [],
        fileProblems: [{ level: 'file', file: `api fetch ${fetchId}`, message: `${err.message}${err.where ? ` — at ${err.where}` : ''}`, hint: err.hint }], plan: null, results: null,
      });
      printReport(o, report);
      return EXIT.failed;
    }
    return await checkFiles(app, tenant, files.map((f) => ({ path: f.tempPath, name: f.name, recordNumbers: true })), o);
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}
