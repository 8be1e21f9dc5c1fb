// The embedded WT directory: users, groups, segments and their links in the service's own SQLite database.
// A run applies in batches of journal operations, whole batches to a transaction with their outcomes, so a crash at any
// point leaves the directory as of a whole number of batches and the journal saying exactly which.
import Database from 'better-sqlite3';
import { USER_SCALAR_FIELDS, type UserScalarField } from '../model.js';
import type { DirectoryGroup, DirectoryMembership, DirectorySegment, DirectorySegmentLink, DirectoryState, DirectoryUser, DirectoryUserEntry, Operation, Origin, Role } from '../plan/types.js';
import { inTransaction, type Db } from '../store/db.js';
import type { ApplySettings, DirectoryReader, JournalOperation, Outcome, Target } from './target.js';

/** The dir_users column of each scalar field. */
export const USER_COLUMNS: Record<UserScalarField, string> = {
  firstName: 'first_name', lastName: 'last_name', username: 'username', email: 'email', phone: 'phone', title: 'title',
  birthday: 'birthday', employedSince: 'employed_since', employedUntil: 'employed_until', gender: 'gender',
  status: 'status', language: 'language',
};

class OperationError extends Error {}

export class EmbeddedTarget implements Target {
  readonly kind = 'embedded';
  /** Operations per batch the engine reads from the journal (and per transaction of `applyBatch`). */
  readonly batchSize = 5000;
  /**
   * The most operations in one transaction of `applyBatches`. Each commit writes every page it changed, and a run's
   * inserts into the username index (random keys) change a page per user until the whole index is covered: fewer,
   * larger transactions write each page fewer times. A transaction takes about a tenth of the operations still planned
   * (rounded up to whole batches, at least one batch), and ends after TRANSACTION_MS whatever its size: a crash loses
   * about a tenth of a large run's work at most, and another process waiting for the write lock (busy_timeout, 5 s)
   * is not kept out for long.
   */
  readonly transactionSize = 50_000;
  /** Operations still planned (when the apply starts) from which it runs with 64 MB of page cache (see applyBatches). */
  readonly largeRun = LARGE_RUN;
  constructor(private readonly db: Db) {}

  async load(tenant: string): Promise<DirectoryState> {
    return readDirectory(this.db, tenant);
  }

  reader(tenant: string): DirectoryReader {
    return {
      tree: () => ({
        groups: this.db.prepare('SELECT id, external_id AS externalId, name, parent_id AS parentId FROM dir_groups WHERE tenant = ? ORDER BY id').all(tenant) as DirectoryGroup[],
        segments: this.db.prepare('SELECT id, external_id AS externalId, name FROM dir_segments WHERE tenant = ? ORDER BY id').all(tenant) as DirectorySegment[],
      }),
      users: () => streamUsers(this.db, tenant),
      // A sample is enough to choose how to read the snapshot, and costs nothing at a million users.
      markedShare: () => (this.db.prepare('SELECT avg(synced IS NOT NULL) FROM (SELECT synced FROM dir_users WHERE tenant = ? LIMIT 2000)').pluck().get(tenant) as number | null) ?? 0,
    };
  }

  async syncMarks(tenant: string): Promise<Map<string, string>> {
    const rows = this.db.prepare('SELECT external_id, synced FROM dir_users WHERE tenant = ? AND synced IS NOT NULL AND removed_at IS NULL AND external_id IS NOT NULL').raw().all(tenant) as [string, string][];
    return new Map(rows);
  }

  markSynced(tenant: string, marks: [externalId: string, mark: string | null][]): void {
    const set = this.db.prepare('UPDATE dir_users SET synced = ? WHERE tenant = ? AND external_id = ?');
    for (const [externalId, mark] of marks) set.run(mark, tenant, externalId);
  }

  /** One transaction per batch: the changes, the users' sync marks and the journal's outcomes commit together. */
  async applyBatch(tenant: string, batch: JournalOperation[], settings: ApplySettings, record: (outcomes: Outcome[]) => void): Promise<Outcome[]> {
    const createsOnly = isCreatesOnly(batch);
    return this.inBatchTransaction(createsOnly, () => this.applyOps(tenant, batch, settings, record, createsOnly));
  }

