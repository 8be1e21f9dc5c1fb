// Column plan shared by the row mappers: which cell feeds which field, the header
// name to show in problems, and the tenant's value map for that field.
import type { Problem } from '../model.js';
import type { TenantFileSpec } from '../config/schema.js';
import { mapValue, toValueMap, type ValueMap } from './fields.js';

export interface Column {
  index: number;
  field: string;
  /** Header name in the file (what the customer sees), or the field name if blank. */
  name: string;
  map: ValueMap | undefined;
}

/** Mapped columns in position order; `ignore` columns are left out. */
export function buildColumns(spec: TenantFileSpec, header: readonly string[]): Column[] {
  const out: Column[] = [];
  spec.columns.forEach((field, index) => {
    if (field === 'ignore') return;
    out.push({ index, field, name: header[index] || field, map: toValueMap(spec.valueMaps[field]) });
  });
  return out;
}

export function columnFor(columns: readonly Column[], field: string): Column | undefined {
  return columns.find((c) => c.field === field);
}

/** The row's external ID (trimmed, mapped), if its cell is there and not empty. */
export function entityIdOf(cells: readonly string[], idColumn: Column | undefined): string | undefined {
  if (idColumn === undefined || idColumn.index >= cells.length) return undefined;
  return mapValue(cells[idColumn.index].trim(), idColumn.map) ?? undefined;
}

export const FIELD_LABELS: Record<string, string> = {
  externalId: 'external ID', firstName: 'first name', lastName: 'last name', username: 'username',
  email: 'email', phone: 'phone', title: 'title', birthday: 'birthday', employedSince: 'employed since',
  employedUntil: 'employed until', gender: 'gender', memberOf: 'group memberships', adminOf: 'group admin roles',
  segments: 'segments', status: 'status', language: 'language', name: 'name', parentId: 'parent group ID',
};

/** A row-level problem; keys that are not known are left out so reports stay tidy. */
export function rowProblem(
  file: string,
  line: number,
  message: string,
  extra: { column?: string; value?: string; hint?: string; entityId?: string; level?: 'row' | 'warning' } = {},
): Problem {
  const p: Problem = { level: extra.level ?? 'row', file, line, message };
  if (extra.column !== undefined) p.column = extra.column;
  if (extra.value !== undefined) p.value = extra.value;
  if (extra.hint !== undefined) p.hint = extra.hint;
  if (extra.entityId !== undefined) p.entityId = extra.entityId;
  return p;
}

export function missingProblem(file: string, line: number, col: Column, entityId: string | undefined): Problem {
  return rowProblem(file, line, `${FIELD_LABELS[col.field] ?? col.field} is mandatory but "${col.name}" is empty`, {
    column: col.name,
    hint: `fill in "${col.name}" for this row`,
    entityId,
  });
}
