import { describe, expect, it } from 'vitest';
import type { UserRecord } from '../../src/model.js';
import { messages, run, userRow, usersFile, usersSpec } from './helpers.js';

const valid = (n: number): string[] => Array.from({ length: n }, (_, i) => userRow(`ok${i}`));

describe('users rows', () => {
  it('maps every field: trimmed, empty optional → null, lists split/trimmed/deduplicated, values normalised', async () => {
    const row = userRow(' u1 ', {
      Email: ' ', Phone: '', Title: ' Chief  ', Birthday: '', Gender: 'm', 'Group member': ' g1 , g2,,g1 ',
      'Group admin': '', Segment: 'swe', Status: 'INACTIVE', Language: 'en-us',
    });
    const { result, sink } = await run('users', usersFile(row));
    expect(result.problems).toEqual([]);
    expect(sink.records[0].record).toEqual({
      externalId: 'u1', firstName: 'First  u1', lastName: 'Last  u1', username: 'user- u1', email: null, phone: null,
      title: 'Chief', birthday: null, employedSince: '2019-01-10', employedUntil: null, gender: 'male',
      memberOf: ['g1', 'g2'], adminOf: [], segments: ['swe'], status: 'inactive', language: 'en-US',
    } satisfies UserRecord);
  });

  it('rejects a row holding a NUL or other control character, naming the column and the character', async () => {
    const { result, sink } = await run('users', usersFile(...valid(9), userRow('bad', { Username: 'a\u0000b' }), userRow('tab', { Title: 'a\tb' })));
    expect(result.status).toBe('accepted');
    const problem = result.problems.find((p) => p.level === 'row')!;
    expect(problem).toMatchObject({ line: 11, column: 'Username', value: 'a\\u0000b', entityId: 'bad', message: 'the value holds an invisible control character (0x00)' });
    expect(sink.records.map((r) => r.record.externalId)).not.toContain('bad');
    expect(sink.records.map((r) => r.record.externalId)).toContain('tab'); // a tab is ordinary text
  });

  it('fields not mapped are absent from the record', async () => {
    const spec = usersSpec({ columns: ['externalId', 'firstName', 'lastName', 'username', 'ignore', 'ignore', 'ignore', 'ignore', 'ignore', 'ignore', 'ignore', 'memberOf', 'ignore', 'ignore', 'ignore', 'ignore'] });
    const { sink } = await run('users', usersFile(userRow('u1', { Email: 'not an email', Birthday: 'never' })), { spec });
    const rec = sink.records[0].record;
    expect(Object.keys(rec)).toEqual(['externalId', 'firstName', 'lastName', 'username', 'memberOf']);
    expect('email' in rec).toBe(false);
  });

  it('collects every problem of a row, each with line, header name, value, hint and entity ID; the row is not stored', async () => {
    const bad = userRow('u9', {
      Firstname: '', Lastname: ' ', Email: 'anna@', Birthday: '1980-02-30', EmployedSince: '2020-01-01',
      EmployedUntil: '2019-12-31', Gender: 'unknown', Status: 'on leave', Language: 'sv_SE',
    });
    const { result, sink } = await run('users', usersFile(...valid(9), bad, ...valid(30).map((r) => r.replace(/ok/g, 'more'))));
    expect(result.status).toBe('accepted');
    expect(sink.records.map((r) => r.record.externalId)).not.toContain('u9');
    expect(result.validRows).toBe(39);
    const rows = result.problems.filter((p) => p.level === 'row');
    expect(rows.every((p) => p.line === 11 && p.entityId === 'u9' && p.file === 'users.csv' && p.hint)).toBe(true);
    expect(rows.map((p) => [p.column, p.message])).toEqual([
      ['Firstname', 'first name is mandatory but "Firstname" is empty'],
      ['Lastname', 'last name is mandatory but "Lastname" is empty'],
      ['Email', 'email "anna@" is not a valid address'],
      ['Birthday', 'birthday "1980-02-30" is not a real calendar date'],
      ['Gender', 'gender "unknown" is not one of male, female, other'],
      ['Status', 'status "on leave" is not active or inactive'],
      ['Language', 'language "sv_SE" is not a valid BCP 47 language tag'],
      ['EmployedUntil', 'employed until 2019-12-31 is before employed since 2020-01-01'],
    ]);
    expect(rows.find((p) => p.column === 'Language')!.hint).toBe('use a hyphen, not an underscore: "sv-SE"');
    expect(rows.find((p) => p.column === 'Birthday')!.value).toBe('1980-02-30');
  });

  it('a date not in YYYY-MM-DD form is a row error', async () => {
    const { result } = await run('users', usersFile(userRow('u1', { EmployedSince: '10/01/2019' })), { maxInvalidRowPercent: 100 });
    expect(result.problems.find((p) => p.level === 'row')).toMatchObject({
      column: 'EmployedSince', message: 'employed since "10/01/2019" is not a date in the form YYYY-MM-DD', hint: 'write dates as YYYY-MM-DD, e.g. 1984-03-21',
    });
  });

  it('missing external ID: row error without entity ID', async () => {
    const { result } = await run('users', usersFile(userRow('', { Email: 'x@example.com' }), ...valid(9)));
    expect(result.problems).toEqual([expect.objectContaining({ line: 2, column: 'Unique ID', message: 'external ID is mandatory but "Unique ID" is empty' })]);
    expect(result.problems[0].entityId).toBeUndefined();
  });

  it('duplicate external ID or username: row error on the later row naming the first line; first row kept', async () => {
    const text = usersFile(userRow('a'), userRow('b'), userRow('a', { Username: 'other' }), userRow('c', { Username: 'user-b' }), ...valid(10));
    const { result, sink } = await run('users', text);
    expect(result.status).toBe('accepted');
    expect(sink.records.slice(0, 2).map((r) => [r.line, r.record.externalId, (r.record as UserRecord).firstName])).toEqual([[2, 'a', 'First a'], [3, 'b', 'First b']]);
    expect(sink.records.map((r) => r.record.externalId)).not.toContain('c');
    expect(result.problems).toEqual([
      expect.objectContaining({ level: 'row', line: 4, column: 'Unique ID', value: 'a', entityId: 'a', message: 'duplicate external ID "a": already used on line 2' }),
      expect.objectContaining({ level: 'row', line: 5, column: 'Username', value: 'user-b', entityId: 'c', message: 'duplicate username "user-b": already used on line 3' }),
    ]);
  });

  it('tenant value maps apply before validation; a map to null empties the field', async () => {
    const spec = usersSpec({ valueMaps: { gender: { '1': 'male', '2': 'female', _: null }, status: { A: 'active', I: 'inactive' }, memberOf: { OLD: 'new' } } });
    const text = usersFile(
      userRow('a', { Gender: '1', Status: 'A', 'Group member': 'OLD,x' }),
      userRow('b', { Gender: '_', Status: 'I' }),
      userRow('c', { Gender: 'M' }), // the tenant's own map replaces the default one
      ...Array.from({ length: 5 }, (_, i) => userRow(`ok${i}`, { Gender: '2' })),
    );
    const { result, sink } = await run('users', text, { spec });
    const byId = new Map(sink.records.map((r) => [r.record.externalId, r.record as UserRecord]));
    expect(byId.get('a')).toMatchObject({ gender: 'male', status: 'active', memberOf: ['new', 'x'] });
    expect(byId.get('b')).toMatchObject({ gender: null, status: 'inactive' });
    expect(byId.has('c')).toBe(false);
    expect(result.problems).toEqual([expect.objectContaining({ line: 4, column: 'Gender', message: 'gender "M" is not one of male, female, other' })]);
    expect(result.problems[0].hint).toContain('gender mapping agreed with WT');
  });

  it('custom list separator', async () => {
    const { sink } = await run('users', usersFile(userRow('a', { 'Group member': 'g1|g2 | g1', Segment: 'swe|uk' })), { spec: usersSpec({ listSeparator: '|' }) });
    expect(sink.records[0].record).toMatchObject({ memberOf: ['g1', 'g2'], segments: ['swe', 'uk'] });
  });
});

describe('invalid-row safeguard', () => {
  it('more than the limit rejects the file, keeping the row problems found', async () => {
    const text = usersFile(...valid(7), userRow('x1', { Email: 'bad' }), userRow('x2', { Email: 'bad' }), userRow('x3', { Email: 'bad' }));
    const { result } = await run('users', text);
    expect(result).toMatchObject({ status: 'rejected', dataRows: 10, validRows: 7 });
    expect(messages(result)[0]).toBe('too many invalid rows: 3 of 10 (30%) exceed the limit of 20%');
    expect(result.problems.filter((p) => p.level === 'row').map((p) => p.line)).toEqual([9, 10, 11]);
  });

  it('exactly at the limit is accepted; the limit comes from the tenant', async () => {
    const text = usersFile(...valid(8), userRow('x1', { Email: 'bad' }), userRow('x2', { Email: 'bad' }));
    expect((await run('users', text)).result.status).toBe('accepted');
    const strict = await run('users', text, { maxInvalidRowPercent: 10 });
    expect(messages(strict.result)[0]).toBe('too many invalid rows: 2 of 10 (20%) exceed the limit of 10%');
  });
});
