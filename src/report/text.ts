// Reports and problems as text for people (the customer's /reports/ folder, the CLI).
import type { Problem } from '../model.js';
import type { Operation } from '../plan/types.js';
import { operationsJsonOf, operationsOf, operationsWithJsonOf, reportSummary, type Report, type ReportOperation } from './report.js';

const q = (v: string | null | undefined) => (v === null || v === undefined ? '(empty)' : JSON.stringify(v));

export function describeOperation(op: Operation): string {
  switch (op.op) {
    case 'create': {
      // Built as one string: a first load describes 100k creates.
      let line = `create ${op.entity} ${q(op.externalId)}`;
      let sep = ': ';
      for (const k in op.after) {
        const v = op.after[k];
        if (k === 'externalId' || v === null) continue;
        line += `${sep}${k}=${q(v)}`;
        sep = ', ';
      }
      if (op.memberships?.length) {
        line += `${sep}groups=${op.memberships.map((m) => (m.role === 'admin' ? `${m.groupId} (admin)` : m.groupId)).join(', ')}`;
        sep = ', ';
      }
      if (op.segments?.length) line += `${sep}segments=${op.segments.join(', ')}`;
      return line;
    }
    case 'update':
      return `update ${op.entity} ${q(op.externalId)}: ${op.changes.map((c) => `${c.field} ${q(c.before)} → ${q(c.after)}`).join('; ')}`;
    case 'restore':
      return `restore user ${q(op.externalId)}`;
    case 'remove':
    case 'purge':
      return `${op.op} ${op.entity} ${op.externalId === null ? `#${op.id}` : q(op.externalId)} (${op.name})`;
    case 'link':
      return op.entity === 'membership'
        ? `link user ${q(op.userId)} to group ${q(op.groupId)} as ${op.role}${op.before ? ` (was ${op.before})` : ''}`
        : `link user ${q(op.userId)} to segment ${q(op.segmentId)}`;
    case 'unlink':
      return op.entity === 'membership'
        ? `unlink user ${q(op.userId)} from group ${q(op.groupId)} (${op.role}, ${op.origin})`
        : `unlink user ${q(op.userId)} from segment ${q(op.segmentId)} (${op.origin})`;
  }
}

export function describeProblem(p: Problem): string {
  const where = [p.file, p.line !== undefined ? `line ${p.line}` : null, p.record !== undefined ? `record ${p.record}` : null, p.column ? `column "${p.column}"` : null, p.byteOffset !== undefined ? `byte ${p.byteOffset}` : null]
    .filter(Boolean)
    .join(', ');
  const value = p.value !== undefined && p.value !== '' ? ` (value ${JSON.stringify(p.value)})` : '';
  return `${where}: ${p.message}${value}${p.hint ? `\n    how to fix: ${p.hint}` : ''}`;
}

function opLine(o: ReportOperation): string {
  const mark = o.status === 'done' || o.status === 'planned' ? '' : ` [${o.status.toUpperCase()}${o.error ? `: ${o.error}` : ''}]`;
  return `  ${String(o.seq).padStart(5)}  ${describeOperation(o)}${mark}`;
}

/** The report as text, line by line (each with its newline): reports of a first load can run to millions of lines. */
export function* reportLines(r: Report): Generator<string> {
  yield* reportHeadLines(r);
  let first = true;
  for (const o of operationsOf(r)) {
    if (first) yield OPERATIONS_TITLE;
    first = false;
    yield `${opLine(o)}\n`;
  }
}

const OPERATIONS_TITLE = '\noperations:\n';

