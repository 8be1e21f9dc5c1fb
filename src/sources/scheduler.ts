// Fetches each pulling tenant's source (api, sftp-pull) at its `source.schedule` in its `source.timezone`
// (node-cron 4). A fetch still running when the next one is due is skipped and logged, never stacked.
// Tenant files are re-read periodically, so a changed schedule follows its file.
import cron, { type ScheduledTask } from 'node-cron';
import type { Logger } from 'pino';
import type { App } from '../app.js';
import type { TenantConfig } from '../config/schema.js';
import type { Delivery } from '../intake/handover.js';
import { runFetch, type FetchOutcome, type FetchTrigger } from './run-fetch.js';

interface Entry { key: string; task: ScheduledTask }

/** node-cron's own messages, into pino. */
export function cronLogger(logger: Logger) {
  const log = logger.child({ component: 'node-cron' });
  return {
    info: (m: string) => log.info(m),
    warn: (m: string) => log.warn(m),
    error: (m: string | Error, err?: Error) => log.error({ err: err ?? (m instanceof Error ? m : undefined) }, m instanceof Error ? m.message : m),
    debug: (m: string | Error, err?: Error) => log.debug({ err }, m instanceof Error ? m.message : m),
  };
}

function scheduleKey(t: TenantConfig): string {
  return t.source.type === 'upload' ? '' : `${t.source.schedule}@${t.source.timezone}`;
}

export interface SchedulerOptions {
  /** How often tenant files are re-read for changed schedules. */
  refreshMs?: number;
  env?: NodeJS.ProcessEnv;
}

export class SourceScheduler {
  private readonly tasks = new Map<string, Entry>();
  private readonly running = new Map<string, Promise<FetchOutcome | null>>();
  private timer: NodeJS.Timeout | undefined;
  private stopping = false;
  private readonly cronLog;

  constructor(
    private readonly app: App,
    private readonly loadTenants: () => TenantConfig[],
    private readonly onDelivered: (d: Delivery) => void,
    private readonly opts: SchedulerOptions = {},
  ) {
    this.cronLog = cronLogger(app.logger);
    cron.setLogger(this.cronLog);
  }

  start(): void {
    this.refresh();
    this.timer = setInterval(() => this.refresh(), this.opts.refreshMs ?? 10_000);
    this.timer.unref();
  }

  refresh(): void {
    if (this.stopping) return;
    let tenants: TenantConfig[];
    try {
      tenants = this.loadTenants();
    } catch (err) {
      this.app.logger.error({ err: (err as Error).message }, 'tenant files could not be read; keeping the source schedules as they were');
      return;
    }
    const byId = new Map(tenants.map((t) => [t.id, t]));
    for (const [id, entry] of this.tasks) {
      const t = byId.get(id);
      if (!t || scheduleKey(t) !== entry.key) {
        void entry.task.destroy();
        this.tasks.delete(id);
      }
    }
    for (const t of tenants) {
      if (t.source.type === 'upload' || this.tasks.has(t.id)) continue;
      const id = t.id;
      const task = cron.schedule(t.source.schedule, () => void this.fetchNow(id, 'schedule'), { timezone: t.source.timezone, name: `source-${id}`, logger: this.cronLog });
      this.tasks.set(id, { key: scheduleKey(t), task });
      this.app.logger.info({ tenant: id, source: t.source.type, schedule: t.source.schedule, timezone: t.source.timezone, nextRun: task.getNextRun() }, 'source scheduled');
    }
  }

  /** The next scheduled fetch of a tenant, when it has one. */
  nextRun(tenantId: string): Date | null {
    return this.tasks.get(tenantId)?.task.getNextRun() ?? null;
  }

  /**
   * Fetches a tenant's source now and hands the files to intake. Returns null when a fetch of that tenant is
   * still running (skipped and logged).
   */
  fetchNow(tenantId: string, trigger: FetchTrigger): Promise<FetchOutcome | null> {
    if (this.stopping) return Promise.resolve(null);
    if (this.running.has(tenantId)) {
      this.app.logger.warn({ tenant: tenantId, trigger }, 'previous fetch still running; this fetch is skipped');
      return Promise.resolve(null);
    }
    const p = (async () => {
      try {
        const tenant = this.app.tenant(tenantId);
        const outcome = await runFetch(this.app, tenant, { trigger, env: this.opts.env });
        for (const d of outcome.deliveries) this.onDelivered(d);
        return outcome;
      } catch (err) {
        this.app.logger.error({ tenant: tenantId, err }, 'fetch could not run');
        return null;
      } finally {
        this.running.delete(tenantId);
      }
    })();
    this.running.set(tenantId, p);
    return p;
  }

  get busy(): boolean {
    return this.running.size > 0;
  }

  /** Stops the schedules and lets running fetches finish (bounded). */
  async stop(graceMs = 30_000): Promise<void> {
    this.stopping = true;
    clearInterval(this.timer);
    for (const { task } of this.tasks.values()) await task.destroy();
    this.tasks.clear();
    await Promise.race([Promise.all([...this.running.values()]), new Promise((r) => setTimeout(r, graceMs).unref())]);
  }
}

/** When a tenant's schedule fires next (for `status`, outside the service). */
export async function nextScheduledRun(t: TenantConfig): Promise<Date | null> {
  if (t.source.type === 'upload') return null;
  const task = cron.createTask(t.source.schedule, () => undefined, { timezone: t.source.timezone });
  try {
    await task.start();
    return task.getNextRun();
  } finally {
    await task.destroy();
  }
}
