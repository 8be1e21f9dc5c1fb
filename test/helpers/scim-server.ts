// A real SCIM 2.0 service provider for tests: scimmy + scimmy-routers on express 4, listening on 127.0.0.1, with an
// in-memory store whose handlers do what a real provider does and scimmy leaves to them (404 for unknown ids, 409
// `uniqueness` on userName/externalId, case-insensitive userName, no duplicate members), a bearer check, and a
// fault-injecting middleware in front (429 with Retry-After, 500/503, slow responses, dropped connections, a
// page-size cap, added latency).
//
// scimmy 1.3's filter lexer does not take RFC 7644's escaped quotes (`"a\"b"`), so `attr eq "…"` filters are read
// here, as JSON strings, before scimmy sees the request, and matched by the store like a provider's own query.
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type http from 'node:http';
import express from 'express';
import SCIMMY from 'scimmy';
import SCIMMYRouters from 'scimmy-routers';

export const USER_EXTENSION = 'urn:ietf:params:scim:schemas:extension:winningtemp:2.0:User';
export const GROUP_EXTENSION = 'urn:ietf:params:scim:schemas:extension:winningtemp:2.0:Group';

type Json = Record<string, any>;

export interface Faults {
  /** Share of requests (0..1) that get a fault. */
  rate: number;
  kinds: ('429' | '500' | '503' | 'slow' | 'drop' | 'dropAfter')[];
  /** The Retry-After of a 429: seconds, or 'date' for an HTTP date two seconds ahead (whole seconds: 1 to 2 s). */
  retryAfter?: string;
  slowMs?: number;
}

export interface RequestRecord { method: string; path: string; status: number; body?: unknown; fault?: string }

export interface ScimServer {
  url: string;
  token: string;
  users: Map<string, Json>;
  groups: Map<string, Json>;
  requests: RequestRecord[];
  /** Duplicate member adds the store ignored. */
  duplicateMemberAdds: number;
  faults: Faults | null;
  pageCap: number | null;
  latencyMs: number;
  /** Answer every request with this status (401/403), as a revoked token would. */
  forceStatus: number | null;
  /** Faults for the next requests, one each, before the random ones. */
  nextFaults: Faults['kinds'][number][];
  /** Answer every PATCH with this status (501 Not Implemented, 405 Method Not Allowed), as a provider without PATCH. */
  refusePatch: 501 | 405 | null;
  /** Requests answered 400 invalidValue (a provider refusing some values). */
  reject: ((req: { method: string; path: string; body: any }) => boolean) | null;
  /** When each request arrived (ms since the epoch), in order. */
  arrivals: number[];
  /** Keep only requests that changed something (POST/PATCH/PUT/DELETE) and succeeded. */
  writes(): RequestRecord[];
  userByExternalId(externalId: string): Json | undefined;
  /** A provider without PATCH: /ServiceProviderConfig says `patch.supported: false`, and a PATCH sent anyway is answered 501. Undone by reset(). */
  withoutPatch(): void;
  /** Between tests: no resources, no recorded requests, no faults, caps, latency, forced answers, PATCH refusal or rejecting hook; PATCH advertised again after withoutPatch(). */
  reset(): void;
  close(): Promise<void>;
}

interface Store {
  users: IndexedMap;
  groups: IndexedMap;
  server: ScimServer;
}

interface Context { store: Store; eq?: { attr: string; value: string } }

const fail = (status: number, scimType: string | null, detail: string) => new SCIMMY.Types.Error(status, scimType as never, detail);

function rng(seed: number) {
  return () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed / 0x7fffffff;
  };
}

/** A Map of resources that keeps indexes on some attributes (userName case-insensitive), so lookups stay O(1) at 10k. */
class IndexedMap extends Map<string, Json> {
  readonly index = new Map<string, Map<string, string>>();
  constructor(private readonly attrs: Record<string, boolean>) {
    super();
    for (const a of Object.keys(attrs)) this.index.set(a, new Map());
  }
  private key(attr: string, v: unknown): string | undefined {
    return typeof v === 'string' ? (this.attrs[attr] ? v.toLowerCase() : v) : undefined;
  }
  override set(id: string, r: Json): this {
    this.unindex(id);
    for (const a of Object.keys(this.attrs ?? {})) {
      const k = this.key(a, r[a]);
      if (k !== undefined) this.index.get(a)!.set(k, id);
    }
    return super.set(id, r);
  }
  override delete(id: string): boolean {
    this.unindex(id);
    return super.delete(id);
  }
  override clear(): void {
    for (const m of this.index.values()) m.clear();
    super.clear();
  }
  private unindex(id: string): void {
    const old = this.get(id);
    if (!old || !this.index) return;
    for (const a of Object.keys(this.attrs)) {
      const k = this.key(a, old[a]);
      if (k !== undefined && this.index.get(a)!.get(k) === id) this.index.get(a)!.delete(k);
    }
  }
  /** The id holding `value` in an indexed attribute, if any. */
  holder(attr: string, value: string): string | undefined {
    const id = this.index.get(attr)?.get(this.key(attr, value)!);
    return id !== undefined && this.has(id) ? id : undefined;
  }
}