/** Everything of the text report before its operations (or the line saying where they went). */
function* reportHeadLines(r: Report): Generator<string> {
  yield `wt-sync report — run ${r.runId}, tenant ${r.tenant}\n`;
  yield `status: ${r.status}   trigger: ${r.trigger}   at: ${r.createdAt}\n`;
  if (r.files.length) {
    yield '\nfiles:\n';
    for (const f of r.files) {
      const rows = f.dataRows !== null ? `, ${f.validRows}/${f.dataRows} rows valid` : '';
      yield `  ${f.name} (${f.type ?? 'unknown type'}, ${f.size} bytes, sha256 ${f.sha256.slice(0, 16)}…): ${f.status}${rows}\n`;
    }
  }
  const c = r.counts;
  yield `\ncounts: created ${c.created}, updated ${c.updated}, removed ${c.removed}, restored ${c.restored}, purged ${c.purged}, linked ${c.linked}, unlinked ${c.unlinked}, unchanged ${c.unchanged}, held ${c.held}, failed ${c.failed}, file errors ${c.fileErrors}, row errors ${c.rowErrors}, warnings ${c.warnings}\n`;
  if (r.safeguard?.held) {
    yield `\nHELD: ${r.safeguard.reason}.\n  The removals below wait for an operator: wt-sync approve --tenant ${r.tenant} ${r.runId}\n  Everything else in this run was applied.\n`;
  }
  const sections: [Problem['level'], string][] = [
    ['file', r.status.endsWith('fetch-failed') ? 'fetch failed (nothing of it was handed over or applied; the previous snapshot stays)' : 'file errors (the file was rejected, nothing in it was applied)'],
    ['row', 'row errors (these rows were skipped; the users/groups they name were left as they are)'],
    ['warning', 'warnings (applied)'],
  ];
  for (const [level, title] of sections) {
    let first = true;
    for (const p of r.problems) {
      if (p.level !== level) continue;
      if (first) yield `\n${title}:\n`;
      first = false;
      yield `  ${describeProblem(p)}\n`;
    }
  }
  if (r.operationsPrunedAt) yield `\noperations: dropped from the service's database on ${r.operationsPrunedAt} (journalDays); the report published in /reports/ at the time lists them\n`;
}

/** The report as compact JSON, in pieces, so that no single string has to hold a huge report. */
export function* reportJson(r: Report): Generator<string> {
  yield reportJsonHead(r);
  let i = 0;
  for (const o of operationsJsonOf(r)) yield (i++ ? ',' : '') + o;
  yield JSON_TAIL;
}

const JSON_TAIL = ']}\n';

function reportJsonHead(r: Report): string {
  const head = JSON.stringify(reportSummary(r));
  return `${head.slice(0, -1)},"operations":[`;
}

/**
 * The report as text and as JSON at once, from one read of its operations (publishing a run's report): the same
 * bytes as `reportLines` and `reportJson`.
 */
export function writeTextAndJson(r: Report, text: (chunk: Buffer) => void, json: (chunk: Buffer) => void): void {
  const t = new Chunker(text);
  const j = new Chunker(json);
  for (const line of reportHeadLines(r)) t.add(line);
  j.add(reportJsonHead(r));
  let i = 0;
  for (const [o, oJson] of operationsWithJsonOf(r)) {
    if (i === 0) t.add(OPERATIONS_TITLE);
    t.add(`${opLine(o)}\n`);
    j.add(i++ ? `,${oJson}` : oJson);
  }
  j.add(JSON_TAIL);
  t.end();
  j.end();
}

const CHUNK = 1 << 20;

/**
 * Collects pieces as UTF-8 and hands them on in chunks of about 1 MB. Encoding each piece into a buffer costs a
 * third of joining them into a string first (a first load's report is 100 MB); each chunk is a fresh buffer, as a
 * stream may hold on to what it was given.
 */
class Chunker {
  private buffer?: Buffer;
  private used = 0;
  constructor(private readonly write: (chunk: Buffer) => void) {}
  add(piece: string): void {
    // At most 3 bytes of UTF-8 per UTF-16 code unit.
    if (this.used + piece.length * 3 > CHUNK) {
      this.end();
      if (piece.length * 3 > CHUNK) {
        this.write(Buffer.from(piece, 'utf8'));
        return;
      }
    }
    this.buffer ??= Buffer.allocUnsafe(CHUNK);
    this.used += this.buffer.write(piece, this.used);
  }
  end(): void {
    if (this.used === 0 || !this.buffer) return;
    this.write(this.buffer.subarray(0, this.used));
    this.buffer = undefined;
    this.used = 0;
  }
}

/** Feeds pieces to `write` in chunks of about 1 MB. */
export function writeChunked(pieces: Iterable<string>, write: (chunk: Buffer) => void): void {
  const chunker = new Chunker(write);
  for (const piece of pieces) chunker.add(piece);
  chunker.end();
}
