// In-memory RowSink for tests and `wt-sync check` (a file checked offline is small
// enough to hold; the service streams into the SQLite sink instead).
import type { EntityRecord } from '../model.js';
import type { DuplicateConflict, RowSink } from './parse-file.js';

export interface StoredRow<R extends EntityRecord = EntityRecord> {
  record: R;
  line: number;
}

export class MemorySink implements RowSink {
  // Parallel arrays rather than one {record, line} object per row: fewer live objects
  // for the garbage collector while a large file streams in.
  private readonly recs: EntityRecord[] = [];
  private readonly lines: number[] = [];
  private view: StoredRow[] | null = null;
  private readonly ids = new Map<string, number>();
  private readonly usernames = new Map<string, number>();

  add(record: EntityRecord, line: number): DuplicateConflict | null {
    const idLine = this.ids.get(record.externalId);
    if (idLine !== undefined) return { field: 'externalId', firstLine: idLine };
    // Only users have a username; compared exactly, like external IDs.
    const username = (record as { username?: string }).username;
    if (username !== undefined) {
      const userLine = this.usernames.get(username);
      if (userLine !== undefined) return { field: 'username', firstLine: userLine };
      this.usernames.set(username, line);
    }
    this.ids.set(record.externalId, line);
    this.recs.push(record);
    this.lines.push(line);
    this.view = null;
    return null;
  }

  /** The stored rows in the order they were added. */
  get records(): StoredRow[] {
    if (this.view === null) this.view = this.recs.map((record, i) => ({ record, line: this.lines[i] }));
    return this.view;
  }

  get size(): number {
    return this.recs.length;
  }
}
