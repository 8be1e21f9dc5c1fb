// How WT's users and groups look as SCIM resources, and the PATCH bodies that change them, in either dialect:
// `rfc` (RFC 7644: lowercase ops, boolean active, members[value eq "…"] removal) or `entra` (what Entra ID sends
// by default: capitalised ops, "True"/"False", removal with a value list). Pure functions, no I/O.
import type { ScimTargetConfig } from '../config/scim-target.js';

export const USER_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:User';
export const GROUP_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:Group';
export const PATCH_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';

/** WT-only user fields, sent only in the tenant's extension schema. */
export const EXTENSION_FIELDS = ['phone', 'title', 'birthday', 'employedSince', 'employedUntil', 'gender', 'language'] as const;

/**
 * WT-only lists of a user, also sent in the extension schema: `segments` by the segments' external IDs (stable
 * across renames, unique, the IDs of the customer's file) and `adminOf`, the external IDs of the groups the user
 * administers. Kept sorted, so equal sets compare equal.
 */
export const EXTENSION_LISTS = ['segments', 'adminOf'] as const;
export type ExtensionList = (typeof EXTENSION_LISTS)[number];
export type UserLists = Record<ExtensionList, string[]>;
export const NO_LISTS: UserLists = { segments: [], adminOf: [] };

export type ResourceOptions = Pick<ScimTargetConfig, 'patchDialect' | 'userExtension' | 'groupParents' | 'groupExtension'>;

/** A user's fields as the directory holds them (null: empty). */
export type UserFields = Record<string, string | null | undefined>;

type Json = Record<string, any>;
export interface PatchOperation { op: string; path?: string; value?: unknown }

export function userResource(externalId: string, u: UserFields, o: ResourceOptions, lists: UserLists = NO_LISTS): Json {
  const body: Json = {
    schemas: [USER_SCHEMA, ...(o.userExtension ? [o.userExtension] : [])],
    externalId,
    userName: u.username ?? '',
    name: { givenName: u.firstName ?? '', familyName: u.lastName ?? '' },
    displayName: displayName(u),
    emails: [primaryEmail(u)],
    active: u.status !== 'inactive',
  };
  if (o.userExtension) {
    const ext: Json = {};
    for (const f of EXTENSION_FIELDS) if (u[f] !== undefined && u[f] !== null) ext[f] = u[f];
    for (const f of EXTENSION_LISTS) if (lists[f].length) ext[f] = [...lists[f]].sort();
    body[o.userExtension] = ext;
  }
  return body;
}

export function groupResource(externalId: string, name: string, parentId: string | null, o: ResourceOptions): Json {
  const body: Json = { schemas: [GROUP_SCHEMA], externalId, displayName: name, members: [] };
  if (o.groupParents === 'extension' && o.groupExtension) {
    body.schemas.push(o.groupExtension);
    body[o.groupExtension] = parentId === null ? {} : { parentExternalId: parentId };
  }
  return body;
}

function displayName(u: UserFields): string {
  return `${u.firstName ?? ''} ${u.lastName ?? ''}`.trim();
}

/** WT's username and email is the primary email; without an email the username stands in. */
function primaryEmail(u: UserFields): Json {
  return { value: u.email ?? u.username ?? '', type: 'work', primary: true };
}

function opName(name: 'add' | 'replace' | 'remove', o: ResourceOptions): string {
  return o.patchDialect === 'entra' ? name[0].toUpperCase() + name.slice(1) : name;
}

function bool(v: boolean, o: ResourceOptions): boolean | string {
  return o.patchDialect === 'entra' ? (v ? 'True' : 'False') : v;
}

export function patchBody(operations: PatchOperation[]): Json {
  return { schemas: [PATCH_SCHEMA], Operations: operations };
}

/**
 * The PATCH operations that bring a user from `before` to `after` for the fields that changed; `emails` always
 * goes whole with exactly one primary. Fields SCIM does not carry (without an extension) give no operation.
 */
