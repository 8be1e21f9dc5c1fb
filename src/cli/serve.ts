// `wt-sync serve`: the SFTP server, the inbox watcher with its sync triggers, and the HTTP listener.
import type { Command } from 'commander';
import fs from 'node:fs';
import path from 'node:path';
import { openApp, type App } from '../app.js';
import { loadTenant, loadTenants, tenantFile, writeTenant } from '../config/load.js';
import { DEFAULT_PATTERNS, SEED_COLUMNS, SEED_HEADERS } from '../config/tenant-template.js';
import { ServiceMetrics } from '../http/metrics.js';
import { startHttpServer } from '../http/server.js';
import { Mailer, mailSettings } from '../notify/mailer.js';
import { Notifier } from '../notify/notifier.js';
import type { TenantConfig } from '../config/schema.js';
import { serviceVersion } from '../http/version.js';
import { databaseProblem } from '../store/health.js';
import { Inbox } from '../intake/inbox.js';
import { SourceScheduler } from '../sources/scheduler.js';
import { FILE_TYPES } from '../model.js';
import { ensureHostKey, generateClientKeyPair } from '../sftp/host-key.js';
import { startSftpServer } from '../sftp/server.js';
import { UsageError, type GlobalOptions } from './common.js';

interface ServeOptions extends GlobalOptions {
  sftpPort?: string;
  httpPort?: string;
  settleSeconds?: string;
}

export function register(program: Command): void {
  program
    .command('serve')
    .description('run the service: SFTP server (default :2222), inbox watcher and sync triggers, HTTP health on 127.0.0.1:8080')
    .option('--sftp-port <port>', 'SFTP port (env WT_SYNC_SFTP_PORT; 0 = any free port)')
    .option('--http-port <port>', 'HTTP port (env WT_SYNC_HTTP_PORT; 0 = any free port)')
    .option('--settle-seconds <s>', "override every tenant's settle window (seconds)")
    .action(async (opts: ServeOptions, cmd: Command) => {
      const o = { ...cmd.optsWithGlobals(), ...opts } as ServeOptions;
      await serve(o);
    });
}

function port(flag: string | undefined, env: string | undefined, fallback: number, name: string): number {
  const raw = flag ?? env;
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new UsageError(`${name} must be a port number 0–65535, got "${raw}"`);
  return n;
}

