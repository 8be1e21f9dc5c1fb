// Parse + validate one snapshot file, streaming: bytes → UTF-8 guard → fast-csv →
// header check → row mappers → sink. Pure over the byte stream (no SQLite here): the
// caller supplies the sink and discards it when the result is 'rejected'.
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { EntityRecord, FileType, Problem } from '../model.js';
import type { TenantFileSpec } from '../config/schema.js';
import { entityIdOf, FIELD_LABELS, rowProblem, type Column } from './columns.js';
import { CsvRowStream, isBlankRow, LineTracker, locateSyntaxError, usesLoneCR, type CsvRow, type CsvSyntaxError } from './csv.js';
import { checkGroupTree, GroupRowMapper, type GroupEntry } from './groups.js';
import { checkHeader, foreignSeparator, separatorProblem } from './header.js';
import { SegmentRowMapper } from './segments.js';
import { UserRowMapper } from './users.js';
import { Utf8Error, Utf8Guard } from './utf8.js';

export interface DuplicateConflict { field: 'externalId' | 'username'; firstLine: number }

/** Receives each valid row as soon as it is known valid (streaming). Implementations: in-memory (src/parse/memory-sink.ts) and SQLite. */
export interface RowSink {
  /**
   * Stores the row, or returns the conflict if its externalId (or, for users, username)
   * was already stored — in which case nothing is stored (a row is kept whole or not at all).
   */
  add(record: EntityRecord, line: number): DuplicateConflict | null;
}

export interface ParseOptions {
  type: FileType;
  spec: TenantFileSpec;
  /** As shown in problems. */
  fileName: string;
  /** Tenant safeguard, default 20. */
  maxInvalidRowPercent: number;
  onProgress?: (bytesRead: number) => void;
}

export interface ParseResult {
  status: 'accepted' | 'rejected';
  /** The file's header row (BOM stripped, names trimmed); [] when the file has none. */
  header: string[];
  /** Data rows seen (blank lines not counted). */
  dataRows: number;
  /** Rows handed to the sink and kept. */
  validRows: number;
  /** File-level problems first, then row errors and warnings in line order. */
  problems: Problem[];
}

/** Thrown inside the pipeline to stop reading once the file is rejected whole. */
class StopParse extends Error {}

const UTF8_HINT = 'the file looks saved as Windows-1252/Latin-1: open it and save it as "CSV UTF-8"';
const UTF16_HINT = 'the file is saved as UTF-16 ("Unicode text"): open it and save it as "CSV UTF-8"';
const QUOTE_HINT =
  'a value containing ";", quotes or line breaks must be enclosed in double quotes, with each quote inside it doubled ("")';

interface Mapper<R extends EntityRecord> {
  readonly idColumn: Column;
  map(cells: readonly string[], line: number, out: Problem[]): R | null;
}

/** Control characters other than tab and line breaks (which quoted cells may hold). */
const CONTROL_CHARACTER = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F]/;

class FileRun {
  /** Created at the first row, when the file's line-break style is known. */
  lines: LineTracker | null = null;
  header: string[] | null = null;
  dataRows = 0;
  validRows = 0;
  invalidRows = 0;
  readonly problems: Problem[] = [];
  readonly fileProblems: Problem[] = [];
  private mapper: Mapper<EntityRecord> | null = null;
  // Groups only: buffered until the tree can be checked.
  private readonly groups: GroupEntry[] = [];
  private readonly groupLines = new Map<string, number>();
  private readonly failedGroupIds = new Map<string, number>();

  constructor(private readonly sink: RowSink, private readonly opts: ParseOptions, private readonly guard: Utf8Guard) {}

  get file(): string {
    return this.opts.fileName;
  }

  row(cells: CsvRow): void {
    const line = (this.lines ??= new LineTracker(usesLoneCR(this.guard.headText()))).startOf(cells);
    if (isBlankRow(cells)) return;
    if (this.header === null) return this.onHeader(cells, line);
    this.dataRows++;
    const header = this.header;
    if (cells.length !== header.length) return this.onWrongWidth(cells, line);
    for (let i = 0; i < cells.length; i++) if (CONTROL_CHARACTER.test(cells[i])) return this.onControlCharacter(cells, i, line);
    const mapper = this.mapper!;
    const record = mapper.map(cells, line, this.problems);
    if (this.opts.type === 'groups') return this.onGroup(record as GroupEntry['record'] | null, cells, line);
    if (record === null) { this.invalidRows++; return; }
    this.store(record, line, mapper.idColumn);
  }

