// The directory in the product's JSON field names (CLI and API): users carry their groups and segments by external ID.
import type { DirectoryState } from '../plan/types.js';

export interface UserView {
  externalId: string | null; firstName: string; lastName: string; username: string;
  email: string | null; phone: string | null; title: string | null; birthday: string | null;
  employedSince: string | null; employedUntil: string | null; gender: string | null;
  memberOf: string[]; adminOf: string[]; segments: string[];
  status: string | null; language: string | null;
  /** Set while the user is marked for removal; purged after `purgeAfter`. */
  removedAt: string | null; purgeAfter: string | null;
}

export function directoryView(dir: DirectoryState) {
  const groupExt = new Map(dir.groups.map((g) => [g.id, g.externalId ?? `#${g.id}`]));
  const segmentExt = new Map(dir.segments.map((s) => [s.id, s.externalId ?? `#${s.id}`]));
  // memberOf lists every group the user belongs to; adminOf the subset where the user is admin.
  const memberOf = new Map<number, string[]>();
  const adminOf = new Map<number, string[]>();
  const segments = new Map<number, string[]>();
  const push = (map: Map<number, string[]>, key: number, value: string) => {
    const list = map.get(key);
    if (list) list.push(value);
    else map.set(key, [value]);
  };
  for (const m of dir.memberships) {
    push(memberOf, m.userId, groupExt.get(m.groupId)!);
    if (m.role === 'admin') push(adminOf, m.userId, groupExt.get(m.groupId)!);
  }
  for (const l of dir.segmentLinks) push(segments, l.userId, segmentExt.get(l.segmentId)!);
  const users: UserView[] = dir.users.map((u) => ({
    externalId: u.externalId, firstName: u.firstName, lastName: u.lastName, username: u.username,
    email: u.email ?? null, phone: u.phone ?? null, title: u.title ?? null, birthday: u.birthday ?? null,
    employedSince: u.employedSince ?? null, employedUntil: u.employedUntil ?? null, gender: u.gender ?? null,
    memberOf: (memberOf.get(u.id) ?? []).sort(), adminOf: (adminOf.get(u.id) ?? []).sort(), segments: (segments.get(u.id) ?? []).sort(),
    status: u.status ?? null, language: u.language ?? null, removedAt: u.removedAt, purgeAfter: u.purgeAfter,
  }));
  return {
    users,
    groups: dir.groups.map((g) => ({ externalId: g.externalId, name: g.name, parentId: g.parentId })),
    segments: dir.segments.map((s) => ({ externalId: s.externalId, name: s.name })),
  };
}
