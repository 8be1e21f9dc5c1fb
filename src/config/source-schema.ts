// The `source:` key of a tenant file: upload (default), api (an HTTP JSON poller) or sftp-pull (the customer's
// SFTP server). Validated like the rest of the tenant file; secrets are only ever `${env:NAME}` references.
import cron from 'node-cron';
import { z } from 'zod';
import { FIELDS_BY_TYPE, FILE_TYPES, type FileType } from '../model.js';

/** A secret is never written in a tenant file: it names the environment variable that holds it. */
export const ENV_REF = /^\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}$/;
const secret = z.string().regex(ENV_REF, 'must be an environment reference such as "${env:ACME_API_TOKEN}": secrets are never written in the tenant file');

export const validTimeZone = (tz: string): boolean => {
  try {
    new Intl.DateTimeFormat('en', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
};

const scheduleKeys = {
  /** Cron expression (node-cron, 5 or 6 fields) at which the source is fetched. */
  schedule: z.string().refine((c) => cron.validate(c), 'not a valid cron expression (e.g. "0 1 * * *" for 01:00 every day)').default('0 1 * * *'),
  timezone: z.string().refine(validTimeZone, 'not a known IANA time zone (e.g. "Europe/Stockholm")').default('Europe/Stockholm'),
};

const authSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('none') }),
  z.strictObject({ type: z.literal('bearer'), token: secret }),
  z.strictObject({ type: z.literal('basic'), username: z.string().min(1), password: secret }),
  z.strictObject({ type: z.literal('apiKey'), in: z.enum(['header', 'query']).default('header'), name: z.string().min(1), value: secret, /** e.g. "SSWS " (Okta) */ prefix: z.string().default('') }),
  z.strictObject({
    type: z.literal('oauth2'),
    tokenUrl: z.string().url(),
    clientId: z.string().min(1),
    clientSecret: secret,
    scope: z.string().optional(),
    /** Refresh this many seconds before `expires_in` runs out. */
    refreshBeforeSeconds: z.number().min(0).default(30),
  }),
]);

const pagingSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('none') }),
  z.strictObject({ type: z.literal('offset'), offsetParam: z.string().default('offset'), limitParam: z.string().default('limit'), limit: z.number().int().positive().default(100) }),
  z.strictObject({ type: z.literal('page'), pageParam: z.string().default('page'), sizeParam: z.string().optional(), size: z.number().int().positive().default(100), base: z.union([z.literal(0), z.literal(1)]).default(1) }),
  z.strictObject({ type: z.literal('cursor'), cursorPath: z.string().min(1), cursorParam: z.string().min(1), limitParam: z.string().optional(), limit: z.number().int().positive().optional() }),
  z.strictObject({ type: z.literal('nextUrl'), nextPath: z.string().min(1) }),
  z.strictObject({ type: z.literal('linkHeader') }),
]);

const fieldMapping = z.union([
  z.string().min(1),
  z.strictObject({ path: z.string().min(1) }),
  z.strictObject({ const: z.string() }),
  z.strictObject({ template: z.string().min(1) }),
]);
export type FieldMapping = z.infer<typeof fieldMapping>;

const objectSchema = z.strictObject({
  request: z.strictObject({
    method: z.enum(['GET', 'POST']).default('GET'),
    url: z.string().min(1),
    query: z.record(z.string(), z.string()).default({}),
    headers: z.record(z.string(), z.string()).default({}),
    body: z.unknown().optional(),
  }),
  paging: pagingSchema.default({ type: 'none' }),
  stop: z.strictObject({
    /** Path of a boolean that says whether more pages follow. */
    hasMorePath: z.string().optional(),
    /** Path of the total record count: paging stops once that many records are fetched. */
    totalPath: z.string().optional(),
    /** An empty page ends paging (offset and page styles). */
    emptyPage: z.boolean().default(true),
    /** A page with fewer records than asked for ends paging (off by default: many APIs return short pages). */
    shortPage: z.boolean().default(false),
  }).default({ emptyPage: true, shortPage: false }),
  /** Path of the records array in each page (`data`, `value`, `results`); empty = the body is the array. */
  records: z.string().default(''),
  /** The API's reported total must equal the records fetched, else the fetch fails. */
  totalPath: z.string().optional(),
  /** Minimum share of records that carry a field (APIs that silently drop fields they may not read). */
  coverage: z.array(z.strictObject({ field: z.string(), minPercent: z.number().min(0).max(100) })).default([]),
  /** WT field → where its value is in a record. */
  fields: z.record(z.string(), fieldMapping),
  /** Per field: API value → WT value (null = empty), as for CSV columns; used when files.<type> is not given. */
  valueMaps: z.record(z.string(), z.record(z.string(), z.string().nullable())).default({}),
  /** Separator joining a multi-valued field's values; used when files.<type> is not given. */
  listSeparator: z.string().min(1).default(','),
});
export type ApiObjectConfig = z.infer<typeof objectSchema>;