  /**
   * Batches from `next` in transactions of up to `transactionSize` operations (see there), each batch's outcomes
   * recorded in the transaction that applies it. A batch of creates and one of anything else never share a
   * transaction (see inBatchTransaction).
   */
  applyBatches(tenant: string, next: () => JournalOperation[], settings: ApplySettings, record: (outcomes: Outcome[]) => void, remaining: number): void {
    const budget = Math.max(this.batchSize, Math.min(this.transactionSize, Math.ceil(remaining / 10)));
    // A large run's inserts land all over the username index: past a few hundred thousand users it outgrows the
    // usual 16 MB of page cache and most inserts would read their page back first. Bounded, and only for the apply.
    const cache = remaining >= this.largeRun ? this.db.pragma('cache_size', { simple: true }) as number : undefined;
    if (cache !== undefined) this.db.pragma(`cache_size = ${LARGE_RUN_CACHE}`);
    try {
      // Each transaction returns the batch that ended it (empty: the run is done), the first of the next one.
      for (let batch = next(); batch.length > 0;) {
        const first = batch;
        const createsOnly = isCreatesOnly(first);
        batch = this.inBatchTransaction(createsOnly, () => {
          const started = performance.now();
          let size = 0;
          for (let b = first; ;) {
            this.applyOps(tenant, b, settings, record, createsOnly);
            size += b.length;
            const following = next();
            if (following.length === 0 || size >= budget || performance.now() - started > TRANSACTION_MS || isCreatesOnly(following) !== createsOnly) return following;
            b = following;
          }
        });
      }
    } finally {
      if (cache !== undefined) this.db.pragma(`cache_size = ${cache}`);
    }
  }

  /**
   * Runs `fn` in one transaction. For a batch of creates (a first load) SQLite's foreign-key checks are off: each new
   * user's memberships and segment links point at the user just inserted and at groups and segments the applier
   * resolved in the same transaction, so the keys hold by construction, and checking both parents of every
   * membership and link was a fifth of the batch's time. The pragma cannot change inside a transaction (it is a
   * no-op when the caller already holds one), so it is switched around it, and on again in any case.
   */
  private inBatchTransaction<T>(createsOnly: boolean, fn: () => T): T {
    const skipForeignKeys = createsOnly && !this.db.inTransaction;
    if (skipForeignKeys) this.db.pragma('foreign_keys = OFF');
    try {
      return inTransaction(this.db, fn);
    } finally {
      if (skipForeignKeys) this.db.pragma('foreign_keys = ON');
    }
  }

  /** Applies a batch inside the caller's transaction and records its outcomes there. */
  private applyOps(tenant: string, batch: JournalOperation[], settings: ApplySettings, record: (outcomes: Outcome[]) => void, createsOnly: boolean): Outcome[] {
    bumpVersion(this.db, tenant);
    const applier = new Applier(this.db, tenant, settings);
    if (createsOnly) applier.readTakenUsernames(batch);
    const outcomes = batch.map(({ seq, op, mark }): Outcome => {
      try {
        applier.apply(op, mark);
        return { seq, status: 'done' };
      } catch (err) {
        // Each op is one statement (or checks before it), so a failure leaves nothing half-done.
        if (err instanceof OperationError) return { seq, status: 'failed', error: err.message };
        // The first write of an op is the one a conflict can stop (e.g. another run created the same external ID
        // meanwhile): nothing of the op is written, and the next run plans it again from the new state.
        if (err instanceof Database.SqliteError && err.code.startsWith('SQLITE_CONSTRAINT')) return { seq, status: 'failed', error: `the directory refused it: ${err.message}` };
        throw err;
      }
    });
    record(outcomes);
    return outcomes;
  }
}

/** The longest a transaction of `applyBatches` goes on taking batches (see EmbeddedTarget.transactionSize). */
const TRANSACTION_MS = 2000;
/** Operations still planned from which an apply is a large run (EmbeddedTarget.largeRun). */
export const LARGE_RUN = 250_000;
/** The page cache of a large run's apply (see EmbeddedTarget.largeRun), in KiB as SQLite takes it. */
export const LARGE_RUN_CACHE = -65_536;

/** A batch of creates only (a first load's users): see inBatchTransaction and readTakenUsernames. */
function isCreatesOnly(batch: JournalOperation[]): boolean {
  return batch.length > 1 && batch.every((e) => e.op.op === 'create');
}

