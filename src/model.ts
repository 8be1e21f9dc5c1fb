// Plain data shared by every pipeline stage. No I/O here.

export const FILE_TYPES = ['users', 'groups', 'segments'] as const;
export type FileType = (typeof FILE_TYPES)[number];

// The fields of each file type. Their order is also how a staged row is stored (src/snapshot/row-format.ts): a field
// is only ever appended, never moved.
export const USER_FIELDS = [
  'externalId', 'firstName', 'lastName', 'username', 'email', 'phone', 'title',
  'birthday', 'employedSince', 'employedUntil', 'gender', 'memberOf', 'adminOf',
  'segments', 'status', 'language',
] as const;
export type UserField = (typeof USER_FIELDS)[number];
export const GROUP_FIELDS = ['name', 'externalId', 'parentId'] as const;
export type GroupField = (typeof GROUP_FIELDS)[number];
export const SEGMENT_FIELDS = ['name', 'externalId'] as const;
export type SegmentField = (typeof SEGMENT_FIELDS)[number];

export const FIELDS_BY_TYPE: Record<FileType, readonly string[]> = {
  users: USER_FIELDS,
  groups: GROUP_FIELDS,
  segments: SEGMENT_FIELDS,
};

export type UserStatus = 'active' | 'inactive';

/**
 * A user as a snapshot row describes it. A scalar field that the tenant does not map
 * is absent (undefined) and never touched; an empty cell is null and clears the field.
 * List fields (memberOf, adminOf, segments) are absent when their column is not mapped.
 */
export interface UserRecord {
  externalId: string;
  firstName: string;
  lastName: string;
  username: string;
  email?: string | null;
  phone?: string | null;
  title?: string | null;
  birthday?: string | null;
  employedSince?: string | null;
  employedUntil?: string | null;
  gender?: string | null;
  status?: UserStatus | null;
  language?: string | null;
  memberOf?: string[];
  adminOf?: string[];
  segments?: string[];
}

export interface GroupRecord {
  externalId: string;
  name: string;
  parentId: string | null;
}

export interface SegmentRecord {
  externalId: string;
  name: string;
}

export type EntityRecord = UserRecord | GroupRecord | SegmentRecord;

/** Scalar user fields the plan compares field by field. */
export const USER_SCALAR_FIELDS = [
  'firstName', 'lastName', 'username', 'email', 'phone', 'title', 'birthday',
  'employedSince', 'employedUntil', 'gender', 'status', 'language',
] as const;
export type UserScalarField = (typeof USER_SCALAR_FIELDS)[number];

export type ProblemLevel = 'file' | 'row' | 'warning';

/** One thing wrong with an input: where it is, what it is, how to fix it. */
export interface Problem {
  level: ProblemLevel;
  /** File name as received (no folders). */
  file: string;
  /** 1-based physical line where the row starts, when known. */
  line?: number;
  /** 1-based record of an API fetch (instead of a line), when the input came from the api source. */
  record?: number;
  /** Header name of the column (or field name when there is no header), when known. */
  column?: string;
  /** 1-based byte offset in the file, for encoding errors. */
  byteOffset?: number;
  value?: string;
  message: string;
  /** How to fix it, in the customer's words. */
  hint?: string;
  /** External ID of the entity the row names, so the plan leaves that entity alone. */
  entityId?: string;
}
