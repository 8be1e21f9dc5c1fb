// Opens the service database (better-sqlite3, WAL) and brings its schema up to date with versioned migrations.
import Database from 'better-sqlite3';
import fs from 'node:fs';
import path from 'node:path';
import { MIGRATIONS } from './migrations.js';

export type Db = Database.Database;

/** The service database's page cache, in KiB as SQLite takes it (negative): see openDatabase. */
export const PAGE_CACHE = -16_384;

export function openDatabase(file: string): Db {
  if (file !== ':memory:') fs.mkdirSync(path.dirname(file), { recursive: true });
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
  // 16 MB of page cache (the default is 2 MB). Measured with bench:ingest, 64 MB made no run of 100k users faster and
  // cost 60–100 MB of peak RSS; only the apply of a large run gets more (EmbeddedTarget.largeRun).
  db.pragma(`cache_size = ${PAGE_CACHE}`);
  // A run commits a transaction every few batches of operations; checkpointing the WAL every 4 MB (the default) would copy
  // the same index pages into the database file, with an fsync, many times over a first load.
  db.pragma('wal_autocheckpoint = 16384');
  migrate(db);
  return db;
}

export function migrate(db: Db): void {
  db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)');
  const done = new Set((db.prepare('SELECT version FROM schema_migrations').all() as { version: number }[]).map((r) => r.version));
  for (const [i, sql] of MIGRATIONS.entries()) {
    const version = i + 1;
    if (done.has(version)) continue;
    db.transaction(() => {
      db.exec(sql);
      db.prepare('INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)').run(version, new Date().toISOString());
    })();
  }
}

/** Runs `fn` in a transaction; better-sqlite3 transactions are synchronous, so nothing else interleaves. */
export function inTransaction<T>(db: Db, fn: () => T): T {
  return db.transaction(fn)();
}