async function serve(o: ServeOptions): Promise<void> {
  const app = openApp({ configPath: o.config });
  const { service, paths } = app.config;
  const sftpPort = port(o.sftpPort, process.env.WT_SYNC_SFTP_PORT, service.sftp.port, 'SFTP port');
  const httpPort = port(o.httpPort, process.env.WT_SYNC_HTTP_PORT, service.http.port, 'HTTP port');
  const settle = o.settleSeconds === undefined ? undefined : Number(o.settleSeconds);
  if (settle !== undefined && !(settle >= 0)) throw new UsageError(`--settle-seconds must be a number ≥ 0, got "${o.settleSeconds}"`);

  const hostKey = ensureHostKey(paths.keysDir);
  const demo = loadTenants(paths.tenantsDir).length === 0 ? createDemoTenant(app) : null;
  const httpHost = process.env.WT_SYNC_HTTP_HOST || service.http.host;
  const tenants = loadTenants(paths.tenantsDir);

  // The tenants as last read without error: metrics labels, mails and the API use them between readings.
  let knownTenants: TenantConfig[] = tenants;
  const currentTenants = (): TenantConfig[] => {
    try {
      knownTenants = loadTenants(paths.tenantsDir);
    } catch (err) {
      app.logger.warn({ err: (err as Error).message }, 'tenant files could not be read; using the last good reading');
    }
    return knownTenants;
  };
  const tenantIds = () => knownTenants.map((t) => t.id);
  // A tenant added since the last reading logs in at once: read the files again before counting it.
  const known = (id: string) => {
    if (!knownTenants.some((t) => t.id === id)) currentTenants();
    return id;
  };
  const tenantRefresh = setInterval(currentTenants, 10_000);
  tenantRefresh.unref();
  const mail = mailSettings(service);
  const mailer = mail ? new Mailer(mail, app.logger) : null;
  let notifier: Notifier | undefined;
  const metrics = new ServiceMetrics({ db: app.db, tenantIds, staleTenants: () => notifier?.staleTenants() ?? new Set(), now: app.now });
  notifier = new Notifier(app, { mailer, metrics, tenants: () => knownTenants });
  const running = { watcher: false, sftp: false };

  const inbox = new Inbox(app, () => loadTenants(paths.tenantsDir), { archiveDays: service.archiveDays, settleSecondsOverride: settle });
  await inbox.start();
  // Pulling sources (api, sftp-pull) fetch on their schedules and hand their files to the inbox like uploads.
  const sources = new SourceScheduler(app, () => loadTenants(paths.tenantsDir), (d) => inbox.fileArrived(d.inboxPath, d));
  sources.start();
  // A listener that cannot start ends the process (non-zero, one line): a service listening on nothing would
  // look alive to Docker and systemd and never be restarted.
  const cannotListen = async (what: string, host: string, listenPort: number, err: unknown, started: { close(): Promise<void> }[]): Promise<never> => {
    const e = err as NodeJS.ErrnoException;
    const why = e.code === 'EADDRINUSE' ? 'the port is already in use' : e.code === 'EACCES' ? 'permission denied' : e.message;
    app.logger.fatal({ event: 'listen_failed', listener: what, host, port: listenPort, code: e.code, err: e.message }, `cannot listen for ${what}`);
    process.stderr.write(`wt-sync: cannot listen for ${what} on ${host}:${listenPort}: ${why}${e.code && why !== e.message ? ` (${e.code})` : ''}\n`);
    for (const s of started) await s.close().catch(() => undefined);
    await inbox.stop(1000).catch(() => undefined);
    app.close();
    process.exit(1);
  };
  running.watcher = true;
  notifier.start();
  const sftp = await startSftpServer({
    host: service.sftp.host,
    port: sftpPort,
    hostKey: hostKey.key,
    tenantsRoot: paths.tenantsRoot,
    // Read at each login, so a key added to a tenant file works without a restart.
    access: { authorizedKeys: (id) => (fs.existsSync(tenantFile(paths.tenantsDir, id)) ? loadTenant(paths.tenantsDir, id).keys : undefined) },
    onUploadComplete: (upload) => {
      metrics.upload(known(upload.tenantId), upload.size);
      inbox.fileArrived(upload.inboxPath, { sha256: upload.sha256, size: upload.size });
    },
    logger: app.logger,
    events: { login: (t) => metrics.login(known(t)), authFailure: () => metrics.authFailure(), ban: () => metrics.ban() },
    limits: {
      maxFileBytes: service.sftp.maxFileBytes,
      tenantQuotaBytes: service.sftp.tenantQuotaBytes ?? Infinity,
      tenantMaxEntries: service.sftp.tenantMaxEntries,
      maxStartups: service.sftp.maxStartups,
      maxSessionsPerTenant: service.sftp.maxSessionsPerTenant,
      maxConnectionsPerAddress: service.sftp.maxConnectionsPerAddress,
      idleTimeoutMs: service.sftp.idleTimeoutSeconds * 1000,
      ban: { maxFailures: service.sftp.ban.maxFailures, windowMs: service.sftp.ban.windowMinutes * 60_000, banMs: service.sftp.ban.banMinutes * 60_000 },
    },
  }).catch((err) => cannotListen('SFTP', service.sftp.host, sftpPort, err, []));
  running.sftp = true;
  const apiToken = process.env.WT_SYNC_API_TOKEN || undefined;
  const http = await startHttpServer({
    host: httpHost,
    port: httpPort,
    logger: app.logger,
    metrics,
    readiness: [
      { name: 'database', problem: () => databaseProblem(app.db, paths.database) },
      { name: 'sftp', problem: () => (running.sftp ? null : 'the SFTP server is not listening') },
      { name: 'watcher', problem: () => (running.watcher ? null : 'the inbox watcher is not running') },
    ],
    api: { app, token: apiToken, tenants: currentTenants, staleness: (t) => notifier!.staleness(t), version: serviceVersion() },
  }).catch((err) => cannotListen('HTTP', httpHost, httpPort, err, [{ close: () => sftp.close(0) }]));

  app.logger.info({ sftpPort: sftp.port, httpPort: http.port, hostKey: hostKey.fingerprint, tenants: tenants.map((t) => t.id) }, 'wt-sync serving');
  const out = [
    `wt-sync serving ${tenants.length} tenant(s): ${tenants.map((t) => t.id).join(', ')}`,
    `  SFTP  ${service.sftp.host}:${sftp.port}   host key ${hostKey.fingerprint}`,
    `  HTTP  http://${httpHost}:${http.port}/healthz`,
    `        http://${httpHost}:${http.port}/readyz, /metrics; API /api/v1/ ${apiToken ? 'on (bearer token from WT_SYNC_API_TOKEN)' : 'off (set WT_SYNC_API_TOKEN to enable it)'}`,
    `  mail  ${mail ? `reports via ${mail.host}:${mail.port}` : 'off (no smtp.host / WT_SYNC_SMTP_HOST)'}`,
  ];
  if (demo) {
    out.push(
      '',
      `No tenant was set up, so a "demo" tenant was created (${path.relative(process.cwd(), demo.tenantFile)}) with a client key.`,
      'Upload the example files and read the report back:',
      `  echo 'put examples/*.csv' | sftp -b - -i ${path.relative(process.cwd(), demo.privateKeyPath)} -P ${sftp.port} -o StrictHostKeyChecking=accept-new demo@localhost`,
      `  echo 'ls reports' | sftp -b - -i ${path.relative(process.cwd(), demo.privateKeyPath)} -P ${sftp.port} demo@localhost`,
    );
  }
  process.stdout.write(out.join('\n') + '\n');

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    app.logger.info({ signal }, 'shutting down: no new connections, finishing uploads and runs');
    running.sftp = false;
    await sftp.close(20_000);
    await sources.stop(30_000);
    running.watcher = false;
    await inbox.stop(30_000);
    clearInterval(tenantRefresh);
    notifier!.stop();
    await mailer?.close();
    await http.close();
    app.close();
    app.logger.info('stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
  await new Promise(() => undefined); // serve until a signal
}

/**
 * The embedded default a newcomer can try at once: a demo tenant with the seed's columns and a fresh key pair.
 * Where the tenant folder is read-only (a container with mounted config), the service starts without tenants.
 */
function createDemoTenant(app: App): { tenantFile: string; privateKeyPath: string } | null {
  try {
    return writeDemoTenant(app);
  } catch (err) {
    app.logger.warn({ err: (err as Error).message }, 'no tenant is configured and no demo tenant could be created: add files to the tenants folder');
    return null;
  }
}

function writeDemoTenant(app: App) {
  const { paths } = app.config;
  const keyDir = path.join(paths.keysDir, 'tenants', 'demo');
  const pair = fs.existsSync(path.join(keyDir, 'id_ed25519'))
    ? { privateKeyPath: path.join(keyDir, 'id_ed25519'), publicKeyLine: fs.readFileSync(path.join(keyDir, 'id_ed25519.pub'), 'utf8').trim() }
    : generateClientKeyPair(keyDir, 'wt-sync demo tenant');
  const files = Object.fromEntries(FILE_TYPES.map((t) => [t, { pattern: DEFAULT_PATTERNS[t], columns: SEED_COLUMNS[t], header: SEED_HEADERS[t] }]));
  const file = writeTenant(paths.tenantsDir, 'demo', { name: 'Demo tenant', keys: [pair.publicKeyLine], files }, ' Created by the first `wt-sync serve`: the demo tenant, with the customer guide\'s column order.');
  app.logger.info({ tenant: 'demo', file }, 'created demo tenant');
  return { tenantFile: file, privateKeyPath: pair.privateKeyPath };
}
