// A plan is a value: built from desired state + directory, printed, stored, held, approved, applied.
import type { GroupRecord, Problem, SegmentRecord, UserRecord, UserScalarField } from '../model.js';

export type Role = 'member' | 'admin';
export type Origin = 'integration' | 'manual';

/** The WT directory as a target reports it. Entities without an external ID were made by hand in WT. */
export interface DirectoryUser extends Partial<Record<UserScalarField, string | null>> {
  id: number;
  externalId: string | null;
  firstName: string;
  lastName: string;
  username: string;
  /** ISO timestamp when soft-removed, null when live. */
  removedAt: string | null;
  purgeAfter: string | null;
}
export interface DirectoryGroup { id: number; externalId: string | null; name: string; parentId: string | null }
export interface DirectorySegment { id: number; externalId: string | null; name: string }
export interface DirectoryMembership { userId: number; groupId: number; role: Role; origin: Origin }
export interface DirectorySegmentLink { userId: number; segmentId: number; origin: Origin }

export interface DirectoryState {
  users: DirectoryUser[];
  groups: DirectoryGroup[];
  segments: DirectorySegment[];
  memberships: DirectoryMembership[];
  segmentLinks: DirectorySegmentLink[];
}

/** A snapshot row: its record, the line it came from and, when stored, the hash of its content. */
export interface Located<T> { record: T; line: number; hash?: string }

/** One accepted snapshot of one type: its valid rows, and the IDs of rows that failed (left as they are). */
export interface DesiredSnapshot<T> {
  /** The stored snapshot's ID (absent for a file only checked, never stored). */
  id?: number;
  file: string;
  records: Located<T>[];
  /** External IDs named by rejected rows: never updated, never removed. */
  protectedIds: Set<string>;
  /** Fields the tenant maps for this type; unmapped fields are never touched. */
  fields: Set<string>;
}

/** The tenant's latest accepted snapshot per type; a missing type is not managed at all. */
export interface DesiredState {
  users?: DesiredSnapshot<UserRecord>;
  groups?: DesiredSnapshot<GroupRecord>;
  segments?: DesiredSnapshot<SegmentRecord>;
}

export interface FieldChange { field: string; before: string | null; after: string | null }

export type EntityKind = 'user' | 'group' | 'segment';

/** Ops name entities by external ID; `id` is the directory's own ID when the entity already exists. */
export type Operation =
  | {
    op: 'create'; entity: EntityKind; externalId: string; after: Record<string, string | null>;
    /** A new user's memberships and segment links come with its creation (not as separate link ops). */
    memberships?: { groupId: string; role: Role }[];
    segments?: string[];
  }
  | { op: 'update'; entity: EntityKind; externalId: string; id: number; changes: FieldChange[] }
  | { op: 'restore'; entity: 'user'; externalId: string; id: number }
  | { op: 'remove'; entity: EntityKind; externalId: string | null; id: number; name: string }
  | { op: 'purge'; entity: 'user'; externalId: string | null; id: number; name: string }
  | { op: 'link'; entity: 'membership'; userId: string; groupId: string; role: Role; before?: Role }
  | { op: 'unlink'; entity: 'membership'; userId: string; groupId: string; role: Role; origin: Origin }
  | { op: 'link'; entity: 'segmentLink'; userId: string; segmentId: string }
  | { op: 'unlink'; entity: 'segmentLink'; userId: string; segmentId: string; origin: Origin };

export type PlannedOperation = Operation & { seq: number; held?: boolean };

export interface SafeguardCheck {
  removals: number;
  managedUsers: number;
  maxRemovals: number;
  maxRemovalPercent: number;
  held: boolean;
  reason?: string;
}

export interface Plan {
  tenant: string;
  createdAt: string;
  ops: PlannedOperation[];
  /** Plan-time row errors (unknown group/segment references) and warnings. */
  problems: Problem[];
  unchanged: { users: number; groups: number; segments: number };
  safeguard: SafeguardCheck;
}

/** A users snapshot row as the streaming planner reads it: the record is built only when the row is planned. */
export interface DesiredUserRow {
  externalId: string;
  line: number;
  /** The hash of the row's content, when stored (sync marks). */
  hash?: string;
  record(): UserRecord;
}

/** The users snapshot as a stream of rows ordered by external ID (see order.ts). */
export interface DesiredUsers {
  id?: number;
  file: string;
  fields: Set<string>;
  protectedIds: Set<string>;
  rows: Iterable<DesiredUserRow>;
}

/** A directory user with its memberships and segment links, and the sync mark a run left on it. */
export interface DirectoryUserEntry extends DirectoryUser {
  mark?: string | null;
  memberships: DirectoryMembership[];
  segmentLinks: DirectorySegmentLink[];
}

/**
 * The parts of a plan in apply order. The planner emits users' operations of several parts interleaved (one
 * user at a time); a sink keeps each part apart and concatenates them in this order.
 */
export const PHASES = ['groupUpserts', 'segmentUpserts', 'userUpserts', 'links', 'userRemovals', 'segmentRemovals', 'groupRemovals', 'purges'] as const;
export type Phase = (typeof PHASES)[number];

/** Where a streaming plan goes: an in-memory list (buildPlan, check) or the journal (a run). */
export interface PlanSink {
  /** `mark`: the sync mark the user gets once this, its last operation, is done. */
  add(phase: Phase, op: Operation, mark?: string): void;
  /** Drops every operation added to `phase` so far. */
  discard(phase: Phase): void;
  /** A user planned in full that needs no change: its row is applied as it is. */
  unchanged?(externalId: string, mark: string): void;
}

/** What a plan decides as a whole, beside its operations. */
export interface PlanSummary {
  problems: Problem[];
  unchanged: { users: number; groups: number; segments: number };
  safeguard: SafeguardCheck;
  /** Operations added, per phase (after discards). */
  counts: Record<Phase, number>;
}
