// `target: { type: scim, … }` of a tenant: WT's SCIM 2.0 endpoint and how to talk to it (docs/targets.md). The
// bearer token is never in a file: `tokenEnv` names the environment variable that holds it.
import { z } from 'zod';

const URN = /^urn:[a-z0-9][a-z0-9-]{0,31}:[^\s"]+$/i;

export const scimTargetSchema = z
  .strictObject({
    type: z.literal('scim'),
    /** The tenant URL WT gives, e.g. https://scim.prod.winningtemp.com/api/scim; http only to this machine. */
    baseUrl: z.url({ protocol: /^https?$/, error: 'expected the SCIM tenant URL, e.g. "https://scim.prod.winningtemp.com/api/scim"' }).refine(
      (u) => u.startsWith('https://') || /^http:\/\/(127\.0\.0\.1|localhost|\[::1\])(:\d+)?(\/|$)/.test(u),
      'must be https:// (plain http only to 127.0.0.1 or localhost, for tests)',
    ),
    /** Name of the environment variable holding the bearer token (never the token itself). */
    tokenEnv: z.string().regex(/^[A-Z_][A-Z0-9_]*$/, 'expected the NAME of an environment variable such as WT_SCIM_TOKEN_ACME (the token itself never goes in a file)'),
    /** A user gone from the snapshot: PATCH active=false (kept in WT, can come back) or DELETE. */
    userRemoval: z.enum(['deactivate', 'delete']).default('deactivate'),
    /** PATCH bodies: RFC 7644 (lowercase ops, boolean active, members[value eq "…"]) or as Entra ID sends them. */
    patchDialect: z.enum(['rfc', 'entra']).default('rfc'),
    /** URN of an extension schema for the WT-only user fields (phone, title, …); absent: they are not sent. */
    userExtension: z.string().regex(URN, 'expected a schema URN such as "urn:ietf:params:scim:schemas:extension:winningtemp:2.0:User"').optional(),
    /** Group parents: left out (WT's SCIM places groups outside the tree) or sent in the group extension. */
    groupParents: z.enum(['omit', 'extension']).default('omit'),
    /** URN of the group extension carrying `parentExternalId` (with groupParents: extension). */
    groupExtension: z.string().regex(URN, 'expected a schema URN').optional(),
    /** Segments: left out, or sent as SCIM groups whose name starts with `segmentPrefix`. */
    segments: z.enum(['omit', 'groups']).default('omit'),
    segmentPrefix: z.string().min(1).default('Segment: '),
    /** Requests in flight at once. */
    concurrency: z.number().int().min(1).max(64).default(4),
    /** Requests per second at most (absent: only concurrency bounds them). */
    rateLimit: z.number().positive().optional(),
    connectTimeoutSeconds: z.number().positive().default(10),
    timeoutSeconds: z.number().positive().default(60),
    /** Tries per request (the first included) for 429, 5xx and network errors. */
    maxAttempts: z.number().int().min(1).max(20).default(6),
    backoffBaseMs: z.number().int().min(0).default(500),
    backoffMaxMs: z.number().int().min(0).default(30_000),
    /** The longest pause a 429's Retry-After may ask for. */
    maxRetryAfterSeconds: z.number().positive().default(300),
    /** Resources per page asked for when listing (a provider may send fewer). */
    pageSize: z.number().int().min(1).max(1000).default(100),
    /** Members per group PATCH (capped by the provider's bulk.maxOperations when smaller). */
    memberChunk: z.number().int().min(1).max(100).default(100),
  })
  .superRefine((t, ctx) => {
    if (t.groupParents === 'extension' && !t.groupExtension) ctx.addIssue({ code: 'custom', path: ['groupExtension'], message: 'is required with groupParents: extension (the URN of the schema carrying parentExternalId)' });
  });

export type ScimTargetConfig = z.infer<typeof scimTargetSchema>;
