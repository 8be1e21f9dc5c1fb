// Header checks: separator, column count, and the header recorded at setup.
import type { Problem } from '../model.js';
import type { TenantFileSpec } from '../config/schema.js';

const SEPARATORS: readonly { char: string; label: string }[] = [
  { char: ',', label: "',' (comma)" },
  { char: '\t', label: 'tab' },
  { char: '|', label: "'|' (pipe)" },
];

const SEPARATOR_HINT =
  'export the file again with ";" as the separator (in Excel: Save As → "CSV UTF-8"; the separator follows the ' +
  'Windows "List separator" setting) — renaming a file does not change its separator';

/**
 * The separator a single-column header line seems to use instead of ';', if any:
 * the candidate that splits it most.
 */
export function foreignSeparator(line: string): { char: string; label: string } | undefined {
  if (line.includes(';')) return undefined;
  let best: { char: string; label: string } | undefined;
  let bestCount = 0;
  for (const s of SEPARATORS) {
    const count = line.split(s.char).length - 1;
    if (count > bestCount) { best = s; bestCount = count; }
  }
  return best;
}

export function separatorProblem(file: string, line: number, found: { label: string }): Problem {
  return {
    level: 'file', file, line,
    message: `the header is separated by ${found.label} — wt-sync needs ';' (semicolon)`,
    hint: SEPARATOR_HINT,
  };
}

const quote = (s: string | undefined) => (s === undefined ? 'nothing' : `"${s}"`);

/**
 * Column count against the mapping, then names against the header recorded at setup.
 * Names are compared trimmed and case-insensitively: "FirstName" for "Firstname" is
 * the same column re-typed, not a moved one, and mapping is by position anyway.
 */
export function checkHeader(header: readonly string[], spec: TenantFileSpec, file: string, line: number): Problem[] {
  const expected = spec.header;
  const diffs: string[] = [];
  if (expected !== undefined) {
    const n = Math.max(expected.length, header.length);
    for (let i = 0; i < n; i++) {
      const want = expected[i]?.trim();
      const got = header[i];
      if (want === undefined || got === undefined || want.toLowerCase() !== got.toLowerCase()) {
        diffs.push(`column ${i + 1}: expected ${quote(want)}, found ${quote(got)}`);
      }
    }
  }
  const remap = 'columns are mapped by position, as set up at onboarding: restore the original column order, or ask WT to remap the columns';
  if (header.length !== spec.columns.length) {
    return [{
      level: 'file', file, line,
      message: `the header has ${header.length} columns but the tenant's mapping has ${spec.columns.length}` +
        (diffs.length > 0 ? `; ${diffs.join('; ')}` : ''),
      hint: remap,
    }];
  }
  if (diffs.length > 0) {
    return [{
      level: 'file', file, line,
      message: `the header differs from the one recorded at setup — ${diffs.join('; ')}`,
      hint: remap,
    }];
  }
  return [];
}
