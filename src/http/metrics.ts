// The service's Prometheus metrics (GET /metrics). Label values are tenant ids of configured tenants and small
// fixed sets (file and run statuses, operation kinds), never file names or user input: the series stay bounded.
import client, { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Db } from '../store/db.js';
import { fileCountsByStatus, heldRemovalCounts, lastFileTimes, lastSuccessfulRunTimes, runCountsByStatus, type FinishedRun } from '../store/stats.js';

export interface MetricsSource {
  db: Db;
  /** Ids of the configured tenants: the only tenant label values. */
  tenantIds(): string[];
  /** Tenants currently stale (expected a file and had none for longer). */
  staleTenants(): Set<string>;
  now(): Date;
}

const OPERATION_KINDS = ['created', 'updated', 'removed', 'restored', 'purged', 'linked', 'unlinked', 'held', 'failed'] as const;

export class ServiceMetrics {
  readonly registry = new Registry();
  private readonly uploads: Counter<'tenant'>;
  private readonly uploadBytes: Counter<'tenant'>;
  private readonly logins: Counter<'tenant'>;
  private readonly authFailures: Counter;
  private readonly bans: Counter;
  private readonly operations: Counter<'tenant' | 'kind'>;
  private readonly runDuration: Histogram<'tenant'>;

  constructor(private readonly source: MetricsSource) {
    const registers = [this.registry];
    client.collectDefaultMetrics({ register: this.registry, prefix: 'wt_sync_' });
    this.uploads = new Counter({ name: 'wt_sync_uploads_total', help: 'Files uploaded over SFTP (completed uploads)', labelNames: ['tenant'], registers });
    this.uploadBytes = new Counter({ name: 'wt_sync_upload_bytes_total', help: 'Bytes of completed SFTP uploads', labelNames: ['tenant'], registers });
    this.logins = new Counter({ name: 'wt_sync_sftp_logins_total', help: 'Successful SFTP logins', labelNames: ['tenant'], registers });
    // Failed logins name no tenant: the user name of a failed login is whatever a stranger typed.
    this.authFailures = new Counter({ name: 'wt_sync_sftp_auth_failures_total', help: 'Failed SFTP authentication attempts', registers });
    this.bans = new Counter({ name: 'wt_sync_sftp_bans_total', help: 'Addresses banned after repeated failed logins', registers });
    this.operations = new Counter({ name: 'wt_sync_operations_total', help: 'Operations of finished runs by outcome kind (created, updated, …, held, failed)', labelNames: ['tenant', 'kind'], registers });
    this.runDuration = new Histogram({
      name: 'wt_sync_run_duration_seconds', help: 'Time from a run starting to its outcome being recorded', labelNames: ['tenant'], registers,
      buckets: [0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900, 1800],
    });
    const known = () => new Set(this.source.tenantIds());
    new Gauge({
      name: 'wt_sync_files', help: 'Received files by status', labelNames: ['tenant', 'status'], registers,
      collect() {
        this.reset();
        const tenants = known();
        for (const r of fileCountsByStatus(source.db)) if (tenants.has(r.tenant)) this.set({ tenant: r.tenant, status: r.status }, r.count);
      },
    });
    new Gauge({
      name: 'wt_sync_runs', help: 'Runs by outcome (applied, held, approved, superseded, rejected, failed, pending)', labelNames: ['tenant', 'status'], registers,
      collect() {
        this.reset();
        const tenants = known();
        for (const r of runCountsByStatus(source.db)) if (tenants.has(r.tenant)) this.set({ tenant: r.tenant, status: r.status }, r.count);
      },
    });
    new Gauge({
      name: 'wt_sync_held_removals', help: 'User removals held back by runs waiting for approval', labelNames: ['tenant'], registers,
      collect() {
        this.reset();
        const held = heldRemovalCounts(source.db);
        for (const t of known()) this.set({ tenant: t }, held.get(t) ?? 0);
      },
    });
    new Gauge({
      name: 'wt_sync_last_successful_sync_timestamp_seconds', help: 'When the latest run that changed the directory finished (unix time)', labelNames: ['tenant'], registers,
      collect() {
        this.reset();
        const times = lastSuccessfulRunTimes(source.db);
        for (const t of known()) if (times.has(t)) this.set({ tenant: t }, Date.parse(times.get(t)!) / 1000);
      },
    });
    new Gauge({
      name: 'wt_sync_seconds_since_last_file', help: 'Seconds since the latest file of the tenant arrived', labelNames: ['tenant'], registers,
      collect() {
        this.reset();
        const times = lastFileTimes(source.db);
        const now = source.now().getTime();
        for (const t of known()) if (times.has(t)) this.set({ tenant: t }, Math.max(0, (now - Date.parse(times.get(t)!)) / 1000));
      },
    });
    new Gauge({
      name: 'wt_sync_tenant_stale', help: '1 when the tenant expects a file (expect.everyHours) and has had none for longer', labelNames: ['tenant'], registers,
      collect() {
        this.reset();
        const stale = source.staleTenants();
        for (const t of known()) this.set({ tenant: t }, stale.has(t) ? 1 : 0);
      },
    });
  }

  private tenantLabel(tenant: string): string | null {
    return this.source.tenantIds().includes(tenant) ? tenant : null;
  }

  upload(tenant: string, bytes: number): void {
    const t = this.tenantLabel(tenant);
    if (t === null) return;
    this.uploads.inc({ tenant: t });
    this.uploadBytes.inc({ tenant: t }, bytes);
  }

  login(tenant: string): void {
    const t = this.tenantLabel(tenant);
    if (t !== null) this.logins.inc({ tenant: t });
  }

  authFailure(): void {
    this.authFailures.inc();
  }

  ban(): void {
    this.bans.inc();
  }

  runFinished(run: FinishedRun): void {
    const t = this.tenantLabel(run.tenant);
    if (t === null) return;
    const seconds = (Date.parse(run.finishedAt) - Date.parse(run.createdAt)) / 1000;
    if (Number.isFinite(seconds) && seconds >= 0) this.runDuration.observe({ tenant: t }, seconds);
    if (!run.counts) return;
    for (const kind of OPERATION_KINDS) if (run.counts[kind] > 0) this.operations.inc({ tenant: t, kind }, run.counts[kind]);
  }

  async text(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
