// The `scim` target: WT's SCIM 2.0 service provider, with the embedded directory as the mirror of what was applied
// there (docs/targets.md). Each journal operation is applied remotely first; once the provider confirms, it is
// applied to the mirror in the same transaction as its journal outcome, and the provider's `id` is kept
// (store/scim-mirror.ts). The next plan is computed against the mirror, never by reading the whole remote.
//
// A batch is cut into steps of one kind (group upserts, user upserts, links, removals, …) in journal order; inside
// a step operations run concurrently (the client bounds how many), one entity's operations one after the other.
// Replaying any operation after a crash is safe: a create looks up by stored id, answers 409 by adopting, and
// membership adds and removals are idempotent.
import type { Logger } from 'pino';
import type { ScimTargetConfig } from '../config/scim-target.js';
import type { DirectoryState, Operation } from '../plan/types.js';
import type { Db } from '../store/db.js';
import { quarantineOf, ScimMirror, setQuarantine, type Quarantine, type ScimKind } from '../store/scim-mirror.js';
import { EmbeddedTarget } from './embedded.js';
import { eqFilter, ScimAuthError, ScimClient, ScimError, ScimUnavailableError } from './scim-client.js';
import {
  activePatch, addMembers, comparedFields, expectedField, groupPatch, groupResource, listPatch, patchBody, putResource, removeMembers,
  rfcEmailOps, userFieldsOf, userListsOf, userPatch, userResource,
  type ExtensionList, type PatchOperation, type UserFields, type UserLists,
} from './scim-resources.js';
import type { ApplySettings, DirectoryReader, JournalOperation, Outcome, Target } from './target.js';

/** Quarantine when more than this share of a run's operations failed… */
export const QUARANTINE_FAILED_SHARE = 0.4;
/** …once at least this many were tried. */
export const QUARANTINE_MIN_TRIED = 50;

type Step = 'groups' | 'segments' | 'users' | 'links' | 'userRemovals' | 'segmentRemovals' | 'groupRemovals' | 'purges';

function stepOf(op: Operation): Step {
  if (op.op === 'link' || op.op === 'unlink') return 'links';
  if (op.op === 'purge') return 'purges';
  if (op.op === 'remove') return op.entity === 'user' ? 'userRemovals' : op.entity === 'segment' ? 'segmentRemovals' : 'groupRemovals';
  return op.entity === 'user' ? 'users' : op.entity === 'segment' ? 'segments' : 'groups';
}

/** An operation's failure a person can act on; the rest of the batch goes on. */
class OperationFailed extends Error {}

interface MemberChange { seq: number; groupKind: 'group' | 'segment'; groupId: string; userId: string; add: boolean }

export class ScimTarget implements Target {
  readonly kind = 'scim';
  readonly batchSize = 200;
  private readonly embedded: EmbeddedTarget;
  private readonly mirror: ScimMirror;
  private clientInstance: ScimClient | null = null;
  /** Tried and failed operations of the run being applied (keyed by the run's timestamp), for the quarantine rule. */
  private tally = { run: '', tried: 0, failed: 0, lastError: '' };

  constructor(
    private readonly db: Db,
    private readonly tenantId: string,
    readonly config: ScimTargetConfig,
    private readonly logger: Logger,
    private readonly env: NodeJS.ProcessEnv = process.env,
  ) {
    this.embedded = new EmbeddedTarget(db);
    this.mirror = new ScimMirror(db);
  }

  /** The client, made at first use: the token is read from the environment then, and only kept in memory. */
  client(): ScimClient {
    if (this.clientInstance) return this.clientInstance;
    const token = this.env[this.config.tokenEnv];
    if (!token) throw new Error(`environment variable ${this.config.tokenEnv} (target.tokenEnv of tenant ${this.tenantId}) is not set: set it to the SCIM token WT gave for this tenant`);
    const c = this.config;
    this.clientInstance = new ScimClient({
      baseUrl: c.baseUrl, token, concurrency: c.concurrency, rateLimit: c.rateLimit,
      connectTimeoutMs: c.connectTimeoutSeconds * 1000, responseTimeoutMs: c.timeoutSeconds * 1000,
      maxAttempts: c.maxAttempts, backoffBaseMs: c.backoffBaseMs, backoffMaxMs: c.backoffMaxMs,
      maxRetryAfterMs: c.maxRetryAfterSeconds * 1000, pageSize: c.pageSize,
      logger: this.logger.child({ tenant: this.tenantId, target: 'scim' }),
    });
    return this.clientInstance;
  }

