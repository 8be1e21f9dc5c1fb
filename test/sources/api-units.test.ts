// The api source's pure parts: JSON paths, the Link header, Retry-After, file names, the CSV rendering.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { apiFileName, type ApiObjectConfig } from '../../src/config/source-schema.js';
import { lineToRecord } from '../../src/intake/record-numbers.js';
import { nextLink } from '../../src/sources/api.js';
import { retryAfterMs } from '../../src/sources/api/http.js';
import { compilePath } from '../../src/sources/api/json-path.js';
import { RecordRenderer } from '../../src/sources/api/render.js';
import { Redactor } from '../../src/sources/redact.js';
import { FetchError } from '../../src/sources/source.js';

describe('JSON paths', () => {
  const doc = { data: [{ id: 1 }], '@odata.nextLink': 'https://n', _meta: { links: { next: 'https://m' } }, work: { email: 'a@b' }, departments: [{ id: 'd1' }, { id: 'd2' }, {}], items: [{ id: 'x' }, { id: 'y' }] };
  it.each([
    ['data', doc.data], ['@odata.nextLink', 'https://n'], ['_meta.links.next', 'https://m'], ['work.email', 'a@b'],
    ['items[1].id', 'y'], ['missing.deep.path', undefined], ['', doc],
  ])('%s', (p, expected) => expect(compilePath(p).get(doc)).toEqual(expected));
  it('[*] collects every element, dropping absent ones', () => {
    expect(compilePath('departments[*].id').get(doc)).toEqual(['d1', 'd2']);
    expect(compilePath('nothing[*].id').get(doc)).toEqual([]);
  });
  it('a path it cannot read is an error naming it', () => {
    expect(() => compilePath('a[b].c')).toThrow('path "a[b].c"');
  });
});

describe('paging and retry headers', () => {
  it('Link rel="next"', () => {
    expect(nextLink('<https://x/a?after=2>; rel="next", <https://x/a>; rel="self"')).toBe('https://x/a?after=2');
    expect(nextLink('<https://x/a>; rel="self", <https://x/b>; rel=next')).toBe('https://x/b');
    expect(nextLink('<https://x/a>; rel="self"')).toBeUndefined();
    expect(nextLink(undefined)).toBeUndefined();
  });
  it('Retry-After in seconds or as an HTTP date', () => {
    const now = Date.parse('2026-12-01T10:00:00Z');
    expect(retryAfterMs('3', now)).toBe(3000);
    expect(retryAfterMs('Tue, 01 Dec 2026 10:00:07 GMT', now)).toBe(7000);
    expect(retryAfterMs('Tue, 01 Dec 2026 09:00:00 GMT', now)).toBe(0);
    expect(retryAfterMs('soon', now)).toBeUndefined();
    expect(retryAfterMs(undefined, now)).toBeUndefined();
  });
});

describe('rendering records as the tenant columns', () => {
  it('file names keep matching the type pattern', () => {
    expect(apiFileName('*user*.csv', 'users', '20261201T010000Z')).toBe('api-20261201T010000Z-user.csv');
    expect(apiFileName('wt_users.csv', 'users', 'S')).toBe('api-S-users.csv');
  });

  it('quotes, flattens line breaks, joins lists, applies const and template; record numbers in problems', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wt-render-'));
    const obj = { records: 'data', coverage: [], fields: { externalId: 'id', firstName: 'n.f', lastName: { template: '{n.l} {n.suffix}' }, username: { const: 'x' }, title: 'title', memberOf: 'deps[*].id' } } as unknown as ApiObjectConfig;
    const spec = { pattern: '*', columns: ['externalId', 'firstName', 'lastName', 'username', 'title', 'memberOf'], listSeparator: '|', valueMaps: {} } as never;
    const r = new RecordRenderer('users', obj, spec, path.join(dir, 'out.csv'));
    r.addPage({ data: [{ id: 7, n: { f: 'A;b', l: 'Last' }, title: 'two\nlines', deps: [{ id: 'd1' }, { id: 'd2' }] }, { id: 8, n: { f: ' pad', l: 'L' }, title: 'say "hi"' }] }, 'page 1');
    r.finish('end');
    expect(fs.readFileSync(path.join(dir, 'out.csv'), 'utf8')).toBe(
      'externalId;firstName;lastName;username;title;memberOf\n7;"A;b";Last;x;two lines;d1|d2\n8;" pad";L;x;"say ""hi""";\n');
    fs.rmSync(dir, { recursive: true, force: true });
    expect(lineToRecord({ level: 'row', file: 'f', line: 3, message: 'duplicate ID "7": already used on line 2', hint: 'remove one of lines 2 and 3' }))
      .toEqual({ level: 'row', file: 'f', record: 2, message: 'duplicate ID "7": already used on record 1', hint: 'remove one of records 1 and 2' });
  });

  it('a page without the records array fails the fetch', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wt-render-'));
    const r = new RecordRenderer('users', { records: 'data', coverage: [], fields: { externalId: 'id' } } as unknown as ApiObjectConfig, { pattern: '*', columns: ['externalId'], listSeparator: ',', valueMaps: {} } as never, path.join(dir, 'x.csv'));
    expect(() => r.addPage({ error: 'nope' }, 'page 1')).toThrow(FetchError);
    r.discard();
    expect(fs.existsSync(path.join(dir, 'x.csv'))).toBe(false);
    fs.rmSync(dir, { recursive: true, force: true });
  });
});

describe('redaction', () => {
  it('removes every registered secret, longest first', () => {
    const r = new Redactor();
    r.add('abcd1234');
    r.add('abcd1234-long');
    r.add('ab'); // too short to be a secret: ignored, never blanks out text
    expect(r.redact('x abcd1234-long y abcd1234 ab')).toBe('x [redacted] y [redacted] ab');
  });
});
