// fast-csv set up for WT snapshot files, plus the physical line each row starts on.
// fast-csv does not report positions, but every row it emits consumed exactly one line
// break after it (blank lines come out as empty rows), and any further breaks are
// inside quoted fields. So a row's start line is the previous row's start line plus
// 1 plus the breaks inside the previous row's fields.
import { parse, type CsvParserStream } from 'fast-csv';

export type CsvRow = string[];

export const CSV_DELIMITER = ';';

/** The one fast-csv configuration used by parseFile and by the benchmark baseline. */
export function createCsvStream(): CsvParserStream<CsvRow, CsvRow> {
  // No headers/trim/ignoreEmpty: the header is checked by us, cells are trimmed by the
  // field mappers, and blank lines must still be seen to keep line numbers right.
  return parse<CsvRow, CsvRow>({ delimiter: CSV_DELIMITER, headers: false, ignoreEmpty: false, trim: false });
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
