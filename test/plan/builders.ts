// Small builders for plain plan inputs: directory state, desired snapshots, settings.
import type { Rules } from '../../src/config/schema.js';
import type { GroupRecord, SegmentRecord, UserRecord } from '../../src/model.js';
import type { PlanSettings } from '../../src/plan/plan.js';
import type {
  DesiredSnapshot, DirectoryGroup, DirectoryMembership, DirectorySegment, DirectorySegmentLink, DirectoryState,
  DirectoryUser, Operation, Plan,
} from '../../src/plan/types.js';

export const NOW = '2025-06-01T01:00:00.000Z';
export const PAST = '2025-05-01T01:00:00.000Z';
export const FUTURE = '2025-08-30T01:00:00.000Z';

/** Fields a typical tenant maps for users. `phone` is deliberately not mapped. */
export const USER_FIELDS = ['externalId', 'firstName', 'lastName', 'username', 'email', 'title', 'status', 'memberOf', 'adminOf', 'segments'];

export const DEFAULT_RULES: Rules = {
  userRemoval: 'externalIdOnly',
  userStatusUpdate: 'overwrite',
  membershipUpdate: 'never',
  segmentConnectionUpdate: 'never',
};

/** Safeguards are off by default here (100%); the safeguard tests set their own limits. */
export function settings(over: Partial<Omit<PlanSettings, 'rules'>> & { rules?: Partial<Rules> } = {}): PlanSettings {
  const { rules, ...rest } = over;
  return { tenant: 'acme', maxRemovals: 500, maxRemovalPercent: 100, now: NOW, ...rest, rules: { ...DEFAULT_RULES, ...rules } };
}

/** A live directory user; `ext` null means made by hand in WT. Name fields derive from the ext ID unless given. */
export function dirUser(id: number, ext: string | null, over: Partial<DirectoryUser> = {}): DirectoryUser {
  const base = ext ?? `manual${id}`;
  return {
    id, externalId: ext, firstName: `First ${base}`, lastName: `Last ${base}`, username: `${base.toLowerCase()}@acme`,
    email: null, title: null, status: 'active', removedAt: null, purgeAfter: null, ...over,
  };
}

/** The record a file would carry for the same person as `dirUser(_, ext)`, with no differences. */
export function user(ext: string, over: Partial<UserRecord> = {}): UserRecord {
  return {
    externalId: ext, firstName: `First ${ext}`, lastName: `Last ${ext}`, username: `${ext.toLowerCase()}@acme`,
    email: null, title: null, status: 'active', memberOf: [], adminOf: [], segments: [], ...over,
  };
}

export const dirGroup = (id: number, ext: string | null, name: string, parentId: string | null = null): DirectoryGroup => ({ id, externalId: ext, name, parentId });
export const dirSegment = (id: number, ext: string | null, name: string): DirectorySegment => ({ id, externalId: ext, name });
export const member = (userId: number, groupId: number, role: DirectoryMembership['role'] = 'member', origin: DirectoryMembership['origin'] = 'integration'): DirectoryMembership => ({ userId, groupId, role, origin });
export const segLink = (userId: number, segmentId: number, origin: DirectorySegmentLink['origin'] = 'integration'): DirectorySegmentLink => ({ userId, segmentId, origin });

export function directory(over: Partial<DirectoryState> = {}): DirectoryState {
  return { users: [], groups: [], segments: [], memberships: [], segmentLinks: [], ...over };
}

/** A snapshot whose records sit on lines 2, 3, … (line 1 is the header). */
export function snapshot<T>(file: string, records: T[], fields: Iterable<string>, protectedIds: Iterable<string> = []): DesiredSnapshot<T> {
  return { file, records: records.map((record, i) => ({ record, line: i + 2 })), protectedIds: new Set(protectedIds), fields: new Set(fields) };
}

export const usersSnap = (records: UserRecord[], opts: { fields?: string[]; protectedIds?: string[] } = {}) =>
  snapshot('users.csv', records, opts.fields ?? USER_FIELDS, opts.protectedIds);
export const groupsSnap = (records: GroupRecord[], protectedIds: string[] = []) =>
  snapshot('groups.csv', records, ['externalId', 'name', 'parentId'], protectedIds);
export const segmentsSnap = (records: SegmentRecord[], protectedIds: string[] = []) =>
  snapshot('segments.csv', records, ['externalId', 'name'], protectedIds);

export const group = (externalId: string, name: string, parentId: string | null = null): GroupRecord => ({ externalId, name, parentId });
export const segment = (externalId: string, name: string): SegmentRecord => ({ externalId, name });

/** The plan's operations without `seq`/`held`, for exact comparison. */
export function opsOf(plan: Plan): Operation[] {
  return plan.ops.map(({ seq: _seq, held: _held, ...op }) => op as Operation);
}
