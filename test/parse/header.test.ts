import { describe, expect, it } from 'vitest';
import { fixture, messages, run, USERS_HEADER, userRow, usersSpec } from './helpers.js';

describe('header checks', () => {
  it('comma-separated header: names the separator, with a hint', async () => {
    const { result, sink } = await run('users', fixture('parse/users-comma-header.csv'));
    expect(result.status).toBe('rejected');
    expect(result.problems).toHaveLength(1);
    expect(result.problems[0]).toMatchObject({ level: 'file', line: 1 });
    expect(result.problems[0].message).toBe("the header is separated by ',' (comma) — wt-sync needs ';' (semicolon)");
    expect(result.problems[0].hint).toContain('CSV UTF-8');
    expect(sink.records).toHaveLength(0);
  });

  it('comma-separated with quoted names (which fast-csv cannot even split) is still named as a comma file', async () => {
    const { result } = await run('users', fixture('parse/users-comma-quoted.csv'));
    expect(result.status).toBe('rejected');
    expect(messages(result)).toEqual(["the header is separated by ',' (comma) — wt-sync needs ';' (semicolon)"]);
  });

  it('tab-separated header', async () => {
    const { result, sink } = await run('users', fixture('parse/users-tab-header.csv'));
    expect(result.status).toBe('rejected');
    expect(messages(result)).toEqual(["the header is separated by tab — wt-sync needs ';' (semicolon)"]);
    expect(sink.records).toHaveLength(0);
  });

  it('moved columns: lists every changed position; nothing reaches the sink', async () => {
    const { result, sink } = await run('users', fixture('parse/users-moved-columns.csv'));
    expect(result.status).toBe('rejected');
    expect(result.dataRows).toBe(0); // reading stops at the header
    expect(result.problems).toHaveLength(1);
    expect(result.problems[0].message).toBe(
      'the header differs from the one recorded at setup — column 3: expected "Lastname", found "Username"; column 4: expected "Username", found "Lastname"',
    );
    expect(result.problems[0].hint).toContain('columns are mapped by position, as set up at onboarding');
    expect(result.problems[0].hint).toContain('ask WT to remap');
    expect(sink.records).toHaveLength(0);
  });

  it('compares names trimmed and case-insensitively', async () => {
    const header = USERS_HEADER.map((h, i) => (i === 1 ? ' FIRSTNAME ' : h)).join(';');
    const { result } = await run('users', `${header}\n${userRow('a')}\n`);
    expect(result.status).toBe('accepted');
    expect(result.header[1]).toBe('FIRSTNAME');
  });

  it('a different number of columns than the mapping is a file error', async () => {
    const { result, sink } = await run('users', fixture('parse/users-extra-column.csv'));
    expect(result.status).toBe('rejected');
    expect(messages(result)).toEqual([
      'the header has 17 columns but the tenant\'s mapping has 16; column 17: expected nothing, found "Cost center"',
    ]);
    expect(sink.records).toHaveLength(0);
    const noHeader = await run('users', fixture('parse/users-extra-column.csv'), { spec: usersSpec({ header: undefined }) });
    expect(messages(noHeader.result)).toEqual(['the header has 17 columns but the tenant\'s mapping has 16']);
  });

  it('without a recorded header any names are accepted, and problems use the file\'s names', async () => {
    const header = USERS_HEADER.map((h) => `X ${h}`).join(';');
    const { result } = await run('users', `${header}\n${userRow('a', { Email: 'bad' })}\n${userRow('b')}\n${userRow('c')}\n${userRow('d')}\n${userRow('e')}\n`, { spec: usersSpec({ header: undefined }) });
    expect(result.status).toBe('accepted');
    expect(result.problems).toEqual([expect.objectContaining({ line: 2, column: 'X Email' })]);
  });
});
