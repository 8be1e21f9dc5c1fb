// The embedded target's batch apply: a batch of creates checks usernames with one query (readTakenUsernames), and
// must decide exactly as the one-query-per-user check does.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { App } from '../../src/app.js';
import type { Operation } from '../../src/plan/types.js';
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
  // a page after one whose users were nearly all asked about is read whole. Whatever the planner asks, it must see
  // exactly what is stored.
  it('gives every user as stored, page after page, whichever users the planner asks about', async () => {
    const groups = ['g1', 'g2', 'g3'];
    const ops: Operation[] = [
      ...groups.map((g): Operation => ({ op: 'create', entity: 'group', externalId: g, after: { name: g.toUpperCase(), parentId: null } })),
      { op: 'create', entity: 'segment', externalId: 's1', after: { name: 'S1' } },
    ];
    const N = 4300;
    for (let i = 0; i < N; i++) {
      const id = `u${String(i).padStart(5, '0')}`;
      ops.push({
        ...create(id, `${id}@x`), after: { externalId: id, firstName: `F${i}`, lastName: `L${i}`, username: `${id}@x`, title: i % 3 ? `T${i}` : null },
        memberships: i % 5 === 0 ? [] : [{ groupId: groups[i % 3], role: i % 7 === 0 ? 'admin' : 'member' }, ...(i % 4 === 0 ? [{ groupId: 'g3', role: 'member' as const }] : [])],
        segments: i % 2 ? ['s1'] : [],
      } as Operation);
    }
    for (let i = 0; i < ops.length; i += 1000) await apply(ops.slice(i, i + 1000));
    const manual = addManual(app.db, 'acme', NOW);
    manual.user({ firstName: 'Hand', lastName: 'Made', username: 'hand@x' });
    const dir = readDirectory(app.db, 'acme');
    expect(dir.users).toHaveLength(N + 1);
    const expected = new Map(dir.users.map((u) => [u.id, {
      externalId: u.externalId, firstName: u.firstName, lastName: u.lastName, username: u.username, title: u.title, email: u.email, status: u.status,
      memberships: dir.memberships.filter((m) => m.userId === u.id), segmentLinks: dir.segmentLinks.filter((l) => l.userId === u.id),
    }]));
    const patterns: [string, (i: number) => boolean][] = [
      ['nobody', () => false],
      ['everybody', () => true],
      ['the first half, then nobody, then a few', (i) => i < 2150 || (i > 3200 && i % 97 === 0)],
      ['a few, then everybody from the middle of a page', (i) => i % 101 === 0 || i >= 1500],
      ['every other user', (i) => i % 2 === 0],
    ];
    for (const [name, asks] of patterns) {
      const seen: string[] = [];
      let i = 0;
      for (const u of app.target(app.tenant('acme')).reader('acme').users()) {
        seen.push(u.externalId ?? `#${u.id}`);
        if (asks(i++)) {
          const got = { externalId: u.externalId, firstName: u.firstName, lastName: u.lastName, username: u.username, title: u.title, email: u.email, status: u.status, memberships: u.memberships, segmentLinks: u.segmentLinks };
          expect(got, `${name}: user ${u.externalId}`).toEqual(expected.get(u.id));
        }
      }
      expect(seen, name).toEqual([...dir.users.filter((u) => u.externalId !== null).map((u) => u.externalId!).sort(), `#${dir.users.find((u) => u.externalId === null)!.id}`]);
    }
  });
});
