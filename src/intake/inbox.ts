// The running intake: files that land in a tenant's inbox are received one at a time per tenant (tenants in
// parallel), archived, and the tenant is reconciled once its upload settles, or on its cron schedule.
// Which files still wait for a run is read from the database, so a restart loses nothing.
import { watch, type FSWatcher } from 'chokidar';
import fs from 'node:fs';
import path from 'node:path';
import cron, { type ScheduledTask } from 'node-cron';
import { ensureTenantDirs, tenantDirs, type App } from '../app.js';
import type { TenantConfig } from '../config/schema.js';
import { reconcile, resumeUnfinished } from '../apply/run.js';
import { unreconciledFiles } from '../store/files.js';
import { carriedFor, forgetCarried, type Carried, inboxRelativeName, removeEmptyArrivalFolders } from './handover.js';
import { claimedElsewhere } from './inbox-claim.js';
import { receiveFile } from './receive.js';

export interface InboxOptions {
  /** Days processed files stay in the tenant's archive. */
  archiveDays: number;
  /** Overrides every tenant's settle window (tests, benchmarks). */
  settleSecondsOverride?: number;
  /** chokidar's awaitWriteFinish for files that arrive by other means than our SFTP server. */
  stabilityMs?: number;
  /** How often the tenant files are re-read (new tenants, changed schedules) and inboxes re-scanned. */
  refreshMs?: number;
}

interface CronEntry { key: string; task: ScheduledTask }

export class Inbox {
  private watcher: FSWatcher | undefined;
  private readonly chains = new Map<string, Promise<void>>();
  private readonly seen = new Set<string>();
  private readonly settleTimers = new Map<string, NodeJS.Timeout>();
  private readonly cronTasks = new Map<string, CronEntry>();
  /** Tenants as last read from their files; a file is always processed with its tenant file read afresh. */
  private tenants = new Map<string, TenantConfig>();
  private timers: NodeJS.Timeout[] = [];
  private stopping = false;

  /** `loadTenants` reads every tenant file; it may throw (a broken file), and then the last good list stays. */
  constructor(private readonly app: App, private readonly loadTenants: () => TenantConfig[], private readonly opts: InboxOptions) {}

  async start(): Promise<void> {
    this.tenants = new Map(this.loadTenants().map((t) => [t.id, t]));
    for (const id of this.tenants.keys()) ensureTenantDirs(this.app.config.paths, id);
    // Work a crash left behind first: unfinished runs, accepted files without a run.
    await resumeUnfinished(this.app, new Set(this.tenants.keys()));
    const stability = this.opts.stabilityMs ?? 1000;
    this.watcher = watch([...this.tenants.keys()].map((id) => tenantDirs(this.app.config.paths, id).inbox), {
      ignoreInitial: false,
      awaitWriteFinish: { stabilityThreshold: stability, pollInterval: Math.max(50, Math.floor(stability / 4)) },
      // Dot-files are temporary by convention (editors, rsync); they are never snapshot files.
      ignored: (p: string) => path.basename(p).startsWith('.'),
    });
    this.watcher.on('add', (file) => this.fileArrived(file));
    this.watcher.on('error', (err) => this.app.logger.error({ err }, 'inbox watcher error'));
    await new Promise<void>((resolve) => this.watcher!.once('ready', () => resolve()));
    this.syncSchedules();
    this.cleanArchive();
    this.timers = [
      setInterval(() => this.refresh(), this.opts.refreshMs ?? 10_000),
      setInterval(() => this.cleanArchive(), 6 * 3600_000),
    ];
    for (const t of this.timers) t.unref();
  }

