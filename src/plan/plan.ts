// Desired state against the directory → an ordered plan. Pure: no I/O, no clock (the caller passes `now`).
import type { Rules } from '../config/schema.js';
import { USER_SCALAR_FIELDS, type GroupRecord, type Problem, type SegmentRecord, type UserRecord, type UserScalarField } from '../model.js';
import type {
  DesiredSnapshot, DesiredState, DirectoryGroup, DirectoryState, DirectoryUser, FieldChange, Operation, Plan,
  PlannedOperation, Role, SafeguardCheck,
} from './types.js';

export interface PlanSettings {
  tenant: string;
  rules: Rules;
  maxRemovals: number;
  maxRemovalPercent: number;
  /** ISO timestamp; removed users whose purge date is at or before it are purged. */
  now: string;
  /** When true, user removals are never held (an operator approved them). */
  approved?: boolean;
}

export function buildPlan(desired: DesiredState, dir: DirectoryState, settings: PlanSettings): Plan {
  const problems: Problem[] = [];
  const unchanged = { users: 0, groups: 0, segments: 0 };

  const groupsById = indexByExternalId(dir.groups);
  const segmentsById = indexByExternalId(dir.segments);
  const usersById = indexByExternalId(dir.users);

  const groupOps = desired.groups ? planGroups(desired.groups, dir.groups, groupsById, unchanged) : { upserts: [], removals: [], problems: [] };
  problems.push(...groupOps.problems);
  const segmentOps = desired.segments ? planSegments(desired.segments, dir.segments, segmentsById, unchanged) : { upserts: [], removals: [] };

  // References resolve against the combined desired state: the group/segment snapshot when there is one, else the directory.
  const knownGroups = desired.groups ? new Set(desired.groups.records.map((r) => r.record.externalId)) : new Set(groupsById.keys());
  const knownSegments = desired.segments ? new Set(desired.segments.records.map((r) => r.record.externalId)) : new Set(segmentsById.keys());
  const removedGroups = new Set(groupOps.removals.map((o) => o.externalId));
  const removedSegments = new Set(segmentOps.removals.map((o) => o.externalId));

  const userUpserts: Operation[] = [];
  const links: Operation[] = [];
  const userRemovals: Operation[] = [];
  const purges: Operation[] = [];
  // Users the file names (valid or not): never purged, since they are being restored or left alone.
  const inFile = new Set<string>();

  if (desired.users) {
    const snap = desired.users;
    const fields = snap.fields;
    const protectedIds = new Set(snap.protectedIds);
    const membershipsByUser = groupBy(dir.memberships, (m) => m.userId);
    const segmentLinksByUser = groupBy(dir.segmentLinks, (l) => l.userId);
    const groupExtById = new Map(dir.groups.map((g) => [g.id, g.externalId]));
    const segmentExtById = new Map(dir.segments.map((s) => [s.id, s.externalId]));
    const mappedScalars = USER_SCALAR_FIELDS.filter((f) => fields.has(f));
    const manageMemberships = fields.has('memberOf') || fields.has('adminOf');
    const manageSegments = fields.has('segments');
    const seen = new Set<string>(snap.inSync);
    unchanged.users += snap.inSync?.size ?? 0;

    for (const { record, line } of snap.records) {
      // A rejected row (e.g. a later duplicate of this external ID) protects the entity even when another row for it is valid.
      if (snap.protectedIds.has(record.externalId)) continue;
      const refProblems = checkReferences(record, line, snap.file, knownGroups, knownSegments);
      if (refProblems.length > 0) {
        problems.push(...refProblems);
        protectedIds.add(record.externalId);
        continue;
      }
      seen.add(record.externalId);
      const existing = usersById.get(record.externalId);
      if (!existing) {
        // A new user's links travel with its creation: one op per new user, not one per link.
        const create: Operation & { op: 'create' } = { op: 'create', entity: 'user', externalId: record.externalId, after: userFields(record, fields) };
        if (manageMemberships) create.memberships = desiredMemberships(record);
        if (manageSegments) create.segments = [...new Set(record.segments ?? [])];
        userUpserts.push(create);
        continue;
      }
      let changed = false;
      if (existing.removedAt) {
        userUpserts.push({ op: 'restore', entity: 'user', externalId: record.externalId, id: existing.id });
        changed = true;
      }
      const changes = userChanges(existing, record, mappedScalars, settings.rules);
      if (changes.length > 0) {
        userUpserts.push({ op: 'update', entity: 'user', externalId: record.externalId, id: existing.id, changes });
        changed = true;
      }
      if (manageMemberships) {
        const ops = membershipOps(record, fields, membershipsByUser.get(existing.id) ?? [], groupExtById, removedGroups, settings.rules.membershipUpdate);
        if (ops.length > 0) changed = true;
        links.push(...ops);
      }
      if (manageSegments) {
        const ops = segmentLinkOps(record, segmentLinksByUser.get(existing.id) ?? [], segmentExtById, removedSegments, settings.rules.segmentConnectionUpdate);
        if (ops.length > 0) changed = true;
        links.push(...ops);
      }
      if (!changed) unchanged.users++;
    }

    for (const id of seen) inFile.add(id);
    for (const id of protectedIds) inFile.add(id);
    // Zero valid rows (all rejected, or every reference unknown) is never read as "remove everyone" (SPEC §3.5).
    if (seen.size === 0) problems.push({ level: 'warning', file: snap.file, message: 'no valid user rows: no user was removed' });
    for (const user of seen.size === 0 ? [] : dir.users) {
      if (user.removedAt) continue;
      if (user.externalId !== null && (seen.has(user.externalId) || protectedIds.has(user.externalId))) continue;
      if (user.externalId === null && settings.rules.userRemoval === 'externalIdOnly') continue;
      userRemovals.push({ op: 'remove', entity: 'user', externalId: user.externalId, id: user.id, name: displayName(user) });
    }
  }

  // A missing users snapshot means users are not managed at all: no purges either.
  for (const user of desired.users ? dir.users : []) {
    if (user.removedAt && user.purgeAfter && user.purgeAfter <= settings.now && !(user.externalId !== null && inFile.has(user.externalId))) {
      purges.push({ op: 'purge', entity: 'user', externalId: user.externalId, id: user.id, name: displayName(user) });
    }
  }

  const restores = userUpserts.filter((o) => o.op === 'restore').length;
  const safeguard = checkSafeguard(userRemovals.length, restores, dir.users, settings);
  // Every op object was made here, so numbering (and holding) them in place saves a copy per op.
  const ops = [
    groupOps.upserts, segmentOps.upserts, userUpserts, links, userRemovals, segmentOps.removals, groupOps.removals, purges,
  ].flat() as PlannedOperation[];
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i];
    op.seq = i + 1;
    if (safeguard.held && op.op === 'remove' && op.entity === 'user') op.held = true;
  }
  return { tenant: settings.tenant, createdAt: settings.now, ops, problems, unchanged, safeguard };
}

