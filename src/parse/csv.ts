// fast-csv set up for WT snapshot files, plus the physical line each row starts on.
// fast-csv does not report positions, but every row it emits consumed exactly one line
// break after it (blank lines come out as empty rows), and any further breaks are
// inside quoted fields. So a row's start line is the previous row's start line plus
// 1 plus the breaks inside the previous row's fields.
import { Transform, type TransformCallback } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { Parser } from '@fast-csv/parse/build/src/parser/Parser.js';
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

/** Rows are handed on in batches: one async step per batch instead of per row. */
const BATCH_ROWS = 512;

/** No snapshot row is this long: a longer one is a wrong file or a quote never closed, not something to buffer. */
export const MAX_ROW_CHARS = 1 << 20;

/**
 * CSV text (validated UTF-8 bytes) → batches of rows, exactly as fast-csv reads them, but fast.
 *
 * A line without a quote and without a lone CR is, in CSV, simply its cells between the `;`s: such lines (nearly
 * every line of an HR export) are split directly. Anything else — quoted cells, cells spanning lines, lone-CR
 * line ends — goes to fast-csv's own parser record by record, so its reading of quotes decides. A syntax error
 * is recorded (not thrown), after the rows before it were handed on, so the consumer knows its line.
 */
export class CsvRowStream extends Transform {
  syntaxError: CsvSyntaxError | null = null;
  private pending = '';
  private readonly decoder = new StringDecoder('utf8');
  private readonly quoted = new Parser(new ParserOptions(CSV_OPTIONS));

  constructor() {
    super({ readableObjectMode: true, readableHighWaterMark: 4 });
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    if (this.syntaxError === null) this.consume(this.pending + this.decoder.write(chunk), true);
    done();
  }

  override _flush(done: TransformCallback): void {
    if (this.syntaxError === null) this.consume(this.pending + this.decoder.end(), false);
    done();
  }

  private consume(text: string, more: boolean): void {
    const n = text.length;
    let batch: CsvRow[] = [];
    let p = 0;
    // Where the next quote / CR is, found once and reused until passed: keeps the scan linear.
    let quote = text.indexOf('"');
    let cr = text.indexOf('\r');
    while (p < n) {
      const nl = text.indexOf('\n', p);
      if (nl === -1 && more) break; // an unfinished line waits for the next chunk
      const end = nl === -1 ? n : nl;
      const lineEnd = end > p && text.charCodeAt(end - 1) === 13 ? end - 1 : end;
      if (quote !== -1 && quote < p) quote = text.indexOf('"', p);
      if (cr !== -1 && cr < p) cr = text.indexOf('\r', p);
      if ((quote === -1 || quote >= end) && (cr === -1 || cr >= lineEnd)) {
        const line = text.slice(p, lineEnd);
        // fast-csv reads a line of nothing but white space as a row without cells.
        batch.push(line.trim() === '' && !line.includes(CSV_DELIMITER) ? [] : line.split(CSV_DELIMITER));
        p = nl === -1 ? n : nl + 1;
      } else {
        const consumed = this.parseQuoted(text, p, more, batch);
        if (consumed === 0) break; // needs the next chunk (or a syntax error was recorded)
        p += consumed;
      }
      if (batch.length >= BATCH_ROWS) {
        this.push(batch);
        batch = [];
      }
    }
    if (batch.length > 0) this.push(batch);
    this.pending = this.syntaxError === null ? text.slice(p) : '';
    if (this.pending.length > MAX_ROW_CHARS) {
      this.syntaxError = { message: `a row is longer than ${MAX_ROW_CHARS.toLocaleString('en')} characters`, text: this.pending.slice(0, MAX_ROW_CHARS) };
      this.pending = '';
    }
  }

  /** Hands fast-csv the one record starting at `p`; returns the chars consumed, 0 when it needs more text. */
  private parseQuoted(text: string, p: number, more: boolean, batch: CsvRow[]): number {
    const end = recordEnd(text, p);
    // Unfinished (or a CR that may be the first half of a CRLF): wait for the next chunk, unless the file ended.
    if (more && (end === -1 || (text.charCodeAt(end - 1) === 13 && end === text.length))) return 0;
    const segment = text.slice(p, end === -1 ? text.length : end);
    try {
      for (const row of this.quoted.parse(segment, false).rows) batch.push(row as CsvRow);
      return segment.length;
    } catch (err) {
      this.syntaxError = { message: (err as Error).message, text: text.slice(p) };
      return 0;
    }
  }
}

/**
 * Where the record starting at `p` ends (after its line break), reading quotes as fast-csv does: a quote opens a
 * quoted cell only at the start of a cell (after spaces), `""` inside it is a quote, and line breaks inside it
 * belong to the cell. -1 when the text ends first.
 */
function recordEnd(text: string, p: number): number {
  const n = text.length;
  let k = p;
  while (k < n) {
    while (k < n && (text.charCodeAt(k) === 32 || text.charCodeAt(k) === 9)) k++;
    if (text.charCodeAt(k) === 34) {
      for (k++; ; k++) {
        if (k >= n) return -1;
        if (text.charCodeAt(k) === 34) {
          if (text.charCodeAt(k + 1) === 34) { k++; continue; }
          k++;
          break;
        }
      }
    }
    for (; k < n; k++) {
      const c = text.charCodeAt(k);
      if (c === 59) { k++; break; }
      if (c === 10) return k + 1;
      if (c === 13) return text.charCodeAt(k + 1) === 10 ? k + 2 : k + 1;
    }
  }
  return -1;
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