  close(): void {
    this.clientInstance?.close();
    this.clientInstance = null;
  }

  load(tenant: string): Promise<DirectoryState> {
    return this.embedded.load(tenant);
  }

  reader(tenant: string): DirectoryReader {
    return this.embedded.reader(tenant);
  }

  syncMarks(tenant: string): Promise<Map<string, string>> {
    return this.embedded.syncMarks(tenant);
  }

  markSynced(tenant: string, marks: [externalId: string, mark: string | null][]): void {
    this.embedded.markSynced(tenant, marks);
  }

  quarantine(tenant: string): Quarantine | null {
    return quarantineOf(this.db, tenant);
  }

  /** Reads /ServiceProviderConfig at first use; a refused token quarantines the tenant before anything is planned. */
  async prepare(tenant: string): Promise<void> {
    if (this.quarantine(tenant)) return;
    try {
      await this.client().providerConfig();
      await this.checkExtensions(tenant);
    } catch (err) {
      if (err instanceof ScimAuthError) this.trip(tenant, err.message);
      else throw err;
    }
  }

  private extensionsChecked = false;

  /** An extension URN the provider does not list at /Schemas is most likely a typo: said once, in the log. */
  private async checkExtensions(tenant: string): Promise<void> {
    if (this.extensionsChecked) return;
    this.extensionsChecked = true;
    const wanted = [this.config.userExtension, this.config.groupParents === 'extension' ? this.config.groupExtension : undefined].filter((u): u is string => !!u);
    if (wanted.length === 0) return;
    const listed = await this.client().schemaIds();
    if (listed === null) return;
    for (const urn of wanted) {
      if (!listed.includes(urn)) this.logger.warn({ tenant, urn, listed }, 'the SCIM provider does not list this extension schema at /Schemas: check the URN with WT; fields sent in it may be dropped or refused');
    }
  }

  async applyBatch(tenant: string, batch: JournalOperation[], settings: ApplySettings, record: (outcomes: Outcome[]) => void): Promise<Outcome[]> {
    const outcomes: Outcome[] = [];
    if (this.quarantine(tenant)) return outcomes;
    await this.prepare(tenant);
    for (let i = 0; i < batch.length && !this.quarantine(tenant);) {
      const step = stepOf(batch[i].op);
      let j = i;
      while (j < batch.length && stepOf(batch[j].op) === step) j++;
      outcomes.push(...(await this.applyStep(tenant, step, batch.slice(i, j), settings, record)));
      i = j;
    }
    return outcomes;
  }