function checkSafeguard(removals: number, restores: number, users: DirectoryUser[], settings: PlanSettings): SafeguardCheck {
  // Users this plan restores are managed again: counting them keeps a big comeback from looking like a purge.
  const managedUsers = restores + users.filter((u) => !u.removedAt && (settings.rules.userRemoval === 'all' || u.externalId !== null)).length;
  const base = { removals, managedUsers, maxRemovals: settings.maxRemovals, maxRemovalPercent: settings.maxRemovalPercent };
  if (settings.approved || removals === 0) return { ...base, held: false };
  const percent = managedUsers === 0 ? 100 : (removals / managedUsers) * 100;
  // Compared by cross-multiplying: 7 / 100 * 100 is 7.000000000000001 in floating point, which held a plan exactly at the limit.
  const abovePercent = removals * 100 > settings.maxRemovalPercent * managedUsers;
  if (removals > settings.maxRemovals) {
    return { ...base, held: true, reason: `${removals} user removals exceed the limit of ${settings.maxRemovals}` };
  }
  if (abovePercent) {
    return { ...base, held: true, reason: `${removals} user removals are ${percent.toFixed(1)}% of ${managedUsers} managed users, above the limit of ${settings.maxRemovalPercent}%` };
  }
  return { ...base, held: false };
}

