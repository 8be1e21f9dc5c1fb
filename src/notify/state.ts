// What the notifier must remember across restarts, in <dataDir>/notify-state.json: how far the feed of finished
// runs has been mailed, when each tenant was first watched, and which stale periods were already announced.
// A small JSON file replaced atomically (it is not part of the database's schema, which other work migrates).
import fs from 'node:fs';
import path from 'node:path';
import type { RunCursor } from '../store/stats.js';

export interface TenantNotifyState {
  /** When a service first watched this tenant (staleness of a tenant that never sent a file counts from here). */
  watchedSince: string;
  /** The staleSince of the stale period already mailed (one mail per period). */
  staleMailedFor?: string;
}

export interface NotifyStateData {
  runCursor: RunCursor | null;
  tenants: Record<string, TenantNotifyState>;
}

export class NotifyState {
  readonly file: string;
  data: NotifyStateData;

  constructor(dataDir: string) {
    this.file = path.join(dataDir, 'notify-state.json');
    this.data = NotifyState.read(this.file);
  }

  static read(file: string): NotifyStateData {
    try {
      const d = JSON.parse(fs.readFileSync(file, 'utf8')) as NotifyStateData;
      return { runCursor: d.runCursor ?? null, tenants: d.tenants ?? {} };
    } catch {
      return { runCursor: null, tenants: {} };
    }
  }

  /** Read-only view for commands other than serve (`status`). */
  static watchedSince(dataDir: string): Map<string, string> {
    const d = NotifyState.read(path.join(dataDir, 'notify-state.json'));
    return new Map(Object.entries(d.tenants).map(([id, t]) => [id, t.watchedSince]));
  }

  save(): void {
    const tmp = `${this.file}.${process.pid}.tmp`;
    fs.mkdirSync(path.dirname(this.file), { recursive: true });
    fs.writeFileSync(tmp, JSON.stringify(this.data, null, 1) + '\n');
    fs.renameSync(tmp, this.file);
  }
}