  /** One step: remote calls, then the confirmed operations into the mirror with their outcomes. */
  private async applyStep(tenant: string, step: Step, ops: JournalOperation[], settings: ApplySettings, record: (outcomes: Outcome[]) => void): Promise<Outcome[]> {
    const failed = new Map<number, string>();
    const succeeded = new Set<number>();
    let authError: ScimAuthError | null = null;
    const attempt = async (e: JournalOperation, fn: () => Promise<void>) => {
      try {
        await fn();
        succeeded.add(e.seq);
      } catch (err) {
        if (err instanceof ScimAuthError) authError ??= err;
        else if (err instanceof OperationFailed || err instanceof ScimError) failed.set(e.seq, err.message);
        else throw err;
      }
    };
    const unavailable: Error[] = [];
    const guard = async (p: Promise<void>) => {
      try {
        await p;
      } catch (err) {
        if (err instanceof ScimUnavailableError) unavailable.push(err);
        else throw err;
      }
    };
    const lists = (p: Promise<void>) => p.catch((err) => {
      if (err instanceof ScimAuthError) authError ??= err;
      else throw err;
    });
    const members: MemberChange[] = [];
    if (step === 'links' || step === 'users') {
      // Memberships go per group in chunks; a new user's come after its creation, within the step.
      if (step === 'users') await this.byEntity(ops, (e) => guard(attempt(e, () => this.upsertUser(tenant, e, members))));
      else for (const e of ops) this.collectLink(e, members);
      if (!authError && unavailable.length === 0) await guard(this.applyMembers(tenant, members, failed));
      if (step === 'links' && this.config.userExtension && !authError && unavailable.length === 0) await guard(lists(this.sendLists(tenant, linkEdits(ops, failed), failed)));
    } else {
      await this.byEntity(ops, (e) => guard(attempt(e, () => this.applyOne(tenant, e.op))));
      // A removed segment or group leaves the extension lists of its users (the mirror drops the links with it).
      if ((step === 'segmentRemovals' || step === 'groupRemovals') && this.config.userExtension) {
        const edits = removalEdits(this.db, tenant, ops.filter((e) => succeeded.has(e.seq) && !failed.has(e.seq)));
        if (!authError && unavailable.length === 0) await guard(lists(this.sendLists(tenant, edits, failed)));
        // Not recorded unless their users' lists were sent: the replay's DELETE finds 404 (done) and sends them.
        if (unavailable.length > 0) for (const ed of edits) succeeded.delete(ed.seq);
      }
    }
    if (authError) {
      // Nothing of this step is recorded: replayed after `resume`, safely (adopt on 409, idempotent members).
      this.trip(tenant, (authError as ScimAuthError).message);
      return [];
    }
    const outcomes: Outcome[] = [];
    if (unavailable.length > 0) {
      // The provider is gone: what it confirmed in full is recorded, the rest stays planned for the run's next start.
      const awaitingMembers = new Set(members.map((m) => m.seq));
      await this.recordDone(tenant, ops.filter((e) => succeeded.has(e.seq) && !failed.has(e.seq) && !awaitingMembers.has(e.seq)), settings, record, outcomes);
      throw unavailable[0];
    }
    await this.recordDone(tenant, ops.filter((e) => !failed.has(e.seq)), settings, record, outcomes);
    const failures: Outcome[] = [...failed].map(([seq, error]) => ({ seq, status: 'failed', error }));
    if (failures.length) record(failures);
    outcomes.push(...failures);
    this.count(tenant, settings.now, ops.length, failures.length, failures[failures.length - 1]?.error);
    return outcomes;
  }

  private async recordDone(tenant: string, done: JournalOperation[], settings: ApplySettings, record: (outcomes: Outcome[]) => void, into: Outcome[]): Promise<void> {
    if (done.length === 0) return;
    done.sort((a, b) => a.seq - b.seq);
    // The mirror's own apply: one transaction with the journal's outcomes, as for the embedded target.
    into.push(...(await this.embedded.applyBatch(tenant, done, settings, record)));
  }

  private count(tenant: string, runKey: string, tried: number, failed: number, lastError?: string): void {
    if (this.tally.run !== runKey) this.tally = { run: runKey, tried: 0, failed: 0, lastError: '' };
    const t = this.tally;
    t.tried += tried;
    t.failed += failed;
    if (lastError) t.lastError = lastError;
    if (t.tried >= QUARANTINE_MIN_TRIED && t.failed > t.tried * QUARANTINE_FAILED_SHARE) {
      this.trip(tenant, `${t.failed} of ${t.tried} operations of this run failed (more than ${QUARANTINE_FAILED_SHARE * 100} %); last error: ${t.lastError}`);
    }
  }

  private trip(tenant: string, reason: string): void {
    if (this.quarantine(tenant)) return;
    setQuarantine(this.db, tenant, reason, new Date().toISOString());
    this.logger.error({ tenant, reason }, `SCIM target quarantined: nothing more is sent until \`wt-sync resume --tenant ${tenant}\``);
  }

  /** Runs `fn` for each operation, concurrently across entities and in order within one. */
  private async byEntity(ops: JournalOperation[], fn: (e: JournalOperation) => Promise<void>): Promise<void> {
    const chains = new Map<string, Promise<void>>();
    for (const e of ops) {
      const key = `${e.op.entity}:${'userId' in e.op ? e.op.userId : (e.op.externalId ?? `#${e.op.op === 'create' ? '' : e.op.id}`)}`;
      chains.set(key, (chains.get(key) ?? Promise.resolve()).then(() => fn(e)));
    }
    await Promise.all(chains.values());
  }

  // ---- users ----

