// The stored form of a staged row: values in field order, absent fields kept absent, old object rows still read.
import { describe, expect, it } from 'vitest';
import { USER_FIELDS, type GroupRecord, type SegmentRecord, type UserRecord } from '../../src/model.js';
import { decodeRow, encodeRow } from '../../src/snapshot/row-format.js';

describe('row format', () => {
  it('round-trips records of each type exactly: nulls stay null, absent fields stay absent', () => {
    const user: UserRecord = { externalId: 'e1', firstName: 'Åsa', lastName: 'Öberg', username: 'a@x', email: null, title: 'Chef "1"', memberOf: ['g1', 'g2'], adminOf: [], segments: ['s'] };
    // Every field a user row can hold, so a field missing from the stored form's list would be lost here.
    const full = Object.fromEntries(USER_FIELDS.map((f, i) => [f, ['memberOf', 'adminOf', 'segments'].includes(f) ? [`v${i}`] : `v${i}`])) as unknown as UserRecord;
    expect(decodeRow<UserRecord>('users', encodeRow('users', full))).toStrictEqual(full);
    const group: GroupRecord = { externalId: 'g1', name: 'Göteborg', parentId: null };
    const segment: SegmentRecord = { externalId: 's', name: 'Sweden' };
    const back = decodeRow<UserRecord>('users', encodeRow('users', user));
    expect(back).toStrictEqual(user);
    expect('phone' in back).toBe(false);
    expect(decodeRow('groups', encodeRow('groups', group))).toStrictEqual(group);
    expect(decodeRow('segments', encodeRow('segments', segment))).toStrictEqual(segment);
  });

  it('is a JSON array of the values, smaller than the object', () => {
    const user: UserRecord = { externalId: 'e1', firstName: 'A', lastName: 'B', username: 'a@x', status: 'active' };
    const stored = encodeRow('users', user);
    // In the order of USER_FIELDS: …, memberOf, adminOf, segments, status, language.
    expect(JSON.parse(stored)).toEqual(['e1', 'A', 'B', 'a@x', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 'active', 0]);
    expect(stored.length).toBeLessThan(JSON.stringify(user).length);
  });

  it('reads rows staged as JSON objects before this format', () => {
    const old = { externalId: 'e1', firstName: 'A', lastName: 'B', username: 'a@x', memberOf: ['g'] };
    expect(decodeRow('users', JSON.stringify(old))).toStrictEqual(old);
  });
});
