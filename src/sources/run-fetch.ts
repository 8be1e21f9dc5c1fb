// One fetch of a tenant's pulling source (api, sftp-pull): fetch into complete local files, then hand every file
// to intake (intake/handover.ts) — or, when the fetch fails, hand over nothing and record a `fetch-failed` run
// with its report in the tenant's /reports/. Each fetch leaves a record (fetch.json) beside its archived raw
// responses under <tenant>/fetches/<fetchId>/, which `status` and `check --replay` read.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { ensureTenantDirs, tenantDirs, type App } from '../app.js';
import type { TenantConfig } from '../config/schema.js';
import { deliver, type Delivery } from '../intake/handover.js';
import { buildReport, type Report } from '../report/report.js';
import { publish } from '../report/publish.js';
import { createRun, finishRun } from '../store/runs.js';
import { ApiSource } from './api.js';
import { SftpPullSource } from './sftp-pull.js';
import { FetchError, type FetchedFile, type FetchSummary, type Source } from './source.js';

export type FetchTrigger = 'schedule' | 'pull';

export interface FetchRecord {
  fetchId: string;
  tenant: string;
  source: string;
  trigger: FetchTrigger;
  startedAt: string;
  finishedAt: string;
  status: 'ok' | 'failed';
  summary: FetchSummary;
  files: { name: string; sha256: string; size: number; records?: number }[];
  error?: string;
  where?: string;
  /** The fetch-failed run. */
  runId?: number;
}

export interface FetchOutcome {
  record: FetchRecord;
  /** Files handed to intake (not a dry run). */
  deliveries: Delivery[];
  /** A dry run's files, in a temp folder the caller removes (`cleanup`). */
  files: FetchedFile[];
  /** The fetch-failed report (not a dry run). */
  report?: Report;
  cleanup(): void;
}

export function sourceFor(tenant: TenantConfig): Source | null {
  const s = tenant.source;
  if (s.type === 'api') return new ApiSource(s);
  if (s.type === 'sftp-pull') return new SftpPullSource(s);
  return null;
}

/** Fetch ids sort in time order: UTC stamp to the millisecond, then a random tail. */
function stamp(d: Date): string {
  return d.toISOString().replace(/[-:.]/g, '');
}

export async function runFetch(app: App, tenant: TenantConfig, o: { trigger: FetchTrigger; dryRun?: boolean; env?: NodeJS.ProcessEnv; source?: Source }): Promise<FetchOutcome> {
  const source = o.source ?? sourceFor(tenant);
  if (!source) throw new FetchError(`tenant ${tenant.id} has source type "${tenant.source.type}": customers upload, there is nothing to pull`);
  const dirs = ensureTenantDirs(app.config.paths, tenant.id);
  const started = app.now();
  const fetchId = `${stamp(started)}-${randomBytes(3).toString('hex')}`;
  const dryRun = o.dryRun === true;
  fs.mkdirSync(app.config.paths.tmpDir, { recursive: true });
  const workDir = dryRun ? fs.mkdtempSync(path.join(app.config.paths.tmpDir, 'dry-fetch-')) : dirs.partial;
  const archiveDir = dryRun ? null : path.join(dirs.fetches, fetchId);
  const log = app.logger.child({ tenant: tenant.id, source: tenant.source.type, fetchId });
  const cleanup = () => { if (dryRun) fs.rmSync(workDir, { recursive: true, force: true }); };
  const base = { fetchId, tenant: tenant.id, source: tenant.source.type, trigger: o.trigger, startedAt: started.toISOString() };
  log.info({ trigger: o.trigger, dryRun }, 'fetch started');
  let files: FetchedFile[] = [];
  try {
    const result = await source.fetch({ tenant, logger: log, workDir, archiveDir, stateDir: dirs.sourceState, dryRun, env: o.env ?? process.env, now: app.now });
    files = result.files;
    const deliveries: Delivery[] = [];
    if (!dryRun) {
      for (const f of files) deliveries.push(await deliver(app.config.paths.tenantsRoot, tenant.id, f.tempPath, f.name, { sha256: f.sha256, fsynced: false, recordNumbers: f.records !== undefined }));
      await result.commit?.();
    }
    const record: FetchRecord = {
      ...base, finishedAt: app.now().toISOString(), status: 'ok', summary: result.summary,
      files: files.map((f) => ({ name: f.name, sha256: f.sha256, size: f.size, ...(f.records !== undefined ? { records: f.records } : {}) })),
    };
    if (archiveDir) writeRecord(archiveDir, record);
    log.info({ summary: result.summary, files: record.files.map((f) => f.name) }, 'fetch completed');
    return { record, deliveries, files: dryRun ? files : [], cleanup };
  } catch (err) {
    for (const f of files) fs.rmSync(f.tempPath, { force: true });
    const fe = err instanceof FetchError ? err : new FetchError(`the fetch failed: ${(err as Error).message}`);
    const record: FetchRecord = { ...base, finishedAt: app.now().toISOString(), status: 'failed', summary: { files: 0 }, files: [], error: fe.message, ...(fe.where ? { where: fe.where } : {}) };
    let report: Report | undefined;
    if (!dryRun) {
      report = recordFetchFailure(app, tenant, record, fe.hint);
      record.runId = report.runId;
    }
    if (archiveDir) writeRecord(archiveDir, record);
    log.error({ error: fe.message, where: fe.where, runId: record.runId }, 'fetch failed: nothing was handed over, the previous snapshot stays');
    return { record, deliveries: [], files: [], report, cleanup };
  } finally {
    if (!dryRun) pruneFetches(dirs.fetches, app.config.service.archiveDays, app.now());
  }
}