let declared = false;

/** scimmy is one global registry: resources and their handlers are declared once; each server's store comes in the context. */
function declareResources(): void {
  if (declared) return;
  declared = true;
  const userExtension = new SCIMMY.Types.SchemaDefinition('WinningtempUser', USER_EXTENSION, 'WT fields SCIM core does not carry', [
    ...['phone', 'title', 'birthday', 'employedSince', 'employedUntil', 'gender', 'language'].map((n) => new SCIMMY.Types.Attribute('string', n)),
    new SCIMMY.Types.Attribute('string', 'segments', { multiValued: true }),
    new SCIMMY.Types.Attribute('string', 'adminOf', { multiValued: true }),
  ]);
  const groupExtension = new SCIMMY.Types.SchemaDefinition('WinningtempGroup', GROUP_EXTENSION, 'WT group tree', [new SCIMMY.Types.Attribute('string', 'parentExternalId')]);
  const plain = (o: unknown): Json => JSON.parse(JSON.stringify(o));
  const matches = (ctx: Context, map: IndexedMap, resource: any): Json[] => {
    if (ctx.eq) {
      const { attr, value } = ctx.eq;
      if (map.index.has(attr)) {
        const id = map.holder(attr, value);
        return id === undefined ? [] : [map.get(id)!];
      }
      return [...map.values()].filter((r) => attr.split('.').reduce<any>((o, k) => o?.[k], r) === value);
    }
    const list = [...map.values()];
    return resource.filter ? resource.filter.match(list) : list;
  };
  /** A GET: one resource by id (404 when unknown), or the list a filter selects. */
  const egress = (kind: 'User' | 'Group', of: 'users' | 'groups') => (resource: any, ctx: Context) => {
    const all = ctx.store[of];
    if (!resource.id) return matches(ctx, all, resource);
    const found = all.get(resource.id);
    if (!found) throw fail(404, null, `${kind} ${resource.id} not found`);
    return found;
  };
  const unique = (map: IndexedMap, self: string | undefined, attr: string, value: unknown) => {
    if (typeof value !== 'string') return;
    const holder = map.holder(attr, value);
    if (holder !== undefined && holder !== self) throw fail(409, 'uniqueness', `${attr} "${value}" is already used by ${holder}`);
  };
  const stamp = (kind: string, id: string, created?: string) => {
    const now = new Date().toISOString();
    return { resourceType: kind, created: created ?? now, lastModified: now };
  };

  SCIMMY.Resources.declare(SCIMMY.Resources.User.extend(userExtension as any, false) as any)
    .ingress((resource: any, instance: any, ctx: Context) => {
      const { users } = ctx.store;
      const data = plain(instance);
      delete data.id;
      delete data.meta;
      if (resource.id && !users.has(resource.id)) throw fail(404, null, `User ${resource.id} not found`);
      unique(users, resource.id, 'userName', data.userName);
      unique(users, resource.id, 'externalId', data.externalId);
      const id = resource.id ?? randomUUID();
      const user = { ...data, id, meta: stamp('User', id, users.get(id)?.meta?.created) };
      users.set(id, user);
      return user;
    })
    .egress(egress('User', 'users'))
    .degress((resource: any, ctx: Context) => {
      const { users, groups } = ctx.store;
      if (!users.delete(resource.id)) throw fail(404, null, `User ${resource.id} not found`);
      for (const g of groups.values()) if (g.members) g.members = g.members.filter((m: Json) => m.value !== resource.id);
    });

  SCIMMY.Resources.declare(SCIMMY.Resources.Group.extend(groupExtension as any, false) as any)
    .ingress((resource: any, instance: any, ctx: Context) => {
      const { users, groups, server } = ctx.store;
      const data = plain(instance);
      delete data.id;
      delete data.meta;
      if (resource.id && !groups.has(resource.id)) throw fail(404, null, `Group ${resource.id} not found`);
      unique(groups, resource.id, 'externalId', data.externalId);
      const seen = new Set<string>();
      const members: Json[] = [];
      for (const m of data.members ?? []) {
        if (!users.has(m.value)) throw fail(400, 'invalidValue', `member ${m.value} is not a user`);
        if (seen.has(m.value)) {
          server.duplicateMemberAdds++;
          continue;
        }
        seen.add(m.value);
        members.push({ value: m.value, type: 'User' });
      }
      const id = resource.id ?? randomUUID();
      const group = { ...data, members, id, meta: stamp('Group', id, groups.get(id)?.meta?.created) };
      groups.set(id, group);
      return group;
    })
    .egress(egress('Group', 'groups'))
    .degress((resource: any, ctx: Context) => {
      if (!ctx.store.groups.delete(resource.id)) throw fail(404, null, `Group ${resource.id} not found`);
    });
}

