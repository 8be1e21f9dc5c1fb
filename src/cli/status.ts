// `wt-sync status [--tenant T]`: per tenant, the latest files and runs, and any run waiting for approval.
import type { Command } from 'commander';
import { loadTenants } from '../config/load.js';
import { listFiles } from '../store/files.js';
import { listRuns } from '../store/runs.js';
import type { App } from '../app.js';
import type { TenantConfig } from '../config/schema.js';
import { lastFetch, type FetchRecord } from '../sources/run-fetch.js';
import { nextScheduledRun } from '../sources/scheduler.js';
import { NotifyState } from '../notify/state.js';
import { stalenessOf } from '../notify/staleness.js';
import { lastFileTimes } from '../store/stats.js';
import { quarantineOf } from '../store/scim-mirror.js';
import { print, requireTenant, table, withApp, type GlobalOptions } from './common.js';

export function register(program: Command): void {
  program
    .command('status')
    .description('show the latest files and runs per tenant, and runs held for approval')
    .option('--tenant <id>', 'only this tenant')
    .option('--json', 'print as JSON')
    .action(async (opts: GlobalOptions & { tenant?: string }, cmd: Command) => {
      const o = { ...cmd.optsWithGlobals(), ...opts } as GlobalOptions & { tenant?: string };
      await withApp(o, async (app) => {
        const tenants = o.tenant ? [requireTenant(app, o.tenant)] : loadTenants(app.config.paths.tenantsDir);
        const sources = new Map(await Promise.all(tenants.map(async (t) => [t.id, await sourceStatus(app, t)] as const)));
        const lastFiles = lastFileTimes(app.db);
        const watched = NotifyState.watchedSince(app.config.paths.dataDir);
        const data = tenants.map((t) => {
          const runs = listRuns(app.db, t.id, 10);
          return {
            tenant: t.id,
            name: t.name,
            files: listFiles(app.db, t.id, 10).map(({ problems, ...f }) => ({ ...f, problems: problems.length })),
            runs,
            heldRuns: runs.filter((r) => r.status === 'held').map((r) => r.id),
            source: sources.get(t.id)!,
            staleness: stalenessOf(t, lastFiles.get(t.id) ?? null, watched.get(t.id) ?? null, app.now()),
            target: t.target.type,
            quarantine: t.target.type === 'scim' ? quarantineOf(app.db, t.id) : null,
          };
        });
        print(o, data, () =>
          data.map((t) => [
            `tenant ${t.tenant} (${t.name})`,
            sourceLine(t.source),
            ...(t.staleness?.stale ? [`  STALE: no file for more than ${t.staleness.everyHours} hours (${t.staleness.lastFileAt ? `last file ${t.staleness.lastFileAt}` : 'no file yet'})`] : []),
            ...(t.quarantine ? [`  QUARANTINED since ${t.quarantine.since}: ${t.quarantine.reason}\n  nothing is sent to the ${t.target} target until: wt-sync resume --tenant ${t.tenant}`] : []),
            t.heldRuns.length ? `  HELD: run ${t.heldRuns.join(', ')} waits for approval: wt-sync approve --tenant ${t.tenant} ${t.heldRuns[0]}` : '  nothing held',
            '  files:', indent(t.files.length ? table(t.files, ['id', 'name', 'type', 'status', 'validRows', 'dataRows', 'receivedAt', 'runId']) : '(none)\n'),
            '  runs:', indent(t.runs.length ? table(t.runs.map((r) => ({ ...r, trigger: r.trigger.kind })), ['id', 'status', 'trigger', 'createdAt', 'finishedAt']) : '(none)\n'),
          ].join('\n')).join('\n') + (data.length ? '' : 'no tenants\n'));
      });
    });
}

function indent(s: string): string {
  return s.split('\n').map((l) => (l ? `    ${l}` : l)).join('\n');
}

interface SourceStatus {
  type: string;
  schedule?: string;
  timezone?: string;
  nextRun: string | null;
  lastFetch: Pick<FetchRecord, 'fetchId' | 'startedAt' | 'finishedAt' | 'status' | 'summary' | 'error' | 'where' | 'runId'> | null;
}

/** A tenant's source: its kind, its schedule and next run, and how its last fetch went. */
async function sourceStatus(app: App, t: TenantConfig): Promise<SourceStatus> {
  if (t.source.type === 'upload') return { type: 'upload', nextRun: null, lastFetch: null };
  const f = lastFetch(app, t.id);
  const next = await nextScheduledRun(t);
  return {
    type: t.source.type, schedule: t.source.schedule, timezone: t.source.timezone, nextRun: next ? next.toISOString() : null,
    lastFetch: f ? { fetchId: f.fetchId, startedAt: f.startedAt, finishedAt: f.finishedAt, status: f.status, summary: f.summary, ...(f.error ? { error: f.error } : {}), ...(f.where ? { where: f.where } : {}), ...(f.runId ? { runId: f.runId } : {}) } : null,
  };
}

function sourceLine(s: SourceStatus): string {
  if (s.type === 'upload') return '  source: upload (customers upload to our SFTP server)';
  const f = s.lastFetch;
  const last = !f ? 'never fetched'
    : `last fetch ${f.fetchId} at ${f.startedAt}: ${f.status}` + (f.status === 'ok'
      ? ` (${f.summary.records !== undefined ? `${f.summary.records} records, ` : ''}${f.summary.files} file${f.summary.files === 1 ? '' : 's'})`
      : ` — ${f.error}${f.runId ? ` (run ${f.runId})` : ''}`);
  return `  source: ${s.type}, schedule "${s.schedule}" ${s.timezone}, next run ${s.nextRun ?? '—'}\n  ${last}`;
}
