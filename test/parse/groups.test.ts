import { describe, expect, it } from 'vitest';
import type { GroupRecord } from '../../src/model.js';
import { fixture, messages, run } from './helpers.js';

const file = (...rows: string[]) => ['Group name;GroupID;Parent groupID', ...rows].join('\n');
const ids = (records: { record: unknown }[]) => records.map((r) => (r.record as GroupRecord).externalId);

describe('groups', () => {
  it('parents may come after their children; valid groups reach the sink in file order, parentId null when empty', async () => {
    const { result, sink } = await run('groups', file('Team;team;dept', 'Dept;dept;', 'Top;top; '));
    expect(result).toMatchObject({ status: 'accepted', dataRows: 3, validRows: 3, problems: [] });
    expect(sink.records).toEqual([
      { line: 2, record: { externalId: 'team', name: 'Team', parentId: 'dept' } },
      { line: 3, record: { externalId: 'dept', name: 'Dept', parentId: null } },
      { line: 4, record: { externalId: 'top', name: 'Top', parentId: null } },
    ]);
  });

  it('missing parent is a row error; children of a failed group fail too (cascade to fixpoint)', async () => {
    const { result, sink } = await run('groups', fixture('parse/groups-missing-parent.csv'), { maxInvalidRowPercent: 100 });
    expect(result).toMatchObject({ status: 'accepted', dataRows: 7, validRows: 2 });
    expect(ids(sink.records)).toEqual(['root', 'ur']);
    expect(result.problems.map((p) => [p.line, p.column, p.entityId, p.message])).toEqual([
      [2, 'Parent groupID', 'team', 'parent group "ghost" does not exist in this file'],
      [3, 'Parent groupID', 'sub', 'parent group "team" is skipped because its row has errors (line 2)'],
      [4, 'Parent groupID', 'subsub', 'parent group "sub" is skipped because its row has errors (line 3)'],
      [6, 'Group name', 'bad', 'name is mandatory but "Group name" is empty'],
      [7, 'Parent groupID', 'cb', 'parent group "bad" is skipped because its row has errors (line 6)'],
    ]);
    expect(result.problems[0].hint).toContain('add group "ghost" to the groups file');
  });

  it('cascade failures count towards the invalid-row limit', async () => {
    const { result, sink } = await run('groups', fixture('parse/groups-missing-parent.csv'));
    expect(result.status).toBe('rejected');
    expect(messages(result)[0]).toBe('too many invalid rows: 5 of 7 (71.4%) exceed the limit of 20%');
    expect(sink.records).toHaveLength(2); // the caller discards the sink of a rejected file
  });

  it('a cycle is a file-level error naming the IDs in order; nothing reaches the sink', async () => {
    const { result, sink } = await run('groups', fixture('parse/groups-cycle.csv'));
    expect(result.status).toBe('rejected');
    expect(sink.records).toHaveLength(0);
    expect(result.problems.filter((p) => p.level === 'file')).toEqual([
      expect.objectContaining({ line: 3, message: "groups form a cycle: a → b → c → a (each group's parent is the next one)" }),
    ]);
    expect(result.problems[0].hint).toContain('lines 3, 4, 5');
  });

  it('a group that is its own parent is a cycle too; separate cycles are reported separately', async () => {
    const { result } = await run('groups', file('Self;s;s', 'X;x;y', 'Y;y;x', 'Ok;ok;'));
    expect(messages(result)).toEqual([
      "groups form a cycle: s → s (each group's parent is the next one)",
      "groups form a cycle: x → y → x (each group's parent is the next one)",
    ]);
  });

  it('duplicate group ID: row error on the later row, the first is kept', async () => {
    const { result, sink } = await run('groups', file('A;a;', 'A again;a;', ...Array.from({ length: 8 }, (_, i) => `G${i};g${i};a`)));
    expect(result.status).toBe('accepted');
    expect(sink.records[0].record).toEqual({ externalId: 'a', name: 'A', parentId: null });
    expect(sink.records).toHaveLength(9);
    expect(result.problems).toEqual([expect.objectContaining({ level: 'row', line: 3, entityId: 'a', message: 'duplicate external ID "a": already used on line 2' })]);
  });

  it('same name under one parent (case-insensitive, trimmed) is a warning; both are applied', async () => {
    const { result, sink } = await run('groups', file('Top;t;', 'HR;hr1;t', 'hr ;hr2;t', 'HR;hr3;', 'HR;hr4;hr1'));
    expect(result.status).toBe('accepted');
    expect(sink.records).toHaveLength(5);
    expect(result.problems).toEqual([
      expect.objectContaining({ level: 'warning', line: 4, entityId: 'hr2', column: 'Group name', message: 'group name "hr" is used twice under parent "t" (also on line 3)' }),
    ]);
  });
});