const PAGE = 1000;
/** Users of a page read one by one before the rest of the page is read at once (see streamUsers). */
const SINGLE_LOADS = 50;

/**
 * Users in the planner's order, a page at a time: those with an external ID by it (SQLite's BINARY order of UTF-8,
 * which src/plan/order.ts matches), each with its memberships and segment links, then those made by hand.
 */
function* streamUsers(db: Db, tenant: string): Generator<DirectoryUserEntry> {
  const scalarCols = USER_SCALAR_FIELDS.map((f) => USER_COLUMNS[f]).join(', ');
  const pageCols = 'id, external_id, removed_at, purge_after, synced';
  // Pages carry only what decides whether a user is skipped (its sync mark) or removed; the rest is read when the
  // planner asks for it: on a daily run nearly every user is skipped. A page after one where the planner asked about
  // more than SINGLE_LOADS of its users (5 %: a check, a rule change, a first load over an existing directory) is
  // read whole instead: its scalars come with the page, from the rows the page reads anyway, and its links in one
  // query each.
  const page = db.prepare(`SELECT ${pageCols} FROM dir_users WHERE tenant = ? AND external_id IS NOT NULL AND external_id > ? ORDER BY external_id LIMIT ?`).raw();
  const wholePage = db.prepare(`SELECT ${pageCols}, ${scalarCols} FROM dir_users WHERE tenant = ? AND external_id IS NOT NULL AND external_id > ? ORDER BY external_id LIMIT ?`).raw();
  const scalars = db.prepare(`SELECT id, ${scalarCols} FROM dir_users WHERE id IN (SELECT value FROM json_each(?))`).raw();
  const memberships = db.prepare('SELECT user_id, group_id, role, origin FROM dir_memberships WHERE user_id IN (SELECT value FROM json_each(?))').raw();
  const links = db.prepare('SELECT user_id, segment_id, origin FROM dir_segment_links WHERE user_id IN (SELECT value FROM json_each(?))').raw();
  /** Reads the memberships and links of `wanted` (their details already made) into them. */
  const readLinks = (byId: Map<number, PagedUser>, wanted: PagedUser[]) => {
    const ids = JSON.stringify(wanted.map((u) => u.id));
    for (const [userId, groupId, role, origin] of memberships.all(ids) as [number, number, Role, Origin][]) byId.get(userId)!.details!.memberships.push({ userId, groupId, role, origin });
    for (const [userId, segmentId, origin] of links.all(ids) as [number, number, Origin][]) byId.get(userId)!.details!.segmentLinks.push({ userId, segmentId, origin });
  };
  /** How many users of the page last read had their details asked for. */
  let asked = 0;
  const pageOf = (rows: unknown[][], whole: boolean): PagedUser[] => {
    const byId = new Map<number, PagedUser>();
    asked = 0;
    if (whole) {
      const count = () => void asked++;
      for (const r of rows) {
        const user = new PagedUser(r, count);
        user.details = { scalars: [r[0], ...r.slice(5)], memberships: [], segmentLinks: [] };
        byId.set(user.id, user);
      }
      readLinks(byId, [...byId.values()]);
      return [...byId.values()];
    }
    // A daily run plans a few users spread over every page (1 % changed: ~10 of each 1,000): those are read one by
    // one. Past SINGLE_LOADS on one page the rest of the page is read at once.
    const load = (user: PagedUser) => {
      if (++asked > SINGLE_LOADS && user.details) return; // read with the rest of its page
      const wanted = asked <= SINGLE_LOADS ? [user] : [...byId.values()].filter((u) => !u.details);
      const ids = JSON.stringify(wanted.map((u) => u.id));
      for (const u of wanted) u.details = { scalars: [], memberships: [], segmentLinks: [] };
      for (const r of scalars.all(ids) as unknown[][]) byId.get(r[0] as number)!.details!.scalars = r;
      readLinks(byId, wanted);
    };
    for (const r of rows) byId.set(r[0] as number, new PagedUser(r, load));
    return [...byId.values()];
  };
  // The planner is done with a page's users before it asks for the next page (it plans each user as it meets it).
  for (let after = '', whole = false; ;) {
    const rows = (whole ? wholePage : page).all(tenant, after, PAGE) as unknown[][];
    yield* pageOf(rows, whole);
    if (rows.length < PAGE) break;
    whole = asked > SINGLE_LOADS;
    after = rows[rows.length - 1][1] as string;
  }
  // Users made by hand (no external ID) never match a row; they are only removed or purged.
  const manual = db.prepare(`SELECT ${pageCols} FROM dir_users WHERE tenant = ? AND external_id IS NULL AND id > ? ORDER BY id LIMIT ?`).raw();
  for (let after = 0; ;) {
    const rows = manual.all(tenant, after, PAGE) as unknown[][];
    yield* pageOf(rows, false);
    if (rows.length < PAGE) break;
    after = rows[rows.length - 1][0] as number;
  }
}

