// fast-csv set up for WT snapshot files, plus the physical line each row starts on.
// fast-csv does not report positions, but every row it emits consumed exactly one line
// break after it (blank lines come out as empty rows), and any further breaks are
// inside quoted fields. So a row's start line is the previous row's start line plus
// 1 plus the breaks inside the previous row's fields.
import type { TransformCallback } from 'node:stream';
import { CsvParserStream, ParserOptions, type ParserOptionsArgs } from 'fast-csv';

export type CsvRow = string[];

export const CSV_DELIMITER = ';';

// No headers/trim/ignoreEmpty: the header is checked by us, cells are trimmed by the
// field mappers, and blank lines must still be seen to keep line numbers right.
export const CSV_OPTIONS: ParserOptionsArgs = { delimiter: CSV_DELIMITER, headers: false, ignoreEmpty: false, trim: false };

/** The one fast-csv configuration, plain (the benchmark baseline uses this). */
export function createCsvStream(): CsvParserStream<CsvRow, CsvRow> {
  return new CsvParserStream<CsvRow, CsvRow>(new ParserOptions(CSV_OPTIONS));
}

export interface CsvSyntaxError {
  message: string;
  /** The text fast-csv was parsing when it failed: starts where the first unemitted row starts. */
  text: string;
}

/**
 * fast-csv that records a syntax error instead of destroying itself: a destroyed
 * stream drops the rows it already parsed, so the consumer could not count lines up
 * to the error. Rows before the error still flow; everything after it is ignored.
 */
export class CheckedCsvStream extends CsvParserStream<CsvRow, CsvRow> {
  syntaxError: CsvSyntaxError | null = null;

  constructor() {
    super(new ParserOptions(CSV_OPTIONS));
  }

  /** fast-csv's unparsed remainder (a private field; '' if a future version renames it). */
  private pending(): string {
    const lines = (this as unknown as { lines?: unknown }).lines;
    return typeof lines === 'string' ? lines : '';
  }

  override _transform(data: Buffer, encoding: BufferEncoding, done: TransformCallback): void {
    if (this.syntaxError !== null) return done();
    const before = this.pending();
    super._transform(data, encoding, (err?: Error | null) => {
      if (err) this.syntaxError = { message: err.message, text: before + data.toString('utf8') };
      done();
    });
  }

  override _flush(done: TransformCallback): void {
    if (this.syntaxError !== null) return done();
    const before = this.pending();
    super._flush((err?: Error | null) => {
      if (err) this.syntaxError = { message: err.message, text: before };
      done();
    });
  }
}

/**
 * Where a CSV syntax error is, scanning `text` (which starts at a row start on
 * `startLine`) the way fast-csv reads quotes: a quoted field must be followed by ';' or
 * a line break, and must be closed before the end of the file.
 */
export function locateSyntaxError(text: string, startLine: number): { line: number; kind: 'unclosed' | 'afterQuote' } | null {
  let line = startLine;
  let i = 0;
  const n = text.length;
  const breakAt = (k: number) => (text[k] === '\r' ? (text[k + 1] === '\n' ? 2 : 1) : text[k] === '\n' ? 1 : 0);
  while (i < n) {
    // At a field start: skip spaces, then a quote opens a quoted field.
    let k = i;
    while (text[k] === ' ' || text[k] === '\t') k++;
    if (text[k] === '"') {
      const openLine = line;
      k++;
      for (;;) {
        if (k >= n) return { line: openLine, kind: 'unclosed' };
        if (text[k] === '"') {
          if (text[k + 1] === '"') { k += 2; continue; }
          k++;
          break;
        }
        const b = breakAt(k);
        if (b > 0) { line++; k += b; } else k++;
      }
      while (text[k] === ' ' || text[k] === '\t') k++;
      if (k < n && text[k] !== ';' && breakAt(k) === 0) return { line, kind: 'afterQuote' };
    } else {
      while (k < n && text[k] !== ';' && breakAt(k) === 0) k++;
    }
    if (k >= n) break;
    if (text[k] === ';') { i = k + 1; continue; }
    const b = breakAt(k);
    line++;
    i = k + b;
  }
  return null;
}

/** Line breaks inside a cell: CRLF counts once, lone LF or CR count once each. */
export function breaksIn(cell: string): number {
  let n = 0;
  for (let i = cell.indexOf('\n'); i !== -1; i = cell.indexOf('\n', i + 1)) n++;
  for (let i = cell.indexOf('\r'); i !== -1; i = cell.indexOf('\r', i + 1)) if (cell.charCodeAt(i + 1) !== 10) n++;
  return n;
}

export class LineTracker {
  /** Start line of the next row. */
  private next = 1;

  /**
   * @param crOnly the file ends lines with a lone CR (old Mac Excel). Otherwise every
   * line break contains an LF, so one indexOf per cell finds the cells worth counting.
   */
  constructor(private readonly crOnly = false) {}

  /** Returns the 1-based line where `row` starts; call once per emitted row, in order. */
  startOf(row: CsvRow): number {
    const start = this.next;
    let span = 1;
    const probe = this.crOnly ? '\r' : '\n';
    for (let i = 0; i < row.length; i++) {
      const cell = row[i];
      if (cell.indexOf(probe) !== -1) span += breaksIn(cell);
    }
    this.next = start + span;
    return start;
  }

  /** The line after the last row seen (where the next row, if any, starts). */
  get nextLine(): number {
    return this.next;
  }
}

/** Whether a file's first bytes show lone-CR line endings. */
export function usesLoneCR(head: string): boolean {
  return !head.includes('\n') && head.includes('\r');
}

/**
 * A blank line: no cells, or only empty/whitespace cells (Excel writes ";;;" for rows
 * that were emptied). Such a row names no entity, so skipping it is safe.
 */
export function isBlankRow(row: CsvRow): boolean {
  for (let i = 0; i < row.length; i++) if (row[i].trim() !== '') return false;
  return true;
}