export function userPatch(before: UserFields, after: UserFields, changed: Iterable<string>, o: ResourceOptions): PatchOperation[] {
  const ops: PatchOperation[] = [];
  const fields = new Set(changed);
  const replace = (path: string, value: unknown) => ops.push({ op: opName('replace', o), path, value });
  if (fields.has('username')) replace('userName', after.username);
  if (fields.has('firstName')) replace('name.givenName', after.firstName);
  if (fields.has('lastName')) replace('name.familyName', after.lastName);
  if (fields.has('firstName') || fields.has('lastName')) replace('displayName', displayName(after));
  if (fields.has('email') || (fields.has('username') && (after.email ?? null) === null)) {
    if (o.patchDialect === 'entra') replace('emails[type eq "work"].value', primaryEmail(after).value);
    else replace('emails', [primaryEmail(after)]);
  }
  if (fields.has('status') && (before.status === 'inactive') !== (after.status === 'inactive')) replace('active', bool(after.status !== 'inactive', o));
  if (o.userExtension) {
    const set: Json = {};
    for (const f of EXTENSION_FIELDS) {
      if (!fields.has(f)) continue;
      if (after[f] === null || after[f] === undefined) ops.push({ op: opName('remove', o), path: `${o.userExtension}:${f}` });
      else set[f] = after[f];
    }
    if (Object.keys(set).length) ops.push({ op: opName('replace', o), value: { [o.userExtension]: set } });
  }
  return ops;
}

/** The PATCH operations for the extension lists that differ (none without an extension): only those attributes. */
export function listPatch(before: UserLists, after: UserLists, o: ResourceOptions): PatchOperation[] {
  if (!o.userExtension) return [];
  const ops: PatchOperation[] = [];
  const set: Json = {};
  for (const f of EXTENSION_LISTS) {
    const want = [...new Set(after[f])].sort();
    if (sameList(before[f], want)) continue;
    if (want.length === 0) ops.push({ op: opName('remove', o), path: `${o.userExtension}:${f}` });
    else set[f] = want;
  }
  if (Object.keys(set).length) ops.push({ op: opName('replace', o), value: { [o.userExtension]: set } });
  return ops;
}