/** A directory user read in a page of `id, external_id, removed_at, purge_after, synced`; the rest read on demand. */
class PagedUser {
  id: number;
  externalId: string | null;
  removedAt: string | null;
  purgeAfter: string | null;
  mark: string | null;
  // Getters defined below, from the page's details.
  declare readonly firstName: string;
  declare readonly lastName: string;
  declare readonly username: string;
  details?: { scalars: unknown[]; memberships: DirectoryMembership[]; segmentLinks: DirectorySegmentLink[] };

  /** `asked`: called the first time this user's details are asked for; it reads them unless they came with the page. */
  constructor(r: unknown[], private readonly asked: (user: PagedUser) => void) {
    this.id = r[0] as number;
    this.externalId = r[1] as string | null;
    this.removedAt = r[2] as string | null;
    this.purgeAfter = r[3] as string | null;
    this.mark = r[4] as string | null;
  }

  private wasAsked = false;

  loaded(): NonNullable<PagedUser['details']> {
    if (!this.wasAsked) {
      this.asked(this);
      this.wasAsked = true; // after the read: one that threw is tried again
    }
    return this.details!;
  }

  get memberships(): DirectoryMembership[] {
    return this.loaded().memberships;
  }

  get segmentLinks(): DirectorySegmentLink[] {
    return this.loaded().segmentLinks;
  }
}
// The scalar fields, read from the page's details when first asked for (column i + 1 of the details row).
USER_SCALAR_FIELDS.forEach((field, i) => {
  Object.defineProperty(PagedUser.prototype, field, { get(this: PagedUser) { return this.loaded().scalars[i + 1]; } });
});

/** The whole directory of a tenant (CLI, API, tests). */
export function readDirectory(db: Db, tenant: string): DirectoryState {
  const cols = USER_SCALAR_FIELDS.map((f) => USER_COLUMNS[f]).join(', ');
  const full = (r: unknown[]): DirectoryUser => {
    const u = { id: r[0], externalId: r[1] } as DirectoryUser;
    for (let i = 0; i < USER_SCALAR_FIELDS.length; i++) (u as unknown as Record<string, unknown>)[USER_SCALAR_FIELDS[i]] = r[2 + i];
    u.removedAt = r[2 + USER_SCALAR_FIELDS.length] as string | null;
    u.purgeAfter = r[3 + USER_SCALAR_FIELDS.length] as string | null;
    return u;
  };
  // Raw rows turned into objects here: better-sqlite3's named-column objects cost twice as much for 100k users.
  const users = (db.prepare(`SELECT id, external_id, ${cols}, removed_at, purge_after FROM dir_users WHERE tenant = ? ORDER BY id`).raw().all(tenant) as unknown[][]).map(full);
  const groups = db.prepare('SELECT id, external_id AS externalId, name, parent_id AS parentId FROM dir_groups WHERE tenant = ? ORDER BY id').all(tenant) as DirectoryState['groups'];
  const segments = db.prepare('SELECT id, external_id AS externalId, name FROM dir_segments WHERE tenant = ? ORDER BY id').all(tenant) as DirectoryState['segments'];
  const memberships = (db
    .prepare('SELECT m.user_id, m.group_id, m.role, m.origin FROM dir_memberships m JOIN dir_users u ON u.id = m.user_id WHERE u.tenant = ?')
    .raw().all(tenant) as [number, number, Role, Origin][])
    .map(([userId, groupId, role, origin]) => ({ userId, groupId, role, origin }));
  const segmentLinks = (db
    .prepare('SELECT l.user_id, l.segment_id, l.origin FROM dir_segment_links l JOIN dir_users u ON u.id = l.user_id WHERE u.tenant = ?')
    .raw().all(tenant) as [number, number, Origin][])
    .map(([userId, segmentId, origin]) => ({ userId, segmentId, origin }));
  return { users, groups, segments, memberships, segmentLinks };
}