export const apiSourceSchema = z.strictObject({
  type: z.literal('api'),
  ...scheduleKeys,
  auth: authSchema.default({ type: 'none' }),
  timeouts: z.strictObject({ connectSeconds: z.number().positive().default(10), readSeconds: z.number().positive().default(60) }).default({ connectSeconds: 10, readSeconds: 60 }),
  retry: z.strictObject({
    maxAttempts: z.number().int().min(1).max(20).default(5),
    baseDelayMs: z.number().int().min(0).default(500),
    maxDelayMs: z.number().int().min(0).default(30_000),
    /** A 429 asking to wait longer than this fails the fetch. */
    maxRetryAfterSeconds: z.number().min(0).default(300),
  }).default({ maxAttempts: 5, baseDelayMs: 500, maxDelayMs: 30_000, maxRetryAfterSeconds: 300 }),
  /** Request budget of this source. */
  requestsPerMinute: z.number().positive().default(600),
  /** Object types fetched at the same time. */
  concurrency: z.number().int().min(1).max(3).default(1),
  /** More pages than this for one object type fails the fetch. */
  maxPages: z.number().int().positive().default(10_000),
  /** Largest response body accepted, in bytes. */
  maxResponseBytes: z.number().int().positive().default(64 * 1024 * 1024),
  objects: z.strictObject({ users: objectSchema.optional(), groups: objectSchema.optional(), segments: objectSchema.optional() })
    .refine((o) => FILE_TYPES.some((t) => o[t]), 'configure at least one of users, groups, segments'),
}).superRefine((src, ctx) => {
  for (const type of FILE_TYPES) {
    const obj = src.objects[type];
    if (!obj) continue;
    for (const field of Object.keys(obj.fields)) {
      if (!FIELDS_BY_TYPE[type].includes(field)) ctx.addIssue({ code: 'custom', path: ['objects', type, 'fields', field], message: `unknown ${type} field; allowed: ${FIELDS_BY_TYPE[type].join(', ')}` });
    }
    for (const required of type === 'users' ? ['externalId', 'firstName', 'lastName', 'username'] : ['externalId', 'name']) {
      if (!(required in obj.fields)) ctx.addIssue({ code: 'custom', path: ['objects', type, 'fields'], message: `mandatory field "${required}" has no mapping` });
    }
    for (const c of obj.coverage) {
      if (!(c.field in obj.fields)) ctx.addIssue({ code: 'custom', path: ['objects', type, 'coverage'], message: `field "${c.field}" is not mapped in fields` });
    }
  }
});
export type ApiSourceConfig = z.infer<typeof apiSourceSchema>;

export const sftpPullSourceSchema = z.strictObject({
  type: z.literal('sftp-pull'),
  ...scheduleKeys,
  host: z.string().min(1),
  port: z.number().int().min(1).max(65535).default(22),
  username: z.string().min(1),
  privateKeyPath: z.string().min(1),
  passphrase: secret.optional(),
  /** The server's host key as OpenSSH prints it: "SHA256:…" (ssh-keyscan HOST | ssh-keygen -lf -). */
  hostKeySha256: z.string({ message: 'is required: pin the server\'s host key fingerprint ("SHA256:…", from `ssh-keyscan -p PORT HOST | ssh-keygen -lf -`)' })
    .regex(/^SHA256:[A-Za-z0-9+/]{43}$/, 'must be a SHA256 fingerprint such as "SHA256:AbC…" (43 base64 characters)'),
  remoteDir: z.string().default('.'),
  afterPull: z.enum(['keep', 'delete', 'move']).default('keep'),
  /** Remote folder for afterPull: move. */
  moveTo: z.string().optional(),
  timeoutSeconds: z.number().positive().default(30),
  retry: z.strictObject({ maxAttempts: z.number().int().min(1).max(20).default(3), baseDelayMs: z.number().int().min(0).default(1000), maxDelayMs: z.number().int().min(0).default(30_000) })
    .default({ maxAttempts: 3, baseDelayMs: 1000, maxDelayMs: 30_000 }),
}).superRefine((s, ctx) => {
  if (s.afterPull === 'move' && !s.moveTo) ctx.addIssue({ code: 'custom', path: ['moveTo'], message: 'is required with afterPull: move (the remote folder processed files go to)' });
});
export type SftpPullSourceConfig = z.infer<typeof sftpPullSourceSchema>;

export const sourceSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('upload') }),
  apiSourceSchema,
  sftpPullSourceSchema,
]);
export type SourceConfig = z.infer<typeof sourceSchema>;

/** The file name an api fetch of `type` is received under: the type's pattern with `*` filled in, so patterns keep working. */
export function apiFileName(pattern: string, type: FileType, stamp: string): string {
  let first = true;
  const name = pattern.replace(/\*/g, () => (first ? ((first = false), `api-${stamp}-`) : '')).replace(/\?/g, 'x');
  return name === pattern ? `api-${stamp}-${type}.csv` : name;
}
