// Groups row → GroupRecord + problems, and the tree checks that need the whole file.
// Group files are small (hundreds to a few thousand rows), so they are buffered: a
// parent may come after its children, and a cycle can only be seen at the end.
import type { GroupRecord, Problem } from '../model.js';
import type { TenantFileSpec } from '../config/schema.js';
import { buildColumns, columnFor, missingProblem, rowProblem, type Column } from './columns.js';
import { mapValue } from './fields.js';

export interface GroupEntry {
  record: GroupRecord;
  line: number;
}

export class GroupRowMapper {
  readonly idColumn: Column;
  readonly nameColumn: Column;
  readonly parentColumn: Column | undefined;

  constructor(spec: TenantFileSpec, header: readonly string[], private readonly file: string) {
    const columns = buildColumns(spec, header);
    this.idColumn = columnFor(columns, 'externalId')!; // required by the config schema
    this.nameColumn = columnFor(columns, 'name')!;
    this.parentColumn = columnFor(columns, 'parentId');
  }

  map(cells: readonly string[], line: number, out: Problem[]): GroupRecord | null {
    const id = mapValue(cells[this.idColumn.index].trim(), this.idColumn.map);
    const name = mapValue(cells[this.nameColumn.index].trim(), this.nameColumn.map);
    const p = this.parentColumn;
    const parentId = p === undefined ? null : mapValue(cells[p.index].trim(), p.map);
    const entityId = id ?? undefined;
    if (id === null) out.push(missingProblem(this.file, line, this.idColumn, entityId));
    if (name === null) out.push(missingProblem(this.file, line, this.nameColumn, entityId));
    return id !== null && name !== null ? { externalId: id, name, parentId } : null;
  }
}

const enum State { OnPath, Ok, Failed, Cycle }

export interface TreeResult {
  /** Groups that passed every check, in file order. */
  valid: GroupEntry[];
  /** Row errors (cascade included) and warnings. */
  problems: Problem[];
  /** Cycles: each one rejects the file. */
  fileProblems: Problem[];
  /** Rows that failed here (they were valid row by row). */
  failedRows: number;
}

/**
 * Checks parents (must be a valid group of this file; a child of a failed group fails
 * too), cycles (file-level, naming the cycle), and same-named siblings (warning).
 * `failedIds` maps the external ID of each row that already failed to its line.
 */
export function checkGroupTree(
  entries: readonly GroupEntry[],
  failedIds: ReadonlyMap<string, number>,
  mapper: GroupRowMapper,
  file: string,
): TreeResult {
  const byId = new Map<string, GroupEntry>();
  for (const e of entries) byId.set(e.record.externalId, e);
  const state = new Map<string, State>();
  const problems: Problem[] = [];
  const fileProblems: Problem[] = [];
  let failedRows = 0;
  const parentName = mapper.parentColumn?.name ?? 'parentId';

  const fail = (e: GroupEntry, message: string, hint: string) => {
    state.set(e.record.externalId, State.Failed);
    failedRows++;
    problems.push(rowProblem(file, e.line, message, { column: parentName, value: e.record.parentId ?? '', hint, entityId: e.record.externalId }));
  };
  const failedParent = (e: GroupEntry, parentLine: number) => fail(e,
    `parent group "${e.record.parentId}" is skipped because its row has errors (line ${parentLine})`,
    `fix line ${parentLine}; this group is skipped until its parent is valid`);

  // Walk up from each group until a resolved group, a root, a missing parent or a
  // group already on the walk (a cycle); then resolve the walk top-down. Iterative, so
  // a deep tree cannot overflow the stack; every group is walked once.
  for (const start of entries) {
    if (state.has(start.record.externalId)) continue;
    const path: GroupEntry[] = [];
    let cur = start;
    let brokenParent: GroupEntry | null = null; // failed parent of the last group on the path
    for (;;) {
      const st = state.get(cur.record.externalId);
      if (st === State.OnPath) {
        const from = path.indexOf(cur);
        const cycle = path.slice(from);
        for (const n of cycle) state.set(n.record.externalId, State.Cycle);
        fileProblems.push(cycleProblem(cycle, file, parentName));
        path.length = from; // the rest descend from the cycle: the file is rejected anyway
        break;
      }
      if (st !== undefined) {
        if (st === State.Failed) brokenParent = cur;
        break;
      }
      state.set(cur.record.externalId, State.OnPath);
      path.push(cur);
      const pid = cur.record.parentId;
      if (pid === null) break;
      const parent = byId.get(pid);
      if (parent === undefined) {
        path.pop();
        const parentLine = failedIds.get(pid);
        if (parentLine !== undefined) failedParent(cur, parentLine);
        else fail(cur, `parent group "${pid}" does not exist in this file`,
          `add group "${pid}" to the groups file, or leave "${parentName}" empty for a top-level group`);
        brokenParent = cur;
        break;
      }
      cur = parent;
    }
    for (let i = path.length - 1; i >= 0; i--) {
      const n = path[i];
      if (brokenParent !== null) {
        failedParent(n, brokenParent.line);
        brokenParent = n;
      } else {
        state.set(n.record.externalId, State.Ok);
      }
    }
  }

  const valid = entries.filter((e) => state.get(e.record.externalId) === State.Ok && byId.get(e.record.externalId) === e);
  warnSameNames(valid, file, mapper.nameColumn.name, problems);
  return { valid, problems, fileProblems, failedRows };
}

function cycleProblem(cycle: GroupEntry[], file: string, column: string): Problem {
  // Start with the member that comes first in the file; follow parent links from there.
  let first = 0;
  for (let i = 1; i < cycle.length; i++) if (cycle[i].line < cycle[first].line) first = i;
  const ordered = [...cycle.slice(first), ...cycle.slice(0, first)];
  const ids = ordered.map((e) => e.record.externalId);
  return {
    level: 'file',
    file,
    line: ordered[0].line,
    column,
    message: `groups form a cycle: ${[...ids, ids[0]].join(' → ')} (each group's parent is the next one)`,
    hint: `a group cannot be its own ancestor: fix "${column}" on lines ${ordered.map((e) => e.line).join(', ')} so the chain ends at a top-level group (empty parent)`,
  };
}

function warnSameNames(valid: readonly GroupEntry[], file: string, column: string, out: Problem[]): void {
  const seen = new Map<string, number>();
  for (const e of valid) {
    const { name, parentId, externalId } = e.record;
    // Case-insensitive and Unicode-normalised: "Sales London" and "sales london " look the same to users.
    const key = `${parentId ?? ''}\u0000${name.normalize('NFC').trim().toLowerCase()}`;
    const firstLine = seen.get(key);
    if (firstLine === undefined) { seen.set(key, e.line); continue; }
    const where = parentId === null ? 'at the top level' : `under parent "${parentId}"`;
    out.push(rowProblem(file, e.line, `group name "${name}" is used twice ${where} (also on line ${firstLine})`, {
      level: 'warning', column, value: name, entityId: externalId,
      hint: 'both groups are applied, but people will not tell them apart: rename one if that is not intended',
    }));
  }
}