/**
 * Writes for entities made by hand in WT (tests, demos): origin `manual`, optionally without external ID.
 * Like every write outside a run, each clears the sync mark of the user it touches.
 */
export function addManual(db: Db, tenant: string, now: string) {
  const unsync = (userId: number) => db.prepare('UPDATE dir_users SET synced = NULL WHERE id = ?').run(userId);
  bumpVersion(db, tenant);
  return {
    user(u: { externalId?: string | null; firstName: string; lastName: string; username: string; status?: string }): number {
      return Number(db.prepare(`INSERT INTO dir_users (tenant, external_id, first_name, last_name, username, status, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`)
        .run(tenant, u.externalId ?? null, u.firstName, u.lastName, u.username, u.status ?? 'active', now, now).lastInsertRowid);
    },
    group(g: { externalId?: string | null; name: string; parentId?: string | null }): number {
      return Number(db.prepare('INSERT INTO dir_groups (tenant, external_id, name, parent_id) VALUES (?, ?, ?, ?)').run(tenant, g.externalId ?? null, g.name, g.parentId ?? null).lastInsertRowid);
    },
    segment(s: { externalId?: string | null; name: string }): number {
      return Number(db.prepare('INSERT INTO dir_segments (tenant, external_id, name) VALUES (?, ?, ?)').run(tenant, s.externalId ?? null, s.name).lastInsertRowid);
    },
    membership(userId: number, groupId: number, role: Role, origin: Origin = 'manual'): void {
      unsync(userId);
      db.prepare('INSERT INTO dir_memberships (user_id, group_id, role, origin) VALUES (?, ?, ?, ?) ON CONFLICT (user_id, group_id) DO UPDATE SET role = excluded.role, origin = excluded.origin').run(userId, groupId, role, origin);
    },
    segmentLink(userId: number, segmentId: number, origin: Origin = 'manual'): void {
      unsync(userId);
      db.prepare('INSERT INTO dir_segment_links (user_id, segment_id, origin) VALUES (?, ?, ?) ON CONFLICT (user_id, segment_id) DO UPDATE SET origin = excluded.origin').run(userId, segmentId, origin);
    },
    status(userId: number, status: string): void {
      unsync(userId);
      db.prepare('UPDATE dir_users SET status = ? WHERE id = ?').run(status, userId);
    },
  };
}

function bumpVersion(db: Db, tenant: string): void {
  db.prepare('INSERT INTO dir_versions (tenant, version) VALUES (?, 1) ON CONFLICT (tenant) DO UPDATE SET version = version + 1').run(tenant);
}

/**
 * Applies single operations. Group and segment IDs by external ID come from caches (thousands) filled lazily and
 * kept current; a user's ID is looked up in the index, so memory does not grow with the directory.
 */
class Applier {
  private readonly ids = new Map<'group' | 'segment', Map<string, number>>();
  private readonly s;
  /** Live holders of the usernames a batch of creates asks for (see readTakenUsernames); absent: ask per op. */
  private taken?: Map<string, { id: number; externalId: string | null }>;

