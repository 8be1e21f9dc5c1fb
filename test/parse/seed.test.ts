// The seed files are verbatim from the customer guide.
import { describe, expect, it } from 'vitest';
import { fixture, groupsSpec, run, segmentsSpec, usersSpec } from './helpers.js';

describe('seed files from the customer guide', () => {
  it('groups: 8 valid groups, one warning for two "Sales London" under "sales"', async () => {
    const { result, sink } = await run('groups', fixture('seed/wt_groups.csv'), { spec: groupsSpec(), fileName: 'wt_groups.csv' });
    expect(result).toMatchObject({ status: 'accepted', dataRows: 8, validRows: 8 });
    expect(sink.records).toHaveLength(8);
    expect(sink.records.map((r) => r.record.externalId)).toEqual(['prod', 'dev-team-1', 'research', 'dev-ops', 'sales', 'sales-1', 'sales-2', 'Sales Stockholm']);
    expect(sink.records[0].record).toEqual({ externalId: 'prod', name: 'Product', parentId: null });
    expect(result.problems).toHaveLength(1);
    expect(result.problems[0]).toMatchObject({ level: 'warning', file: 'wt_groups.csv', line: 9, column: 'Group name', entityId: 'Sales Stockholm' });
    expect(result.problems[0].message).toBe('group name "Sales London" is used twice under parent "sales" (also on line 7)');
  });

  it('segments: 4 valid segments', async () => {
    const { result, sink } = await run('segments', fixture('seed/wt_segments.csv'), { spec: segmentsSpec() });
    expect(result).toMatchObject({ status: 'accepted', dataRows: 4, validRows: 4, problems: [] });
    expect(sink.records.map((r) => r.record)).toEqual([
      { externalId: 'swe', name: 'Sweden' }, { externalId: 'uk', name: 'United Kingdom' },
      { externalId: 'dev', name: 'Developers' }, { externalId: 'sales', name: 'Sales' },
    ]);
  });

  it('users: the email with a non-breaking space is a row error, and 1 of 1 invalid rejects the file', async () => {
    const { result, sink } = await run('users', fixture('seed/wt_users.csv'), { spec: usersSpec(), fileName: 'wt_users.csv' });
    expect(result).toMatchObject({ status: 'rejected', dataRows: 1, validRows: 0 });
    expect(sink.records).toHaveLength(0);
    const rows = result.problems.filter((p) => p.level === 'row');
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      line: 2, column: 'Email', value: '[email\u00a0protected]', entityId: '6efcd4bd-3539-4e75-a9d3-da106b2928b5',
    });
    expect(rows[0].message).toContain('is not a valid address');
    expect(rows[0].hint).toContain('non-breaking space');
    const file = result.problems.filter((p) => p.level === 'file');
    expect(file.map((p) => p.message)).toEqual(['too many invalid rows: 1 of 1 (100%) exceed the limit of 20%']);
    expect(result.problems[0].level).toBe('file'); // file-level problems come first
  });

  it('users: with the email fixed the seed row maps every field', async () => {
    // The guide's address is "[email\u00a0protected]" (a web page's e-mail obfuscation), not an address at all.
    const text = fixture('seed/wt_users.csv').toString().replace('[email\u00a0protected];08', 'mark.johnson@example.com;08');
    const { result, sink } = await run('users', text, { spec: usersSpec() });
    expect(result).toMatchObject({ status: 'accepted', validRows: 1, problems: [] });
    expect(sink.records[0]).toEqual({
      line: 2,
      record: {
        externalId: '6efcd4bd-3539-4e75-a9d3-da106b2928b5', firstName: 'Mark', lastName: 'Johnson',
        username: '[email\u00a0protected]', email: 'mark.johnson@example.com', phone: '08-111111', title: 'Developer',
        birthday: '1966-01-28', employedSince: '2019-01-10', employedUntil: null, gender: 'male',
        memberOf: ['Unique group ID'], adminOf: ['Unique group ID'], segments: ['Unique segment ID'],
        status: 'active', language: 'en-US',
      },
    });
  });
});
