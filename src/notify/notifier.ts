// Follows the runs as they finish (read from the store, so runs of every trigger are seen, in order, also after a
// restart) and tells the world: metrics, a mail to the tenant's report recipients. Watches staleness too.
import type { App } from '../app.js';
import type { TenantConfig } from '../config/schema.js';
import type { ServiceMetrics } from '../http/metrics.js';
import { getRun } from '../store/runs.js';
import { lastFileTimes, latestRunCursor, runsFinishedAfter, type FinishedRun } from '../store/stats.js';
import type { Mailer } from './mailer.js';
import { runMail, staleMail } from './messages.js';
import { stalenessOf, type Staleness } from './staleness.js';
import { NotifyState } from './state.js';

export interface NotifierOptions {
  mailer: Mailer | null;
  metrics?: ServiceMetrics;
  tenants(): TenantConfig[];
  /** How often the store is asked for finished runs (default 2 s) and staleness checked (default 60 s). */
  pollMs?: number;
  staleCheckMs?: number;
}

export class Notifier {
  private readonly state: NotifyState;
  private readonly timers: NodeJS.Timeout[] = [];
  /** Per tenant: the stale period (its staleSince) and how many periods of it were already logged. */
  private readonly staleLogged = new Map<string, { since: string; periods: number }>();
  private stale = new Map<string, Staleness>();

  constructor(private readonly app: App, private readonly opts: NotifierOptions) {
    this.state = new NotifyState(app.config.paths.dataDir);
  }

  start(): void {
    // The first start mails nothing from history: it begins with the runs that finish from now on.
    this.state.data.runCursor ??= latestRunCursor(this.app.db);
    this.checkStaleness();
    this.state.save();
    this.timers.push(setInterval(() => this.poll(), this.opts.pollMs ?? 2000), setInterval(() => this.checkStaleness(), this.opts.staleCheckMs ?? 60_000));
    for (const t of this.timers) t.unref();
  }

  stop(): void {
    for (const t of this.timers) clearInterval(t);
    if (this.app.db.open) this.poll();
  }

  /** Handles every run finished since the last call; failures are logged and never stop the service. */
  poll(): void {
    try {
      for (;;) {
        const runs = runsFinishedAfter(this.app.db, this.state.data.runCursor!);
        if (runs.length === 0) return;
        for (const run of runs) {
          this.runFinished(run);
          this.state.data.runCursor = { finishedAt: run.finishedAt, id: run.id };
        }
        this.state.save();
      }
    } catch (err) {
      this.app.logger.error({ err: (err as Error).message }, 'finished runs could not be followed');
    }
  }

  private runFinished(run: FinishedRun): void {
    this.opts.metrics?.runFinished(run);
    const tenant = this.opts.tenants().find((t) => t.id === run.tenant);
    if (!tenant || !this.opts.mailer || tenant.reports.email.length === 0) return;
    const report = getRun(this.app.db, run.id)?.report;
    if (!report) return;
    const mail = runMail(report, tenant.name);
    this.opts.mailer.send({ to: tenant.reports.email, ...mail, about: { tenant: tenant.id, runId: run.id, mail: 'report' } });
  }

  /** Tenants stale now (as of the last check). */
  staleTenants(): Set<string> {
    return new Set([...this.stale].filter(([, s]) => s.stale).map(([id]) => id));
  }

  staleness(tenant: TenantConfig): Staleness | null {
    const watched = this.state.data.tenants[tenant.id]?.watchedSince ?? null;
    return stalenessOf(tenant, lastFileTimes(this.app.db).get(tenant.id) ?? null, watched, this.app.now());
  }

  checkStaleness(): void {
    try {
      const now = this.app.now();
      const lastFiles = lastFileTimes(this.app.db);
      const fresh = new Map<string, Staleness>();
      let changed = false;
      for (const t of this.opts.tenants()) {
        let st = this.state.data.tenants[t.id];
        if (!st) {
          st = this.state.data.tenants[t.id] = { watchedSince: now.toISOString() };
          changed = true;
        }
        const s = stalenessOf(t, lastFiles.get(t.id) ?? null, st.watchedSince, now);
        if (!s) continue;
        fresh.set(t.id, s);
        if (!s.stale) {
          this.staleLogged.delete(t.id);
          continue;
        }
        // One warning per expected period while it stays stale, not one per check.
        const periods = Math.floor((now.getTime() - Date.parse(s.staleSince!)) / (s.everyHours * 3600_000)) + 1;
        const logged = this.staleLogged.get(t.id);
        if (!logged || logged.since !== s.staleSince || logged.periods < periods) {
          this.staleLogged.set(t.id, { since: s.staleSince!, periods });
          this.app.logger.warn({ tenant: t.id, everyHours: s.everyHours, lastFileAt: s.lastFileAt, staleSince: s.staleSince }, `tenant ${t.id} is stale: no file for more than ${s.everyHours} hours`);
        }
        if (st.staleMailedFor !== s.staleSince) {
          st.staleMailedFor = s.staleSince!;
          changed = true;
          if (this.opts.mailer && t.reports.email.length) this.opts.mailer.send({ to: t.reports.email, ...staleMail(t, s), about: { tenant: t.id, mail: 'stale' } });
        }
      }
      this.stale = fresh;
      if (changed) this.state.save();
    } catch (err) {
      this.app.logger.error({ err: (err as Error).message }, 'staleness could not be checked');
    }
  }
}