  private async upsertUser(tenant: string, e: JournalOperation, members: MemberChange[]): Promise<void> {
    const op = e.op;
    if (op.entity !== 'user') return;
    const o = this.config;
    if (op.op === 'create') {
      const lists: UserLists = { segments: [...(op.segments ?? [])], adminOf: (op.memberships ?? []).filter((m) => m.role === 'admin').map((m) => m.groupId) };
      await this.createUser(tenant, op.externalId, op.after, lists);
      for (const m of op.memberships ?? []) members.push({ seq: e.seq, groupKind: 'group', groupId: m.groupId, userId: op.externalId, add: true });
      if (o.segments === 'groups') for (const s of op.segments ?? []) members.push({ seq: e.seq, groupKind: 'segment', groupId: s, userId: op.externalId, add: true });
      return;
    }
    if (op.op !== 'update' && op.op !== 'restore') return;
    const before = mirrorUser(this.db, tenant, op.externalId);
    if (op.op === 'update') {
      const after = { ...before };
      for (const c of op.changes) after[c.field] = c.after;
      const ops = userPatch(before, after, op.changes.map((c) => c.field), o);
      if (ops.length) await this.patchUser(tenant, op.externalId, ops, after);
    } else if (op.op === 'restore') {
      await this.patchUser(tenant, op.externalId, activePatch(before.status !== 'inactive', o), before);
    }
  }

  /** Creates a user, or adopts the one the provider already has (stored id, 409 → externalId, then userName). */
  private async createUser(tenant: string, externalId: string, fields: UserFields, lists: UserLists): Promise<string> {
    const c = this.client();
    const stored = this.mirror.id(tenant, 'user', externalId);
    if (stored) {
      const remote = await this.getOrNull(`Users/${encodeURIComponent(stored)}`);
      if (remote) return this.adopt(tenant, externalId, remote, fields, lists);
      this.mirror.dropId(tenant, 'user', externalId);
    }
    try {
      const created = await c.post('Users', userResource(externalId, fields, this.config, lists));
      return this.keep(tenant, 'user', externalId, created);
    } catch (err) {
      if (!(err instanceof ScimError) || err.status !== 409) throw err;
      const remote = await this.findUser(externalId, fields.username ?? null);
      if (!remote) throw new OperationFailed(`${err.message}; but no user with externalId ${JSON.stringify(externalId)} or userName ${JSON.stringify(fields.username)} was found to adopt`);
      return this.adopt(tenant, externalId, remote, fields, lists);
    }
  }

  private async findUser(externalId: string, userName: string | null): Promise<any | null> {
    const c = this.client();
    const byExternal = await c.find('Users', eqFilter('externalId', externalId));
    if (byExternal) return byExternal;
    if (!userName) return null;
    const byName = await c.find('Users', eqFilter('userName', userName));
    if (byName && byName.externalId && byName.externalId !== externalId) {
      throw new OperationFailed(`userName "${userName}" is already used in WT by another user (externalId ${JSON.stringify(byName.externalId)}); change one of the two usernames`);
    }
    return byName;
  }

  /** Takes a remote user as ours: its id is kept and only the attributes that differ are PATCHed. */
  private async adopt(tenant: string, externalId: string, remote: any, fields: UserFields, lists: UserLists): Promise<string> {
    const id = this.keep(tenant, 'user', externalId, remote);
    const have = userFieldsOf(remote, this.config);
    const differ = comparedFields(this.config).filter((f) => (have[f] ?? null) !== expectedField(fields, f));
    const ops = [...userPatch(have, fields, differ, this.config), ...listPatch(userListsOf(remote, this.config), lists, this.config)];
    if (remote.externalId !== externalId) ops.unshift({ op: this.config.patchDialect === 'entra' ? 'Replace' : 'replace', path: 'externalId', value: externalId });
    if (ops.length) await this.modify('Users', id, ops);
    return id;
  }

  /**
   * Changes a user by stored id; a 404 looks the user up again, then recreates it with its memberships.
   * `listsAfter`: the user's extension lists after this change (default: the mirror's).
   */
  private async patchUser(tenant: string, externalId: string, ops: PatchOperation[], full: UserFields, listsAfter?: UserLists): Promise<void> {
    const id = this.mirror.id(tenant, 'user', externalId) ?? (await this.findUser(externalId, null).then((r) => r && this.keep(tenant, 'user', externalId, r)));
    if (id) {
      try {
        await this.modify('Users', id, ops);
        return;
      } catch (err) {
        if (!(err instanceof ScimError) || err.status !== 404) throw err;
        this.mirror.dropId(tenant, 'user', externalId);
      }
    }
    const found = await this.findUser(externalId, full.username ?? null);
    const lists = listsAfter ?? mirrorLists(this.db, tenant, externalId);
    if (found) {
      await this.adopt(tenant, externalId, found, full, lists);
      return;
    }
    const newId = await this.createUser(tenant, externalId, full, lists);
    for (const groupId of mirrorGroupsOf(this.db, tenant, externalId)) {
      const gid = await this.groupId(tenant, 'group', groupId);
      if (gid) await this.modify('Groups', gid, addMembers([newId], this.config));
    }
  }

