// The running service's parts, opened once and handed to every command: config, database, target, logger, clock.
import fs from 'node:fs';
import path from 'node:path';
import v8 from 'node:v8';
import pino, { type Logger } from 'pino';
import { loadConfig, loadTenant, type LoadedConfig, type Paths } from './config/load.js';
import type { TenantConfig } from './config/schema.js';
import { tenantDirs as dirsOf, type TenantDirs } from './config/tenant-dirs.js';
import { openDatabase, type Db } from './store/db.js';
import { EmbeddedTarget } from './targets/embedded.js';
import { ScimTarget } from './targets/scim.js';
import type { Target } from './targets/target.js';

export interface App {
  config: LoadedConfig;
  db: Db;
  logger: Logger;
  /** Injected so tests can move time (grace periods, purges). */
  now: () => Date;
  tenant(id: string): TenantConfig;
  target(tenant: TenantConfig): Target;
  close(): void;
}

export interface OpenOptions {
  configPath?: string;
  logger?: Logger;
  /** Log level when no logger is given; commands other than `serve` log warnings only (env WT_SYNC_LOG_LEVEL wins). */
  logLevel?: string;
  now?: () => Date;
}

/** Secrets never reach the logs, whatever a caller passes in. */
export const LOG_REDACT = [
  ...['privateKey', 'password', 'pass', 'token', 'apiToken', 'secret', 'passphrase', 'authorization'].flatMap((k) => [k, `*.${k}`]),
  'headers.authorization', 'req.headers.authorization', '*.headers.authorization', '*.auth.pass', '*.auth.user', 'smtp.password',
];

export function createLogger(level: string, destination = 2): Logger {
  // Synchronous writes: a log line written before a crash is never lost in a buffer.
  return pino({ level, redact: { paths: LOG_REDACT, censor: '[redacted]' } }, pino.destination({ dest: destination, sync: true }));
}

/**
 * V8 grows its heap after each full collection by a factor it picks from the collector's speed, up to 4× what was
 * live: a run that makes garbage fast (100k users parsed, planned, applied) let the heap run far past its live tens
 * of MB. A fixed 1.5× keeps the peak near what is live, with no cap to run out of (a bad 1M-row file's problems
 * still fit) and, measured with bench:ingest, no loss of speed: a first load of 100k users peaked at about 215 MB
 * instead of about 248 MB, the bench's product process at about 230 MB instead of about 300 MB. V8 reads the flag
 * at each full collection (it sizes nothing at start-up), so setting it here holds from here on, for every face of
 * the service and for the bench and tests that open it the same way.
 */
const HEAP_GROWING_PERCENT = 50;

export function openApp(opts: OpenOptions = {}): App {
  v8.setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
  const config = loadConfig(opts.configPath);
  const db = openDatabase(config.paths.database);
  const logger = opts.logger ?? createLogger(process.env.WT_SYNC_LOG_LEVEL || opts.logLevel || config.service.log.level);
  const embedded = new EmbeddedTarget(db);
  // One SCIM target per tenant (its client, its pauses); the embedded directory is every target's mirror.
  const scim = new Map<string, ScimTarget>();
  const targetOf = (tenant: TenantConfig): Target => {
    if (tenant.target.type !== 'scim') return embedded;
    let t = scim.get(tenant.id);
    if (!t || JSON.stringify(t.config) !== JSON.stringify(tenant.target)) {
      t?.close();
      t = new ScimTarget(db, tenant.id, tenant.target, logger);
      scim.set(tenant.id, t);
    }
    return t;
  };
  return {
    config,
    db,
    logger,
    now: opts.now ?? (() => new Date()),
    tenant: (id) => loadTenant(config.paths.tenantsDir, id),
    target: targetOf,
    close: () => {
      for (const t of scim.values()) t.close();
      db.close();
    },
  };
}

/** A tenant's folders under the configured data folder (see config/tenant-dirs.ts). */
export function tenantDirs(paths: Paths, tenant: string): TenantDirs {
  return dirsOf(paths.tenantsRoot, tenant);
}

export function ensureTenantDirs(paths: Paths, tenant: string): TenantDirs {
  const dirs = tenantDirs(paths, tenant);
  for (const dir of Object.values(dirs)) fs.mkdirSync(dir, { recursive: true });
  return dirs;
}
