// API records → the tenant's columns as a `;`-separated CSV, one physical line per record, so the fetch goes
// through exactly the same validation as an uploaded file (and line N + 1 is record N). Written page by page:
// memory holds one page, whatever the record count. The sha256 is computed while writing (hashed once).
import { createHash, type Hash } from 'node:crypto';
import fs from 'node:fs';
import type { ApiObjectConfig, FieldMapping } from '../../config/source-schema.js';
import type { TenantFileSpec } from '../../config/schema.js';
import type { FileType } from '../../model.js';
import { compilePath, type CompiledPath } from './json-path.js';
import { FetchError } from '../source.js';

const MANDATORY: Record<FileType, string[]> = { users: ['externalId', 'firstName', 'lastName', 'username'], groups: ['externalId', 'name'], segments: ['externalId', 'name'] };
const LIST_FIELDS = new Set(['memberOf', 'adminOf', 'segments']);

type Getter = (record: unknown) => { text: string; wrongType: boolean };

interface Column {
  field: string;
  source: string;
  get: Getter;
  filled: number;
  wrongType: number;
}

function scalar(v: unknown): { text: string; wrongType: boolean } {
  if (v === undefined || v === null) return { text: '', wrongType: false };
  if (typeof v === 'string') return { text: v, wrongType: false };
  if (typeof v === 'number' || typeof v === 'boolean') return { text: String(v), wrongType: false };
  return { text: JSON.stringify(v), wrongType: true };
}

function getter(mapping: FieldMapping, field: string, listSeparator: string): { get: Getter; source: string } {
  if (typeof mapping === 'object' && 'const' in mapping) {
    const c = { text: mapping.const, wrongType: false };
    return { get: () => c, source: `const "${mapping.const}"` };
  }
  if (typeof mapping === 'object' && 'template' in mapping) {
    const parts = mapping.template.split(/(\{[^}]+\})/).map((p) => (p.startsWith('{') && p.endsWith('}') ? compilePath(p.slice(1, -1)) : p));
    return {
      source: `template "${mapping.template}"`,
      get: (r) => {
        let wrongType = false;
        let any = false;
        const text = parts.map((p) => {
          if (typeof p === 'string') return p;
          const s = scalar(p.get(r));
          wrongType ||= s.wrongType;
          any ||= s.text !== '';
          return s.text;
        }).join('');
        // A template whose paths are all empty is empty (not a lone separator such as " ").
        return { text: any ? text.trim() : '', wrongType };
      },
    };
  }
  const path: CompiledPath = compilePath(typeof mapping === 'string' ? mapping : mapping.path);
  if (path.multi || LIST_FIELDS.has(field)) {
    return {
      source: `path "${path.text}"`,
      get: (r) => {
        const v = path.get(r);
        const list = Array.isArray(v) ? v : v === undefined || v === null ? [] : [v];
        let wrongType = false;
        const text = list.map((x) => { const s = scalar(x); wrongType ||= s.wrongType; return s.text; }).filter((s) => s !== '').join(listSeparator);
        return { text, wrongType };
      },
    };
  }
  return { source: `path "${path.text}"`, get: (r) => scalar(path.get(r)) };
}