  // ---- everything else, one request each ----

  private async applyOne(tenant: string, op: Operation): Promise<void> {
    const c = this.client();
    const o = this.config;
    const segmentsAsGroups = o.segments === 'groups';
    switch (op.op) {
      case 'create':
        if (op.entity === 'group') await this.createGroup(tenant, 'group', op.externalId, op.after.name ?? op.externalId, op.after.parentId ?? null);
        else if (op.entity === 'segment' && segmentsAsGroups) await this.createGroup(tenant, 'segment', op.externalId, o.segmentPrefix + (op.after.name ?? op.externalId), null);
        return;
      case 'update': {
        if (op.entity === 'user') return;
        const kind = op.entity === 'segment' ? 'segment' : 'group';
        if (kind === 'segment' && !segmentsAsGroups) return;
        const changes = op.changes.map((ch) => (kind === 'segment' && ch.field === 'name' ? { ...ch, after: o.segmentPrefix + (ch.after ?? '') } : ch));
        const ops = groupPatch(kind === 'segment' ? changes.filter((ch) => ch.field === 'name') : changes, o);
        if (ops.length === 0) return;
        const id = await this.groupId(tenant, kind, op.externalId);
        if (!id) throw new OperationFailed(`${kind} "${op.externalId}" is not in WT's SCIM directory; it is created again on the next run`);
        await this.modify('Groups', id, ops);
        return;
      }
      case 'remove':
      case 'purge':
        if (op.entity === 'user') {
          if (!op.externalId) return; // made by hand in WT: never ours to remove
          const id = this.mirror.id(tenant, 'user', op.externalId) ?? (await this.findUser(op.externalId, null))?.id;
          if (!id) return;
          if (op.op === 'remove' && o.userRemoval === 'deactivate') {
            await this.ignore404(this.modify('Users', id, activePatch(false, o)));
            return;
          }
          await this.ignore404(c.delete(`Users/${encodeURIComponent(id)}`));
          this.mirror.dropId(tenant, 'user', op.externalId);
          return;
        }
        if (op.externalId && (op.entity === 'group' || segmentsAsGroups)) {
          const kind = op.entity === 'segment' ? 'segment' : 'group';
          const id = this.mirror.id(tenant, kind, op.externalId);
          if (id) await this.ignore404(c.delete(`Groups/${encodeURIComponent(id)}`));
          this.mirror.dropId(tenant, kind, op.externalId);
        }
        return;
      default:
        return;
    }
  }

  private async createGroup(tenant: string, kind: 'group' | 'segment', externalId: string, name: string, parentId: string | null): Promise<void> {
    const c = this.client();
    const remoteExternalId = kind === 'segment' ? `segment:${externalId}` : externalId;
    const body = groupResource(remoteExternalId, name, parentId, this.config);
    const stored = this.mirror.id(tenant, kind, externalId);
    if (stored && (await this.getOrNull(`Groups/${encodeURIComponent(stored)}`))) return;
    try {
      this.keep(tenant, kind, externalId, await c.post('Groups', body));
    } catch (err) {
      if (!(err instanceof ScimError) || err.status !== 409) throw err;
      const found = await c.find('Groups', eqFilter('externalId', remoteExternalId));
      if (!found) throw new OperationFailed(`${err.message}; but no group with externalId ${JSON.stringify(remoteExternalId)} was found to adopt`);
      this.keep(tenant, kind, externalId, found);
      if (found.displayName !== name) await this.modify('Groups', found.id, groupPatch([{ field: 'name', after: name }], this.config));
    }
  }

  // ---- memberships: a diff per group, in chunks ----

