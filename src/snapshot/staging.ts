// Valid rows stream into a private throwaway SQLite file while a file is parsed: memory stays flat however
// large the file, duplicates are found by unique indexes, and nothing reaches the service database until the
// whole file is accepted (then `commitSnapshot` copies the rows over in one transaction).
import Database from 'better-sqlite3';
import fs from 'node:fs';
import path from 'node:path';
import type { EntityRecord } from '../model.js';
import type { DuplicateConflict, RowSink } from '../parse/parse-file.js';

export class StagingSink implements RowSink {
  readonly file: string;
  private readonly db: Database.Database;
  private readonly insert: Database.Statement;
  private readonly byExternalId: Database.Statement;
  private readonly byUsername: Database.Statement;
  rows = 0;

  constructor(dir: string) {
    fs.mkdirSync(dir, { recursive: true });
    this.file = path.join(dir, `staging-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}.sqlite`);
    this.db = new Database(this.file);
    this.db.pragma('journal_mode = OFF');
    this.db.pragma('synchronous = OFF');
    this.db.exec(`CREATE TABLE rows (line INTEGER NOT NULL, external_id TEXT NOT NULL UNIQUE, username TEXT UNIQUE, data TEXT NOT NULL)`);
    this.insert = this.db.prepare('INSERT INTO rows (line, external_id, username, data) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING');
    this.byExternalId = this.db.prepare('SELECT line FROM rows WHERE external_id = ?').pluck();
    this.byUsername = this.db.prepare('SELECT line FROM rows WHERE username = ?').pluck();
    // One long transaction on a private file: nobody else ever sees or waits on it.
    this.db.exec('BEGIN');
  }

  add(record: EntityRecord, line: number): DuplicateConflict | null {
    const username = 'username' in record ? record.username : null;
    if (this.insert.run(line, record.externalId, username, JSON.stringify(record)).changes === 1) {
      this.rows++;
      return null;
    }
    const first = this.byExternalId.get(record.externalId) as number | undefined;
    if (first !== undefined) return { field: 'externalId', firstLine: first };
    return { field: 'username', firstLine: this.byUsername.get(username) as number };
  }

  /** Ends writing; the file stays for `commitSnapshot` to copy from. */
  finish(): void {
    if (this.db.inTransaction) this.db.exec('COMMIT');
    this.db.close();
  }

  /** Drops the staged rows; safe to call more than once. */
  discard(): void {
    if (this.db.open) this.db.close();
    for (const suffix of ['', '-journal', '-wal', '-shm']) fs.rmSync(this.file + suffix, { force: true });
  }
}
