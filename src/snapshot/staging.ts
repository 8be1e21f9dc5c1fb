// Valid rows stream into a private SQLite file while a file is parsed: memory stays flat however large the
// file, and nothing reaches the service database until the whole file is accepted. Then `commitSnapshot`
// moves this file into place as the snapshot's rows; a rejected file's staging file is deleted.
import Database from 'better-sqlite3';
import { hash as digest } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { EntityRecord, FileType } from '../model.js';
import type { DuplicateConflict, RowSink } from '../parse/parse-file.js';
import { decodeRow, encodeRow } from './row-format.js';

/**
 * Exact duplicate detection in a few bytes per row: an open-addressing table of (hash, line) pairs. A hash match
 * is confirmed by reading the earlier row's key back from the staging file, so collisions never give a false
 * duplicate. Cheaper than a unique SQLite index (no B-tree of random keys) and no strings kept in the heap.
 */
class LineIndex {
  private hashes = new Uint32Array(1 << 14);
  private lines = new Int32Array(1 << 14); // 0 = empty slot
  private size = 0;

  constructor(private readonly keyAt: (line: number) => string | null) {}

  /** The line already holding `key`, or null after recording `line` for it. */
  claim(key: string, line: number): number | null {
    const h = keyHash(key);
    const mask = this.lines.length - 1;
    let i = h & mask;
    while (this.lines[i] !== 0) {
      if (this.hashes[i] === h && this.keyAt(this.lines[i]) === key) return this.lines[i];
      i = (i + 1) & mask;
    }
    this.hashes[i] = h;
    this.lines[i] = line;
    if (++this.size * 2 > this.lines.length) this.grow();
    return null;
  }

  private grow(): void {
    const { hashes, lines } = this;
    this.hashes = new Uint32Array(hashes.length * 2);
    this.lines = new Int32Array(lines.length * 2);
    const mask = this.lines.length - 1;
    for (let j = 0; j < lines.length; j++) {
      if (lines[j] === 0) continue;
      let i = hashes[j] & mask;
      while (this.lines[i] !== 0) i = (i + 1) & mask;
      this.hashes[i] = hashes[j];
      this.lines[i] = lines[j];
    }
  }
}

/** FNV-1a over UTF-16 code units (exported for the test that builds keys sharing a hash). */
export function keyHash(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

export class StagingSink implements RowSink {
  readonly file: string;
  private readonly db: Database.Database;
  private readonly insert: Database.Statement;
  private readonly ids: LineIndex;
  private readonly usernames: LineIndex;
  rows = 0;

  /**
   * `syncMarks: false`: the rows will only be planned whole and without sync marks (a `check`), so neither the rows'
   * hashes nor the index a run's planner reads them by is made.
   */
  constructor(dir: string, private readonly type: FileType, private readonly opts: { syncMarks?: boolean } = {}) {
    fs.mkdirSync(dir, { recursive: true });
    this.file = path.join(dir, `staging-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}.sqlite`);
    this.db = new Database(this.file);
    // A throwaway file: no journal, no fsync, one connection.
    this.db.pragma('journal_mode = OFF');
    this.db.pragma('synchronous = OFF');
    this.db.pragma('locking_mode = EXCLUSIVE');
    // `hash` identifies the row's content: a user whose row is unchanged since it was applied need not be replanned
    // (empty without sync marks).
    this.db.exec('CREATE TABLE rows (line INTEGER PRIMARY KEY, external_id TEXT NOT NULL, data TEXT NOT NULL, hash TEXT NOT NULL)');
    this.insert = this.db.prepare('INSERT INTO rows (line, external_id, data, hash) VALUES (?, ?, ?, ?)');
    const idAt = this.db.prepare('SELECT external_id FROM rows WHERE line = ?').pluck();
    const dataAt = this.db.prepare('SELECT data FROM rows WHERE line = ?').pluck();
    this.ids = new LineIndex((line) => idAt.get(line) as string | null);
    // Read back only when two usernames hash alike (a duplicate, nearly always): not worth a column of its own.
    this.usernames = new LineIndex((line) => {
      const data = dataAt.get(line) as string | undefined;
      return data === undefined ? null : decodeRow<{ username?: string | null }>(type, data).username ?? null;
    });
    // One long transaction on a private file: nobody else ever sees or waits on it.
    this.db.exec('BEGIN');
  }

  add(record: EntityRecord, line: number): DuplicateConflict | null {
    const firstId = this.ids.claim(record.externalId, line);
    if (firstId !== null) return { field: 'externalId', firstLine: firstId };
    const username = 'username' in record ? record.username : null;
    if (username !== null) {
      const firstUser = this.usernames.claim(username, line);
      if (firstUser !== null) return { field: 'username', firstLine: firstUser };
    }
    const data = encodeRow(this.type, record);
    // One-shot hash: createHash() per row costs twice as much at 100k rows.
    this.insert.run(line, record.externalId, data, this.opts.syncMarks === false ? '' : digest('sha1', data, 'base64'));
    this.rows++;
    return null;
  }

  /** Ends writing; the file stays for `commitSnapshot` to move into place. */
  finish(): void {
    // A run's planner reads users in external-ID order (a merge with the directory), and compares a row's hash before
    // reading the row itself (sync marks): one index covering both, built once here, after the inserts. Rows
    // planned whole and without marks are sorted as they are read instead.
    if (this.db.inTransaction) {
      if (this.opts.syncMarks !== false) this.db.exec('CREATE INDEX rows_by_external_id ON rows (external_id, hash)');
      this.db.exec('COMMIT');
    }
    this.db.close();
  }

  /** Drops the staged rows (nothing to do once `commitSnapshot` moved them); safe to call more than once. */
  discard(): void {
    if (this.db.open) this.db.close();
    for (const suffix of ['', '-journal', '-wal', '-shm']) fs.rmSync(this.file + suffix, { force: true });
  }
}
