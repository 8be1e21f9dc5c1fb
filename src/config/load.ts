// Loads config/wt-sync.yaml and config/tenants/<id>.yaml. Errors name the file, the key, the bad value and what is allowed.
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import type { z } from 'zod';
import { serviceSchema, tenantSchema, TENANT_ID_PATTERN, type ServiceConfig, type TenantConfig } from './schema.js';

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

export interface Paths {
  dataDir: string;
  keysDir: string;
  tenantsDir: string;
  database: string;
  /** Per-tenant folders: SFTP home, inbox, archive. */
  tenantsRoot: string;
  /** Throwaway staging files while a file is parsed. */
  tmpDir: string;
}

export interface LoadedConfig {
  /** The service file read, or null when defaults apply. */
  file: string | null;
  service: ServiceConfig;
  paths: Paths;
}

export const DEFAULT_CONFIG_FILE = 'config/wt-sync.yaml';

/**
 * Reads the service config from `--config`, else WT_SYNC_CONFIG, else config/wt-sync.yaml when present.
 * Relative paths resolve against the working directory; WT_SYNC_DATA_DIR overrides the data folder.
 */
export function loadConfig(configPath?: string, env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): LoadedConfig {
  const explicit = configPath ?? env.WT_SYNC_CONFIG;
  const candidate = path.resolve(cwd, explicit ?? DEFAULT_CONFIG_FILE);
  let raw: unknown = {};
  let file: string | null = null;
  if (fs.existsSync(candidate)) {
    file = candidate;
    raw = readYaml(candidate) ?? {};
  } else if (explicit) {
    throw new ConfigError(`${candidate}: config file not found`);
  }
  const service = validate(serviceSchema, raw, file ?? '(defaults)');
  const dataDir = path.resolve(cwd, env.WT_SYNC_DATA_DIR || service.dataDir);
  const paths: Paths = {
    dataDir,
    keysDir: path.resolve(cwd, service.keysDir),
    tenantsDir: path.resolve(cwd, service.tenantsDir),
    database: path.join(dataDir, 'wt-sync.sqlite'),
    tenantsRoot: path.join(dataDir, 'tenants'),
    tmpDir: path.join(dataDir, 'tmp'),
  };
  return { file, service, paths };
}

export function tenantFile(tenantsDir: string, id: string): string {
  return path.join(tenantsDir, `${id}.yaml`);
}

export function loadTenant(tenantsDir: string, id: string): TenantConfig {
  if (!TENANT_ID_PATTERN.test(id)) throw new ConfigError(`tenant id "${id}" is invalid: use lower-case letters, digits, "-" and "_" (max 63), starting with a letter or digit`);
  const file = tenantFile(tenantsDir, id);
  if (!fs.existsSync(file)) throw new ConfigError(`tenant "${id}" does not exist: ${file} not found (create it with \`wt-sync tenant add ${id}\`)`);
  return { ...validate(tenantSchema, readYaml(file) ?? {}, file), id };
}

/** All tenants; a broken tenant file is an error naming that file (a service must not start half-configured). */
export function loadTenants(tenantsDir: string): TenantConfig[] {
  if (!fs.existsSync(tenantsDir)) return [];
  return fs
    .readdirSync(tenantsDir)
    .filter((f) => f.endsWith('.yaml') || f.endsWith('.yml'))
    .sort()
    .map((f) => loadTenant(tenantsDir, f.replace(/\.ya?ml$/, '')));
}

export function writeTenant(tenantsDir: string, id: string, body: unknown, header?: string): string {
  validate(tenantSchema, body, tenantFile(tenantsDir, id));
  fs.mkdirSync(tenantsDir, { recursive: true });
  const file = tenantFile(tenantsDir, id);
  const doc = new YAML.Document(body);
  if (header) doc.commentBefore = header;
  fs.writeFileSync(file, doc.toString({ lineWidth: 0 }), { flag: 'wx' });
  return file;
}

function readYaml(file: string): unknown {
  try {
    return YAML.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new ConfigError(`${file}: not valid YAML: ${(err as Error).message}`);
  }
}

function validate<S extends z.ZodType>(schema: S, raw: unknown, file: string): z.output<S> {
  const result = schema.safeParse(raw);
  if (result.success) return result.data;
  const lines = result.error.issues.map((issue) => {
    const key = issue.path.length ? issue.path.join('.') : '(top level)';
    if (issue.code === 'unrecognized_keys') {
      const where = issue.path.length ? `${key}: ` : '';
      return `${file}: ${where}unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')} (check the spelling; unknown keys are not ignored)`;
    }
    const value = valueAt(raw, issue.path);
    const got = value === undefined ? 'missing' : `got ${JSON.stringify(value)}`;
    return `${file}: ${key}: ${issue.message} (${got})`;
  });
  throw new ConfigError(lines.join('\n'));
}

function valueAt(root: unknown, keys: PropertyKey[]): unknown {
  let v: unknown = root;
  for (const k of keys) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<PropertyKey, unknown>)[k];
  }
  return v;
}

/**
 * Replaces a tenant file with `text` (an edited YAML document, comments kept by the caller): validated first,
 * then written to a temporary file beside it, fsynced and renamed, so a reader (the SFTP server at a login)
 * sees the old file or the new one, never half of one.
 */
export function replaceTenantFile(tenantsDir: string, id: string, text: string): void {
  const file = tenantFile(tenantsDir, id);
  let raw: unknown;
  try {
    raw = YAML.parse(text);
  } catch (err) {
    throw new ConfigError(`${file}: the edited file would not be valid YAML: ${(err as Error).message}`);
  }
  validate(tenantSchema, raw ?? {}, file);
  const tmp = path.join(tenantsDir, `.${id}.yaml.${process.pid}.tmp`);
  const mode = fs.existsSync(file) ? fs.statSync(file).mode & 0o777 : 0o644;
  const fd = fs.openSync(tmp, 'w', mode);
  try {
    fs.writeSync(fd, text);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  try {
    fs.renameSync(tmp, file);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err;
  }
}
