// Readiness of the database: open, its file writable, and a write lock obtainable now.
import fs from 'node:fs';
import type { Db } from './db.js';

/** Null when the database is open and takes a write lock now; else what is wrong. Waits at most 200 ms. */
export function databaseProblem(db: Db, file: string): string | null {
  if (!db.open) return 'the database is closed';
  try {
    fs.accessSync(file, fs.constants.W_OK);
  } catch (err) {
    return `the database file cannot be written: ${(err as Error).message}`;
  }
  if (db.inTransaction) return null; // this process is writing right now
  const timeout = db.pragma('busy_timeout', { simple: true }) as number;
  db.pragma('busy_timeout = 200');
  try {
    db.exec('BEGIN IMMEDIATE');
    db.exec('ROLLBACK');
    return null;
  } catch (err) {
    if (db.inTransaction) db.exec('ROLLBACK');
    return `the database takes no write: ${(err as Error).message}`;
  } finally {
    db.pragma(`busy_timeout = ${timeout}`);
  }
}