export function sameList(a: readonly string[], b: readonly string[]): boolean {
  const x = [...new Set(a)].sort();
  const y = [...new Set(b)].sort();
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

/** A remote user's extension lists (empty without an extension or when absent), sorted. */
export function userListsOf(remote: Json, o: ResourceOptions): UserLists {
  const ext: Json = (o.userExtension && remote[o.userExtension]) || {};
  const list = (v: unknown) => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string').sort() : []);
  return { segments: list(ext.segments), adminOf: list(ext.adminOf) };
}

export function activePatch(active: boolean, o: ResourceOptions): PatchOperation[] {
  return [{ op: opName('replace', o), path: 'active', value: bool(active, o) }];
}

export function groupPatch(changes: { field: string; after: string | null }[], o: ResourceOptions): PatchOperation[] {
  const ops: PatchOperation[] = [];
  for (const c of changes) {
    if (c.field === 'name') ops.push({ op: opName('replace', o), path: 'displayName', value: c.after });
    else if (c.field === 'parentId' && o.groupParents === 'extension' && o.groupExtension) {
      if (c.after === null) ops.push({ op: opName('remove', o), path: `${o.groupExtension}:parentExternalId` });
      else ops.push({ op: opName('replace', o), value: { [o.groupExtension]: { parentExternalId: c.after } } });
    }
  }
  return ops;
}

export function addMembers(ids: string[], o: ResourceOptions): PatchOperation[] {
  return [{ op: opName('add', o), path: 'members', value: ids.map((value) => ({ value })) }];
}

export function removeMembers(ids: string[], o: ResourceOptions): PatchOperation[] {
  if (o.patchDialect === 'entra') return [{ op: opName('remove', o), path: 'members', value: ids.map((value) => ({ value })) }];
  return ids.map((id) => ({ op: 'remove', path: `members[value eq ${JSON.stringify(id)}]` }));
}

/** A remote user's fields in the directory's terms, for adopting and for drift. */
export function userFieldsOf(remote: Json, o: ResourceOptions): UserFields {
  const emails: Json[] = Array.isArray(remote.emails) ? remote.emails : [];
  const email = (emails.find((e) => e?.primary === true) ?? emails[0])?.value ?? null;
  const fields: UserFields = {
    username: remote.userName ?? null, firstName: remote.name?.givenName ?? null, lastName: remote.name?.familyName ?? null,
    email, status: remote.active === false || remote.active === 'False' ? 'inactive' : 'active',
  };
  if (o.userExtension) {
    const ext: Json = remote[o.userExtension] ?? {};
    for (const f of EXTENSION_FIELDS) fields[f] = typeof ext[f] === 'string' ? ext[f] : null;
  }
  return fields;
}

/** The fields SCIM carries for these options, compared to find what differs. */
export function comparedFields(o: ResourceOptions): string[] {
  return ['username', 'firstName', 'lastName', 'email', 'status', ...(o.userExtension ? EXTENSION_FIELDS : [])];
}

/** What the remote shows for a directory user's field (the username stands in for a missing email). */
export function expectedField(u: UserFields, field: string): string | null {
  if (field === 'email') return u.email ?? u.username ?? null;
  if (field === 'status') return u.status === 'inactive' ? 'inactive' : 'active';
  return u[field] ?? null;
}

const ENTRA_EMAIL_PATH = /^emails\[type eq "[^"]*"\]\.value$/i;

/**
 * The same operations with Entra's `emails[type eq "work"].value` replaced by the RFC form (`emails` whole, one
 * primary), for a provider that answered 400 noTarget because the user has no work-typed email; null when there
 * is no such operation.
 */
export function rfcEmailOps(ops: PatchOperation[], o: ResourceOptions): PatchOperation[] | null {
  if (!ops.some((op) => op.path !== undefined && ENTRA_EMAIL_PATH.test(op.path))) return null;
  return ops.map((op) => (op.path !== undefined && ENTRA_EMAIL_PATH.test(op.path)
    ? { op: opName('replace', o), path: 'emails', value: [{ value: op.value, type: 'work', primary: true }] }
    : op));
}

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const MEMBER_FILTER = /^members\[value eq ("(?:[^"\\]|\\.)*")\]$/;

/**
 * The full resource to PUT for a provider without PATCH: the remote resource as read, with the PATCH operations
 * we would have sent applied to it here (only the forms this file makes, in either dialect). What the provider
 * keeps that we do not manage stays as it was; read-only attributes are left out.
 */
export function putResource(remote: Json, ops: PatchOperation[]): Json {
  const r: Json = structuredClone(remote);
  delete r.meta;
  delete r.groups;
  if (Array.isArray(r.members)) r.members = r.members.map((m: Json) => ({ value: m.value }));
  const schemas = new Set<string>(Array.isArray(r.schemas) ? r.schemas : []);
  const member = (v: unknown): string[] => (Array.isArray(v) ? v : [v]).map((m: any) => m?.value).filter((m): m is string => typeof m === 'string');
  for (const raw of ops) {
    const op = raw.op.toLowerCase();
    const value = raw.path === 'active' && (raw.value === 'True' || raw.value === 'False') ? raw.value === 'True' : raw.value;
    const path = raw.path;
    if (path === undefined) {
      for (const [k, v] of Object.entries(isObject(value) ? value : {})) {
        r[k] = isObject(v) && isObject(r[k]) ? { ...r[k], ...v } : v;
        if (k.startsWith('urn:')) schemas.add(k);
      }
      continue;
    }
    if (ENTRA_EMAIL_PATH.test(path)) {
      r.emails = [{ value, type: 'work', primary: true }];
      continue;
    }
    const filtered = MEMBER_FILTER.exec(path);
    if (filtered) {
      const id = JSON.parse(filtered[1]) as string;
      r.members = (r.members ?? []).filter((m: Json) => m.value !== id);
      continue;
    }
    if (path === 'members') {
      const current: Json[] = r.members ?? [];
      if (op === 'add') {
        const have = new Set(current.map((m) => m.value));
        r.members = [...current, ...member(value).filter((id) => !have.has(id) && have.add(id)).map((id) => ({ value: id }))];
      } else if (op === 'remove') {
        const gone = new Set(value === undefined ? current.map((m) => m.value) : member(value));
        r.members = current.filter((m) => !gone.has(m.value));
      } else {
        r.members = member(value).map((id) => ({ value: id }));
      }
      continue;
    }
    const urn = /^(urn:.+):([^:]+)$/.exec(path);
    let container: Json = r;
    let key = path;
    if (urn) {
      if (!isObject(r[urn[1]])) r[urn[1]] = {};
      container = r[urn[1]];
      key = urn[2];
      schemas.add(urn[1]);
    } else {
      const parts = path.split('.');
      key = parts.pop()!;
      for (const p of parts) {
        if (!isObject(container[p])) container[p] = {};
        container = container[p];
      }
    }
    if (op === 'remove') delete container[key];
    else container[key] = value;
  }
  if (schemas.size) r.schemas = [...schemas];
  return r;
}
