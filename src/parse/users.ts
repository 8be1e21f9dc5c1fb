// Users row → UserRecord + problems. Every problem of the row is collected (the customer
// fixes them all in one go); the row is kept only if there are none.
import type { Problem, UserRecord } from '../model.js';
import type { TenantFileSpec } from '../config/schema.js';
import { buildColumns, columnFor, FIELD_LABELS, missingProblem, rowProblem, type Column } from './columns.js';
import {
  canonicalLanguage, checkDate, emailHint, isValidEmail, languageHint, mapValue, normalizeGender,
  normalizeStatus, splitList,
} from './fields.js';

// Field ids resolved once per file so the per-row loop is a switch on small integers
// with named property stores (keyed stores with 16 different keys are megamorphic).
const enum F {
  externalId, firstName, lastName, username, email, phone, title, birthday, employedSince,
  employedUntil, gender, memberOf, adminOf, segments, status, language,
}
const FIELD_IDS: Record<string, F> = {
  externalId: F.externalId, firstName: F.firstName, lastName: F.lastName, username: F.username,
  email: F.email, phone: F.phone, title: F.title, birthday: F.birthday, employedSince: F.employedSince,
  employedUntil: F.employedUntil, gender: F.gender, memberOf: F.memberOf, adminOf: F.adminOf,
  segments: F.segments, status: F.status, language: F.language,
};

interface UserColumn extends Column {
  id: F;
}

export class UserRowMapper {
  readonly columns: UserColumn[];
  readonly idColumn: Column;
  private readonly sinceColumn: Column | undefined;
  private readonly untilColumn: Column | undefined;
  private readonly listSeparator: string;
  private readonly genderMapped: boolean;
  /**
   * Every record starts as a copy of this: mapped fields only (unmapped stay absent),
   * always in the same order, so all records of a file share one hidden class.
   */
  private readonly template: UserRecord;

  constructor(spec: TenantFileSpec, header: readonly string[], private readonly file: string) {
    this.columns = buildColumns(spec, header).map((c) => ({ ...c, id: FIELD_IDS[c.field] }));
    this.idColumn = columnFor(this.columns, 'externalId')!; // the config schema requires it
    this.sinceColumn = columnFor(this.columns, 'employedSince');
    this.untilColumn = columnFor(this.columns, 'employedUntil');
    this.listSeparator = spec.listSeparator;
    this.genderMapped = spec.valueMaps.gender !== undefined;
    const template: Record<string, unknown> = { externalId: '', firstName: '', lastName: '', username: '' };
    for (const c of this.columns) if (!(c.field in template)) template[c.field] = null;
    this.template = template as unknown as UserRecord;
  }

  /** The record, or null after pushing the row's problems to `out`. `cells` has the header's length. */
  map(cells: readonly string[], line: number, out: Problem[]): UserRecord | null {
    const file = this.file;
    const idCol = this.idColumn;
    const idRaw = cells[idCol.index].trim();
    const id = idCol.map === undefined ? idRaw : mapValue(idRaw, idCol.map) ?? '';
    const entityId = id === '' ? undefined : id;
    const rec: UserRecord = { ...this.template };
    const before = out.length;
    const cols = this.columns;
    for (let i = 0; i < cols.length; i++) {
      const col = cols[i];
      const raw = cells[col.index].trim();
      switch (col.id) {
        case F.memberOf: rec.memberOf = splitList(raw, this.listSeparator, col.map); continue;
        case F.adminOf: rec.adminOf = splitList(raw, this.listSeparator, col.map); continue;
        case F.segments: rec.segments = splitList(raw, this.listSeparator, col.map); continue;
      }
      const value = col.map === undefined ? (raw === '' ? null : raw) : mapValue(raw, col.map);
      switch (col.id) {
        case F.externalId:
          if (value === null) out.push(missingProblem(file, line, col, entityId)); else rec.externalId = value;
          break;
        case F.firstName:
          if (value === null) out.push(missingProblem(file, line, col, entityId)); else rec.firstName = value;
          break;
        case F.lastName:
          if (value === null) out.push(missingProblem(file, line, col, entityId)); else rec.lastName = value;
          break;
        case F.username:
          if (value === null) out.push(missingProblem(file, line, col, entityId)); else rec.username = value;
          break;
        case F.phone: rec.phone = value; break;
        case F.title: rec.title = value; break;
        case F.email:
          if (value === null || isValidEmail(value)) rec.email = value;
          else out.push(rowProblem(file, line, `email "${value}" is not a valid address`, { column: col.name, value: raw, hint: emailHint(value), entityId }));
          break;
        case F.birthday: rec.birthday = this.date(value, col, raw, line, entityId, out); break;
        case F.employedSince: rec.employedSince = this.date(value, col, raw, line, entityId, out); break;
        case F.employedUntil: rec.employedUntil = this.date(value, col, raw, line, entityId, out); break;
        case F.gender: {
          const g = value === null ? null : normalizeGender(value, this.genderMapped);
          if (g !== undefined) rec.gender = g;
          else out.push(rowProblem(file, line, `gender "${value}" is not one of male, female, other`, {
            column: col.name, value: raw, entityId,
            hint: this.genderMapped
              ? 'use a value covered by the gender mapping agreed with WT, or ask WT to extend it'
              : 'use male, female or other (M, F, O and X are understood too), or ask WT to map your values',
          }));
          break;
        }
        case F.status: {
          const st = value === null ? null : normalizeStatus(value);
          if (st !== undefined) rec.status = st;
          else out.push(rowProblem(file, line, `status "${value}" is not active or inactive`, {
            column: col.name, value: raw, entityId, hint: 'use active or inactive, or ask WT to map your values',
          }));
          break;
        }
        case F.language: {
          const tag = value === null ? null : canonicalLanguage(value);
          if (value === null || tag !== null) rec.language = tag;
          else out.push(rowProblem(file, line, `language "${value}" is not a valid BCP 47 language tag`, {
            column: col.name, value: raw, entityId, hint: languageHint(value),
          }));
          break;
        }
      }
    }
    // Both dates valid (same format) compare correctly as strings.
    if (this.untilColumn !== undefined && this.sinceColumn !== undefined) {
      const since = rec.employedSince;
      const until = rec.employedUntil;
      if (typeof since === 'string' && typeof until === 'string' && until < since) {
        out.push(rowProblem(file, line, `employed until ${until} is before employed since ${since}`, {
          column: this.untilColumn.name, value: until, entityId,
          hint: `check "${this.sinceColumn.name}" and "${this.untilColumn.name}"`,
        }));
      }
    }
    return out.length === before ? rec : null;
  }

  /** A valid date or null; pushes a problem (and returns null) when invalid. */
  private date(value: string | null, col: Column, raw: string, line: number, entityId: string | undefined, out: Problem[]): string | null {
    if (value === null) return null;
    const check = checkDate(value);
    if (check === 'ok') return value;
    out.push(rowProblem(this.file, line,
      check === 'format'
        ? `${FIELD_LABELS[col.field]} "${value}" is not a date in the form YYYY-MM-DD`
        : `${FIELD_LABELS[col.field]} "${value}" is not a real calendar date`,
      { column: col.name, value: raw, hint: 'write dates as YYYY-MM-DD, e.g. 1984-03-21', entityId }));
    return null;
  }
}