function planGroups(snap: DesiredSnapshot<GroupRecord>, current: DirectoryGroup[], byId: Map<string, DirectoryGroup>, unchanged: Plan['unchanged']) {
  const desiredById = new Map(snap.records.map((r) => [r.record.externalId, r.record]));
  const depth = (id: string): number => {
    let d = 0;
    for (let p = desiredById.get(id)?.parentId; p && d <= desiredById.size; p = desiredById.get(p)?.parentId) d++;
    return d;
  };
  const sorted = [...snap.records].map((r) => ({ r: r.record, d: depth(r.record.externalId) })).sort((a, b) => a.d - b.d);
  const upserts: Operation[] = [];
  for (const { r } of sorted) {
    const existing = byId.get(r.externalId);
    if (!existing) {
      upserts.push({ op: 'create', entity: 'group', externalId: r.externalId, after: { name: r.name, parentId: r.parentId } });
      continue;
    }
    const changes = diff([['name', existing.name, r.name], ['parentId', existing.parentId, r.parentId]]);
    if (changes.length > 0) upserts.push({ op: 'update', entity: 'group', externalId: r.externalId, id: existing.id, changes });
    else unchanged.groups++;
  }
  // Children first: a group is removed only after every group below it.
  const gone = new Set(current.filter((g) => g.externalId !== null && !desiredById.has(g.externalId) && !snap.protectedIds.has(g.externalId)));
  // A group that stays (a rejected row, made by hand) keeps its parent: that parent is not removed either.
  const problems: Problem[] = [];
  for (let changed = true; changed;) {
    changed = false;
    for (const g of current) {
      if (gone.has(g)) continue;
      const parentId = g.externalId !== null && desiredById.has(g.externalId) ? desiredById.get(g.externalId)!.parentId : g.parentId;
      const parent = parentId === null ? undefined : byId.get(parentId);
      if (parent && gone.has(parent)) {
        gone.delete(parent);
        changed = true;
        problems.push({
          level: 'warning', file: snap.file, entityId: parent.externalId!,
          message: `group "${parent.externalId}" is not in the file but was kept: group "${g.externalId ?? g.name}" still belongs under it`,
          hint: `list "${parent.externalId}" in the group file, or move or fix "${g.externalId ?? g.name}" first`,
        });
      }
    }
  }
  const currentById = new Map(current.filter((g) => g.externalId).map((g) => [g.externalId as string, g]));
  const currentDepth = (g: DirectoryGroup): number => {
    let d = 0;
    for (let p = g.parentId; p && d <= current.length; p = currentById.get(p)?.parentId ?? null) d++;
    return d;
  };
  const removals: (Operation & { externalId: string })[] = [...gone]
    .map((g) => ({ g, d: currentDepth(g) }))
    .sort((a, b) => b.d - a.d)
    .map(({ g }) => ({ op: 'remove', entity: 'group', externalId: g.externalId as string, id: g.id, name: g.name }));
  return { upserts, removals, problems };
}

function planSegments(snap: DesiredSnapshot<SegmentRecord>, current: { id: number; externalId: string | null; name: string }[], byId: Map<string, { id: number; name: string }>, unchanged: Plan['unchanged']) {
  const upserts: Operation[] = [];
  const desiredIds = new Set<string>();
  for (const { record } of snap.records) {
    desiredIds.add(record.externalId);
    const existing = byId.get(record.externalId);
    if (!existing) {
      upserts.push({ op: 'create', entity: 'segment', externalId: record.externalId, after: { name: record.name } });
      continue;
    }
    const changes = diff([['name', existing.name, record.name]]);
    if (changes.length > 0) upserts.push({ op: 'update', entity: 'segment', externalId: record.externalId, id: existing.id, changes });
    else unchanged.segments++;
  }
  const removals: (Operation & { externalId: string })[] = current
    .filter((s) => s.externalId !== null && !desiredIds.has(s.externalId) && !snap.protectedIds.has(s.externalId))
    .map((s) => ({ op: 'remove', entity: 'segment', externalId: s.externalId as string, id: s.id, name: s.name }));
  return { upserts, removals };
}