  constructor(private readonly db: Db, private readonly tenant: string, private readonly settings: ApplySettings) {
    const insertCols = ['tenant', 'external_id', ...USER_SCALAR_FIELDS.map((f) => USER_COLUMNS[f]), 'synced', 'created_at', 'updated_at'];
    this.s = {
      insertUser: db.prepare(`INSERT INTO dir_users (${insertCols.join(', ')}) VALUES (${insertCols.map(() => '?').join(', ')})`),
      usernameOwners: db.prepare('SELECT username, id, external_id FROM dir_users WHERE tenant = ? AND removed_at IS NULL AND username IN (SELECT value FROM json_each(?))').raw(),
      usernameOwner: db.prepare('SELECT id, external_id AS externalId FROM dir_users WHERE tenant = ? AND username = ? AND removed_at IS NULL AND (external_id IS NULL OR external_id <> ?) LIMIT 1'),
      restoreUser: db.prepare('UPDATE dir_users SET removed_at = NULL, purge_after = NULL, updated_at = ? WHERE id = ? AND tenant = ?'),
      removeUser: db.prepare('UPDATE dir_users SET removed_at = ?, purge_after = ?, updated_at = ?, synced = NULL WHERE id = ? AND tenant = ? AND removed_at IS NULL'),
      purgeUser: db.prepare('DELETE FROM dir_users WHERE id = ? AND tenant = ?'),
      userId: db.prepare('SELECT id FROM dir_users WHERE tenant = ? AND external_id = ?').pluck(),
      setMark: db.prepare('UPDATE dir_users SET synced = ? WHERE tenant = ? AND external_id = ?'),
      insertGroup: db.prepare('INSERT INTO dir_groups (tenant, external_id, name, parent_id) VALUES (?, ?, ?, ?)'),
      removeGroup: db.prepare('DELETE FROM dir_groups WHERE id = ? AND tenant = ?'),
      orphanChildren: db.prepare('UPDATE dir_groups SET parent_id = NULL WHERE tenant = ? AND parent_id = ?'),
      insertSegment: db.prepare('INSERT INTO dir_segments (tenant, external_id, name) VALUES (?, ?, ?)'),
      removeSegment: db.prepare('DELETE FROM dir_segments WHERE id = ? AND tenant = ?'),
      link: db.prepare("INSERT INTO dir_memberships (user_id, group_id, role, origin) VALUES (?, ?, ?, 'integration') ON CONFLICT (user_id, group_id) DO UPDATE SET role = excluded.role"),
      unlink: db.prepare('DELETE FROM dir_memberships WHERE user_id = ? AND group_id = ?'),
      linkSegment: db.prepare("INSERT INTO dir_segment_links (user_id, segment_id, origin) VALUES (?, ?, 'integration') ON CONFLICT (user_id, segment_id) DO NOTHING"),
      unlinkSegment: db.prepare('DELETE FROM dir_segment_links WHERE user_id = ? AND segment_id = ?'),
    };
  }

  /**
   * For a batch of creates alone (a first load; the caller checks): who holds the usernames it asks for, in one
   * query instead of one per user. Only for such a batch: no other op in it can free or take a username meanwhile,
   * and its own creates are added as they are applied.
   */
  readTakenUsernames(batch: JournalOperation[]): void {
    const wanted = batch.flatMap((e) => (e.op.op === 'create' && e.op.entity === 'user' ? [e.op.after.username ?? ''] : []));
    this.taken = new Map();
    for (const [username, id, externalId] of this.s.usernameOwners.all(this.tenant, JSON.stringify(wanted)) as [string, number, string | null][]) {
      if (!this.taken.has(username)) this.taken.set(username, { id, externalId });
    }
  }

  /** `mark`: the user's sync mark once this op is done; any other op on a user clears the mark. */
  apply(op: Operation, mark?: string): void {
    this.change(op, mark);
    if (op.op === 'create' || op.op === 'remove' || op.op === 'purge') return; // set on insert, cleared on removal, gone
    const user = 'userId' in op ? op.userId : op.entity === 'user' ? op.externalId : null;
    if (user !== null) this.s.setMark.run(mark ?? null, this.tenant, user);
  }

