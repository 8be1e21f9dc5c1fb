// How WT's users and groups look as SCIM resources, and the PATCH bodies that change them, in either dialect:
// `rfc` (RFC 7644: lowercase ops, boolean active, members[value eq "…"] removal) or `entra` (what Entra ID sends
// by default: capitalised ops, "True"/"False", removal with a value list). Pure functions, no I/O.
import type { ScimTargetConfig } from '../config/scim-target.js';

export const USER_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:User';
export const GROUP_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:Group';
export const PATCH_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';

/** WT-only user fields, sent only in the tenant's extension schema. */
export const EXTENSION_FIELDS = ['phone', 'title', 'birthday', 'employedSince', 'employedUntil', 'gender', 'language'] as const;

export type ResourceOptions = Pick<ScimTargetConfig, 'patchDialect' | 'userExtension' | 'groupParents' | 'groupExtension'>;

/** A user's fields as the directory holds them (null: empty). */
export type UserFields = Record<string, string | null | undefined>;

type Json = Record<string, any>;
export interface PatchOperation { op: string; path?: string; value?: unknown }

export function userResource(externalId: string, u: UserFields, o: ResourceOptions): Json {
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