const NO_PROBLEMS: Problem[] = [];

function allKnown(ids: string[] | undefined, known: Set<string>): boolean {
  if (ids) for (let i = 0; i < ids.length; i++) if (!known.has(ids[i])) return false;
  return true;
}

function checkReferences(record: UserRecord, line: number, file: string, groups: Set<string>, segments: Set<string>): Problem[] {
  // The common case, every reference known, allocates nothing.
  if (allKnown(record.memberOf, groups) && allKnown(record.adminOf, groups) && allKnown(record.segments, segments)) return NO_PROBLEMS;
  const problems: Problem[] = [];
  const check = (column: 'memberOf' | 'adminOf' | 'segments', ids: string[] | undefined, known: Set<string>, what: string) => {
    const missing = (ids ?? []).filter((id) => !known.has(id));
    if (missing.length === 0) return;
    problems.push({
      level: 'row', file, line, column, value: missing.join(', '), entityId: record.externalId,
      message: `${what} ${missing.map((m) => `"${m}"`).join(', ')} ${missing.length === 1 ? 'does' : 'do'} not exist in the tenant's current ${what.split(' ')[0]} snapshot; the user is left as it is`,
      hint: `add the ${what.split(' ')[0]} to the ${what.split(' ')[0]} file or correct the ID in the user file`,
    });
  };
  check('memberOf', record.memberOf, groups, 'group');
  check('adminOf', record.adminOf, groups, 'group');
  check('segments', record.segments, segments, 'segment');
  return problems;
}

function userFields(record: UserRecord, fields: Set<string>): Record<string, string | null> {
  const out: Record<string, string | null> = {};
  for (const f of ['externalId', ...USER_SCALAR_FIELDS] as const) {
    if (f === 'externalId' || fields.has(f)) out[f] = (record[f] as string | null | undefined) ?? null;
  }
  return out;
}

function userChanges(existing: DirectoryUser, record: UserRecord, mapped: readonly UserScalarField[], rules: Rules): FieldChange[] {
  let changes: FieldChange[] | undefined;
  for (const f of mapped) {
    const before = existing[f] ?? null;
    const after = (record[f] as string | null | undefined) ?? null;
    if (before === after) continue;
    // keepInactive: someone paused in WT (e.g. parental leave) stays paused even if the file says active.
    if (f === 'status' && rules.userStatusUpdate === 'keepInactive' && before === 'inactive' && after === 'active') continue;
    (changes ??= []).push({ field: f, before, after });
  }
  return changes ?? NO_CHANGES;
}

const NO_CHANGES: FieldChange[] = [];

const NO_OPS: Operation[] = [];

/** The common case, checked without building maps: the user's memberships are exactly what the row asks for. */
function sameMemberships(record: UserRecord, current: DirectoryState['memberships'], groupExtById: Map<number, string | null>): boolean {
  const memberOf = record.memberOf ?? [];
  const adminOf = record.adminOf ?? [];
  if (current.length !== memberOf.length + adminOf.length) return false;
  for (const m of current) {
    const ext = groupExtById.get(m.groupId);
    if (!ext) return false;
    const listed = m.role === 'admin' ? adminOf.includes(ext) : memberOf.includes(ext) && !adminOf.includes(ext);
    if (!listed) return false;
  }
  return true;
}

/** The memberships a user row asks for: admin where listed as admin (admin implies member). */
function desiredRoles(record: UserRecord): Map<string, Role> {
  const desired = new Map<string, Role>();
  for (const g of record.memberOf ?? []) desired.set(g, 'member');
  for (const g of record.adminOf ?? []) desired.set(g, 'admin');
  return desired;
}