  private onHeader(cells: CsvRow, line: number): void {
    const header = cells.map((c) => c.trim());
    this.header = header;
    const spec = this.opts.spec;
    if (header.length === 1 && spec.columns.length > 1) {
      const sep = foreignSeparator(header[0]);
      if (sep !== undefined) this.fatal(separatorProblem(this.file, line, sep));
    }
    const problems = checkHeader(header, spec, this.file, line);
    if (problems.length > 0) this.fatal(...problems);
    const { type } = this.opts;
    this.mapper = type === 'users' ? new UserRowMapper(spec, header, this.file)
      : type === 'groups' ? new GroupRowMapper(spec, header, this.file)
      : new SegmentRowMapper(spec, header, this.file);
  }

  private onWrongWidth(cells: CsvRow, line: number): void {
    this.invalidRows++;
    const width = this.header!.length;
    const entityId = entityIdOf(cells, this.mapper!.idColumn);
    this.problems.push(rowProblem(this.file, line,
      `the row has ${cells.length} ${cells.length === 1 ? 'field' : 'fields'} but the header has ${width}` +
        (cells.length < width ? ' (too few)' : ' (too many)'),
      { column: '—', hint: `check for a missing or extra ";" — ${QUOTE_HINT}`, entityId }));
    // A group that cannot be read still blocks its children with a clear reason.
    if (this.opts.type === 'groups' && entityId !== undefined && !this.failedGroupIds.has(entityId)) this.failedGroupIds.set(entityId, line);
  }

  /** A NUL or other control character is never part of a name or an ID: the row is rejected, not stored. */
  private onControlCharacter(cells: CsvRow, index: number, line: number): void {
    this.invalidRows++;
    const entityId = entityIdOf(cells, this.mapper!.idColumn);
    const code = CONTROL_CHARACTER.exec(cells[index])![0].charCodeAt(0).toString(16).toUpperCase().padStart(2, '0');
    this.problems.push(rowProblem(this.file, line, `the value holds an invisible control character (0x${code})`, {
      column: this.header![index], value: JSON.stringify(cells[index]).slice(1, -1), entityId,
      hint: 'remove the character (it often comes from a copy-paste or a database export) and upload the file again',
    }));
    if (this.opts.type === 'groups' && entityId !== undefined && !this.failedGroupIds.has(entityId)) this.failedGroupIds.set(entityId, line);
  }

  private store(record: EntityRecord, line: number, idColumn: Column): void {
    const conflict = this.sink.add(record, line);
    if (conflict === null) { this.validRows++; return; }
    this.invalidRows++;
    this.problems.push(duplicateProblem(this.file, line, record, conflict, idColumn, this.header!, this.opts.spec));
  }

  private onGroup(record: GroupEntry['record'] | null, cells: CsvRow, line: number): void {
    if (record === null) {
      this.invalidRows++;
      const id = entityIdOf(cells, this.mapper!.idColumn);
      if (id !== undefined && !this.failedGroupIds.has(id)) this.failedGroupIds.set(id, line);
      return;
    }
    const firstLine = this.groupLines.get(record.externalId);
    if (firstLine !== undefined) {
      this.invalidRows++;
      this.problems.push(duplicateProblem(this.file, line, record, { field: 'externalId', firstLine }, this.mapper!.idColumn, this.header!, this.opts.spec));
      return;
    }
    this.groupLines.set(record.externalId, line);
    this.groups.push({ record, line });
  }

  /** Where the next row would start: locates CSV syntax errors. */
  private get nextLine(): number {
    return this.lines?.nextLine ?? 1;
  }

  /** Set when a file-level problem ends reading: the pipeline error that follows is ours. */
  stopped = false;

  fatal(...problems: Problem[]): never {
    this.fileProblems.push(...problems);
    this.stopped = true;
    throw new StopParse();
  }

  /** Turns a pipeline failure into a file-level problem; rethrows I/O errors. */
  onError(err: unknown): void {
    // Stopping throws inside the pipeline; it may come back as StopParse or as the AbortError of a destroyed stage.
    if (this.stopped || err instanceof StopParse) return;
    if (err instanceof Utf8Error) {
      const utf16 = err.byteOffset === 1 && (err.bytesHex === 'FF' || err.bytesHex === 'FE'); // a UTF-16 BOM
      this.fileProblems.push({
        level: 'file', file: this.file, line: err.line, byteOffset: err.byteOffset, value: err.bytesHex,
        message: `the file is not valid UTF-8: line ${err.line}, byte ${err.byteOffset} ` +
          (err.bytesHex === '' ? '(the file ends in the middle of a character)' : `(byte value 0x${err.bytesHex})`),
        hint: utf16 ? UTF16_HINT : UTF8_HINT,
      });
      return;
    }
    throw err;
  }

