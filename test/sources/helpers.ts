// Shared by the source tests: a workspace whose app logs into memory (to grep for secrets), tenant files
// written as given, and a scan of every file the run wrote.
import fs from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import YAML from 'yaml';
import { LOG_REDACT, openApp, type App } from '../../src/app.js';
import { makeWorkspace, spawnCli, type Workspace } from '../helpers/workspace.js';

export interface SourceWorkspace extends Workspace {
  logs: string[];
  /** The app, logging into `logs`. */
  app(now?: () => Date): App;
  writeTenant(id: string, body: Record<string, unknown>): void;
  /** The CLI without blocking this process (a server in this test must keep answering). */
  cliAsync(args: string[], env?: NodeJS.ProcessEnv): Promise<{ status: number | null; stdout: string; stderr: string }>;
  /** Every file under the workspace whose content holds `needle`. */
  filesContaining(needle: string): string[];
}

export function sourceWorkspace(): SourceWorkspace {
  const ws = makeWorkspace();
  const logs: string[] = [];
  const apps: App[] = [];
  const removeWorkspace = ws.cleanup;
  const sink = new Writable({ write(chunk, _e, cb) { logs.push(String(chunk)); cb(); } });
  return Object.assign(ws, {
    logs,
    app(now?: () => Date) {
      const app = openApp({ configPath: ws.configPath, logger: pino({ level: 'debug', redact: { paths: LOG_REDACT, censor: '[redacted]' } }, sink), now });
      apps.push(app);
      return app;
    },
    writeTenant(id: string, body: Record<string, unknown>) {
      fs.writeFileSync(path.join(ws.dir, 'config/tenants', `${id}.yaml`), YAML.stringify(body));
    },
    cliAsync(args: string[], env: NodeJS.ProcessEnv = {}) {
      const child = spawnCli(ws, args, { WT_SYNC_CONFIG: '', ...env });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c) => (stdout += c));
      child.stderr.on('data', (c) => (stderr += c));
      const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
      return new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => child.on('close', (status) => {
        clearTimeout(timer);
        logs.push(stdout, stderr); // the CLI's output is grepped for secrets like the log
        resolve({ status, stdout, stderr });
      }));
    },
    filesContaining(needle: string) {
      const hits: string[] = [];
      for (const e of fs.readdirSync(ws.dir, { recursive: true, withFileTypes: true })) {
        if (!e.isFile()) continue;
        const p = path.join(e.parentPath, e.name);
        if (fs.readFileSync(p).includes(needle)) hits.push(p);
      }
      return hits;
    },
    cleanup() {
      for (const a of apps) if (a.db.open) a.close();
      removeWorkspace();
    },
  });
}
