// The shape of config/wt-sync.yaml and config/tenants/<id>.yaml. Unknown keys are errors.
import cron from 'node-cron';
import { z } from 'zod';
import { FIELDS_BY_TYPE, FILE_TYPES, type FileType } from '../model.js';
import { sourceSchema, validTimeZone } from './source-schema.js';
import { scimTargetSchema } from './scim-target.js';

export const TENANT_ID_PATTERN = /^[a-z0-9][a-z0-9_-]{0,62}$/;

const valueMap = z.record(z.string(), z.string().nullable());

/** What a value map may produce for fields with a fixed set of values. */
const MAPPED_VALUES: Record<string, string[]> = { gender: ['male', 'female', 'other'], status: ['active', 'inactive'] };

function fileSpec(type: FileType) {
  const allowed = ["ignore", ...FIELDS_BY_TYPE[type]] as [string, ...string[]];
  return z
    .strictObject({
      /** Glob on the file name (no folders), e.g. `*users*.csv`. */
      pattern: z.string().min(1),
      /** Field per column position; `ignore` skips a column. */
      columns: z.array(z.enum(allowed)).min(1),
      /** Header names recorded at setup; the file's header must match them position by position. */
      header: z.array(z.string()).optional(),
      /** Separator inside multi-valued cells (groups, segments). */
      listSeparator: z.string().min(1).default(','),
      /** Per field: source value → WT value (null = empty). */
      valueMaps: z.record(z.string(), valueMap).default({}),
    })
    .superRefine((spec, ctx) => {
      const seen = new Map<string, number>();
      spec.columns.forEach((field, i) => {
        if (field === 'ignore') return;
        const first = seen.get(field);
        if (first !== undefined) {
          ctx.addIssue({ code: 'custom', path: ['columns', i], message: `field "${field}" is already mapped at position ${first}` });
        }
        seen.set(field, i);
      });
      for (const required of type === 'users' ? ['externalId', 'firstName', 'lastName', 'username'] : ['externalId', 'name']) {
        if (!seen.has(required)) ctx.addIssue({ code: 'custom', path: ['columns'], message: `mandatory field "${required}" is not mapped to any column` });
      }
      if (spec.header && spec.header.length !== spec.columns.length) {
        ctx.addIssue({ code: 'custom', path: ['header'], message: `has ${spec.header.length} names but columns has ${spec.columns.length} entries` });
      }
      for (const [field, map] of Object.entries(spec.valueMaps)) {
        if (!FIELDS_BY_TYPE[type].includes(field)) ctx.addIssue({ code: 'custom', path: ['valueMaps', field], message: `unknown field; allowed: ${FIELDS_BY_TYPE[type].join(', ')}` });
        const allowed = MAPPED_VALUES[field];
        if (!allowed) continue;
        for (const [from, to] of Object.entries(map)) {
          if (to !== null && !allowed.includes(to)) ctx.addIssue({ code: 'custom', path: ['valueMaps', field, from], message: `maps to "${to}"; allowed: ${allowed.join(', ')} or null (empty)` });
        }
      }
    });
}

export const rulesSchema = z.strictObject({
  userRemoval: z.enum(['externalIdOnly', 'all']).default('externalIdOnly'),
  userStatusUpdate: z.enum(['overwrite', 'keepInactive']).default('overwrite'),
  membershipUpdate: z.enum(['never', 'overwrite', 'overwriteIfRoleIsGreaterOrEqual']).default('never'),
  segmentConnectionUpdate: z.enum(['never', 'overwrite']).default('never'),
});
export type Rules = z.infer<typeof rulesSchema>;

export const safeguardsSchema = z.strictObject({
  /** Hold user removals when more than this many. */
  maxRemovals: z.number().int().min(0).default(500),
  /** Hold user removals when more than this percent of the managed users. */
  maxRemovalPercent: z.number().min(0).max(100).default(10),
  /** Reject a file when more than this percent of its data rows are invalid. */
  maxInvalidRowPercent: z.number().min(0).max(100).default(20),
});

const syncSchema = z.discriminatedUnion('trigger', [
  z.strictObject({ trigger: z.literal('onUpload'), settleSeconds: z.number().min(0).default(5) }),
  z.strictObject({
    trigger: z.literal('cron'),
    cron: z.string().refine((c) => cron.validate(c), 'not a valid cron expression (e.g. "0 1 * * *" for 01:00 every day)'),
    timezone: z.string().refine(validTimeZone, 'not a known IANA time zone (e.g. "Europe/Stockholm")').default('Europe/Stockholm'),
  }),
]);

