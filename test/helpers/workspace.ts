// A throwaway service workspace (config, tenants, data) in a temp folder, with the app or the CLI driven against it.
import { spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import YAML from 'yaml';
import { createLogger, openApp, type App } from '../../src/app.js';
import { SEED_COLUMNS, SEED_HEADERS } from '../../src/config/tenant-template.js';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const CLI = path.join(REPO, 'src/cli.ts');
export const SEED = path.join(REPO, 'test/fixtures/seed');
/** tsx resolved from the repository, so the CLI runs from any working directory. */
export const TSX = pathToFileURL(path.join(REPO, 'node_modules/tsx/dist/loader.mjs')).href;

export interface Workspace {
  dir: string;
  configPath: string;
  /** Writes (or overwrites) the tenant file; `overrides` are merged over the seed-order default. */
  tenant(id: string, overrides?: Record<string, unknown>): void;
  /** Writes a file into the workspace and returns its path. */
  file(name: string, content: string | Buffer): string;
  open(now?: () => Date): App;
  cli(args: string[], env?: NodeJS.ProcessEnv): SpawnSyncReturns<string>;
  cleanup(): void;
}

export function seedTenant(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name: 'Acme',
    files: {
      users: { pattern: '*user*.csv', columns: SEED_COLUMNS.users, header: SEED_HEADERS.users },
      groups: { pattern: '*group*.csv', columns: SEED_COLUMNS.groups, header: SEED_HEADERS.groups },
      segments: { pattern: '*segment*.csv', columns: SEED_COLUMNS.segments, header: SEED_HEADERS.segments },
    },
    ...overrides,
  };
}

export function makeWorkspace(): Workspace {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wt-sync-test-'));
  const configPath = path.join(dir, 'config/wt-sync.yaml');
  fs.mkdirSync(path.join(dir, 'config/tenants'), { recursive: true });
  fs.writeFileSync(configPath, YAML.stringify({ dataDir: path.join(dir, 'data'), keysDir: path.join(dir, 'keys'), tenantsDir: path.join(dir, 'config/tenants') }));
  const apps: App[] = [];
  return {
    dir,
    configPath,
    tenant(id, overrides) {
      fs.writeFileSync(path.join(dir, 'config/tenants', `${id}.yaml`), YAML.stringify(seedTenant(overrides)));
    },
    file(name, content) {
      const p = path.join(dir, 'in', name);
      fs.mkdirSync(path.dirname(p), { recursive: true });
      fs.writeFileSync(p, content);
      return p;
    },
    open(now) {
      const app = openApp({ configPath, logger: createLogger('silent'), now });
      apps.push(app);
      return app;
    },
    cli(args, env = {}) {
      return spawnSync(process.execPath, ['--import', TSX, CLI, '--config', configPath, ...args], {
        cwd: dir, encoding: 'utf8', env: { ...process.env, WT_SYNC_CONFIG: '', ...env }, timeout: 60_000, maxBuffer: 256 * 1024 * 1024,
      });
    },
    cleanup() {
      for (const app of apps) if (app.db.open) app.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Starts the CLI without waiting, for crash tests. */
export function spawnCli(ws: Workspace, args: string[], env: NodeJS.ProcessEnv = {}) {
  return spawn(process.execPath, ['--import', TSX, CLI, '--config', ws.configPath, ...args], {
    cwd: ws.dir, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'],
  });
}

export const USERS_HEADER = SEED_HEADERS.users.join(';');

/** One users-file row in seed order from a partial record. */
export function userRow(u: { id: string; first?: string; last?: string; username?: string; email?: string; title?: string; groups?: string; admin?: string; segments?: string; status?: string; language?: string; phone?: string }): string {
  return [
    u.id, u.first ?? 'First', u.last ?? `Last-${u.id}`, u.username ?? `${u.id}@example.com`, u.email ?? `${u.id}@example.com`, u.phone ?? '',
    u.title ?? '', '', '', '', '', u.groups ?? '', u.admin ?? '', u.segments ?? '', u.status ?? 'Active', u.language ?? '',
  ].join(';');
}

export function usersCsv(rows: Parameters<typeof userRow>[0][]): string {
  return [USERS_HEADER, ...rows.map(userRow)].join('\n') + '\n';
}
