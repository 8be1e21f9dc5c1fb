// Staleness: a tenant that expects a file at least every `expect.everyHours` and has had none for longer.
import type { TenantConfig } from '../config/schema.js';

export interface Staleness {
  /** Hours allowed between files (the tenant's expect.everyHours). */
  everyHours: number;
  /** The latest file's arrival, or null when none arrived yet. */
  lastFileAt: string | null;
  /** When the tenant became stale (its last file, or the start of watching, plus everyHours); null when not stale. */
  staleSince: string | null;
  stale: boolean;
}

/**
 * `watchedSince` is when the service first watched a tenant that has never had a file: a new tenant is not
 * stale before it had the time to send its first one. Null when no service has watched it yet.
 */
export function stalenessOf(tenant: TenantConfig, lastFileAt: string | null, watchedSince: string | null, now: Date): Staleness | null {
  if (!tenant.expect) return null;
  const { everyHours } = tenant.expect;
  const from = lastFileAt ?? watchedSince;
  const dueAt = from === null ? null : Date.parse(from) + everyHours * 3600_000;
  const stale = dueAt !== null && now.getTime() > dueAt;
  return { everyHours, lastFileAt, staleSince: stale ? new Date(dueAt!).toISOString() : null, stale };
}