  /** Re-reads the tenant files: a tenant added while serving is watched at once; schedules follow their files. */
  refresh(): void {
    if (this.stopping) return;
    let fresh: TenantConfig[];
    try {
      fresh = this.loadTenants();
    } catch (err) {
      this.app.logger.error({ err: (err as Error).message }, 'tenant files could not be read; keeping the tenants as they were');
      return;
    }
    const added = fresh.filter((t) => !this.tenants.has(t.id));
    this.tenants = new Map(fresh.map((t) => [t.id, t]));
    for (const t of added) {
      const { inbox } = ensureTenantDirs(this.app.config.paths, t.id);
      this.watcher?.add(inbox);
      this.app.logger.info({ tenant: t.id }, 'new tenant: watching its inbox');
    }
    this.syncSchedules();
    this.rescan();
  }

  /** Files left in an inbox (e.g. one that failed to process) are picked up again. */
  private rescan(): void {
    for (const id of this.tenants.keys()) {
      const inbox = tenantDirs(this.app.config.paths, id).inbox;
      if (!fs.existsSync(inbox)) continue;
      for (const entry of fs.readdirSync(inbox, { recursive: true, withFileTypes: true })) {
        if (!entry.isFile() || entry.name.startsWith('.')) continue;
        const file = path.join(entry.parentPath, entry.name);
        // Young files may still be arriving by other means: the watcher reports them once they are stable.
        if (Date.now() - fs.statSync(file).mtimeMs > 60_000) this.fileArrived(file);
      }
    }
  }

  /** One cron task per tenant with a cron trigger, replaced when its schedule changes. */
  private syncSchedules(): void {
    for (const [id, entry] of this.cronTasks) {
      const t = this.tenants.get(id);
      const key = t?.sync.trigger === 'cron' ? `${t.sync.cron}@${t.sync.timezone}` : '';
      if (key !== entry.key) {
        void entry.task.stop();
        this.cronTasks.delete(id);
      }
    }
    for (const t of this.tenants.values()) {
      if (t.sync.trigger !== 'cron' || this.cronTasks.has(t.id)) continue;
      const task = cron.schedule(t.sync.cron, () => this.enqueue(t.id, () => this.reconcileNow(t.id, 'schedule')), { timezone: t.sync.timezone, name: `sync-${t.id}` });
      this.cronTasks.set(t.id, { key: `${t.sync.cron}@${t.sync.timezone}`, task });
    }
  }

  /** A file is in an inbox (handed over by a source through intake/handover.ts, or seen by the watcher). */
  fileArrived(file: string, handed?: Carried): void {
    if (this.stopping || this.seen.has(file)) return;
    const tenantId = this.tenantOf(file);
    if (!tenantId) return;
    this.seen.add(file);
    this.enqueue(tenantId, async () => {
      try {
        if (!fs.existsSync(file)) return; // processed already, e.g. by both the SFTP hook and the watcher
        // `wt-sync pull` is receiving this tenant in its own process: what it leaves is picked up by a later rescan.
        if (claimedElsewhere(this.app.config.paths.tenantsRoot, tenantId)) return;
        const tenant = this.app.tenant(tenantId);
        const inbox = tenantDirs(this.app.config.paths, tenantId).inbox;
        // Each delivered file has its own arrival folder (inbox/<stamp>-<seq>/<name>); other files sit at the top.
        const carried = handed ?? carriedFor(file);
        await receiveFile(this.app, tenant, file, { name: inboxRelativeName(inbox, file), sha256: carried?.sha256, recordNumbers: carried?.recordNumbers });
        await this.archive(tenantId, file);
        this.scheduleSettle(tenant);
      } finally {
        this.seen.delete(file);
      }
    });
  }

  /** The tenant whose inbox holds `file`; an unknown tenant (added since the last read) makes the files be read again. */
  private tenantOf(file: string): string | undefined {
    const rel = path.relative(this.app.config.paths.tenantsRoot, file).split(path.sep);
    if (rel.length < 3 || rel[1] !== 'inbox') return undefined;
    if (!this.tenants.has(rel[0])) this.refresh();
    return this.tenants.has(rel[0]) ? rel[0] : undefined;
  }

