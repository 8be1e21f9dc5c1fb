// The embedded target's batch apply: a batch of creates checks usernames with one query (readTakenUsernames), and
// must decide exactly as the one-query-per-user check does.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { App } from '../../src/app.js';
import { USER_SCALAR_FIELDS } from '../../src/model.js';
import type { DirectoryUser, Operation } from '../../src/plan/types.js';
import { addManual, readDirectory } from '../../src/targets/embedded.js';
import type { JournalOperation, Outcome } from '../../src/targets/target.js';
import { makeWorkspace, type Workspace } from '../helpers/workspace.js';

let ws: Workspace;
let app: App;
const NOW = '2026-02-01T01:00:00.000Z';
beforeEach(() => {
  ws = makeWorkspace();
  ws.tenant('acme');
  app = ws.open(() => new Date(NOW));
});
afterEach(() => ws.cleanup());

const create = (id: string, username: string): Operation => ({ op: 'create', entity: 'user', externalId: id, after: { externalId: id, firstName: 'F', lastName: 'L', username } });

async function apply(ops: Operation[]): Promise<Outcome[]> {
  const batch: JournalOperation[] = ops.map((op, i) => ({ seq: i + 1, op }));
  return app.target(app.tenant('acme')).applyBatch('acme', batch, { now: NOW, removalGraceDays: 30 }, () => {});
}

