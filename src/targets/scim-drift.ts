// Drift: where WT's SCIM directory no longer matches the mirror of what we applied (someone changed WT by hand, or
// another provisioning client did). Reads every remote user and group, paged; changes nothing.
import type { DirectoryState } from '../plan/types.js';
import { directoryView } from './directory-view.js';
import { comparedFields, EXTENSION_LISTS, expectedField, sameList, userFieldsOf, userListsOf, type UserFields } from './scim-resources.js';
import type { ScimTarget } from './scim.js';

/** A user attribute that differs; the extension's lists (`segments`, `adminOf`) as sorted external IDs. */
export interface FieldDrift { externalId: string; field: string; mirror: string | string[] | null; remote: string | string[] | null }
export interface MembershipDrift { group: string; missing: string[]; extra: string[] }

export interface Drift {
  tenant: string;
  /** In the mirror, not in WT. */
  missing: { users: string[]; groups: string[] };
  /** In WT with an externalId (provisioned, not made by hand) that the mirror does not have. */
  extra: { users: string[]; groups: string[] };
  fields: FieldDrift[];
  memberships: MembershipDrift[];
  drift: boolean;
}

export async function scimDrift(target: ScimTarget, tenant: string, dir: DirectoryState): Promise<Drift> {
  const client = target.client();
  const o = target.config;
  const view = directoryView(dir);
  const remoteUsers = new Map<string, any>();
  const externalOf = new Map<string, string>();
  for await (const u of client.list('Users')) {
    if (typeof u.externalId === 'string') remoteUsers.set(u.externalId, u);
    externalOf.set(u.id, typeof u.externalId === 'string' ? u.externalId : `#${u.id}`);
  }
  const remoteGroups = new Map<string, any>();
  for await (const g of client.list('Groups')) if (typeof g.externalId === 'string') remoteGroups.set(g.externalId, g);

  const drift: Drift = { tenant, missing: { users: [], groups: [] }, extra: { users: [], groups: [] }, fields: [], memberships: [], drift: false };
  const ours = new Set<string>();
  for (const u of view.users) {
    if (u.externalId === null) continue;
    ours.add(u.externalId);
    const remote = remoteUsers.get(u.externalId);
    if (!remote) {
      // Deleted on purpose (userRemoval: delete, or purged) is not drift.
      if (u.removedAt === null || o.userRemoval === 'deactivate') drift.missing.users.push(u.externalId);
      continue;
    }
    const { memberOf: _m, adminOf: _a, segments: _s, ...scalars } = u;
    const mirror: UserFields = { ...scalars, status: u.removedAt !== null ? 'inactive' : u.status };
    const have = userFieldsOf(remote, o);
    for (const field of comparedFields(o)) {
      const want = expectedField(mirror, field);
      if ((have[field] ?? null) !== want) drift.fields.push({ externalId: u.externalId, field, mirror: want, remote: have[field] ?? null });
    }
    if (o.userExtension) {
      const remoteLists = userListsOf(remote, o);
      for (const field of EXTENSION_LISTS) {
        // Segments and groups made by hand in WT (no external ID) are never in the lists we send.
        const want = u[field].filter((id) => !id.startsWith('#')).sort();
        if (!sameList(want, remoteLists[field])) drift.fields.push({ externalId: u.externalId, field, mirror: want, remote: remoteLists[field] });
      }
    }
  }
  for (const externalId of remoteUsers.keys()) if (!ours.has(externalId)) drift.extra.users.push(externalId);

  const groups: { remoteExternalId: string; name: string; members: string[] }[] = view.groups
    .filter((g) => g.externalId !== null)
    .map((g) => ({ remoteExternalId: g.externalId!, name: g.externalId!, members: view.users.filter((u) => u.memberOf.includes(g.externalId!)).map((u) => u.externalId ?? '') }));
  if (o.segments === 'groups') {
    for (const s of view.segments) {
      if (s.externalId === null) continue;
      groups.push({ remoteExternalId: `segment:${s.externalId}`, name: `segment:${s.externalId}`, members: view.users.filter((u) => u.segments.includes(s.externalId!)).map((u) => u.externalId ?? '') });
    }
  }
  const ourGroups = new Set(groups.map((g) => g.remoteExternalId));
  for (const g of groups) {
    const remote = remoteGroups.get(g.remoteExternalId);
    if (!remote) {
      drift.missing.groups.push(g.name);
      continue;
    }
    const want = new Set(g.members.filter((m) => m !== ''));
    const have = new Set<string>((remote.members ?? []).map((m: any) => externalOf.get(m.value) ?? `#${m.value}`));
    const missing = [...want].filter((m) => !have.has(m)).sort();
    const extra = [...have].filter((m) => !want.has(m)).sort();
    if (missing.length || extra.length) drift.memberships.push({ group: g.name, missing, extra });
  }
  for (const externalId of remoteGroups.keys()) if (!ourGroups.has(externalId)) drift.extra.groups.push(externalId);
  drift.drift = drift.missing.users.length + drift.missing.groups.length + drift.extra.users.length + drift.extra.groups.length + drift.fields.length + drift.memberships.length > 0;
  return drift;
}

export function driftLines(d: Drift): string {
  if (!d.drift) return `tenant ${d.tenant}: no drift, WT's SCIM directory matches what was applied\n`;
  const out = [`tenant ${d.tenant}: WT's SCIM directory differs from what was applied`];
  for (const id of d.missing.users) out.push(`  missing user ${id}`);
  for (const id of d.missing.groups) out.push(`  missing group ${id}`);
  for (const id of d.extra.users) out.push(`  extra user ${id}`);
  for (const id of d.extra.groups) out.push(`  extra group ${id}`);
  for (const f of d.fields) out.push(`  user ${f.externalId}: ${f.field} is ${JSON.stringify(f.remote)} in WT, ${JSON.stringify(f.mirror)} applied`);
  for (const m of d.memberships) {
    if (m.missing.length) out.push(`  group ${m.group}: missing members ${m.missing.join(', ')}`);
    if (m.extra.length) out.push(`  group ${m.group}: extra members ${m.extra.join(', ')}`);
  }
  out.push('  The next run does not repair drift by itself (it plans against the mirror); see docs/targets.md.');
  return out.join('\n') + '\n';
}
