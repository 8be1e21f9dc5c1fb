// Which snapshot type a file is, by the tenant's file-name patterns (globs on the base name, case-insensitive).
import path from 'node:path';
import type { TenantConfig } from '../config/schema.js';
import { FILE_TYPES, type FileType } from '../model.js';
import { globToRegExp } from '../config/patterns.js';

export { globToRegExp };

export type TypeMatch = { type: FileType } | { type: null; reason: string };

export function fileTypeOf(tenant: TenantConfig, fileName: string): TypeMatch {
  const base = path.basename(fileName);
  const matches = FILE_TYPES.filter((t) => {
    const spec = tenant.files[t];
    return spec !== undefined && globToRegExp(spec.pattern).test(base);
  });
  if (matches.length === 1) return { type: matches[0] };
  const patterns = FILE_TYPES.filter((t) => tenant.files[t]).map((t) => `${t} "${tenant.files[t]!.pattern}"`).join(', ');
  if (matches.length === 0) return { type: null, reason: `the file name "${base}" matches none of the tenant's file patterns (${patterns || 'none configured'})` };
  return { type: null, reason: `the file name "${base}" matches the patterns of ${matches.join(' and ')}; it must match exactly one (${patterns})` };
}
