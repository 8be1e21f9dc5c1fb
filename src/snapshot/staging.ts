// Valid rows stream into a private SQLite file while a file is parsed: memory stays flat however large the
// file, and nothing reaches the service database until the whole file is accepted. Then `commitSnapshot`
// moves this file into place as the snapshot's rows; a rejected file's staging file is deleted.
//
// A large file is staged on a second thread (src/snapshot/staging-worker.ts): parsing and validating rows on one
// core while the other writes them takes about 40 % off receiving 100k users. Duplicates are then found on the
// writing thread and handed back when the file ends (RowSink.settle), in the same order and with the same lines.
import Database from 'better-sqlite3';
import { hash as digest } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { EntityRecord } from '../model.js';
import { Worker } from 'node:worker_threads';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { DeferredConflict, DuplicateConflict, RowSink } from '../parse/parse-file.js';

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
    const h = hash(key);
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

/** FNV-1a over UTF-16 code units. */
function hash(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** The rows file being written: the one writer of a staging file, on the parsing thread or on its own. */
export class StagingFile {
  private readonly db: Database.Database;
  private readonly insert: Database.Statement;
  private readonly ids: LineIndex;
  private readonly usernames: LineIndex;
  rows = 0;

  constructor(readonly file: string) {
    this.db = new Database(file);
    // A throwaway file: no journal, no fsync, one connection.
    this.db.pragma('journal_mode = OFF');
    this.db.pragma('synchronous = OFF');
    this.db.pragma('locking_mode = EXCLUSIVE');
    // `hash` identifies the row's content: a user whose row is unchanged since it was applied need not be replanned.
    this.db.exec('CREATE TABLE rows (line INTEGER PRIMARY KEY, external_id TEXT NOT NULL, username TEXT, data TEXT NOT NULL, hash TEXT NOT NULL)');
    this.insert = this.db.prepare('INSERT INTO rows (line, external_id, username, data, hash) VALUES (?, ?, ?, ?, ?)');
    const idAt = this.db.prepare('SELECT external_id FROM rows WHERE line = ?').pluck();
    const usernameAt = this.db.prepare('SELECT username FROM rows WHERE line = ?').pluck();
    this.ids = new LineIndex((line) => idAt.get(line) as string | null);
    this.usernames = new LineIndex((line) => usernameAt.get(line) as string | null);
    // One long transaction on a private file: nobody else ever sees or waits on it.
    this.db.exec('BEGIN');
  }

  /** Stores a row (its record as JSON and that text's hash), or returns the conflict with an earlier row; nothing is stored then. */
  add(line: number, externalId: string, username: string | null, data: string, hash: string): DuplicateConflict | null {
    const firstId = this.ids.claim(externalId, line);
    if (firstId !== null) return { field: 'externalId', firstLine: firstId };
    if (username !== null) {
      const firstUser = this.usernames.claim(username, line);
      if (firstUser !== null) return { field: 'username', firstLine: firstUser };
    }
    this.insert.run(line, externalId, username, data, hash);
    this.rows++;
    return null;
  }

  /** Ends writing; the file stays for `commitSnapshot` to move into place. */
  finish(): void {
    // The planner reads users in external-ID order (a merge with the directory), and compares a row's hash before
    // reading the row itself (sync marks): one index covering both, built once here, after the inserts.
    if (this.db.inTransaction) this.db.exec('CREATE INDEX rows_by_external_id ON rows (external_id, hash); COMMIT');
    this.db.close();
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}

/** Rows per message to the writing thread, and messages in flight before the parser waits for it. */
const ROWS_PER_MESSAGE = 512;
const MESSAGES_IN_FLIGHT = 8;

/** From this size a users file is staged on a second thread (below it, starting the thread costs more than it saves). */
export const THREADED_STAGING_BYTES = 4 << 20;

/** How to stage a file of this type and size. */
export function stagingOptions(type: string, bytes: number): StagingOptions {
  return { threaded: type === 'users' && bytes >= THREADED_STAGING_BYTES };
}

export interface StagingOptions {
  /** Write on a second thread (large users files); duplicates are then reported by `settle`. */
  threaded?: boolean;
}

export class StagingSink implements RowSink {
  readonly file: string;
  private readonly inline?: StagingFile;
  private readonly writer?: StagingThread;

  constructor(dir: string, opts: StagingOptions = {}) {
    fs.mkdirSync(dir, { recursive: true });
    this.file = path.join(dir, `staging-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}.sqlite`);
    if (opts.threaded) this.writer = new StagingThread(this.file);
    else this.inline = new StagingFile(this.file);
  }

  get rows(): number {
    return this.inline?.rows ?? this.writer!.rows;
  }

  add(record: EntityRecord, line: number): DuplicateConflict | null {
    const username = 'username' in record ? record.username : null;
    const data = JSON.stringify(record);
    // One-shot hash: createHash() per row costs twice as much at 100k rows. Made here, not on the writing thread,
    // which is the slower of the two.
    const hash = digest('sha1', data, 'base64');
    if (this.inline) return this.inline.add(line, record.externalId, username, data, hash);
    this.writer!.add([line, record.externalId, username, data, hash]);
    return null;
  }

  ready(): Promise<void> | undefined {
    return this.writer?.ready();
  }

  async settle(): Promise<DeferredConflict[]> {
    return this.writer ? this.writer.finish() : [];
  }

  /** Ends writing; the file stays for `commitSnapshot` to move into place (a threaded file was finished by `settle`). */
  finish(): void {
    this.inline?.finish();
  }

  /** Drops the staged rows (nothing to do once `commitSnapshot` moved them); safe to call more than once. */
  discard(): void {
    this.inline?.close();
    this.writer?.stop();
    for (const suffix of ['', '-journal', '-wal', '-shm']) fs.rmSync(this.file + suffix, { force: true });
  }
}

/** A row as it goes to the writing thread. */
export type StagingRow = [line: number, externalId: string, username: string | null, data: string, hash: string];

/** The worker's messages: `ack` per batch of rows stored, then `done` with the duplicates, or `error`. */
export type StagingReply = { type: 'ack'; rows: number } | { type: 'done'; rows: number; conflicts: DeferredConflict[] } | { type: 'error'; message: string };

/** A staging file written by src/snapshot/staging-worker.ts; rows go in batches, with backpressure. */
class StagingThread {
  private readonly worker: Worker;
  private batch: StagingRow[] = [];
  private inFlight = 0;
  private waiting?: { resolve: () => void; reject: (e: Error) => void };
  private done?: { resolve: (c: DeferredConflict[]) => void; reject: (e: Error) => void };
  private failure?: Error;
  finished = false;
  rows = 0;

  constructor(file: string) {
    const here = import.meta.url;
    // From the sources (tests, tsx) the worker is TypeScript too and needs tsx's loader; built, it is plain JS.
    const fromSources = here.endsWith('.ts');
    const url = new URL(fromSources ? './staging-worker.ts' : './staging-worker.js', here);
    const tsx = pathToFileURL(path.join(path.dirname(fileURLToPath(here)), '../../node_modules/tsx/dist/esm/api/index.mjs')).href;
    this.worker = fromSources
      ? new Worker(`import(${JSON.stringify(tsx)}).then((t) => t.tsImport(${JSON.stringify(url.href)}, ${JSON.stringify(here)}))`, { eval: true, workerData: { file } })
      : new Worker(url, { workerData: { file } });
    this.worker.on('message', (m: StagingReply) => this.onReply(m));
    this.worker.on('error', (err) => this.fail(err));
    this.worker.on('exit', (code) => {
      if (!this.finished) this.fail(new Error(`the staging thread stopped (exit code ${code})`));
    });
  }

  add(row: StagingRow): void {
    this.batch.push(row);
    if (this.batch.length >= ROWS_PER_MESSAGE) this.flush();
  }

  ready(): Promise<void> | undefined {
    if (this.failure) return Promise.reject(this.failure);
    if (this.inFlight < MESSAGES_IN_FLIGHT) return undefined;
    return new Promise((resolve, reject) => { this.waiting = { resolve, reject }; });
  }

  finish(): Promise<DeferredConflict[]> {
    this.flush();
    return new Promise((resolve, reject) => {
      if (this.failure) return reject(this.failure);
      this.done = { resolve, reject };
      this.worker.postMessage({ type: 'finish' });
    });
  }

  stop(): void {
    this.finished = true;
    void this.worker.terminate();
  }

  private flush(): void {
    if (this.batch.length === 0) return;
    this.worker.postMessage({ type: 'rows', rows: this.batch });
    this.inFlight++;
    this.batch = [];
  }

  private onReply(m: StagingReply): void {
    if (m.type === 'error') return this.fail(new Error(m.message));
    this.rows = m.rows;
    if (m.type === 'ack') {
      this.inFlight--;
      const w = this.waiting;
      this.waiting = undefined;
      w?.resolve();
      return;
    }
    this.finished = true;
    void this.worker.terminate();
    this.done?.resolve(m.conflicts);
  }

  private fail(err: Error): void {
    this.failure ??= err;
    this.waiting?.reject(err);
    this.done?.reject(err);
    this.waiting = undefined;
    this.done = undefined;
  }
}
