// Desired state against the directory → an ordered plan. Pure: no I/O, no clock (the caller passes `now`).
import type { Rules } from '../config/schema.js';
import { USER_SCALAR_FIELDS, type GroupRecord, type Problem, type SegmentRecord, type UserRecord, type UserScalarField } from '../model.js';
import { compareIds } from './order.js';
import {
  PHASES, type DesiredSnapshot, type DesiredState, type DesiredUserRow, type DesiredUsers, type DirectoryGroup, type DirectorySegment,
  type DirectoryState, type DirectoryUser, type DirectoryUserEntry, type FieldChange, type Operation, type Phase, type Plan,
  type PlannedOperation, type PlanSink, type PlanSummary, type Role, type SafeguardCheck,
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

/**
 * The whole plan in memory, from desired state and directory held whole (tests, small inputs). It is the streaming
 * planner (`planStream`) fed from arrays, so both plan alike, operation for operation.
 */
export function buildPlan(desired: DesiredState, dir: DirectoryState, settings: PlanSettings): Plan {
  const users = desired.users && {
    id: desired.users.id, file: desired.users.file, fields: desired.users.fields, protectedIds: desired.users.protectedIds,
    rows: [...desired.users.records].sort((a, b) => compareIds(a.record.externalId, b.record.externalId))
      .map((r): DesiredUserRow => ({ externalId: r.record.externalId, line: r.line, hash: r.hash, record: () => r.record })),
  };
  const sink = new MemoryPlanSink();
  const summary = planStream({ groups: desired.groups, segments: desired.segments, users, tree: dir, directoryUsers: directoryEntries(dir) }, settings, sink);
  return { tenant: settings.tenant, createdAt: settings.now, ops: sink.ops(summary.safeguard.held), problems: summary.problems, unchanged: summary.unchanged, safeguard: summary.safeguard };
}

/** A directory held whole as the stream the planner reads: users with external IDs in ID order, then the others. */
export function directoryEntries(dir: DirectoryState): DirectoryUserEntry[] {
  const memberships = groupBy(dir.memberships, (m) => m.userId);
  const links = groupBy(dir.segmentLinks, (l) => l.userId);
  const entries = dir.users.map((u): DirectoryUserEntry => ({ ...u, memberships: memberships.get(u.id) ?? [], segmentLinks: links.get(u.id) ?? [] }));
  const withId = entries.filter((u) => u.externalId !== null).sort((a, b) => compareIds(a.externalId!, b.externalId!));
  return [...withId, ...entries.filter((u) => u.externalId === null)];
}

/** Collects a streamed plan per phase and numbers it in apply order. */
export class MemoryPlanSink implements PlanSink {
  private readonly parts = new Map<Phase, Operation[]>(PHASES.map((p) => [p, []]));
  add(phase: Phase, op: Operation): void {
    this.parts.get(phase)!.push(op);
  }
  discard(phase: Phase): void {
    this.parts.set(phase, []);
  }
  ops(holdRemovals: boolean): PlannedOperation[] {
    // Every op object was made by the planner, so numbering (and holding) them in place saves a copy per op.
    const ops = PHASES.flatMap((p) => this.parts.get(p)!) as PlannedOperation[];
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i];
      op.seq = i + 1;
      if (holdRemovals && op.op === 'remove' && op.entity === 'user') op.held = true;
    }
    return ops;
  }
}

export interface StreamInput {
  groups?: DesiredSnapshot<GroupRecord>;
  segments?: DesiredSnapshot<SegmentRecord>;
  users?: DesiredUsers;
  /** The directory's groups and segments (thousands: held whole). */
  tree: { groups: DirectoryGroup[]; segments: DirectorySegment[] };
  /** Directory users with an external ID in `compareIds` order, then those without (made by hand). */
  directoryUsers: Iterable<DirectoryUserEntry>;
  /**
   * Sync marks (src/apply/sync-marks.ts): the mark a row gets once applied. A live user whose stored mark equals
   * its row's is known unchanged and skipped unread; without `markOf` every user is planned.
   */
  markOf?: (row: DesiredUserRow) => string | undefined;
}