  private scheduleSettle(tenant: TenantConfig): void {
    if (tenant.sync.trigger !== 'onUpload') return; // cron tenants wait for their schedule
    const seconds = this.opts.settleSecondsOverride ?? tenant.sync.settleSeconds;
    clearTimeout(this.settleTimers.get(tenant.id));
    this.settleTimers.set(tenant.id, setTimeout(() => {
      this.settleTimers.delete(tenant.id);
      this.enqueue(tenant.id, () => this.reconcileNow(tenant.id, 'upload'));
    }, seconds * 1000));
  }

  private async reconcileNow(tenantId: string, kind: 'upload' | 'schedule'): Promise<void> {
    const tenant = this.app.tenant(tenantId);
    const fileIds = unreconciledFiles(this.app.db, tenantId).map((f) => f.id);
    if (kind === 'upload' && fileIds.length === 0) return;
    await reconcile(this.app, tenant, { kind, fileIds });
  }

  /** Serialises work per tenant; a failure is logged and never stops the tenant's later work. */
  private enqueue(tenantId: string, task: () => Promise<void>): void {
    const previous = this.chains.get(tenantId) ?? Promise.resolve();
    const next = previous.then(task).catch((err) => this.app.logger.error({ tenant: tenantId, err }, 'intake task failed'));
    this.chains.set(tenantId, next);
    void next.then(() => {
      if (this.chains.get(tenantId) === next) this.chains.delete(tenantId);
    });
  }

  private async archive(tenantId: string, file: string): Promise<void> {
    await archiveInboxFile(this.app, tenantId, file);
  }

  private cleanArchive(): void {
    const cutoff = new Date(this.app.now().getTime() - this.opts.archiveDays * 86_400_000).toISOString().slice(0, 10);
    for (const id of this.tenants.keys()) {
      const archive = tenantDirs(this.app.config.paths, id).archive;
      if (!fs.existsSync(archive)) continue;
      for (const day of fs.readdirSync(archive)) {
        if (/^\d{4}-\d{2}-\d{2}$/.test(day) && day < cutoff) fs.rmSync(path.join(archive, day), { recursive: true, force: true });
      }
    }
  }

  /** True while files or runs are in progress. */
  get busy(): boolean {
    return this.chains.size > 0;
  }

  /**
   * Stops taking files and lets in-flight work finish (bounded by graceMs). A settle window still open is cut
   * short: its tenant is reconciled now, within the grace, so files accepted while stopping get their run and
   * report before exit. What the grace does not allow is left to the next start, which reconciles every accepted
   * file that has no run yet. Cron tenants keep waiting for their schedule.
   */
  async stop(graceMs = 30_000): Promise<void> {
    this.stopping = true;
    for (const { task } of this.cronTasks.values()) await task.stop();
    for (const t of this.timers) clearInterval(t);
    await this.watcher?.close();
    for (const [tenantId, timer] of this.settleTimers) {
      clearTimeout(timer);
      this.enqueue(tenantId, () => this.reconcileNow(tenantId, 'upload'));
    }
    this.settleTimers.clear();
    const all = Promise.all([...this.chains.values()]);
    await Promise.race([all, new Promise((r) => setTimeout(r, graceMs).unref())]);
  }

  /** Resolves when every queued task has finished (tests, benchmarks). */
  async idle(): Promise<void> {
    while (this.chains.size > 0) await Promise.all([...this.chains.values()]);
  }
}

/** A received file leaves the inbox for the tenant's archive (archive/<day>/<arrival folder>/<name>). */
export async function archiveInboxFile(app: App, tenantId: string, file: string): Promise<void> {
  const inbox = tenantDirs(app.config.paths, tenantId).inbox;
  const day = app.now().toISOString().slice(0, 10);
  const target = path.join(tenantDirs(app.config.paths, tenantId).archive, day, path.relative(inbox, file));
  fs.mkdirSync(path.dirname(target), { recursive: true });
  fs.renameSync(file, target);
  forgetCarried(file);
  await removeEmptyArrivalFolders(inbox, file);
}
