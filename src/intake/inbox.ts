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
import { inboxRelativeName } from '../sftp/tenant-store.js';
import { receiveFile } from './receive.js';

export interface InboxOptions {
  /** Days processed files stay in the tenant's archive. */
  archiveDays: number;
  /** Overrides every tenant's settle window (tests, benchmarks). */
  settleSecondsOverride?: number;
  /** chokidar's awaitWriteFinish for files that arrive by other means than our SFTP server. */
  stabilityMs?: number;
}

export class Inbox {
  private watcher: FSWatcher | undefined;
  private readonly chains = new Map<string, Promise<void>>();
  private readonly seen = new Set<string>();
  private readonly settleTimers = new Map<string, NodeJS.Timeout>();
  private readonly cronTasks: ScheduledTask[] = [];
  private archiveTimer: NodeJS.Timeout | undefined;
  private stopping = false;

  constructor(private readonly app: App, private readonly tenants: () => TenantConfig[], private readonly opts: InboxOptions) {}

  async start(): Promise<void> {
    const tenants = this.tenants();
    for (const t of tenants) ensureTenantDirs(this.app.config.paths, t.id);
    // Work a crash left behind first: unfinished runs, accepted files without a run.
    await resumeUnfinished(this.app, new Set(tenants.map((t) => t.id)));
    for (const t of tenants) {
      if (t.sync.trigger === 'cron') {
        this.cronTasks.push(cron.schedule(t.sync.cron, () => this.enqueue(t.id, () => this.reconcileNow(t.id, 'schedule')), { timezone: t.sync.timezone, name: `sync-${t.id}` }));
      }
    }
    const stability = this.opts.stabilityMs ?? 1000;
    this.watcher = watch(tenants.map((t) => tenantDirs(this.app.config.paths, t.id).inbox), {
      ignoreInitial: false,
      awaitWriteFinish: { stabilityThreshold: stability, pollInterval: Math.max(50, Math.floor(stability / 4)) },
      // Dot-files are temporary by convention (editors, rsync); they are never snapshot files.
      ignored: (p: string) => path.basename(p).startsWith('.'),
    });
    this.watcher.on('add', (file) => this.fileArrived(file));
    this.watcher.on('error', (err) => this.app.logger.error({ err }, 'inbox watcher error'));
    await new Promise<void>((resolve) => this.watcher!.once('ready', () => resolve()));
    this.cleanArchive();
    this.archiveTimer = setInterval(() => this.cleanArchive(), 6 * 3600_000).unref();
  }

  /** A file is in an inbox (from our SFTP server, which moved it there atomically, or seen by the watcher). */
  fileArrived(file: string): void {
    if (this.stopping || this.seen.has(file)) return;
    const tenant = this.tenantOf(file);
    if (!tenant) return;
    this.seen.add(file);
    this.enqueue(tenant.id, async () => {
      if (!fs.existsSync(file)) return; // processed already, e.g. by both the SFTP hook and the watcher
      const inbox = tenantDirs(this.app.config.paths, tenant.id).inbox;
      // Our SFTP server gives each upload its own arrival folder (inbox/<stamp>-<seq>/<name>); other files sit at the top.
      const name = inboxRelativeName(inbox, file);
      await receiveFile(this.app, tenant, file, { name });
      this.archive(tenant.id, file, inbox);
      this.seen.delete(file);
      this.scheduleSettle(tenant);
    });
  }

  private tenantOf(file: string): TenantConfig | undefined {
    const rel = path.relative(this.app.config.paths.tenantsRoot, file).split(path.sep);
    if (rel.length < 3 || rel[1] !== 'inbox') return undefined;
    return this.tenants().find((t) => t.id === rel[0]);
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

  private archive(tenantId: string, file: string, inbox: string): void {
    const day = this.app.now().toISOString().slice(0, 10);
    const target = path.join(tenantDirs(this.app.config.paths, tenantId).archive, day, path.relative(inbox, file));
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.renameSync(file, target);
    // Remove the now-empty arrival folders up to the inbox itself.
    for (let dir = path.dirname(file); dir.startsWith(inbox + path.sep); dir = path.dirname(dir)) {
      try {
        fs.rmdirSync(dir);
      } catch {
        break;
      }
    }
  }

  private cleanArchive(): void {
    const cutoff = new Date(this.app.now().getTime() - this.opts.archiveDays * 86_400_000).toISOString().slice(0, 10);
    for (const t of this.tenants()) {
      const archive = tenantDirs(this.app.config.paths, t.id).archive;
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
   * Stops taking files and lets in-flight work finish (bounded by graceMs). A settle window still open is left
   * to the next start, which reconciles every accepted file that has no run yet.
   */
  async stop(graceMs = 30_000): Promise<void> {
    this.stopping = true;
    for (const task of this.cronTasks) await task.stop();
    clearInterval(this.archiveTimer);
    await this.watcher?.close();
    for (const timer of this.settleTimers.values()) clearTimeout(timer);
    this.settleTimers.clear();
    const all = Promise.all([...this.chains.values()]);
    await Promise.race([all, new Promise((r) => setTimeout(r, graceMs).unref())]);
  }

  /** Resolves when every queued task has finished (tests, benchmarks). */
  async idle(): Promise<void> {
    while (this.chains.size > 0) await Promise.all([...this.chains.values()]);
  }
}
