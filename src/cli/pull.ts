// `wt-sync pull --tenant T [--dry-run]`: run a tenant's pulling source (api, sftp-pull) now. The files go through
// intake, validation, plan and apply like an upload, and the report is printed; with --dry-run the source is
// fetched, validated and planned like `check`, and nothing is recorded, archived or changed (on our side or
// on the customer's server).
import type { Command } from 'commander';
import { reconcile, resumeUnfinished } from '../apply/run.js';
import { archiveInboxFile } from '../intake/inbox.js';
import { claimInbox } from '../intake/inbox-claim.js';
import { receiveFile, type ReceivedFile } from '../intake/receive.js';
import { buildReport } from '../report/report.js';
import { describeProblem } from '../report/text.js';
import type { App } from '../app.js';
import type { TenantConfig } from '../config/schema.js';
import type { Report } from '../report/report.js';
import { runFetch, type FetchOutcome } from '../sources/run-fetch.js';
import { checkFiles } from './check.js';
import { EXIT, print, printReport, requireTenant, UsageError, withApp, type GlobalOptions } from './common.js';

type PullOptions = GlobalOptions & { tenant: string; dryRun?: boolean };

export function register(program: Command): void {
  program
    .command('pull')
    .description("fetch a tenant's source (api or sftp-pull) now and reconcile; --dry-run fetches and validates only, changing nothing")
    .requiredOption('--tenant <id>', 'tenant id')
    .option('--dry-run', 'fetch, validate and print the report and plan like `check`; changes nothing')
    .option('--json', 'print the report as JSON')
    .action(async (opts: PullOptions, cmd: Command) => {
      const o = { ...cmd.optsWithGlobals(), ...opts } as PullOptions;
      process.exitCode = await withApp(o, async (app) => {
        const tenant = requireTenant(app, o.tenant);
        if (tenant.source.type === 'upload') throw new UsageError(`tenant ${tenant.id} has source type "upload" (customers upload to our SFTP server): there is nothing to pull`);
        if (o.dryRun) {
          const outcome = await runFetch(app, tenant, { trigger: 'pull', dryRun: true });
          try {
            if (outcome.record.status === 'failed') {
              printReport(o, buildReport({
                runId: 0, tenant: tenant.id, status: 'check: fetch-failed', trigger: 'pull --dry-run', createdAt: app.now().toISOString(), files: [],
                fileProblems: [{ level: 'file', file: `${tenant.source.type} fetch`, message: `${outcome.record.error}${outcome.record.where ? ` — at ${outcome.record.where}` : ''}` }], plan: null, results: null,
              }));
              return EXIT.failed;
            }
            if (outcome.files.length === 0) {
              print(o, { files: [], report: null }, () => 'nothing new to fetch\n');
              return EXIT.ok;
            }
            return await checkFiles(app, tenant, outcome.files.map((f) => ({ path: f.tempPath, name: f.name, recordNumbers: f.records !== undefined })), o);
          } finally {
            outcome.cleanup();
          }
        }
        const { outcome, received, report } = await pullNow(app, tenant);
        if (outcome.record.status === 'failed') {
          printReport(o, outcome.report!);
          return EXIT.failed;
        }
        if (!report) {
          print(o, { fetch: outcome.record, files: received, report: null }, () =>
            (received.length ? received.map((f) => `${f.name}: ${f.status}\n${f.problems.map((p) => `  ${describeProblem(p)}\n`).join('')}`).join('') : 'nothing new to fetch\n'));
          return EXIT.ok;
        }
        printReport(o, report);
        return received.some((f) => f.status === 'rejected') || report.counts.failed > 0 ? EXIT.failed : EXIT.ok;
      });
    });
}

/** Fetches the tenant's source, receives what it handed over and reconciles, in this process. */
export async function pullNow(app: App, tenant: TenantConfig, env: NodeJS.ProcessEnv = process.env): Promise<{ outcome: FetchOutcome; received: ReceivedFile[]; report: Report | null }> {
  // A running service leaves the tenant's inbox to this process until the files are received.
  const claim = claimInbox(app.config.paths.tenantsRoot, tenant.id);
  if ('heldBy' in claim) throw new UsageError(`another wt-sync process (pid ${claim.heldBy}) is pulling tenant ${tenant.id} right now; try again when it has finished`);
  try {
    await resumeUnfinished(app, new Set([tenant.id]));
    const outcome = await runFetch(app, tenant, { trigger: 'pull', env });
    const received: ReceivedFile[] = [];
    for (const d of outcome.deliveries) {
      received.push(await receiveFile(app, tenant, d.inboxPath, { name: d.name, sha256: d.sha256, recordNumbers: d.recordNumbers }));
      await archiveInboxFile(app, tenant.id, d.inboxPath);
    }
    const report = received.length ? await reconcile(app, tenant, { kind: 'pull', fileIds: received.map((f) => f.id) }) : null;
    return { outcome, received, report };
  } finally {
    claim.release();
  }
}
