// Segments row → SegmentRecord + problems: external ID and name, both mandatory.
import type { Problem, SegmentRecord } from '../model.js';
import type { TenantFileSpec } from '../config/schema.js';
import { buildColumns, columnFor, missingProblem, type Column } from './columns.js';
import { mapValue } from './fields.js';

export class SegmentRowMapper {
  readonly idColumn: Column;
  private readonly nameColumn: Column;

  constructor(spec: TenantFileSpec, header: readonly string[], private readonly file: string) {
    const columns = buildColumns(spec, header);
    this.idColumn = columnFor(columns, 'externalId')!; // required by the config schema
    this.nameColumn = columnFor(columns, 'name')!;
  }

  map(cells: readonly string[], line: number, out: Problem[]): SegmentRecord | null {
    const id = mapValue(cells[this.idColumn.index].trim(), this.idColumn.map);
    const name = mapValue(cells[this.nameColumn.index].trim(), this.nameColumn.map);
    const entityId = id ?? undefined;
    if (id === null) out.push(missingProblem(this.file, line, this.idColumn, entityId));
    if (name === null) out.push(missingProblem(this.file, line, this.nameColumn, entityId));
    return id !== null && name !== null ? { externalId: id, name } : null;
  }
}