  /** A CSV syntax error, reported after the rows before it were read (so the line is known). */
  onSyntaxError(error: CsvSyntaxError): void {
    if (this.header === null) {
      // A comma file with quoted names ("a","b") fails here, before any header check.
      const first = this.guard.headText().split(/\r\n|\n|\r/).find((l) => l.trim() !== '');
      const sep = first === undefined ? undefined : foreignSeparator(first);
      if (sep !== undefined) { this.fileProblems.push(separatorProblem(this.file, this.nextLine, sep)); return; }
    }
    const at = locateSyntaxError(error.text, this.nextLine);
    const unclosed = at === null ? error.message.includes('missing closing') : at.kind === 'unclosed';
    const line = at?.line ?? this.nextLine;
    this.fileProblems.push({
      level: 'file', file: this.file, line,
      message: unclosed
        ? `the file is not valid CSV: a quoted value starting on line ${line} is never closed`
        : at !== null
          ? `the file is not valid CSV: on line ${line} a quoted value is followed by more text before the next ";"`
          : `the file is not valid CSV at or after line ${line}: ${error.message.replace(/^Parse Error: /, '')}`,
      hint: QUOTE_HINT,
    });
  }

  finish(): ParseResult {
    if (this.fileProblems.length === 0) this.finishChecks();
    const problems = [...this.fileProblems, ...this.problems.sort((a, b) => (a.line ?? 0) - (b.line ?? 0))];
    return {
      status: this.fileProblems.length === 0 ? 'accepted' : 'rejected',
      header: this.header ?? [],
      dataRows: this.dataRows,
      validRows: this.validRows,
      problems,
    };
  }

  private finishChecks(): void {
    if (this.opts.type === 'groups' && this.mapper !== null) {
      const tree = checkGroupTree(this.groups, this.failedGroupIds, this.mapper as GroupRowMapper, this.file);
      this.problems.push(...tree.problems);
      this.invalidRows += tree.failedRows;
      this.fileProblems.push(...tree.fileProblems);
      if (tree.fileProblems.length === 0) for (const g of tree.valid) this.store(g.record, g.line, this.mapper.idColumn);
    }
    if (this.dataRows === 0) {
      this.fileProblems.push({
        level: 'file', file: this.file,
        message: 'no data rows: an empty snapshot is never applied, it would remove everyone',
        hint: this.header === null
          ? 'the file is empty: upload the complete export, header row and data rows'
          : 'the file has a header but no rows: upload the complete export',
      });
      return;
    }
    const max = this.opts.maxInvalidRowPercent;
    const pct = (this.invalidRows * 100) / this.dataRows;
    if (pct > max) {
      this.fileProblems.push({
        level: 'file', file: this.file,
        message: `too many invalid rows: ${this.invalidRows} of ${this.dataRows} (${+pct.toFixed(1)}%) exceed the limit of ${max}%`,
        hint: 'nothing in this file was applied: fix the rows listed below (a moved column or a wrong date format often breaks every row) and upload it again',
      });
    } else if (this.validRows === 0 && this.fileProblems.length === 0) {
      // Only reachable with a limit of 100%: zero valid rows must never read as "remove everyone".
      this.fileProblems.push({
        level: 'file', file: this.file,
        message: 'no valid rows: an empty snapshot is never applied, it would remove everyone',
        hint: 'fix the rows listed below and upload the file again',
      });
    }
  }
}

function duplicateProblem(
  file: string, line: number, record: EntityRecord, conflict: DuplicateConflict, idColumn: Column,
  header: readonly string[], spec: TenantFileSpec,
): Problem {
  let column = idColumn.name;
  let value = record.externalId;
  if (conflict.field === 'username') {
    const index = spec.columns.indexOf('username');
    column = header[index] || 'username';
    value = (record as { username: string }).username;
  }
  const label = FIELD_LABELS[conflict.field];
  return rowProblem(file, line, `duplicate ${label} "${value}": already used on line ${conflict.firstLine}`, {
    column, value, entityId: record.externalId,
    hint: `each ${label} must appear on one row only: remove or correct one of lines ${conflict.firstLine} and ${line}`,
  });
}

export async function parseFile(input: Readable, sink: RowSink, opts: ParseOptions): Promise<ParseResult> {
  const guard = new Utf8Guard(opts.onProgress);
  const csv = new CsvRowStream();
  const run = new FileRun(sink, opts, guard);
  try {
    // Pulling rows with for-await gives backpressure end to end: the file is read only
    // as fast as rows are validated and stored.
    await pipeline(input, guard, csv, async (batches: AsyncIterable<CsvRow[]>) => {
      for await (const batch of batches) for (const row of batch) run.row(row);
    });
  } catch (err) {
    run.onError(err);
  }
  if (csv.syntaxError !== null && !run.stopped) run.onSyntaxError(csv.syntaxError);
  return run.finish();
}