  private change(op: Operation, mark: string | undefined): void {
    const { now } = this.settings;
    switch (op.op) {
      case 'create':
        if (op.entity === 'user') {
          // Every check before the first write, so a failed create leaves nothing behind.
          this.checkUsername(op.after.username ?? '', op.externalId);
          const groups = (op.memberships ?? []).map((m) => [this.resolve('group', m.groupId), m.role] as const);
          const segments = (op.segments ?? []).map((id) => this.resolve('segment', id));
          const values = USER_SCALAR_FIELDS.map((f) => op.after[f] ?? null);
          const id = Number(this.s.insertUser.run(this.tenant, op.externalId, ...values, mark ?? null, now, now).lastInsertRowid);
          this.taken?.set(op.after.username ?? '', { id, externalId: op.externalId });
          for (const [groupId, role] of groups) this.s.link.run(id, groupId, role);
          for (const segmentId of segments) this.s.linkSegment.run(id, segmentId);
        } else if (op.entity === 'group') {
          const id = Number(this.s.insertGroup.run(this.tenant, op.externalId, op.after.name, op.after.parentId ?? null).lastInsertRowid);
          this.cache('group').set(op.externalId, id);
        } else {
          const id = Number(this.s.insertSegment.run(this.tenant, op.externalId, op.after.name).lastInsertRowid);
          this.cache('segment').set(op.externalId, id);
        }
        return;
      case 'update': {
        if (op.entity === 'user') {
          const username = op.changes.find((c) => c.field === 'username');
          if (username) this.checkUsername(username.after ?? '', op.externalId);
        }
        const table = { user: 'dir_users', group: 'dir_groups', segment: 'dir_segments' }[op.entity];
        const column = (field: string) => (op.entity === 'user' ? USER_COLUMNS[field as UserScalarField] : field === 'parentId' ? 'parent_id' : field);
        const sets = op.changes.map((c) => `${column(c.field)} = ?`);
        if (op.entity === 'user') sets.push('updated_at = ?');
        const values: (string | null | number)[] = op.changes.map((c) => c.after);
        if (op.entity === 'user') values.push(now);
        this.db.prepare(`UPDATE ${table} SET ${sets.join(', ')} WHERE id = ? AND tenant = ?`).run(...values, op.id, this.tenant);
        return;
      }
      case 'restore':
        this.s.restoreUser.run(now, op.id, this.tenant);
        return;
      case 'remove':
        if (op.entity === 'user') {
          const purgeAfter = new Date(Date.parse(now) + this.settings.removalGraceDays * 86_400_000).toISOString();
          this.s.removeUser.run(now, purgeAfter, now, op.id, this.tenant);
        } else if (op.entity === 'group') {
          this.s.orphanChildren.run(this.tenant, op.externalId);
          this.s.removeGroup.run(op.id, this.tenant);
          if (op.externalId) this.cache('group').delete(op.externalId);
        } else {
          this.s.removeSegment.run(op.id, this.tenant);
          if (op.externalId) this.cache('segment').delete(op.externalId);
        }
        return;
      case 'purge':
        this.s.purgeUser.run(op.id, this.tenant);
        return;
      case 'link':
        if (op.entity === 'membership') this.s.link.run(this.resolve('user', op.userId), this.resolve('group', op.groupId), op.role);
        else this.s.linkSegment.run(this.resolve('user', op.userId), this.resolve('segment', op.segmentId));
        return;
      case 'unlink':
        if (op.entity === 'membership') this.s.unlink.run(this.resolve('user', op.userId), this.resolve('group', op.groupId));
        else this.s.unlinkSegment.run(this.resolve('user', op.userId), this.resolve('segment', op.segmentId));
        return;
    }
  }

  private checkUsername(username: string, externalId: string): void {
    const holder = this.taken?.get(username);
    const owner = this.taken
      ? (holder && holder.externalId !== externalId ? holder : undefined)
      : (this.s.usernameOwner.get(this.tenant, username, externalId) as { id: number; externalId: string | null } | undefined);
    if (owner) throw new OperationError(`username "${username}" is already used by user #${owner.id}${owner.externalId ? ` (external ID "${owner.externalId}")` : ' (created by hand in WT)'}`);
  }

  private cache(kind: 'group' | 'segment'): Map<string, number> {
    let map = this.ids.get(kind);
    if (!map) {
      const table = { group: 'dir_groups', segment: 'dir_segments' }[kind];
      const rows = this.db.prepare(`SELECT id, external_id AS externalId FROM ${table} WHERE tenant = ? AND external_id IS NOT NULL`).all(this.tenant) as { id: number; externalId: string }[];
      map = new Map(rows.map((r) => [r.externalId, r.id]));
      this.ids.set(kind, map);
    }
    return map;
  }

  private resolve(kind: 'user' | 'group' | 'segment', externalId: string): number {
    const id = kind === 'user' ? (this.s.userId.get(this.tenant, externalId) as number | undefined) : this.cache(kind).get(externalId);
    if (id === undefined) throw new OperationError(`${kind} "${externalId}" does not exist in the directory`);
    return id;
  }
}