  private collectLink(e: JournalOperation, members: MemberChange[]): void {
    const op = e.op;
    if (op.op !== 'link' && op.op !== 'unlink') return;
    if (op.entity === 'membership') {
      // A role change keeps the membership: SCIM carries no role.
      if (op.op === 'link' && op.before !== undefined) return;
      members.push({ seq: e.seq, groupKind: 'group', groupId: op.groupId, userId: op.userId, add: op.op === 'link' });
    } else if (this.config.segments === 'groups') {
      members.push({ seq: e.seq, groupKind: 'segment', groupId: op.segmentId, userId: op.userId, add: op.op === 'link' });
    }
  }

  private async applyMembers(tenant: string, changes: MemberChange[], failed: Map<number, string>): Promise<void> {
    const byGroup = new Map<string, MemberChange[]>();
    for (const ch of changes) {
      if (failed.has(ch.seq)) continue;
      const key = `${ch.groupKind}:${ch.groupId}`;
      byGroup.set(key, [...(byGroup.get(key) ?? []), ch]);
    }
    const config = await this.client().providerConfig();
    // A PUT carries the whole member list anyway: one per group.
    const chunk = (await this.putInstead()) ? Number.MAX_SAFE_INTEGER : Math.max(1, config.bulk.supported && config.bulk.maxOperations > 0 ? Math.min(this.config.memberChunk, config.bulk.maxOperations) : this.config.memberChunk);
    await Promise.all([...byGroup.values()].map(async (list) => {
      const { groupKind, groupId } = list[0];
      const gid = await this.groupId(tenant, groupKind, groupId);
      const resolved: (MemberChange & { scimId: string })[] = [];
      for (const ch of list) {
        const scimId = this.mirror.id(tenant, 'user', ch.userId) ?? (await this.findUser(ch.userId, null).then((r) => r && this.keep(tenant, 'user', ch.userId, r)));
        if (!gid && ch.add) failed.set(ch.seq, `${groupKind} "${groupId}" is not in WT's SCIM directory`);
        else if (!scimId && ch.add) failed.set(ch.seq, `user "${ch.userId}" is not in WT's SCIM directory`);
        else if (gid && scimId) resolved.push({ ...ch, scimId });
      }
      if (!gid) return;
      for (const add of [true, false]) {
        const these = resolved.filter((r) => r.add === add);
        for (let i = 0; i < these.length; i += chunk) await this.patchMembers(gid, these.slice(i, i + chunk), add, failed);
      }
    }));
  }

  /** One chunk; a refused chunk is tried member by member, so one bad member does not fail the others. */
  private async patchMembers(gid: string, part: (MemberChange & { scimId: string })[], add: boolean, failed: Map<number, string>): Promise<void> {
    const send = (ids: string[]) => this.modify('Groups', gid, add ? addMembers(ids, this.config) : removeMembers(ids, this.config));
    try {
      await send(part.map((p) => p.scimId));
      return;
    } catch (err) {
      if (!(err instanceof ScimError)) throw err;
      // The group is gone: removals from it are done; adds fail (the group is created again next run).
      if (err.status === 404) {
        if (add) for (const p of part) failed.set(p.seq, err.message);
        return;
      }
      if (part.length === 1) {
        // A 409 on adding a member it already has counts as done.
        if (!(add && err.status === 409)) failed.set(part[0].seq, err.message);
        return;
      }
    }
    for (const p of part) await this.patchMembers(gid, [p], add, failed);
  }

  // ---- the extension's lists (segments, adminOf): one PATCH per user of what changed ----

  /** Sends each user's changed lists; a refusal fails the operations that changed them (planned again next run). */
  private async sendLists(tenant: string, edits: ListEdit[], failed: Map<number, string>): Promise<void> {
    const byUser = new Map<string, ListEdit[]>();
    for (const ed of edits) byUser.set(ed.userId, [...(byUser.get(ed.userId) ?? []), ed]);
    const settled = await Promise.allSettled([...byUser].map(async ([userId, list]) => {
      const before = mirrorLists(this.db, tenant, userId);
      const after = { segments: new Set(before.segments), adminOf: new Set(before.adminOf) };
      for (const ed of list) {
        if (ed.add) after[ed.list].add(ed.id);
        else after[ed.list].delete(ed.id);
      }
      const afterLists: UserLists = { segments: [...after.segments], adminOf: [...after.adminOf] };
      const ops = listPatch(before, afterLists, this.config);
      if (ops.length === 0) return;
      try {
        await this.patchUser(tenant, userId, ops, mirrorUser(this.db, tenant, userId), afterLists);
      } catch (err) {
        if (!(err instanceof OperationFailed || err instanceof ScimError) || err instanceof ScimAuthError) throw err;
        for (const ed of list) failed.set(ed.seq, err.message);
      }
    }));
    const rejected = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (rejected) throw rejected.reason;
  }