/**
 * The plan as a stream: groups and segments in memory, users as a merge of two streams ordered by external ID
 * (snapshot rows, directory users), one user at a time, so memory does not grow with the number of users. What
 * needs the whole picture is counted on the way and decided at the end: the safeguard (the caller holds the
 * user removals when `safeguard.held`) and "no valid row removes nobody" (the removals are discarded).
 */
export function planStream(input: StreamInput, settings: PlanSettings, sink: PlanSink): PlanSummary {
  const problems: Problem[] = [];
  const unchanged = { users: 0, groups: 0, segments: 0 };
  const counts = Object.fromEntries(PHASES.map((p) => [p, 0])) as Record<Phase, number>;
  const add = (phase: Phase, op: Operation, mark?: string) => {
    counts[phase]++;
    sink.add(phase, op, mark);
  };
  const { tree } = input;
  const groupsById = indexByExternalId(tree.groups);
  const segmentsById = indexByExternalId(tree.segments);

  const groupOps = input.groups ? planGroups(input.groups, tree.groups, groupsById, unchanged) : { upserts: [], removals: [], problems: [] };
  problems.push(...groupOps.problems);
  const segmentOps = input.segments ? planSegments(input.segments, tree.segments, segmentsById, unchanged) : { upserts: [], removals: [] };
  for (const op of groupOps.upserts) add('groupUpserts', op);
  for (const op of segmentOps.upserts) add('segmentUpserts', op);

  // References resolve against the combined desired state: the group/segment snapshot when there is one, else the directory.
  const knownGroups = input.groups ? new Set(input.groups.records.map((r) => r.record.externalId)) : new Set(groupsById.keys());
  const knownSegments = input.segments ? new Set(input.segments.records.map((r) => r.record.externalId)) : new Set(segmentsById.keys());
  const removedGroups = new Set(groupOps.removals.map((o) => o.externalId));
  const removedSegments = new Set(segmentOps.removals.map((o) => o.externalId));

  let removals = 0;
  let restores = 0;
  let managedUsers = 0;
  const snap = input.users;
  // A missing users snapshot means users are not managed at all: no removals, no purges.
  if (snap) {
    const fields = snap.fields;
    const protectedIds = snap.protectedIds;
    const groupExtById = new Map(tree.groups.map((g) => [g.id, g.externalId]));
    const segmentExtById = new Map(tree.segments.map((s) => [s.id, s.externalId]));
    const mappedScalars = USER_SCALAR_FIELDS.filter((f) => fields.has(f));
    const manageMemberships = fields.has('memberOf') || fields.has('adminOf');
    const manageSegments = fields.has('segments');
    const markOf = input.markOf;
    const removeAll = settings.rules.userRemoval === 'all';
    let seen = 0;

    // Live users the tenant's removal rule can reach: the base of the safeguard's percentage.
    const visit = (u: DirectoryUserEntry) => {
      if (!u.removedAt && (removeAll || u.externalId !== null)) managedUsers++;
    };
    // A user the file names but leaves alone (a rejected row, an unknown reference) is never removed or purged.
    const planRow = (row: DesiredUserRow, existing: DirectoryUserEntry | undefined) => {
      if (existing) visit(existing);
      // A rejected row (e.g. a later duplicate of this external ID) protects the entity even when another row for it is valid.
      if (protectedIds.has(row.externalId)) return;
      const mark = markOf?.(row);
      if (existing && mark !== undefined && !existing.removedAt && existing.mark === mark) {
        seen++;
        unchanged.users++;
        return;
      }
      const record = row.record();
      const refProblems = checkReferences(record, row.line, snap.file, knownGroups, knownSegments);
      if (refProblems.length > 0) {
        problems.push(...refProblems);
        return;
      }
      seen++;
      if (!existing) {
        // A new user's links travel with its creation: one op per new user, not one per link.
        const create: Operation & { op: 'create' } = { op: 'create', entity: 'user', externalId: record.externalId, after: userFields(record, fields) };
        if (manageMemberships) create.memberships = desiredMemberships(record);
        if (manageSegments) create.segments = [...new Set(record.segments ?? [])];
        add('userUpserts', create, mark);
        return;
      }
      const upserts: Operation[] = [];
      let links: Operation[] = NO_OPS;
      if (existing.removedAt) {
        upserts.push({ op: 'restore', entity: 'user', externalId: record.externalId, id: existing.id });
        restores++;
      }
      const changes = userChanges(existing, record, mappedScalars, settings.rules);
      if (changes.length > 0) upserts.push({ op: 'update', entity: 'user', externalId: record.externalId, id: existing.id, changes });
      if (manageMemberships) links = membershipOps(record, fields, existing.memberships, groupExtById, removedGroups, settings.rules.membershipUpdate);
      if (manageSegments) {
        const ops = segmentLinkOps(record, existing.segmentLinks, segmentExtById, removedSegments, settings.rules.segmentConnectionUpdate);
        if (ops.length > 0) links = links.length > 0 ? [...links, ...ops] : ops;
      }
      if (upserts.length === 0 && links.length === 0) {
        unchanged.users++;
        if (mark !== undefined && existing.mark !== mark) sink.unchanged?.(record.externalId, mark);
        return;
      }
      // The mark rides on the user's last operation: set once everything before it went through.
      const last = links.length > 0 ? links[links.length - 1] : upserts[upserts.length - 1];
      for (const op of upserts) add('userUpserts', op, op === last ? mark : undefined);
      for (const op of links) add('links', op, op === last ? mark : undefined);
    };
    const planAbsent = (u: DirectoryUserEntry) => {
      visit(u);
      if (u.externalId !== null && protectedIds.has(u.externalId)) return;
      if (u.removedAt) {
        if (u.purgeAfter && u.purgeAfter <= settings.now) add('purges', { op: 'purge', entity: 'user', externalId: u.externalId, id: u.id, name: displayName(u) });
        return;
      }
      if (u.externalId === null && !removeAll) return;
      add('userRemovals', { op: 'remove', entity: 'user', externalId: u.externalId, id: u.id, name: displayName(u) });
      removals++;
    };

    const rows = snap.rows[Symbol.iterator]();
    const users = input.directoryUsers[Symbol.iterator]();
    let r = rows.next();
    let u = users.next();
    while (!r.done || !u.done) {
      const order = r.done ? 1 : u.done || u.value.externalId === null ? -1 : compareIds(r.value.externalId, u.value.externalId);
      if (order < 0) {
        planRow(r.value, undefined);
        r = rows.next();
      } else if (order > 0) {
        planAbsent(u.value);
        u = users.next();
      } else {
        planRow(r.value, u.value);
        r = rows.next();
        u = users.next();
      }
    }
    // Zero valid rows (all rejected, or every reference unknown) is never read as "remove everyone" (SPEC §3.5).
    if (seen === 0) {
      problems.push({ level: 'warning', file: snap.file, message: 'no valid user rows: no user was removed' });
      sink.discard('userRemovals');
      counts.userRemovals = 0;
      removals = 0;
    }
  }
  for (const op of segmentOps.removals) add('segmentRemovals', op);
  for (const op of groupOps.removals) add('groupRemovals', op);

  const safeguard = checkSafeguard(removals, restores, managedUsers, settings);
  return { problems, unchanged, safeguard, counts };
}

function checkSafeguard(removals: number, restores: number, liveManaged: number, settings: PlanSettings): SafeguardCheck {
  // Users this plan restores are managed again: counting them keeps a big comeback from looking like a purge.
  const managedUsers = restores + liveManaged;
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

/** A new user's fields as its create operation carries them: the external ID and every mapped scalar. */
export function userFields(record: UserRecord, fields: Set<string>): Record<string, string | null> {
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

export function desiredMemberships(record: UserRecord): { groupId: string; role: Role }[] {
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