export const tenantSchema = z.strictObject({
  name: z.string().min(1),
  /** OpenSSH one-line public keys allowed to log in over SFTP as this tenant. */
  keys: z.array(z.string().regex(/^(ssh-ed25519|ecdsa-sha2-nistp(256|384|521)|ssh-rsa) [A-Za-z0-9+/=]+( .*)?$/, 'expected an OpenSSH public key line such as "ssh-ed25519 AAAA… comment"')).default([]),
  files: z.strictObject({
    users: fileSpec('users').optional(),
    groups: fileSpec('groups').optional(),
    segments: fileSpec('segments').optional(),
  }).default({}),
  rules: rulesSchema.default(() => rulesSchema.parse({})),
  safeguards: safeguardsSchema.default(() => safeguardsSchema.parse({})),
  removalGraceDays: z.number().int().min(0).default(90),
  sync: syncSchema.default({ trigger: 'onUpload', settleSeconds: 5 }),
  target: z.discriminatedUnion('type', [z.strictObject({ type: z.literal('embedded') }), scimTargetSchema]).default({ type: 'embedded' }),
  source: sourceSchema.default({ type: 'upload' }),
  /** Who gets each run's report by mail (needs `smtp` in the service config). */
  reports: z.strictObject({ email: z.array(z.email()).default([]) }).default({ email: [] }),
  /** A file is expected at least this often; longer without one makes the tenant stale (off when absent). */
  expect: z.strictObject({ everyHours: z.number().positive() }).optional(),
}).superRefine((t, ctx) => {
  // An api source renders each object type as that type's columns: every column needs a field mapping and back.
  if (t.source.type !== 'api') return;
  for (const type of FILE_TYPES) {
    const obj = t.source.objects[type];
    const spec = t.files[type];
    if (!obj || !spec) continue;
    const columns = spec.columns.filter((c) => c !== 'ignore');
    for (const c of columns) if (!(c in obj.fields)) ctx.addIssue({ code: 'custom', path: ['source', 'objects', type, 'fields'], message: `column field "${c}" of files.${type}.columns has no mapping here` });
    for (const f of Object.keys(obj.fields)) if (!columns.includes(f)) ctx.addIssue({ code: 'custom', path: ['source', 'objects', type, 'fields', f], message: `is not one of files.${type}.columns (${columns.join(', ')})` });
  }
}).transform((t) => {
  // An api tenant need not list files: each fetched type's columns are its mapped fields, in mapping order.
  if (t.source.type !== 'api') return t;
  const files = { ...t.files };
  for (const type of FILE_TYPES) {
    const obj = t.source.objects[type];
    if (obj && !files[type]) files[type] = { pattern: `api-*-${type}.csv`, columns: Object.keys(obj.fields) as never, listSeparator: obj.listSeparator, valueMaps: obj.valueMaps };
  }
  return { ...t, files };
});

export type TenantFileSpec = NonNullable<z.infer<typeof tenantSchema>['files']['users']>;
export type TenantConfig = z.infer<typeof tenantSchema> & { id: string };

export const serviceSchema = z.strictObject({
  dataDir: z.string().default('data'),
  keysDir: z.string().default('keys'),
  tenantsDir: z.string().default('config/tenants'),
  sftp: z
    .strictObject({
      host: z.string().default('0.0.0.0'),
      port: z.number().int().min(0).max(65535).default(2222),
      /** Largest upload in bytes (default 1 GiB). */
      maxFileBytes: z.number().int().positive().default(1024 ** 3),
      /** Bytes one tenant may hold: home (outside /reports/), uploads in progress, inbox (default: no limit). */
      tenantQuotaBytes: z.number().int().positive().optional(),
      /** Files and folders one tenant may hold there (default 10,000). */
      tenantMaxEntries: z.number().int().positive().default(10_000),
      /** Connections not yet logged in, like OpenSSH's MaxStartups start:rate:full, plus a cap per /24 or /64 (0 = off). */
      maxStartups: z.strictObject({
        start: z.number().int().positive().default(64),
        rate: z.number().int().min(0).max(100).default(30),
        full: z.number().int().positive().default(256),
        perSubnet: z.number().int().min(0).default(32),
      }).refine((m) => m.full >= m.start, { message: 'full must be at least start' })
        .default({ start: 64, rate: 30, full: 256, perSubnet: 32 }),
      maxSessionsPerTenant: z.number().int().positive().default(8),
      maxConnectionsPerAddress: z.number().int().positive().default(10),
      idleTimeoutSeconds: z.number().int().positive().default(900),
      /** Failed logins from one address within the window ban it for a while. */
      ban: z.strictObject({
        maxFailures: z.number().int().positive().default(10),
        windowMinutes: z.number().positive().default(10),
        banMinutes: z.number().positive().default(15),
      }).default({ maxFailures: 10, windowMinutes: 10, banMinutes: 15 }),
    })
    .default(() => ({
      host: '0.0.0.0', port: 2222, maxFileBytes: 1024 ** 3, tenantMaxEntries: 10_000, maxStartups: { start: 64, rate: 30, full: 256, perSubnet: 32 },
      maxSessionsPerTenant: 8, maxConnectionsPerAddress: 10, idleTimeoutSeconds: 900, ban: { maxFailures: 10, windowMinutes: 10, banMinutes: 15 },
    })),
  /** Days processed files stay in each tenant's archive. */
  archiveDays: z.number().int().min(0).default(30),
  /** Days a finished run keeps its journal (its operations); its summary and counts stay. Held and unfinished runs keep theirs. */
  journalDays: z.number().int().min(1).default(90),
  http: z
    .strictObject({
      host: z.string().default('127.0.0.1'),
      port: z.number().int().min(0).max(65535).default(8080),
    })
    .default({ host: '127.0.0.1', port: 8080 }),
  log: z.strictObject({ level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info') }).default({ level: 'info' }),
  /** Outgoing mail for reports and staleness; mail is off without a host (here or env WT_SYNC_SMTP_HOST). */
  smtp: z.strictObject({
    host: z.string().min(1).optional(),
    port: z.number().int().min(1).max(65535).default(587),
    /** true: TLS from the first byte (port 465); false: STARTTLS when the server offers it. */
    secure: z.boolean().optional(),
    /** Refuse to send unless the connection is encrypted (STARTTLS required). */
    requireTls: z.boolean().default(false),
    user: z.string().optional(),
    /** Prefer env WT_SYNC_SMTP_PASSWORD: a secret in a config file ends up in backups. */
    password: z.string().optional(),
    from: z.string().min(1).default('wt-sync <wt-sync@localhost>'),
    /** A failed send is tried again this many times in all, waiting initialDelaySeconds, then twice as long each time. */
    attempts: z.number().int().min(1).default(6),
    initialDelaySeconds: z.number().min(0).default(30),
  }).optional(),
});
export type ServiceConfig = z.infer<typeof serviceSchema>;

export { FILE_TYPES };
