import { describe, expect, it } from 'vitest';
import { fixture, messages, run, USERS_HEADER, userRow, usersFile } from './helpers.js';

describe('CSV reading and line numbers', () => {
  it('handles quoted ";", escaped quotes and a CRLF inside a quoted field (counted as one line)', async () => {
    const { result, sink } = await run('users', fixture('parse/users-quoted-multiline.csv'));
    expect(result.dataRows).toBe(3);
    expect(sink.records.map((r) => [r.line, r.record.externalId])).toEqual([[2, 'u1'], [3, 'u2']]);
    expect(sink.records[0].record).toMatchObject({ title: 'Head of "R&D"; Nordics' });
    expect(sink.records[1].record).toMatchObject({ title: 'Sales\r\nLondon' });
    // u2 spans lines 3-4, line 5 is blank, so u3 starts on line 6.
    expect(result.problems).toEqual([
      expect.objectContaining({ level: 'file', message: 'too many invalid rows: 1 of 3 (33.3%) exceed the limit of 20%' }),
      expect.objectContaining({ level: 'row', line: 6, column: 'Email', value: 'not-an-email', entityId: 'u3' }),
    ]);
  });

  it('gives the same line numbers for LF, CRLF and lone-CR files and whatever the chunking', async () => {
    const lines = [USERS_HEADER.join(';'), userRow('a'), '', userRow('b', { Title: '"two\nlines"' }), '', '', userRow('c', { Birthday: 'x' })];
    for (const eol of ['\n', '\r\n', '\r']) {
      const text = lines.join(eol).replace('two\nlines', `two${eol}lines`) + eol;
      for (const chunkSize of [3, 64, 65536]) {
        const { result, sink } = await run('users', text, { chunkSize, maxInvalidRowPercent: 50 });
        expect(sink.records.map((r) => r.line), `eol ${JSON.stringify(eol)} chunk ${chunkSize}`).toEqual([2, 4]);
        expect(result.problems.map((p) => p.line)).toEqual([8]);
        expect(result.dataRows).toBe(3);
      }
    }
  });

  it('skips blank lines (also whitespace-only and ";;;" lines) without counting them as rows', async () => {
    const text = `\n${USERS_HEADER.join(';')}\n\n   \n;;;;\n${userRow('a')}\n\n`;
    const { result, sink } = await run('users', text);
    expect(result).toMatchObject({ status: 'accepted', dataRows: 1, validRows: 1 });
    expect(sink.records[0].line).toBe(6);
  });

  it('row with too few or too many fields: row error with its line, column "—", row skipped', async () => {
    const text = usersFile(userRow('a'), 'b;Bo;Ek', userRow('c') + ';extra', ...Array.from({ length: 7 }, (_, i) => userRow(`ok${i}`)));
    const { result, sink } = await run('users', text);
    expect(result.status).toBe('accepted');
    expect(result.dataRows).toBe(10);
    expect(sink.records.map((r) => r.record.externalId)).not.toContain('b');
    expect(sink.records.map((r) => r.record.externalId)).not.toContain('c');
    expect(result.problems).toEqual([
      expect.objectContaining({ level: 'row', line: 3, column: '—', entityId: 'b', message: 'the row has 3 fields but the header has 16 (too few)' }),
      expect.objectContaining({ level: 'row', line: 4, column: '—', entityId: 'c', message: 'the row has 17 fields but the header has 16 (too many)' }),
    ]);
    expect(result.problems[0].hint).toContain('missing or extra ";"');
  });

  it('an unclosed quote rejects the file, naming the row where it starts', async () => {
    const { result } = await run('users', fixture('parse/users-unclosed-quote.csv'));
    expect(result.status).toBe('rejected');
    expect(messages(result)).toEqual(['the file is not valid CSV: a quoted value starting on line 3 is never closed']);
    expect(result.problems[0].hint).toContain('enclosed in double quotes');
  });

  it('an unclosed quote early in a large file fails fast instead of buffering the rest of the file', async () => {
    const rows = Array.from({ length: 20_000 }, (_, i) => userRow(`u${i}`, { Title: i === 1 ? '"Developer' : 'Developer' }));
    const { result, sink } = await run('users', usersFile(...rows));
    expect(result.status).toBe('rejected');
    expect(messages(result)).toEqual(['the file is not valid CSV: a quoted value starting on line 3 is never closed']);
    // Reading stopped a megabyte after the quote: the one row before it was seen, none of the 19,998 after.
    expect(result.dataRows).toBe(1);
    expect(sink.records).toHaveLength(1);
  });

  it('a file without line breaks (not a CSV export) is rejected, not buffered whole', async () => {
    const { result } = await run('users', usersFile('x'.repeat(3 << 20)));
    expect(result.status).toBe('rejected');
    expect(messages(result)[0]).toMatch(/not valid CSV at or after line 2: a row is longer than 1,048,576 characters/);
  });

  it('text after a closing quote rejects the file as not valid CSV', async () => {
    const text = usersFile(userRow('a'), userRow('b', { Title: '"multi\nline"' }), userRow('c', { Title: '"Dev"eloper' }), userRow('d'));
    for (const chunkSize of [5, 65536]) {
      const { result } = await run('users', text, { chunkSize });
      expect(result.status).toBe('rejected');
      expect(messages(result)).toEqual(['the file is not valid CSV: on line 5 a quoted value is followed by more text before the next ";"']);
    }
  });
});

describe('empty files', () => {
  it('no bytes at all: "no data rows" file error', async () => {
    const { result, sink } = await run('users', fixture('parse/users-empty.csv'));
    expect(result).toMatchObject({ status: 'rejected', header: [], dataRows: 0, validRows: 0 });
    expect(messages(result)).toEqual(['no data rows: an empty snapshot is never applied, it would remove everyone']);
    expect(result.problems[0].hint).toContain('the file is empty');
    expect(sink.records).toHaveLength(0);
  });

  it('header only (plus blank lines): "no data rows" file error', async () => {
    const { result, sink } = await run('users', fixture('parse/users-header-only.csv'));
    expect(result).toMatchObject({ status: 'rejected', header: USERS_HEADER, dataRows: 0 });
    expect(messages(result)).toEqual(['no data rows: an empty snapshot is never applied, it would remove everyone']);
    expect(sink.records).toHaveLength(0);
  });

  it('zero valid rows is never accepted, even with a 100% invalid-row limit', async () => {
    const { result, sink } = await run('users', usersFile(userRow('a', { Birthday: 'soon' })), { maxInvalidRowPercent: 100 });
    expect(result.status).toBe('rejected');
    expect(messages(result)[0]).toBe('no valid rows: an empty snapshot is never applied, it would remove everyone');
    expect(sink.records).toHaveLength(0);
  });
});