function desiredMemberships(record: UserRecord): { groupId: string; role: Role }[] {
  return [...desiredRoles(record)].map(([groupId, role]) => ({ groupId, role }));
}

function membershipOps(
  record: UserRecord, fields: Set<string>, current: DirectoryState['memberships'], groupExtById: Map<number, string | null>,
  removedGroups: Set<string>, mode: Rules['membershipUpdate'],
): Operation[] {
  if (sameMemberships(record, current, groupExtById)) return NO_OPS;
  const desired = desiredRoles(record);
  const ops: Operation[] = [];
  const existingByGroup = new Map<string, DirectoryState['memberships'][number]>();
  for (const m of current) {
    const ext = groupExtById.get(m.groupId);
    if (ext) existingByGroup.set(ext, m); // memberships of groups without an external ID are outside the file's reach
  }
  for (const [groupId, wanted] of desired) {
    const have = existingByGroup.get(groupId);
    if (!have) {
      ops.push({ op: 'link', entity: 'membership', userId: record.externalId, groupId, role: wanted });
      continue;
    }
    if (have.role === wanted) continue;
    if (mode === 'never' && have.origin === 'manual') continue;
    // Without an adminOf column the file says nothing about roles of existing memberships.
    if (!fields.has('adminOf')) continue;
    if (mode === 'overwriteIfRoleIsGreaterOrEqual' && have.role === 'admin' && wanted === 'member') continue;
    ops.push({ op: 'link', entity: 'membership', userId: record.externalId, groupId, role: wanted, before: have.role });
  }
  for (const [groupId, have] of existingByGroup) {
    if (desired.has(groupId) || removedGroups.has(groupId)) continue;
    if (mode === 'never' && have.origin === 'manual') continue;
    ops.push({ op: 'unlink', entity: 'membership', userId: record.externalId, groupId, role: have.role, origin: have.origin });
  }
  return ops;
}

function segmentLinkOps(
  record: UserRecord, current: DirectoryState['segmentLinks'], segmentExtById: Map<number, string | null>,
  removedSegments: Set<string>, mode: Rules['segmentConnectionUpdate'],
): Operation[] {
  const desired = new Set(record.segments ?? []);
  const existing = new Map<string, DirectoryState['segmentLinks'][number]>();
  for (const l of current) {
    const ext = segmentExtById.get(l.segmentId);
    if (ext) existing.set(ext, l);
  }
  const ops: Operation[] = [];
  for (const segmentId of desired) {
    if (!existing.has(segmentId)) ops.push({ op: 'link', entity: 'segmentLink', userId: record.externalId, segmentId });
  }
  for (const [segmentId, link] of existing) {
    if (desired.has(segmentId) || removedSegments.has(segmentId)) continue;
    if (mode === 'never' && link.origin === 'manual') continue;
    ops.push({ op: 'unlink', entity: 'segmentLink', userId: record.externalId, segmentId, origin: link.origin });
  }
  return ops;
}

function diff(pairs: [string, string | null, string | null][]): FieldChange[] {
  return pairs.filter(([, before, after]) => before !== after).map(([field, before, after]) => ({ field, before, after }));
}

function indexByExternalId<T extends { externalId: string | null }>(items: T[]): Map<string, T> {
  const map = new Map<string, T>();
  for (const item of items) if (item.externalId !== null) map.set(item.externalId, item);
  return map;
}

function groupBy<T, K>(items: T[], key: (item: T) => K): Map<K, T[]> {
  const map = new Map<K, T[]>();
  for (const item of items) {
    const k = key(item);
    const list = map.get(k);
    if (list) list.push(item);
    else map.set(k, [item]);
  }
  return map;
}

export function displayName(user: Pick<DirectoryUser, 'firstName' | 'lastName' | 'username'>): string {
  return `${user.firstName} ${user.lastName} <${user.username}>`;
}