describe('usernames in a batch of creates', () => {
  it('refuses a username held by a live user, allows one held only by a removed user, and sees its own creates', async () => {
    const manual = addManual(app.db, 'acme', NOW);
    const hand = manual.user({ firstName: 'Hand', lastName: 'Made', username: 'taken@x' });
    const gone = manual.user({ externalId: 'old', firstName: 'Old', lastName: 'One', username: 'free@x' });
    app.db.prepare('UPDATE dir_users SET removed_at = ? WHERE id = ?').run(NOW, gone);
    const outcomes = await apply([create('a', 'taken@x'), create('b', 'free@x'), create('c', 'new@x'), create('d', 'new@x')]);
    expect(outcomes).toEqual([
      { seq: 1, status: 'failed', error: `username "taken@x" is already used by user #${hand} (created by hand in WT)` },
      { seq: 2, status: 'done' },
      { seq: 3, status: 'done' },
      { seq: 4, status: 'failed', error: expect.stringMatching(/^username "new@x" is already used by user #\d+ \(external ID "c"\)$/) },
    ]);
    const live = readDirectory(app.db, 'acme').users.filter((u) => u.removedAt === null).map((u) => [u.externalId, u.username]);
    expect(live).toEqual([[null, 'taken@x'], ['b', 'free@x'], ['c', 'new@x']]);
  });

  it('decides a mixed batch one op at a time: an update that frees a username lets a later create take it', async () => {
    await apply([create('a', 'x@x')]);
    const id = readDirectory(app.db, 'acme').users[0].id;
    const outcomes = await apply([
      { op: 'update', entity: 'user', externalId: 'a', id, changes: [{ field: 'username', before: 'x@x', after: 'y@x' }] },
      create('b', 'x@x'),
    ]);
    expect(outcomes.map((o) => o.status)).toEqual(['done', 'done']);
    expect(readDirectory(app.db, 'acme').users.map((u) => [u.externalId, u.username])).toEqual([['a', 'y@x'], ['b', 'x@x']]);
  });
});

describe('foreign keys around a batch of creates', () => {
  it('links new users to groups and segments of the same batch, and checks foreign keys again once it is applied', async () => {
    const outcomes = await apply([
      { op: 'create', entity: 'group', externalId: 'g', after: { name: 'G', parentId: null } },
      { op: 'create', entity: 'segment', externalId: 's', after: { name: 'S' } },
      { ...create('a', 'a@x'), memberships: [{ groupId: 'g', role: 'admin' }], segments: ['s'] } as Operation,
      { ...create('b', 'b@x'), memberships: [{ groupId: 'nope', role: 'member' }] } as Operation,
    ]);
    expect(outcomes.map((o) => o.status)).toEqual(['done', 'done', 'done', 'failed']);
    expect(outcomes[3].error).toBe('group "nope" does not exist in the directory');
    const dir = readDirectory(app.db, 'acme');
    expect(dir.users.map((u) => u.externalId)).toEqual(['a']);
    expect(dir.memberships).toEqual([{ userId: dir.users[0].id, groupId: dir.groups[0].id, role: 'admin', origin: 'integration' }]);
    expect(dir.segmentLinks).toEqual([{ userId: dir.users[0].id, segmentId: dir.segments[0].id, origin: 'integration' }]);
    expect(app.db.pragma('foreign_keys', { simple: true })).toBe(1);
    expect(() => app.db.prepare("INSERT INTO dir_memberships (user_id, group_id, role, origin) VALUES (999, 999, 'member', 'manual')").run()).toThrow(/FOREIGN KEY constraint failed/);
  });
});

describe('the directory as the planner streams it (reader().users)', () => {
  // Pages of 1,000 users: those the planner asks about are read one by one, the rest of a page at once past 50, and
  // a page after one where more than 50 were asked about is read whole. Whatever the planner asks, it must see
  // exactly what is stored, and each page is read the way it was meant to be.
  it('gives every user as stored, page after page, whichever users the planner asks about', async () => {
    const groups = ['g1', 'g2', 'g3'];
    const ops: Operation[] = [
      ...groups.map((g): Operation => ({ op: 'create', entity: 'group', externalId: g, after: { name: g.toUpperCase(), parentId: null } })),
      { op: 'create', entity: 'segment', externalId: 's1', after: { name: 'S1' } },
    ];
    const N = 4300;
    for (let i = 0; i < N; i++) {
      const id = `u${String(i).padStart(5, '0')}`;
      // Every scalar field distinct per user (or empty for some), so a field read from the wrong column shows.
      const after: Record<string, string | null> = Object.fromEntries(USER_SCALAR_FIELDS.map((f, k) => [f, (i + k) % 11 === 0 ? null : `${f}-${i}`]));
      Object.assign(after, { externalId: id, firstName: `F${i}`, lastName: `L${i}`, username: `${id}@x` });
      ops.push({
        op: 'create', entity: 'user', externalId: id, after,
        memberships: i % 5 === 0 ? [] : [{ groupId: groups[i % 3], role: i % 7 === 0 ? 'admin' : 'member' }, ...(i % 4 === 0 ? [{ groupId: 'g3', role: 'member' as const }] : [])],
        segments: i % 2 ? ['s1'] : [],
      });
    }
    for (let i = 0; i < ops.length; i += 1000) await apply(ops.slice(i, i + 1000));
    const manual = addManual(app.db, 'acme', NOW);
    manual.user({ firstName: 'Hand', lastName: 'Made', username: 'hand@x' });
    const dir = readDirectory(app.db, 'acme');
    expect(dir.users).toHaveLength(N + 1);
    const shown = (u: DirectoryUser & { memberships: unknown; segmentLinks: unknown }): Record<string, unknown> => ({
      ...Object.fromEntries(['externalId', ...USER_SCALAR_FIELDS].map((f) => [f, u[f as keyof DirectoryUser]])), memberships: u.memberships, segmentLinks: u.segmentLinks,
    });
    const expected = new Map(dir.users.map((u) => [u.id, shown({ ...u, memberships: dir.memberships.filter((m) => m.userId === u.id), segmentLinks: dir.segmentLinks.filter((l) => l.userId === u.id) })]));
    expect([...expected.values()].filter((u) => u.phone !== null && u.language !== null && u.gender !== null).length).toBeGreaterThan(N / 2);

    // Counts the reads of each kind: whole pages, and users' fields read by ID (one by one or the rest of a page).
    const reads = { wholePages: 0, byId: 0 };
    const prepare = app.db.prepare.bind(app.db);
    app.db.prepare = ((sql: string) => {
      const statement = prepare(sql);
      const kind = /^SELECT id, external_id, removed_at, purge_after, synced, first_name/.test(sql) ? 'wholePages' : /^SELECT id, first_name.* IN \(SELECT value FROM json_each/.test(sql) ? 'byId' : null;
      if (kind) {
        const all = statement.all.bind(statement);
        statement.all = ((...args: unknown[]) => { reads[kind]++; return all(...args); }) as typeof statement.all;
      }
      return statement;
    }) as typeof app.db.prepare;

    // [name, who is asked about (by position in the stream), whole pages read, reads by ID]
    const patterns: [string, (i: number) => boolean, number, number][] = [
      ['nobody', () => false, 0, 0],
      // Page 1 is read lazily (50 one by one, then the rest at once), pages 2–5 whole; the hand-made user alone.
      ['everybody', () => true, 4, 52],
      // Pages 2–4 whole (page 3 had 150 asked); page 4 had 8, so page 5 is lazy again: its 3 one by one.
      ['the first half, then nobody, then a few', (i) => i < 2150 || (i > 3200 && i % 97 === 0), 3, 54],
      // 10 one by one on page 1; page 2 passes 50 in its middle (50 one by one, then the rest at once); pages 3–5
      // whole; the hand-made user.
      ['a few, then everybody from the middle of a page', (i) => i % 101 === 0 || i >= 1500, 3, 62],
      // Page 1 lazily (51), pages 2–5 whole, the hand-made user (its position is even).
      ['every other user', (i) => i % 2 === 0, 4, 52],
    ];
    for (const [name, asks, wholePages, byId] of patterns) {
      reads.wholePages = 0;
      reads.byId = 0;
      const seen: string[] = [];
      let i = 0;
      for (const u of app.target(app.tenant('acme')).reader('acme').users()) {
        seen.push(u.externalId ?? `#${u.id}`);
        if (asks(i++)) expect(shown(u), `${name}: user ${u.externalId}`).toEqual(expected.get(u.id));
      }
      expect(seen, name).toEqual([...dir.users.filter((u) => u.externalId !== null).map((u) => u.externalId!).sort(), `#${dir.users.find((u) => u.externalId === null)!.id}`]);
      expect(reads, name).toEqual({ wholePages, byId });
    }
  });
});
