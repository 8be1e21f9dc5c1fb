// What every command shares: opening the app from --config, printing data as text or JSON, exit codes.
import fs from 'node:fs';
import { openApp, type App } from '../app.js';
import { ConfigError, tenantFile } from '../config/load.js';
import type { TenantConfig } from '../config/schema.js';
import { FILE_TYPES, type FileType } from '../model.js';
import type { Report } from '../report/report.js';
import { reportJson, reportLines, writeChunked } from '../report/text.js';

export const EXIT = { ok: 0, failed: 1, usage: 2 } as const;

/** A mistake in how the command was called: exit 2. */
export class UsageError extends Error {}

export interface GlobalOptions {
  config?: string;
  json?: boolean;
}

export async function withApp<T>(opts: GlobalOptions, fn: (app: App) => Promise<T>): Promise<T> {
  const app = openApp({ configPath: opts.config, logLevel: 'warn' });
  try {
    return await fn(app);
  } finally {
    app.close();
  }
}

export function requireTenant(app: App, id: string | undefined): TenantConfig {
  if (!id) throw new UsageError('missing --tenant ID');
  if (!fs.existsSync(tenantFile(app.config.paths.tenantsDir, id))) {
    throw new UsageError(`tenant "${id}" does not exist in ${app.config.paths.tenantsDir} (add it with \`wt-sync tenant add ${id}\`)`);
  }
  return app.tenant(id);
}

/** Every file argument must be a readable regular file, checked before anything is received. */
export function requireFiles(files: string[]): void {
  for (const file of files) {
    let stat: fs.Stats;
    try {
      stat = fs.statSync(file);
    } catch {
      throw new UsageError(`file not found: ${file}`);
    }
    if (!stat.isFile()) throw new UsageError(`not a file: ${file}`);
  }
}

export function parseRunId(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new UsageError(`run id must be a positive integer, got "${value}"`);
  return n;
}

export function print(opts: GlobalOptions, data: unknown, text: () => string): void {
  process.stdout.write(opts.json ? JSON.stringify(data, null, 2) + '\n' : text());
}

/** A report, as text or JSON, written in chunks (a first load's report can be very large). */
export function printReport(opts: GlobalOptions, report: Report): void {
  writeChunked(opts.json ? reportJson(report) : reportLines(report), (chunk) => process.stdout.write(chunk));
}

/** Turns an error into its exit code, printing it where a person looks. */
export function exitCodeFor(err: unknown): number {
  if (err instanceof UsageError) {
    process.stderr.write(`wt-sync: ${err.message}\n`);
    return EXIT.usage;
  }
  if (err instanceof ConfigError) {
    process.stderr.write(`wt-sync: configuration error:\n${err.message}\n`);
    return EXIT.failed;
  }
  process.stderr.write(`wt-sync: ${(err as Error).stack ?? String(err)}\n`);
  return EXIT.failed;
}

export function table(rows: object[], columns: string[]): string {
  const get = (r: object, c: string) => (r as Record<string, unknown>)[c];
  const cell = (v: unknown) => (v === null || v === undefined ? '' : Array.isArray(v) ? v.join(',') : String(v));
  const widths = columns.map((c) => Math.max(c.length, ...rows.map((r) => cell(get(r, c)).length)));
  const line = (vals: string[]) => vals.map((v, i) => v.padEnd(widths[i])).join('  ').trimEnd();
  return [line(columns), ...rows.map((r) => line(columns.map((c) => cell(get(r, c)))))].join('\n') + '\n';
}

/** `--type users|groups|segments`: the type of files whose names match no pattern; the tenant must map that type. */
export function parseFileType(tenant: TenantConfig, value: string | undefined): FileType | undefined {
  if (value === undefined) return undefined;
  if (!(FILE_TYPES as readonly string[]).includes(value)) throw new UsageError(`--type must be one of ${FILE_TYPES.join(', ')}, got "${value}"`);
  const type = value as FileType;
  if (!tenant.files[type]) throw new UsageError(`tenant ${tenant.id} has no ${type} file configured (files.${type} in its tenant file), so --type ${type} cannot be read`);
  return type;
}
