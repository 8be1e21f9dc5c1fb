// The staging sink: valid rows into a private SQLite file; a later row with an external ID or username already
// staged is refused, naming the first line, and two different keys that share a hash are never taken for one.
import Database from 'better-sqlite3';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { UserRecord } from '../../src/model.js';
import { keyHash, StagingSink } from '../../src/snapshot/staging.js';
import { openUsersRows, readRows } from '../../src/store/snapshots.js';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wt-staging-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const user = (externalId: string, username: string): UserRecord => ({ externalId, firstName: 'F', lastName: 'L', username, memberOf: ['g'] });

/** Two different strings with the same hash in the sink's table (a birthday search over a few hundred thousand). */
function collision(prefix: string): [string, string] {
  const seen = new Map<number, string>();
  for (let i = 0; ; i++) {
    const s = `${prefix}${i.toString(36)}`;
    const other = seen.get(keyHash(s));
    if (other !== undefined) return [other, s];
    seen.set(keyHash(s), s);
  }
}

describe('StagingSink', () => {
  it('refuses a later duplicate external ID or username with the first line, and keeps what it accepted', () => {
    const sink = new StagingSink(dir, 'users');
    expect(sink.add(user('a', 'a@x'), 2)).toBeNull();
    expect(sink.add(user('b', 'b@x'), 3)).toBeNull();
    expect(sink.add(user('a', 'other@x'), 4)).toEqual({ field: 'externalId', firstLine: 2 });
    expect(sink.add(user('c', 'b@x'), 5)).toEqual({ field: 'username', firstLine: 3 });
    sink.finish();
    expect(readRows<UserRecord>(sink.file, 'users').map((r) => [r.line, r.record])).toEqual([[2, user('a', 'a@x')], [3, user('b', 'b@x')]]);
    sink.discard();
  });

  it('takes two different usernames or external IDs that share a hash for two', () => {
    const [u1, u2] = collision('user');
    const [e1, e2] = collision('id');
    expect(keyHash(u1)).toBe(keyHash(u2));
    const sink = new StagingSink(dir, 'users');
    expect(sink.add(user(e1, u1), 2)).toBeNull();
    expect(sink.add(user(e2, u2), 3)).toBeNull();
    expect(sink.add(user('x', u2), 4)).toEqual({ field: 'username', firstLine: 3 });
    sink.finish();
    expect(readRows<UserRecord>(sink.file, 'users').map((r) => r.record.username)).toEqual([u1, u2]);
    sink.discard();
  });
});

describe('StagingSink for a check', () => {
  it('makes row hashes and the external-ID index only for rows a run will read', () => {
    const indexes = (file: string) => {
      const db = new Database(file, { readonly: true });
      try {
        return db.prepare("SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'rows'").pluck().all();
      } finally {
        db.close();
      }
    };
    const run = new StagingSink(dir, 'users');
    const check = new StagingSink(dir, 'users', { syncMarks: false });
    for (const sink of [run, check]) {
      sink.add(user('b', 'b@x'), 2);
      sink.add(user('a', 'a@x'), 3);
      sink.finish();
    }
    expect(indexes(run.file)).toEqual(['rows_by_external_id']);
    expect(indexes(check.file)).toEqual([]);
    // Row hashes serve sync marks, which a check does not read.
    expect(readRows(run.file, 'users').map((r) => r.hash)).toEqual([expect.stringMatching(/^[A-Za-z0-9+/]{27}=$/), expect.stringMatching(/^[A-Za-z0-9+/]{27}=$/)]);
    expect(readRows(check.file, 'users').map((r) => r.hash)).toEqual(['', '']);
    // Read whole, in external-ID order, as the check's planner reads it.
    const rows = openUsersRows(check.file, { file: 'users.csv', fields: new Set(['firstName']), protectedIds: new Set() });
    expect([...rows.rows].map((r) => [r.externalId, r.line, r.record().username])).toEqual([['a', 3, 'a@x'], ['b', 2, 'b@x']]);
    rows.close();
  });
});
