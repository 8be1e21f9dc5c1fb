// Virtual paths inside a tenant's jail. The customer sees the tenant's home folder as `/`.
// A virtual path is normalised lexically (chroot semantics: `..` at the root stays at the root), so the
// result is a list of plain name segments that can only ever name something below the home folder.
// Symlinks are handled by the caller (realpath of the parent + lstat/O_NOFOLLOW on the last segment).
import { REPORTS_DIR } from '../config/tenant-dirs.js';

export class PathError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PathError';
  }
}

export const MAX_PATH_BYTES = 1024;
export const MAX_NAME_BYTES = 255;

/** The folder in the tenant root the core writes run reports to (readable/deletable, not writable). */
export { REPORTS_DIR };

// Control characters (incl. NUL) are never valid in a name: they break logs, listings and some filesystems.
// eslint-disable-next-line no-control-regex
const CONTROL_CHARS = /[\u0000-\u001f\u007f]/;

/**
 * Normalises a client path (relative paths are relative to `/`) into a relative path without leading
 * slash: `''` is the root, `'sub/x.csv'` a file in a subfolder. Throws PathError for NUL/control
 * characters and over-long names.
 */
export function normalizeVirtualPath(input: string): string {
  if (typeof input !== 'string') throw new PathError('invalid path');
  if (CONTROL_CHARS.test(input)) throw new PathError('path contains control characters (NUL or similar)');
  if (Buffer.byteLength(input) > MAX_PATH_BYTES) throw new PathError(`path longer than ${MAX_PATH_BYTES} bytes`);
  const out: string[] = [];
  for (const seg of input.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') {
      out.pop();
      continue;
    }
    if (Buffer.byteLength(seg) > MAX_NAME_BYTES) throw new PathError(`name longer than ${MAX_NAME_BYTES} bytes`);
    out.push(seg);
  }
  return out.join('/');
}

/** `'/' + rel` — what the client is shown. */
export function toVirtual(rel: string): string {
  return '/' + rel;
}

export function parentOf(rel: string): string {
  const i = rel.lastIndexOf('/');
  return i < 0 ? '' : rel.slice(0, i);
}

export function baseName(rel: string): string {
  const i = rel.lastIndexOf('/');
  return i < 0 ? rel : rel.slice(i + 1);
}

/** True for `/reports` and anything below it. */
export function isInReports(rel: string): boolean {
  return rel === REPORTS_DIR || rel.startsWith(REPORTS_DIR + '/');
}

/**
 * Temporary upload names: a rename from one of these to a final name completes the upload; CLOSE of a
 * write handle on one of these does not. `*.filepart` (WinSCP), `*.part`, `*.partial` (rclone), `*.tmp`,
 * and dot-files.
 */
export function isTemporaryName(rel: string): boolean {
  const name = baseName(rel).toLowerCase();
  return name.startsWith('.') || /\.(filepart|part|partial|tmp)$/.test(name);
}

/**
 * File name under `<tenant>/partial/` for an in-progress upload of `rel`: the relative path with `/` and
 * `%` percent-encoded (flat folder, one file per tenant+path, reversible so listings can show it).
 */
export function partialKey(rel: string): string {
  return rel.replace(/%/g, '%25').replace(/\//g, '%2F');
}

export function relFromPartialKey(key: string): string {
  return key.replace(/%2F/gi, '/').replace(/%25/g, '%');
}