  // ---- changing a resource: PATCH, or PUT for a provider without it ----

  /** Set when the provider answered a PATCH 501/405 although /ServiceProviderConfig did not say it lacks PATCH. */
  private patchRefused = false;

  /**
   * Changes a user or group by these PATCH operations. A provider whose /ServiceProviderConfig says PATCH is not
   * supported, or that answered a PATCH 501/405 (then from that moment on, said once at warn), gets the full
   * resource by PUT instead: read, the same operations applied here, written back. A 400 noTarget on Entra's
   * `emails[type eq "work"].value` (the user has no work-typed email) is sent once more in the RFC form.
   */
  private async modify(kind: 'Users' | 'Groups', id: string, ops: PatchOperation[]): Promise<void> {
    const c = this.client();
    const path = `${kind}/${encodeURIComponent(id)}`;
    if (await this.putInstead()) return this.put(path, ops);
    try {
      await c.patch(path, patchBody(ops));
    } catch (err) {
      if (!(err instanceof ScimError)) throw err;
      if (err.status === 501 || err.status === 405) {
        if (!this.patchRefused) {
          this.patchRefused = true;
          c.refuse('PATCH');
          this.logger.warn({ tenant: this.tenantId, status: err.status }, `the SCIM provider refused PATCH (${err.message}) although /ServiceProviderConfig did not say so: changes go as PUT of the full resource from now on`);
        }
        return this.put(path, ops);
      }
      const rfc = err.status === 400 && err.scimType === 'noTarget' ? rfcEmailOps(ops, this.config) : null;
      if (!rfc) throw err;
      this.logger.debug({ tenant: this.tenantId, path }, 'SCIM user has no work-typed email: the email change is sent again in the RFC form (emails replaced whole)');
      await c.patch(path, patchBody(rfc));
    }
  }

  private async putInstead(): Promise<boolean> {
    return this.patchRefused || !(await this.client().providerConfig()).patch;
  }

  /** Read-modify-write chains per resource, so two changes of one group (say) never overwrite each other's. */
  private readonly puts = new Map<string, Promise<void>>();

  private put(path: string, ops: PatchOperation[]): Promise<void> {
    const c = this.client();
    const run = (this.puts.get(path) ?? Promise.resolve()).catch(() => {}).then(async () => {
      await c.put(path, putResource(await c.get(path), ops));
    });
    this.puts.set(path, run);
    const forget = () => {
      if (this.puts.get(path) === run) this.puts.delete(path);
    };
    run.then(forget, forget);
    return run;
  }

  // ---- helpers ----

  private async groupId(tenant: string, kind: 'group' | 'segment', externalId: string): Promise<string | null> {
    const stored = this.mirror.id(tenant, kind, externalId);
    if (stored) return stored;
    const found = await this.client().find('Groups', eqFilter('externalId', kind === 'segment' ? `segment:${externalId}` : externalId));
    return found ? this.keep(tenant, kind, externalId, found) : null;
  }

  private keep(tenant: string, kind: ScimKind, externalId: string, remote: any): string {
    const id = typeof remote?.id === 'string' ? remote.id : null;
    if (!id) throw new OperationFailed(`the SCIM provider answered without an id for ${kind} "${externalId}"`);
    this.mirror.setId(tenant, kind, externalId, id);
    return id;
  }

  private async getOrNull(path: string): Promise<any | null> {
    try {
      return await this.client().get(path);
    } catch (err) {
      if (err instanceof ScimError && err.status === 404) return null;
      throw err;
    }
  }

  private async ignore404(p: Promise<unknown>): Promise<void> {
    try {
      await p;
    } catch (err) {
      if (!(err instanceof ScimError) || err.status !== 404) throw err;
    }
  }
}

/** One change to a user's extension list, and the journal operation it comes from. */
interface ListEdit { seq: number; userId: string; list: ExtensionList; id: string; add: boolean }

