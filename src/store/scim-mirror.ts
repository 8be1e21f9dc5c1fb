// What a SCIM target keeps beside the embedded directory, its mirror of what was applied remotely: the provider's
// `id` of every user and group it made or adopted, and the tenant's quarantine (docs/targets.md). The tables are
// created on first use (IF NOT EXISTS), so a database without any SCIM tenant never has them.
import type { Db } from './db.js';

export type ScimKind = 'user' | 'group' | 'segment';

export interface Quarantine { reason: string; since: string }

export function ensureScimTables(db: Db): void {
  db.exec(`
    CREATE TABLE IF NOT EXISTS scim_ids (
      tenant TEXT NOT NULL,
      kind TEXT NOT NULL CHECK (kind IN ('user', 'group', 'segment')),
      external_id TEXT NOT NULL,
      scim_id TEXT NOT NULL,
      PRIMARY KEY (tenant, kind, external_id)
    ) WITHOUT ROWID;
    -- A tenant whose SCIM target stopped being applied to (401/403, or too many failures), until \`wt-sync resume\`.
    CREATE TABLE IF NOT EXISTS scim_quarantine (
      tenant TEXT PRIMARY KEY,
      reason TEXT NOT NULL,
      since TEXT NOT NULL
    ) WITHOUT ROWID;
  `);
}

export class ScimMirror {
  private readonly s;
  constructor(private readonly db: Db) {
    ensureScimTables(db);
    this.s = {
      get: db.prepare('SELECT scim_id FROM scim_ids WHERE tenant = ? AND kind = ? AND external_id = ?').pluck(),
      set: db.prepare('INSERT INTO scim_ids (tenant, kind, external_id, scim_id) VALUES (?, ?, ?, ?) ON CONFLICT (tenant, kind, external_id) DO UPDATE SET scim_id = excluded.scim_id'),
      drop: db.prepare('DELETE FROM scim_ids WHERE tenant = ? AND kind = ? AND external_id = ?'),
      all: db.prepare('SELECT external_id, scim_id FROM scim_ids WHERE tenant = ? AND kind = ?').raw(),
    };
  }

  id(tenant: string, kind: ScimKind, externalId: string): string | undefined {
    return this.s.get.get(tenant, kind, externalId) as string | undefined;
  }

  setId(tenant: string, kind: ScimKind, externalId: string, scimId: string): void {
    this.s.set.run(tenant, kind, externalId, scimId);
  }

  dropId(tenant: string, kind: ScimKind, externalId: string): void {
    this.s.drop.run(tenant, kind, externalId);
  }

  ids(tenant: string, kind: ScimKind): Map<string, string> {
    return new Map(this.s.all.all(tenant, kind) as [string, string][]);
  }
}

export function quarantineOf(db: Db, tenant: string): Quarantine | null {
  ensureScimTables(db);
  return (db.prepare('SELECT reason, since FROM scim_quarantine WHERE tenant = ?').get(tenant) as Quarantine | undefined) ?? null;
}

export function setQuarantine(db: Db, tenant: string, reason: string, since: string): void {
  ensureScimTables(db);
  db.prepare('INSERT INTO scim_quarantine (tenant, reason, since) VALUES (?, ?, ?) ON CONFLICT (tenant) DO NOTHING').run(tenant, reason, since);
}

/** Lifts a quarantine; true when there was one. */
export function liftQuarantine(db: Db, tenant: string): boolean {
  ensureScimTables(db);
  return db.prepare('DELETE FROM scim_quarantine WHERE tenant = ?').run(tenant).changes > 0;
}