const VALUE_FILTER = /^(\w+)\[(\w+) eq ("(?:[^"\\]|\\.)*")\]/;
const EQ = /^\s*([A-Za-z][\w.:-]*)\s+eq\s+("(?:[^"\\]|\\.)*")\s*$/i;

export async function startScimServer(opts: { token?: string; seed?: number } = {}): Promise<ScimServer> {
  declareResources();
  const token = opts.token ?? `test-token-${randomUUID()}`;
  const random = rng(opts.seed ?? 42);
  // What /ServiceProviderConfig said about PATCH before withoutPatch(), for reset() to put back.
  let patchAdvertised: boolean | undefined;
  const app = express();
  const server: ScimServer = {
    url: '', token, users: new IndexedMap({ userName: true, externalId: false }), groups: new IndexedMap({ externalId: false, displayName: false }), requests: [], duplicateMemberAdds: 0,
    faults: null, pageCap: null, latencyMs: 0, forceStatus: null, nextFaults: [], reject: null, refusePatch: null, arrivals: [],
    writes: () => server.requests.filter((r) => r.method !== 'GET' && r.status < 300 && !r.fault),
    userByExternalId: (externalId) => server.users.get((server.users as IndexedMap).holder('externalId', externalId) ?? ''),
    withoutPatch: () => {
      patchAdvertised ??= SCIMMY.Config.get().patch.supported;
      SCIMMY.Config.set({ patch: { supported: false } });
      server.refusePatch = 501;
    },
    reset: () => {
      if (patchAdvertised !== undefined) SCIMMY.Config.set({ patch: { supported: patchAdvertised } });
      patchAdvertised = undefined;
      server.users.clear();
      server.groups.clear();
      server.requests.length = 0;
      server.arrivals.length = 0;
      server.faults = null;
      server.nextFaults = [];
      server.pageCap = null;
      server.forceStatus = null;
      server.reject = null;
      server.refusePatch = null;
      server.latencyMs = 0;
    },
    close: async () => {},
  };
  const store: Store = { users: server.users as IndexedMap, groups: server.groups as IndexedMap, server };

  // Recording, latency, forced status and faults come before SCIM.
  app.use(express.json({ type: ['application/scim+json', 'application/json'], limit: '10mb' }));
  app.use((req, res, next) => {
    const record: RequestRecord = { method: req.method, path: req.originalUrl, status: 0, body: req.body === undefined ? undefined : structuredClone(req.body) };
    server.requests.push(record);
    server.arrivals.push(Date.now());
    res.on('finish', () => {
      record.status = res.statusCode;
    });
    const go = () => {
      if (server.forceStatus !== null) {
        res.status(server.forceStatus).type('application/scim+json').send({ schemas: ['urn:ietf:params:scim:api:messages:2.0:Error'], status: String(server.forceStatus), detail: 'token revoked' });
        return;
      }
      if (server.refusePatch !== null && req.method === 'PATCH') {
        res.status(server.refusePatch).type('application/scim+json').send({ schemas: ['urn:ietf:params:scim:api:messages:2.0:Error'], status: String(server.refusePatch), detail: 'PATCH is not supported' });
        return;
      }
      if (server.reject?.({ method: req.method, path: req.path, body: req.body })) {
        res.status(400).type('application/scim+json').send({ schemas: ['urn:ietf:params:scim:api:messages:2.0:Error'], status: '400', scimType: 'invalidValue', detail: 'refused by the test' });
        return;
      }
      const f = server.faults ?? { rate: 0, kinds: [] };
      const queued = server.nextFaults.shift();
      if (queued || (f.rate > 0 && random() < f.rate)) {
        const kind = queued ?? f.kinds[Math.floor(random() * f.kinds.length)];
        record.fault = kind;
        switch (kind) {
          case '429': {
            const ra = f.retryAfter === 'date' ? new Date(Date.now() + 2000).toUTCString() : (f.retryAfter ?? '0');
            res.status(429).set('Retry-After', ra).type('application/scim+json').send({ schemas: ['urn:ietf:params:scim:api:messages:2.0:Error'], status: '429', detail: 'too many requests' });
            return;
          }
          case '500':
          case '503':
            res.status(Number(kind)).type('application/scim+json').send({ schemas: ['urn:ietf:params:scim:api:messages:2.0:Error'], status: kind, detail: 'injected' });
            return;
          case 'drop':
            req.socket.destroy();
            return;
          case 'dropAfter':
            // The request is processed, then the connection dies before the answer: the client cannot know.
            (res as any).send = function dropAfterProcessing() {
              req.socket.destroy();
              return res;
            };
            break;
          case 'slow':
            // A client that gave up meanwhile gets nothing processed (so no request outlives its test);
            // 'dropAfter' is the case of work done behind a lost answer.
            setTimeout(() => {
              if (!req.socket.destroyed) next();
            }, f.slowMs ?? 300);
            return;
        }
      }
      next();
    };
    if (server.latencyMs > 0) setTimeout(go, server.latencyMs);
    else go();
  });
  app.use((req, res, next) => {
    const q = req.query as Record<string, unknown>;
    if (server.pageCap !== null && req.method === 'GET' && /^\/scim\/(Users|Groups)\/?$/.test(req.path)) {
      q.count = String(Math.min(Number(q.count ?? server.pageCap), server.pageCap));
    }
    // Like WT's endpoint, which Entra ID provisions: "True"/"False" for active are taken as booleans.
    if (req.method === 'PATCH' && Array.isArray(req.body?.Operations)) {
      for (const op of req.body.Operations) {
        if (op?.path === 'active' && (op.value === 'True' || op.value === 'False')) op.value = op.value === 'True';
      }
    }
    // RFC 7644 §3.5.2.3: a replace whose value filter matches no value is 400 noTarget (scimmy adds one instead).
    const userPatch = req.method === 'PATCH' ? /^\/scim\/Users\/([^/]+)$/.exec(req.path) : null;
    const target = userPatch ? server.users.get(decodeURIComponent(userPatch[1])) : undefined;
    if (target && Array.isArray(req.body?.Operations)) {
      for (const op of req.body.Operations) {
        const f = typeof op?.path === 'string' && /^replace$/i.test(op.op) ? VALUE_FILTER.exec(op.path) : null;
        if (f && !(Array.isArray(target[f[1]]) && target[f[1]].some((v: Json) => v?.[f[2]] === JSON.parse(f[3])))) {
          res.status(400).type('application/scim+json').send({ schemas: ['urn:ietf:params:scim:api:messages:2.0:Error'], status: '400', scimType: 'noTarget', detail: `Filter '${op.path}' does not match any values` });
          return;
        }
      }
    }
    const m = typeof q.filter === 'string' ? EQ.exec(q.filter) : null;
    if (m) {
      (req as any).scimEq = { attr: m[1], value: JSON.parse(m[2]) as string };
      delete q.filter;
    }
    next();
  });
  app.use('/scim', new SCIMMYRouters({
    type: 'bearer',
    handler: (req: express.Request) => {
      if (req.header('Authorization') !== `Bearer ${token}`) throw new Error('bad bearer token');
      return 'wt-sync';
    },
    context: (req: express.Request): Context => ({ store, eq: (req as any).scimEq }),
  }) as unknown as express.Router);

  const httpServer: http.Server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  server.url = `http://127.0.0.1:${(httpServer.address() as AddressInfo).port}/scim`;
  server.close = () => new Promise((resolve) => {
    httpServer.closeAllConnections();
    httpServer.close(() => resolve());
  });
  return server;
}