function cell(text: string): string {
  // JSON strings may hold line breaks; WT fields are single-line, and one line per record keeps records countable.
  const flat = /[\r\n]/.test(text) ? text.replace(/\r\n|\r|\n/g, ' ') : text;
  return /[;"]/.test(flat) || flat !== flat.trim() ? `"${flat.replace(/"/g, '""')}"` : flat;
}

export class RecordRenderer {
  readonly columns: Column[];
  private readonly recordsPath: CompiledPath;
  private readonly totalPath: CompiledPath | undefined;
  private readonly fd: number;
  private readonly hash: Hash = createHash('sha256');
  private pending: string[] = [];
  records = 0;
  bytes = 0;
  /** The API's reported total, last seen. */
  reportedTotal: number | undefined;

  constructor(private readonly type: FileType, private readonly obj: ApiObjectConfig, private readonly spec: TenantFileSpec, readonly file: string) {
    this.recordsPath = compilePath(obj.records);
    this.totalPath = obj.totalPath ? compilePath(obj.totalPath) : undefined;
    this.columns = spec.columns.map((field) => {
      const mapping = obj.fields[field];
      if (field === 'ignore' || mapping === undefined) return { field, source: 'none', get: () => ({ text: '', wrongType: false }), filled: 0, wrongType: 0 };
      return { field, ...getter(mapping, field, spec.listSeparator), filled: 0, wrongType: 0 };
    });
    this.fd = fs.openSync(file, 'w', 0o640);
    this.write((spec.header ?? spec.columns).map(cell).join(';') + '\n');
  }

  /** The records of one page; throws FetchError when the page has no records array where configured. */
  recordsOf(body: unknown, where: string): unknown[] {
    const list = this.recordsPath.get(body);
    if (!Array.isArray(list)) {
      throw new FetchError(`${this.type}: the response has no records array at "${this.obj.records || '(the body itself)'}" (found ${list === undefined ? 'nothing' : typeof list})`, where,
        'check `records:` in the source configuration against the archived response');
    }
    return list;
  }

  addPage(body: unknown, where: string): number {
    return this.addRecords(this.recordsOf(body, where), body);
  }

  /** The page's records (from recordsOf) and its body (for the total). */
  addRecords(list: unknown[], body: unknown): number {
    if (this.totalPath) {
      const t = this.totalPath.get(body);
      if (t !== undefined && t !== null) this.reportedTotal = Number(t);
    }
    for (const record of list) {
      const cells: string[] = [];
      for (const c of this.columns) {
        const v = c.get(record);
        if (v.text !== '') c.filled++;
        if (v.wrongType) c.wrongType++;
        cells.push(cell(v.text));
      }
      this.pending.push(cells.join(';'));
    }
    this.records += list.length;
    this.write(this.pending.join('\n') + (this.pending.length ? '\n' : ''));
    this.pending = [];
    return list.length;
  }

  private write(s: string): void {
    if (s === '') return;
    const buf = Buffer.from(s, 'utf8');
    this.hash.update(buf);
    fs.writeSync(this.fd, buf);
    this.bytes += buf.length;
  }

  /** Completeness: the API's total, coverage rules, mappings that found nothing anywhere. Returns the sha256. */
  finish(where: string): string {
    fs.fsyncSync(this.fd);
    fs.closeSync(this.fd);
    const n = this.records;
    if (this.obj.totalPath !== undefined) {
      if (this.reportedTotal === undefined || !Number.isFinite(this.reportedTotal)) {
        throw new FetchError(`${this.type}: no total at "${this.obj.totalPath}" in the responses`, where, 'check `totalPath:` against the archived response');
      }
      if (this.reportedTotal !== n) {
        throw new FetchError(`${this.type}: the API reported a total of ${this.reportedTotal} records but ${n} were fetched`, where,
          'the API changed while paging or dropped records; nothing was applied, the next fetch tries again');
      }
    }
    if (n > 0) {
      for (const c of this.columns) {
        if (c.source === 'none') continue;
        if (c.wrongType === n) throw new FetchError(`${this.type}: the mapping of ${c.field} (${c.source}) found an object or list instead of a value in every record`, where, 'point the path at a value inside it (e.g. name.first, departments[*].id)');
        if (MANDATORY[this.type].includes(c.field) && c.filled === 0) {
          throw new FetchError(`${this.type}: the mapping of ${c.field} (${c.source}) found no value in any of ${n} records`, where, 'check the path against the archived response; nothing was applied');
        }
      }
      for (const rule of this.obj.coverage) {
        const c = this.columns.find((x) => x.field === rule.field)!;
        const pct = (c.filled * 100) / n;
        if (pct < rule.minPercent) {
          throw new FetchError(`${this.type}: only ${c.filled} of ${n} records (${+pct.toFixed(1)}%) carry ${rule.field}; the coverage rule asks for at least ${rule.minPercent}%`, where,
            'the API may no longer return this field to our credentials (a permission change); check the API user\'s access');
        }
      }
    }
    return this.hash.digest('hex');
  }

  /** Closes and removes the file (a failed fetch). */
  discard(): void {
    try { fs.closeSync(this.fd); } catch { /* closed by finish */ }
    fs.rmSync(this.file, { force: true });
  }
}
