import { describe, expect, it } from 'vitest';
import { buildPlan } from '../../src/plan/plan.js';
import type { DesiredState, DirectoryState, Operation, Plan } from '../../src/plan/types.js';
import {
  FUTURE, NOW, PAST, USER_FIELDS, dirGroup, dirSegment, dirUser, directory, group, groupsSnap, member, opsOf, segLink,
  segment, segmentsSnap, settings, user, usersSnap,
} from './builders.js';

/** A new user's create op; its memberships and segment links travel with it. */
const createUser = (
  ext: string, over: Record<string, string | null> = {},
  links: { memberships?: { groupId: string; role: 'member' | 'admin' }[]; segments?: string[] } = {},
): Operation => ({
  op: 'create', entity: 'user', externalId: ext,
  after: { externalId: ext, firstName: `First ${ext}`, lastName: `Last ${ext}`, username: `${ext.toLowerCase()}@acme`, email: null, title: null, status: 'active', ...over },
  memberships: links.memberships ?? [], segments: links.segments ?? [],
});

describe('first day: empty directory', () => {
  it('creates groups parents-first, then segments, then users with their memberships and segment links', () => {
    const desired: DesiredState = {
      groups: groupsSnap([
        group('G-CHILD', 'Child', 'G-ROOT'), // listed before its parent
        group('G-GRAND', 'Grandchild', 'G-CHILD'),
        group('G-ROOT', 'Root'),
        group('G-OTHER', 'Other'),
      ]),
      segments: segmentsSnap([segment('S1', 'Seg one'), segment('S2', 'Seg two')]),
      users: usersSnap([
        user('U1', { email: 'u1@example.com', memberOf: ['G-CHILD', 'G-ROOT'], adminOf: ['G-ROOT'], segments: ['S1'] }),
        user('U2', { title: 'Nurse', memberOf: ['G-GRAND'], segments: ['S1', 'S2'] }),
      ]),
    };
    const plan = buildPlan(desired, directory(), settings());
    expect(opsOf(plan)).toEqual([
      { op: 'create', entity: 'group', externalId: 'G-ROOT', after: { name: 'Root', parentId: null } },
      { op: 'create', entity: 'group', externalId: 'G-OTHER', after: { name: 'Other', parentId: null } },
      { op: 'create', entity: 'group', externalId: 'G-CHILD', after: { name: 'Child', parentId: 'G-ROOT' } },
      { op: 'create', entity: 'group', externalId: 'G-GRAND', after: { name: 'Grandchild', parentId: 'G-CHILD' } },
      { op: 'create', entity: 'segment', externalId: 'S1', after: { name: 'Seg one' } },
      { op: 'create', entity: 'segment', externalId: 'S2', after: { name: 'Seg two' } },
      createUser('U1', { email: 'u1@example.com' }, { memberships: [{ groupId: 'G-CHILD', role: 'member' }, { groupId: 'G-ROOT', role: 'admin' }], segments: ['S1'] }),
      createUser('U2', { title: 'Nurse' }, { memberships: [{ groupId: 'G-GRAND', role: 'member' }], segments: ['S1', 'S2'] }),
    ]);
    expect(plan.ops.map((o) => o.seq)).toEqual(plan.ops.map((_, i) => i + 1));
    expect(plan.ops.some((o) => o.held)).toBe(false);
    expect(plan.problems).toEqual([]);
    expect(plan.unchanged).toEqual({ users: 0, groups: 0, segments: 0 });
    expect(plan.tenant).toBe('acme');
    expect(plan.createdAt).toBe(NOW);
    expect(plan.safeguard).toEqual({ removals: 0, managedUsers: 0, maxRemovals: 500, maxRemovalPercent: 100, held: false });
  });

  it('a create carries only mapped fields: unmapped ones are left out, mapped empty ones are null', () => {
    const desired: DesiredState = {
      users: usersSnap([{ externalId: 'U1', firstName: 'Ann', lastName: 'Berg', username: 'ann', phone: '+46 70', email: null }], {
        fields: ['externalId', 'firstName', 'lastName', 'username', 'email', 'birthday'],
      }),
    };
    expect(opsOf(buildPlan(desired, directory(), settings()))).toEqual([
      { op: 'create', entity: 'user', externalId: 'U1', after: { externalId: 'U1', firstName: 'Ann', lastName: 'Berg', username: 'ann', email: null, birthday: null } },
    ]);
  });

  it('puts creates first and removals last, children before parents', () => {
    const dir = directory({
      groups: [dirGroup(1, 'R', 'Root'), dirGroup(2, 'C', 'Child', 'R'), dirGroup(3, 'GC', 'Grandchild', 'C'), dirGroup(4, 'KEEP', 'Keep')],
      segments: [dirSegment(1, 'S-OLD', 'Old segment')],
      users: [dirUser(1, 'U-OLD'), dirUser(2, 'U-KEEP')],
      memberships: [member(1, 2), member(2, 3), member(2, 4)],
      segmentLinks: [segLink(1, 1), segLink(2, 1)],
    });
    const desired: DesiredState = {
      groups: groupsSnap([group('KEEP', 'Keep'), group('NEW', 'New', 'KEEP')]),
      segments: segmentsSnap([segment('S-NEW', 'New segment')]),
      users: usersSnap([user('U-KEEP', { memberOf: ['KEEP'] }), user('U-NEW', { memberOf: ['NEW'], segments: ['S-NEW'] })]),
    };
    const plan = buildPlan(desired, dir, settings({ rules: { membershipUpdate: 'overwrite', segmentConnectionUpdate: 'overwrite' } }));
    // U-KEEP's membership of GC and link to S-OLD are not unlinked one by one: the group and segment themselves go.
    expect(opsOf(plan)).toEqual([
      { op: 'create', entity: 'group', externalId: 'NEW', after: { name: 'New', parentId: 'KEEP' } },
      { op: 'create', entity: 'segment', externalId: 'S-NEW', after: { name: 'New segment' } },
      createUser('U-NEW', {}, { memberships: [{ groupId: 'NEW', role: 'member' }], segments: ['S-NEW'] }),
      { op: 'remove', entity: 'user', externalId: 'U-OLD', id: 1, name: 'First U-OLD Last U-OLD <u-old@acme>' },
      { op: 'remove', entity: 'segment', externalId: 'S-OLD', id: 1, name: 'Old segment' },
      { op: 'remove', entity: 'group', externalId: 'GC', id: 3, name: 'Grandchild' },
      { op: 'remove', entity: 'group', externalId: 'C', id: 2, name: 'Child' },
      { op: 'remove', entity: 'group', externalId: 'R', id: 1, name: 'Root' },
    ]);
    expect(plan.unchanged).toEqual({ users: 1, groups: 1, segments: 0 });
    expect(plan.ops.map((o) => o.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  });
});

describe('second day', () => {
  const dir = directory({
    users: [
      dirUser(1, 'A', { email: 'a@old.example', phone: '+46 1', title: 'Clerk' }),
      dirUser(2, 'B'),
      dirUser(3, 'C', { title: 'Old title', removedAt: PAST, purgeAfter: FUTURE }),
      dirUser(4, 'D', { removedAt: '2025-01-01T00:00:00.000Z', purgeAfter: PAST }),
      dirUser(5, 'E', { removedAt: '2025-01-01T00:00:00.000Z', purgeAfter: PAST }),
      dirUser(6, 'F', { phone: '+46 6' }),
      dirUser(7, 'G', { removedAt: '2025-03-01T00:00:00.000Z', purgeAfter: NOW }),
      dirUser(8, 'H', { removedAt: PAST, purgeAfter: FUTURE }),
    ],
  });
  const desired: DesiredState = {
    users: usersSnap([
      // phone is not mapped: whatever the directory holds stays, even though the record carries none.
      user('A', { email: 'a@new.example', title: null }),
      user('C', { title: 'New title' }),
      user('E'),
      user('F'),
    ]),
  };
  const plan = buildPlan(desired, dir, settings());

  it('updates mapped fields before → after, removes, restores, purges, and counts the unchanged', () => {
    expect(opsOf(plan)).toEqual([
      { op: 'update', entity: 'user', externalId: 'A', id: 1, changes: [
        { field: 'email', before: 'a@old.example', after: 'a@new.example' },
        { field: 'title', before: 'Clerk', after: null },
      ] },
      { op: 'restore', entity: 'user', externalId: 'C', id: 3 },
      { op: 'update', entity: 'user', externalId: 'C', id: 3, changes: [{ field: 'title', before: 'Old title', after: 'New title' }] },
      { op: 'restore', entity: 'user', externalId: 'E', id: 5 },
      { op: 'remove', entity: 'user', externalId: 'B', id: 2, name: 'First B Last B <b@acme>' },
      { op: 'purge', entity: 'user', externalId: 'D', id: 4, name: 'First D Last D <d@acme>' },
      { op: 'purge', entity: 'user', externalId: 'G', id: 7, name: 'First G Last G <g@acme>' },
    ]);
    expect(plan.unchanged).toEqual({ users: 1, groups: 0, segments: 0 });
    expect(plan.ops.map((o) => o.seq)).toEqual([1, 2, 3, 4, 5, 6, 7]);
  });

  it('never touches an unmapped field even when the record carries a value for it', () => {
    const p = buildPlan({ users: usersSnap([user('F', { phone: '+46 999' })]) }, directory({ users: [dirUser(6, 'F', { phone: '+46 6' })] }), settings());
    expect(opsOf(p)).toEqual([]);
    expect(p.unchanged.users).toBe(1);
  });

  it('clears a mapped field the directory holds when the cell is empty', () => {
    const p = buildPlan({ users: usersSnap([user('A', { phone: null })], { fields: [...USER_FIELDS, 'phone'] }) }, directory({ users: [dirUser(1, 'A', { phone: '+46 1' })] }), settings());
    expect(opsOf(p)).toEqual([{ op: 'update', entity: 'user', externalId: 'A', id: 1, changes: [{ field: 'phone', before: '+46 1', after: null }] }]);
  });

  it('counts the removal in the safeguard against the managed users: live ones and those this plan restores', () => {
    expect(plan.safeguard).toMatchObject({ removals: 1, managedUsers: 5, held: false }); // A, B, F live; C and E restored
  });
});

describe('row-error protection', () => {
  it('neither updates nor removes a user whose external ID is protected', () => {
    const dir = directory({ users: [dirUser(1, 'P', { title: 'Old' }), dirUser(2, 'Q')] });
    const plan = buildPlan({ users: usersSnap([user('Q')], { protectedIds: ['P'] }) }, dir, settings());
    expect(opsOf(plan)).toEqual([]);
    expect(plan.safeguard.removals).toBe(0);
  });

  it('does not update a protected user even when another (valid) row for the same ID exists', () => {
    // e.g. a duplicate external ID: the first row is valid, the later one a row error naming the same ID.
    const dir = directory({ users: [dirUser(1, 'P', { title: 'Old' })], groups: [dirGroup(1, 'G1', 'One')] });
    const plan = buildPlan({ users: usersSnap([user('P', { title: 'New', memberOf: ['G1'] }), user('N')], { protectedIds: ['P', 'N'] }) }, dir, settings());
    expect(opsOf(plan)).toEqual([]);
  });

  it('does not purge a removed user named by a rejected row', () => {
    const dir = directory({ users: [dirUser(1, 'P', { removedAt: '2025-01-01T00:00:00.000Z', purgeAfter: PAST })] });
    expect(opsOf(buildPlan({ users: usersSnap([user('Q')], { protectedIds: ['P'] }) }, dir, settings()))).toEqual([createUser('Q')]);
  });

  it('reports unknown group/segment references with the line and leaves that user alone', () => {
    const dir = directory({
      users: [dirUser(1, 'U1', { title: 'Old' }), dirUser(2, 'U2')],
      groups: [dirGroup(1, 'G1', 'One'), dirGroup(2, 'G-DIR-ONLY', 'Directory only')],
      segments: [dirSegment(1, 'S1', 'Seg')],
      memberships: [member(1, 1)],
      segmentLinks: [segLink(1, 1)],
    });
    const desired: DesiredState = {
      groups: groupsSnap([group('G1', 'One')]),
      segments: segmentsSnap([segment('S1', 'Seg')]),
      users: usersSnap([
        user('U2'),
        // exists: would be updated, unlinked from G1 and S1 — but its row is wrong, so it is left exactly as it is
        user('U1', { title: 'New', memberOf: ['G-NOPE', 'G-DIR-ONLY'], adminOf: ['G-BOSS'], segments: ['S1', 'S-NOPE'] }),
        // new: would be created
        user('U3', { memberOf: ['G1'], segments: ['S-GONE'] }),
      ]),
    };
    const plan = buildPlan(desired, dir, settings({ rules: { membershipUpdate: 'overwrite', segmentConnectionUpdate: 'overwrite' } }));
    // The group G-DIR-ONLY is not in the group snapshot, so it is removed; U1 is left alone (not removed, not touched).
    expect(opsOf(plan)).toEqual([{ op: 'remove', entity: 'group', externalId: 'G-DIR-ONLY', id: 2, name: 'Directory only' }]);
    expect(plan.problems).toHaveLength(4);
    expect(plan.problems[0]).toMatchObject({ level: 'row', file: 'users.csv', line: 3, column: 'memberOf', value: 'G-NOPE, G-DIR-ONLY', entityId: 'U1' });
    expect(plan.problems[0].message).toContain('"G-NOPE"');
    expect(plan.problems[0].message).toContain('"G-DIR-ONLY"');
    expect(plan.problems[1]).toMatchObject({ level: 'row', file: 'users.csv', line: 3, column: 'adminOf', value: 'G-BOSS', entityId: 'U1' });
    expect(plan.problems[1].message).toContain('"G-BOSS"');
    expect(plan.problems[2]).toMatchObject({ level: 'row', file: 'users.csv', line: 3, column: 'segments', value: 'S-NOPE', entityId: 'U1' });
    expect(plan.problems[2].message).toContain('"S-NOPE"');
    expect(plan.problems[2].message).not.toContain('"S1"');
    expect(plan.problems[3]).toMatchObject({ level: 'row', file: 'users.csv', line: 4, column: 'segments', value: 'S-GONE', entityId: 'U3' });
    expect(plan.unchanged.users).toBe(1);
  });

  it('without a group/segment snapshot, resolves references against directory groups/segments that have an external ID', () => {
    const dir = directory({
      users: [dirUser(1, 'U1')],
      groups: [dirGroup(1, 'G-DIR', 'Directory group'), dirGroup(2, null, 'Hand-made')],
      segments: [dirSegment(1, 'S-DIR', 'Directory segment'), dirSegment(2, null, 'Hand-made')],
    });
    const ok = buildPlan({ users: usersSnap([user('U1', { memberOf: ['G-DIR'], segments: ['S-DIR'] })]) }, dir, settings());
    expect(ok.problems).toEqual([]);
    expect(opsOf(ok)).toEqual([
      { op: 'link', entity: 'membership', userId: 'U1', groupId: 'G-DIR', role: 'member' },
      { op: 'link', entity: 'segmentLink', userId: 'U1', segmentId: 'S-DIR' },
    ]);
    const bad = buildPlan({ users: usersSnap([user('U1', { memberOf: ['G-NONE'], segments: ['S-NONE'] })]) }, dir, settings());
    expect(opsOf(bad)).toEqual([]);
    expect(bad.problems.filter((p) => p.level === 'row').map((p) => [p.column, p.value, p.line])).toEqual([['memberOf', 'G-NONE', 2], ['segments', 'S-NONE', 2]]);
  });

  it('with a group snapshot, a group that exists only in the directory is an unknown reference', () => {
    const dir = directory({ users: [dirUser(1, 'U1')], groups: [dirGroup(1, 'G-DIR', 'Directory group')] });
    const plan = buildPlan({ groups: groupsSnap([group('G-FILE', 'File group')]), users: usersSnap([user('U1', { memberOf: ['G-FILE', 'G-DIR'] })]) }, dir, settings());
    expect(plan.problems.filter((p) => p.level === 'row').map((p) => [p.column, p.value])).toEqual([['memberOf', 'G-DIR']]);
    expect(opsOf(plan)).toEqual([
      { op: 'create', entity: 'group', externalId: 'G-FILE', after: { name: 'File group', parentId: null } },
      { op: 'remove', entity: 'group', externalId: 'G-DIR', id: 1, name: 'Directory group' },
    ]);
  });
});

describe('rule: userRemoval', () => {
  const dir = directory({ users: [dirUser(1, 'A'), dirUser(2, null), dirUser(3, 'B')] });
  const desired: DesiredState = { users: usersSnap([user('A')]) };

  it('externalIdOnly never removes a user without an external ID', () => {
    const plan = buildPlan(desired, dir, settings({ rules: { userRemoval: 'externalIdOnly' } }));
    expect(opsOf(plan)).toEqual([{ op: 'remove', entity: 'user', externalId: 'B', id: 3, name: 'First B Last B <b@acme>' }]);
    expect(plan.safeguard).toMatchObject({ removals: 1, managedUsers: 2 });
  });

  it('all removes any live user absent from the snapshot', () => {
    // Users with an external ID come in ID order, then those made by hand.
    const plan = buildPlan(desired, dir, settings({ rules: { userRemoval: 'all' } }));
    expect(opsOf(plan)).toEqual([
      { op: 'remove', entity: 'user', externalId: 'B', id: 3, name: 'First B Last B <b@acme>' },
      { op: 'remove', entity: 'user', externalId: null, id: 2, name: 'First manual2 Last manual2 <manual2@acme>' },
    ]);
    expect(plan.safeguard).toMatchObject({ removals: 2, managedUsers: 3 });
  });
});

describe('rule: userStatusUpdate', () => {
  // Users are planned in external-ID order (the streaming merge of snapshot and directory): LEAVING before PAUSED.
  const dir = directory({ users: [dirUser(1, 'PAUSED', { status: 'inactive' }), dirUser(2, 'LEAVING', { status: 'active' })] });
  const desired: DesiredState = { users: usersSnap([user('PAUSED', { status: 'active' }), user('LEAVING', { status: 'inactive' })]) };

  it('overwrite: the file status wins both ways', () => {
    expect(opsOf(buildPlan(desired, dir, settings({ rules: { userStatusUpdate: 'overwrite' } })))).toEqual([
      { op: 'update', entity: 'user', externalId: 'LEAVING', id: 2, changes: [{ field: 'status', before: 'active', after: 'inactive' }] },
      { op: 'update', entity: 'user', externalId: 'PAUSED', id: 1, changes: [{ field: 'status', before: 'inactive', after: 'active' }] },
    ]);
  });

  it('keepInactive: an inactive user stays inactive; active → inactive still applies; other fields still update', () => {
    const withTitle: DesiredState = { users: usersSnap([user('PAUSED', { status: 'active', title: 'Nurse' }), user('LEAVING', { status: 'inactive' })]) };
    const plan = buildPlan(withTitle, dir, settings({ rules: { userStatusUpdate: 'keepInactive' } }));
    expect(opsOf(plan)).toEqual([
      { op: 'update', entity: 'user', externalId: 'LEAVING', id: 2, changes: [{ field: 'status', before: 'active', after: 'inactive' }] },
      { op: 'update', entity: 'user', externalId: 'PAUSED', id: 1, changes: [{ field: 'title', before: null, after: 'Nurse' }] },
    ]);
    const noOther = buildPlan(desired, dir, settings({ rules: { userStatusUpdate: 'keepInactive' } }));
    expect(opsOf(noOther).filter((o) => 'externalId' in o && o.externalId === 'PAUSED')).toEqual([]);
    expect(noOther.unchanged.users).toBe(1);
  });
});

describe('rule: membershipUpdate', () => {
  // Groups G1..G9 have external IDs (directory ids 1..9); GX (id 99) was made by hand in WT.
  const groups = [1, 2, 3, 4, 5, 6, 7, 8, 9].map((n) => dirGroup(n, `G${n}`, `Group ${n}`)).concat(dirGroup(99, null, 'Hand-made'));
  const dir = directory({
    users: [dirUser(1, 'U1')],
    groups,
    memberships: [
      member(1, 1, 'member', 'integration'), // in file as member → nothing
      member(1, 2, 'member', 'integration'), // file says admin
      member(1, 3, 'member', 'integration'), // not in file
      member(1, 4, 'member', 'manual'), // not in file
      member(1, 5, 'member', 'manual'), // file says admin
      member(1, 6, 'admin', 'manual'), // file says member
      member(1, 7, 'admin', 'integration'), // file says member
      member(1, 99, 'admin', 'manual'), // group without external ID
    ],
  });
  const desired: DesiredState = { users: usersSnap([user('U1', { memberOf: ['G1', 'G6', 'G7', 'G8'], adminOf: ['G2', 'G5', 'G9'] })]) };
  const plan = (mode: 'never' | 'overwrite' | 'overwriteIfRoleIsGreaterOrEqual', d: DirectoryState = dir) =>
    opsOf(buildPlan(desired, d, settings({ rules: { membershipUpdate: mode } })));
  const link = (groupId: string, role: 'member' | 'admin', before?: 'member' | 'admin'): Operation =>
    before ? { op: 'link', entity: 'membership', userId: 'U1', groupId, role, before } : { op: 'link', entity: 'membership', userId: 'U1', groupId, role };
  const unlink = (groupId: string, role: 'member' | 'admin', origin: 'integration' | 'manual'): Operation =>
    ({ op: 'unlink', entity: 'membership', userId: 'U1', groupId, role, origin });

  it('never: manual memberships are never touched; integration ones are added, removed and role-changed', () => {
    expect(plan('never')).toEqual([
      link('G7', 'member', 'admin'),
      link('G8', 'member'),
      link('G2', 'admin', 'member'),
      link('G9', 'admin'),
      unlink('G3', 'member', 'integration'),
    ]);
  });

  it('overwrite: the file is the whole truth, manual memberships included', () => {
    expect(plan('overwrite')).toEqual([
      link('G6', 'member', 'admin'),
      link('G7', 'member', 'admin'),
      link('G8', 'member'),
      link('G2', 'admin', 'member'),
      link('G5', 'admin', 'member'),
      link('G9', 'admin'),
      unlink('G3', 'member', 'integration'),
      unlink('G4', 'member', 'manual'),
    ]);
  });

  it('overwriteIfRoleIsGreaterOrEqual: no demotion of admins, promotions and unlinks happen', () => {
    expect(plan('overwriteIfRoleIsGreaterOrEqual')).toEqual([
      link('G8', 'member'),
      link('G2', 'admin', 'member'),
      link('G5', 'admin', 'member'),
      link('G9', 'admin'),
      unlink('G3', 'member', 'integration'),
      unlink('G4', 'member', 'manual'),
    ]);
  });

  it('never unlinks memberships of a group that is itself being removed', () => {
    const d = directory({ users: [dirUser(1, 'U1')], groups: [dirGroup(1, 'G1', 'One'), dirGroup(2, 'G2', 'Two')], memberships: [member(1, 1), member(1, 2, 'admin', 'manual')] });
    const desiredG: DesiredState = { groups: groupsSnap([group('G1', 'One')]), users: usersSnap([user('U1', { memberOf: ['G1'] })]) };
    for (const mode of ['never', 'overwrite', 'overwriteIfRoleIsGreaterOrEqual'] as const) {
      expect(opsOf(buildPlan(desiredG, d, settings({ rules: { membershipUpdate: mode } })))).toEqual([
        { op: 'remove', entity: 'group', externalId: 'G2', id: 2, name: 'Two' },
      ]);
    }
  });

  it('without an adminOf column, existing roles are left as they are', () => {
    const d = directory({ users: [dirUser(1, 'U1')], groups: [dirGroup(1, 'G1', 'One')], memberships: [member(1, 1, 'admin', 'integration')] });
    const noAdmin: DesiredState = { users: usersSnap([user('U1', { memberOf: ['G1'], adminOf: undefined })], { fields: USER_FIELDS.filter((f) => f !== 'adminOf') }) };
    expect(opsOf(buildPlan(noAdmin, d, settings({ rules: { membershipUpdate: 'overwrite' } })))).toEqual([]);
  });

  it('without memberOf/adminOf columns, memberships are not managed at all', () => {
    const d = directory({ users: [dirUser(1, 'U1')], groups: [dirGroup(1, 'G1', 'One')], memberships: [member(1, 1)] });
    const none: DesiredState = { users: usersSnap([user('U1', { memberOf: undefined, adminOf: undefined })], { fields: USER_FIELDS.filter((f) => f !== 'adminOf' && f !== 'memberOf') }) };
    expect(opsOf(buildPlan(none, d, settings({ rules: { membershipUpdate: 'overwrite' } })))).toEqual([]);
  });
});

describe('rule: segmentConnectionUpdate', () => {
  const dir = directory({
    users: [dirUser(1, 'U1')],
    segments: [dirSegment(1, 'S1', 'One'), dirSegment(2, 'S2', 'Two'), dirSegment(3, 'S3', 'Three'), dirSegment(4, 'S4', 'Four'), dirSegment(99, null, 'Hand-made')],
    segmentLinks: [segLink(1, 1, 'integration'), segLink(1, 2, 'integration'), segLink(1, 3, 'manual'), segLink(1, 99, 'manual'), segLink(1, 99, 'integration')],
  });
  const desired: DesiredState = { users: usersSnap([user('U1', { segments: ['S1', 'S4'] })]) };

  it('never: manual links stay, integration links follow the file', () => {
    expect(opsOf(buildPlan(desired, dir, settings({ rules: { segmentConnectionUpdate: 'never' } })))).toEqual([
      { op: 'link', entity: 'segmentLink', userId: 'U1', segmentId: 'S4' },
      { op: 'unlink', entity: 'segmentLink', userId: 'U1', segmentId: 'S2', origin: 'integration' },
    ]);
  });

  it('overwrite: manual links missing from the file are unlinked too; hand-made segments untouched', () => {
    expect(opsOf(buildPlan(desired, dir, settings({ rules: { segmentConnectionUpdate: 'overwrite' } })))).toEqual([
      { op: 'link', entity: 'segmentLink', userId: 'U1', segmentId: 'S4' },
      { op: 'unlink', entity: 'segmentLink', userId: 'U1', segmentId: 'S2', origin: 'integration' },
      { op: 'unlink', entity: 'segmentLink', userId: 'U1', segmentId: 'S3', origin: 'manual' },
    ]);
  });

  it('never unlinks from a segment that is itself being removed', () => {
    const withSnap: DesiredState = { segments: segmentsSnap([segment('S1', 'One'), segment('S3', 'Three'), segment('S4', 'Four')]), users: desired.users };
    expect(opsOf(buildPlan(withSnap, dir, settings({ rules: { segmentConnectionUpdate: 'overwrite' } })))).toEqual([
      { op: 'link', entity: 'segmentLink', userId: 'U1', segmentId: 'S4' },
      { op: 'unlink', entity: 'segmentLink', userId: 'U1', segmentId: 'S3', origin: 'manual' },
      { op: 'remove', entity: 'segment', externalId: 'S2', id: 2, name: 'Two' },
    ]);
  });
});

describe('safeguards', () => {
  it('a big comeback with one removal is not held: restored users count as managed', () => {
    const users = Array.from({ length: 25 }, (_, i) => dirUser(i + 1, `U${i}`, i === 0 ? {} : { removedAt: '2025-01-01T00:00:00.000Z', purgeAfter: '2099-01-01T00:00:00.000Z' }));
    const plan = buildPlan({ users: usersSnap(Array.from({ length: 24 }, (_, i) => user(`U${i + 1}`))) }, directory({ users }), settings({ maxRemovalPercent: 10 }));
    expect(plan.ops.filter((o) => o.op === 'restore')).toHaveLength(24);
    expect(plan.safeguard).toMatchObject({ removals: 1, managedUsers: 25, held: false });
  });

  /** `managed` live users U1..Un; the file keeps the first `managed - removals`, and changes U1's title. */
  function scenario(managed: number, removals: number) {
    const ids = Array.from({ length: managed }, (_, i) => `U${i + 1}`);
    const dir = directory({ users: ids.map((ext, i) => dirUser(i + 1, ext)) });
    const desired: DesiredState = {
      groups: groupsSnap([group('G-NEW', 'New')]),
      users: usersSnap(ids.slice(0, managed - removals).map((ext, i) => user(ext, i === 0 ? { title: 'Boss' } : {}))),
    };
    return { dir, desired };
  }
  const removalOps = (plan: Plan) => plan.ops.filter((o) => o.op === 'remove' && o.entity === 'user');

  it('holds every user removal when their count is above maxRemovals; other ops are not held', () => {
    const { dir, desired } = scenario(20, 3);
    const plan = buildPlan(desired, dir, settings({ maxRemovals: 2, maxRemovalPercent: 100 }));
    expect(removalOps(plan)).toHaveLength(3);
    expect(removalOps(plan).every((o) => o.held === true)).toBe(true);
    const others = plan.ops.filter((o) => !(o.op === 'remove' && o.entity === 'user'));
    expect(others.map((o) => o.op)).toEqual(['create', 'update']);
    expect(others.every((o) => o.held === undefined)).toBe(true);
    expect(plan.safeguard).toMatchObject({ removals: 3, managedUsers: 20, maxRemovals: 2, maxRemovalPercent: 100, held: true });
    expect(plan.safeguard.reason).toMatch(/\b3\b/);
    expect(plan.safeguard.reason).toMatch(/\b2\b/);
  });

  it('holds removals above maxRemovalPercent of the managed users', () => {
    const { dir, desired } = scenario(20, 3);
    const plan = buildPlan(desired, dir, settings({ maxRemovals: 500, maxRemovalPercent: 10 }));
    expect(plan.safeguard).toMatchObject({ removals: 3, managedUsers: 20, maxRemovals: 500, maxRemovalPercent: 10, held: true });
    expect(plan.safeguard.reason).toContain('15.0%');
    expect(plan.safeguard.reason).toMatch(/\b20\b/);
    expect(plan.safeguard.reason).toMatch(/\b10%/);
    expect(removalOps(plan).every((o) => o.held === true)).toBe(true);
  });

  it('does not hold exactly at either limit', () => {
    const a = scenario(20, 3);
    const atCount = buildPlan(a.desired, a.dir, settings({ maxRemovals: 3, maxRemovalPercent: 100 }));
    expect(atCount.safeguard.held).toBe(false);
    expect(atCount.safeguard.reason).toBeUndefined();
    expect(atCount.ops.some((o) => o.held)).toBe(false);
    expect(buildPlan(a.desired, a.dir, settings({ maxRemovals: 500, maxRemovalPercent: 15 })).safeguard.held).toBe(false);
    // 7 of 100 is exactly 7% (a naive 7 / 100 * 100 is 7.000000000000001)
    const b = scenario(100, 7);
    expect(buildPlan(b.desired, b.dir, settings({ maxRemovals: 500, maxRemovalPercent: 7 })).safeguard.held).toBe(false);
    expect(buildPlan(b.desired, b.dir, settings({ maxRemovals: 500, maxRemovalPercent: 6.9 })).safeguard.held).toBe(true);
    // the defaults: 10% / 500
    const c = scenario(100, 10);
    expect(buildPlan(c.desired, c.dir, settings({ maxRemovals: 500, maxRemovalPercent: 10 })).safeguard.held).toBe(false);
    const d = scenario(100, 11);
    expect(buildPlan(d.desired, d.dir, settings({ maxRemovals: 500, maxRemovalPercent: 10 })).safeguard.held).toBe(true);
  });

  it('does not hold approved removals', () => {
    const { dir, desired } = scenario(20, 10);
    const plan = buildPlan(desired, dir, settings({ maxRemovals: 1, maxRemovalPercent: 1, approved: true }));
    expect(plan.safeguard.held).toBe(false);
    expect(removalOps(plan)).toHaveLength(10);
    expect(plan.ops.some((o) => o.held)).toBe(false);
  });

  it('does not hold a plan with zero removals, whatever the limits', () => {
    const { dir, desired } = scenario(5, 0);
    const plan = buildPlan(desired, dir, settings({ maxRemovals: 0, maxRemovalPercent: 0 }));
    expect(plan.safeguard).toEqual({ removals: 0, managedUsers: 5, maxRemovals: 0, maxRemovalPercent: 0, held: false });
  });

  it('counts only managed users: soft-removed ones and, under externalIdOnly, hand-made ones are not', () => {
    const dir = directory({ users: [dirUser(1, 'A'), dirUser(2, 'B'), dirUser(3, null), dirUser(4, 'C', { removedAt: PAST, purgeAfter: FUTURE })] });
    const plan = buildPlan({ users: usersSnap([user('A')]) }, dir, settings({ maxRemovalPercent: 50 }));
    expect(plan.safeguard).toMatchObject({ removals: 1, managedUsers: 2, held: false });
  });

  it('does not hold purges or group removals', () => {
    const dir = directory({
      users: [dirUser(1, 'A'), dirUser(2, 'B'), dirUser(3, 'OLD', { removedAt: '2025-01-01T00:00:00.000Z', purgeAfter: PAST })],
      groups: [dirGroup(1, 'G1', 'One')],
    });
    const plan = buildPlan({ groups: groupsSnap([group('G2', 'Two')]), users: usersSnap([user('A')]) }, dir, settings({ maxRemovals: 0, maxRemovalPercent: 0 }));
    expect(plan.ops.map((o) => [o.op, o.entity, o.held ?? false])).toEqual([
      ['create', 'group', false],
      ['remove', 'user', true],
      ['remove', 'group', false],
      ['purge', 'user', false],
    ]);
  });

  it('never reads a users snapshot with zero valid rows as "remove everyone"', () => {
    const dir = directory({ users: [dirUser(1, 'A'), dirUser(2, 'B')] });
    const empty = buildPlan({ users: usersSnap([]) }, dir, settings({ approved: true }));
    expect(opsOf(empty)).toEqual([]);
    expect(empty.safeguard.removals).toBe(0);
    expect(empty.problems).toEqual([expect.objectContaining({ level: 'warning', file: 'users.csv' })]);
    // every row failed at plan time (e.g. the groups file has not arrived yet): nobody is removed either
    const allBad = buildPlan({ users: usersSnap([user('C', { memberOf: ['G-LATER'] })]) }, dir, settings({ approved: true }));
    expect(opsOf(allBad)).toEqual([]);
    expect(allBad.problems.map((p) => p.level)).toEqual(['row', 'warning']);
    // one valid row is enough: then absent users are removed as usual
    const oneGood = buildPlan({ users: usersSnap([user('A'), user('C', { memberOf: ['G-LATER'] })]) }, dir, settings());
    expect(opsOf(oneGood)).toEqual([{ op: 'remove', entity: 'user', externalId: 'B', id: 2, name: 'First B Last B <b@acme>' }]);
  });
});

describe('groups', () => {
  it('plans renames and moves as field-level updates, parents first', () => {
    const dir = directory({ groups: [dirGroup(1, 'G1', 'Sales'), dirGroup(2, 'G2', 'North', 'G1'), dirGroup(3, 'G4', 'Same')] });
    const desired: DesiredState = { groups: groupsSnap([group('G2', 'North', 'G3'), group('G1', 'Sales & Marketing'), group('G3', 'Regions'), group('G4', 'Same')]) };
    const plan = buildPlan(desired, dir, settings());
    expect(opsOf(plan)).toEqual([
      { op: 'update', entity: 'group', externalId: 'G1', id: 1, changes: [{ field: 'name', before: 'Sales', after: 'Sales & Marketing' }] },
      { op: 'create', entity: 'group', externalId: 'G3', after: { name: 'Regions', parentId: null } },
      { op: 'update', entity: 'group', externalId: 'G2', id: 2, changes: [{ field: 'parentId', before: 'G1', after: 'G3' }] },
    ]);
    expect(plan.unchanged).toEqual({ users: 0, groups: 1, segments: 0 });
  });

  it('removes groups absent from the snapshot children-first, but never protected or hand-made ones', () => {
    const dir = directory({
      groups: [
        dirGroup(1, 'TOP', 'Top'),
        dirGroup(2, 'MID', 'Mid', 'TOP'),
        dirGroup(3, 'LEAF', 'Leaf', 'MID'),
        dirGroup(4, 'BAD-ROW', 'Protected'),
        dirGroup(5, null, 'Hand-made'),
        dirGroup(6, 'KEEP', 'Keep'),
      ],
    });
    const plan = buildPlan({ groups: groupsSnap([group('KEEP', 'Keep')], ['BAD-ROW']) }, dir, settings());
    expect(opsOf(plan)).toEqual([
      { op: 'remove', entity: 'group', externalId: 'LEAF', id: 3, name: 'Leaf' },
      { op: 'remove', entity: 'group', externalId: 'MID', id: 2, name: 'Mid' },
      { op: 'remove', entity: 'group', externalId: 'TOP', id: 1, name: 'Top' },
    ]);
  });

  it('keeps a group that is not in the file while a group that stays still belongs under it', () => {
    const dir = directory({
      groups: [
        dirGroup(1, 'SALES', 'Sales'),
        dirGroup(2, 'S-LON', 'London', 'SALES'), // its row failed: left as it is, so its parent stays too
        dirGroup(3, 'HQ', 'HQ'),
        dirGroup(4, null, 'Hand-made', 'HQ'), // made in WT under HQ: HQ stays
        dirGroup(5, 'OLD', 'Old'),
        dirGroup(6, 'MOVED', 'Moved', 'OLD'), // moves away from OLD in this plan: OLD can go
      ],
    });
    const plan = buildPlan({ groups: groupsSnap([group('MOVED', 'Moved')], ['S-LON']) }, dir, settings());
    expect(opsOf(plan)).toEqual([
      { op: 'update', entity: 'group', externalId: 'MOVED', id: 6, changes: [{ field: 'parentId', before: 'OLD', after: null }] },
      { op: 'remove', entity: 'group', externalId: 'OLD', id: 5, name: 'Old' },
    ]);
    expect(plan.problems.map((p) => [p.level, p.entityId, p.message])).toEqual([
      ['warning', 'SALES', 'group "SALES" is not in the file but was kept: group "S-LON" still belongs under it'],
      ['warning', 'HQ', 'group "HQ" is not in the file but was kept: group "Hand-made" still belongs under it'],
    ]);
  });

  it('removes segments absent from the snapshot, but never protected or hand-made ones', () => {
    const dir = directory({ segments: [dirSegment(1, 'S1', 'One'), dirSegment(2, 'S2', 'Two'), dirSegment(3, null, 'Hand-made'), dirSegment(4, 'S4', 'Four')] });
    const plan = buildPlan({ segments: segmentsSnap([segment('S1', 'Uno')], ['S2']) }, dir, settings());
    expect(opsOf(plan)).toEqual([
      { op: 'update', entity: 'segment', externalId: 'S1', id: 1, changes: [{ field: 'name', before: 'One', after: 'Uno' }] },
      { op: 'remove', entity: 'segment', externalId: 'S4', id: 4, name: 'Four' },
    ]);
  });

  it('without a users snapshot plans no user operations at all, but still plans groups', () => {
    const dir = directory({
      users: [dirUser(1, 'A'), dirUser(2, 'OLD', { removedAt: '2025-01-01T00:00:00.000Z', purgeAfter: PAST })],
      groups: [dirGroup(1, 'G1', 'One')],
      memberships: [member(1, 1)],
    });
    const plan = buildPlan({ groups: groupsSnap([group('G1', 'Uno'), group('G2', 'Two')]) }, dir, settings());
    expect(opsOf(plan)).toEqual([
      { op: 'update', entity: 'group', externalId: 'G1', id: 1, changes: [{ field: 'name', before: 'One', after: 'Uno' }] },
      { op: 'create', entity: 'group', externalId: 'G2', after: { name: 'Two', parentId: null } },
    ]);
    expect(plan.safeguard).toMatchObject({ removals: 0, held: false });
    expect(plan.unchanged.users).toBe(0);
  });

  it('without a group or segment snapshot, directory groups and segments are left alone', () => {
    const dir = directory({ groups: [dirGroup(1, 'G1', 'One')], segments: [dirSegment(1, 'S1', 'One')], users: [dirUser(1, 'A')] });
    expect(opsOf(buildPlan({ users: usersSnap([user('A')]) }, dir, settings()))).toEqual([]);
  });
});

describe('seq', () => {
  it('numbers a mixed plan 1..n in order', () => {
    const dir = directory({
      users: [dirUser(1, 'A'), dirUser(2, 'B'), dirUser(3, 'C', { removedAt: '2025-01-01T00:00:00.000Z', purgeAfter: PAST })],
      groups: [dirGroup(1, 'G-OLD', 'Old')],
      segments: [dirSegment(1, 'S-OLD', 'Old')],
    });
    const desired: DesiredState = {
      groups: groupsSnap([group('G2', 'Two', 'G1'), group('G1', 'One')]),
      segments: segmentsSnap([segment('S1', 'One')]),
      users: usersSnap([user('A', { title: 'X', memberOf: ['G2'], segments: ['S1'] }), user('N')]),
    };
    const plan = buildPlan(desired, dir, settings());
    expect(plan.ops.length).toBe(11);
    expect(plan.ops.map((o) => o.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    expect(plan.ops.map((o) => `${o.op}:${o.entity}`)).toEqual([
      'create:group', 'create:group', 'create:segment', 'update:user', 'create:user', 'link:membership', 'link:segmentLink',
      'remove:user', 'remove:segment', 'remove:group', 'purge:user',
    ]);
    expect(plan.ops[0]).toMatchObject({ externalId: 'G1' });
  });

  it('does not mutate its inputs', () => {
    const dir = directory({ users: [dirUser(1, 'A'), dirUser(2, 'B')], groups: [dirGroup(1, 'G1', 'One')], memberships: [member(1, 1)] });
    const desired: DesiredState = { groups: groupsSnap([group('G1', 'One')]), users: usersSnap([user('A', { memberOf: ['G1'], title: 'T' })], { protectedIds: ['Z'] }) };
    const dirCopy = structuredClone(dir);
    const desiredCopy = structuredClone(desired);
    buildPlan(desired, dir, settings());
    expect(dir).toEqual(dirCopy);
    expect(desired).toEqual(desiredCopy);
  });
});