/** The extension-list changes of a step of links: segment links, and memberships whose admin role comes or goes. */
function linkEdits(ops: JournalOperation[], failed: Map<number, string>): ListEdit[] {
  const edits: ListEdit[] = [];
  for (const e of ops) {
    const op = e.op;
    if ((op.op !== 'link' && op.op !== 'unlink') || failed.has(e.seq)) continue;
    if (op.entity === 'segmentLink') edits.push({ seq: e.seq, userId: op.userId, list: 'segments', id: op.segmentId, add: op.op === 'link' });
    else if (op.op === 'link' && (op.role === 'admin' || op.before === 'admin')) edits.push({ seq: e.seq, userId: op.userId, list: 'adminOf', id: op.groupId, add: op.role === 'admin' });
    else if (op.op === 'unlink' && op.role === 'admin') edits.push({ seq: e.seq, userId: op.userId, list: 'adminOf', id: op.groupId, add: false });
  }
  return edits;
}

/** The users whose lists name a segment or group removed in this step (in the mirror, until it is recorded). */
function removalEdits(db: Db, tenant: string, done: JournalOperation[]): ListEdit[] {
  const segmentUsers = db.prepare('SELECT u.external_id FROM dir_segment_links l JOIN dir_users u ON u.id = l.user_id JOIN dir_segments s ON s.id = l.segment_id WHERE s.tenant = ? AND s.external_id = ? AND u.external_id IS NOT NULL').pluck();
  const adminUsers = db.prepare("SELECT u.external_id FROM dir_memberships m JOIN dir_users u ON u.id = m.user_id JOIN dir_groups g ON g.id = m.group_id WHERE g.tenant = ? AND g.external_id = ? AND m.role = 'admin' AND u.external_id IS NOT NULL").pluck();
  const edits: ListEdit[] = [];
  for (const e of done) {
    const op = e.op;
    if (op.op !== 'remove' || !op.externalId || op.entity === 'user') continue;
    const list: ExtensionList = op.entity === 'segment' ? 'segments' : 'adminOf';
    for (const userId of (op.entity === 'segment' ? segmentUsers : adminUsers).all(tenant, op.externalId) as string[]) {
      edits.push({ seq: e.seq, userId, list, id: op.externalId, add: false });
    }
  }
  return edits;
}

/** A user's extension lists as the mirror holds them (external IDs, sorted). */
export function mirrorLists(db: Db, tenant: string, externalId: string): UserLists {
  const adminOf = db.prepare("SELECT g.external_id FROM dir_memberships m JOIN dir_users u ON u.id = m.user_id JOIN dir_groups g ON g.id = m.group_id WHERE u.tenant = ? AND u.external_id = ? AND m.role = 'admin' AND g.external_id IS NOT NULL ORDER BY 1")
    .pluck().all(tenant, externalId) as string[];
  const segments = db.prepare('SELECT s.external_id FROM dir_segment_links l JOIN dir_users u ON u.id = l.user_id JOIN dir_segments s ON s.id = l.segment_id WHERE u.tenant = ? AND u.external_id = ? AND s.external_id IS NOT NULL ORDER BY 1')
    .pluck().all(tenant, externalId) as string[];
  return { segments, adminOf };
}

const USER_COLUMNS: Record<string, string> = {
  firstName: 'first_name', lastName: 'last_name', username: 'username', email: 'email', phone: 'phone', title: 'title',
  birthday: 'birthday', employedSince: 'employed_since', employedUntil: 'employed_until', gender: 'gender', status: 'status', language: 'language',
};

/** A user's fields as the mirror holds them. */
export function mirrorUser(db: Db, tenant: string, externalId: string): UserFields {
  const cols = Object.entries(USER_COLUMNS).map(([f, c]) => `${c} AS ${f}`).join(', ');
  return (db.prepare(`SELECT ${cols} FROM dir_users WHERE tenant = ? AND external_id = ?`).get(tenant, externalId) as UserFields | undefined) ?? {};
}

function mirrorGroupsOf(db: Db, tenant: string, externalId: string): string[] {
  return db.prepare('SELECT g.external_id FROM dir_memberships m JOIN dir_users u ON u.id = m.user_id JOIN dir_groups g ON g.id = m.group_id WHERE u.tenant = ? AND u.external_id = ? AND g.external_id IS NOT NULL')
    .pluck().all(tenant, externalId) as string[];
}