/** A failed fetch is a run of its own: status `fetch-failed`, what failed and where, in /reports/ like any run. */
function recordFetchFailure(app: App, tenant: TenantConfig, record: FetchRecord, hint: string | undefined): Report {
  const createdAt = app.now().toISOString();
  const runId = createRun(app.db, tenant.id, { kind: 'fetch', fileIds: [] }, createdAt);
  const report = buildReport({
    runId, tenant: tenant.id, status: 'fetch-failed', trigger: record.trigger === 'pull' ? 'pull' : 'schedule', createdAt, files: [],
    fileProblems: [{
      level: 'file', file: `${record.source} fetch ${record.fetchId}`,
      message: `${record.error}${record.where ? ` — at ${record.where}` : ''}. Nothing was applied: the previous snapshot stays and nobody is removed`,
      hint: hint ?? 'the next scheduled fetch tries again; `wt-sync pull --tenant ' + tenant.id + '` retries now',
    }],
    plan: null, results: null,
  });
  finishRun(app.db, runId, { status: 'failed', report, now: createdAt });
  publish(app, report);
  return report;
}

function writeRecord(dir: string, record: FetchRecord): void {
  fs.mkdirSync(dir, { recursive: true });
  const tmp = path.join(dir, '.fetch.json.tmp');
  fs.writeFileSync(tmp, JSON.stringify(record, null, 2));
  fs.renameSync(tmp, path.join(dir, 'fetch.json'));
}

/** Archived fetches are kept like uploaded files: `archiveDays`. */
function pruneFetches(dir: string, archiveDays: number, now: Date): void {
  if (!fs.existsSync(dir)) return;
  const cutoff = stamp(new Date(now.getTime() - archiveDays * 86_400_000));
  for (const name of fs.readdirSync(dir)) if (/^\d{8}T\d{9}Z-/.test(name) && name < cutoff) fs.rmSync(path.join(dir, name), { recursive: true, force: true });
}

/** The newest fetch record of a tenant (status). */
export function lastFetch(app: App, tenantId: string): FetchRecord | undefined {
  const dir = tenantDirs(app.config.paths, tenantId).fetches;
  if (!fs.existsSync(dir)) return undefined;
  for (const name of fs.readdirSync(dir).sort().reverse()) {
    const record = readFetchRecord(path.join(dir, name));
    if (record) return record;
  }
  return undefined;
}

/** The record of an archived fetch (its fetch.json), if any. */
export function readFetchRecord(dir: string): FetchRecord | undefined {
  const file = path.join(dir, 'fetch.json');
  return fs.existsSync(file) ? (JSON.parse(fs.readFileSync(file, 'utf8')) as FetchRecord) : undefined;
}

/** The archive folder of one fetch, by its id. */
export function fetchArchive(app: App, tenantId: string, fetchId: string): string | undefined {
  if (!/^[0-9TZ]+-[0-9a-f]+$/.test(fetchId)) return undefined;
  const dir = path.join(tenantDirs(app.config.paths, tenantId).fetches, fetchId);
  return fs.existsSync(dir) ? dir : undefined;
}
