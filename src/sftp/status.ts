// What an SFTP answer says: status codes for refusals and errors, and file attributes as clients expect them.
import type { Stats } from 'node:fs';
import ssh2 from 'ssh2';
import type { Attributes } from 'ssh2';
import { PathError } from './paths.js';

export const { OPEN_MODE, STATUS_CODE } = ssh2.utils.sftp;

/** A refusal with the status code and message the client gets. */
export class SftpStatusError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

export const fail = (code: number, message: string): never => {
  throw new SftpStatusError(code, message);
};

export function errCode(e: unknown): string | undefined {
  return typeof e === 'object' && e !== null && 'code' in e ? String((e as { code: unknown }).code) : undefined;
}

/** True for errors that are an expected answer (a refusal, a path rule, an errno), not a bug. */
export function isExpectedError(e: unknown): boolean {
  return e instanceof SftpStatusError || e instanceof PathError || (errCode(e) !== undefined && !errCode(e)!.startsWith('ERR_'));
}

export function statusFor(e: unknown): { code: number; message: string } {
  if (e instanceof SftpStatusError) return { code: e.code, message: e.message };
  if (e instanceof PathError) return { code: STATUS_CODE.PERMISSION_DENIED, message: e.message };
  switch (errCode(e)) {
    case 'ENOENT':
    case 'ENOTDIR':
      return { code: STATUS_CODE.NO_SUCH_FILE, message: 'No such file' };
    case 'EACCES':
    case 'EPERM':
    case 'ELOOP':
      return { code: STATUS_CODE.PERMISSION_DENIED, message: 'Permission denied' };
    case 'EEXIST':
      return { code: STATUS_CODE.FAILURE, message: 'File already exists' };
    case 'ENOTEMPTY':
      return { code: STATUS_CODE.FAILURE, message: 'Directory not empty' };
    case 'EISDIR':
      return { code: STATUS_CODE.FAILURE, message: 'Is a directory' };
    case 'ENOSPC':
    case 'EDQUOT':
      return { code: STATUS_CODE.FAILURE, message: 'No space left on the server' };
    default:
      return { code: STATUS_CODE.FAILURE, message: 'Failure' };
  }
}

export function toSec(ms: number): number {
  return Math.floor(ms / 1000);
}

export function attrsOf(st: Stats): Attributes {
  const dir = st.isDirectory();
  return {
    mode: dir ? 0o040755 : 0o100644,
    uid: 0,
    gid: 0,
    size: dir ? 4096 : st.size,
    atime: toSec(st.atimeMs),
    mtime: toSec(st.mtimeMs),
  };
}

export function fileAttrs(size: number, mtime: number): Attributes {
  return { mode: 0o100644, uid: 0, gid: 0, size, atime: mtime, mtime };
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** `ls -l` style line, like OpenSSH's sftp-server: "-rw-r--r--    1 owner    group        123 Jan  2 03:04 name". */
export function longname(name: string, a: Attributes, owner: string, now = Date.now()): string {
  const mode = a.mode;
  const type = (mode & 0o170000) === 0o040000 ? 'd' : '-';
  let perms = '';
  for (let i = 8; i >= 0; i--) perms += mode & (1 << i) ? 'rwx'[(8 - i) % 3] : '-';
  const d = new Date(a.mtime * 1000);
  const recent = Math.abs(now - d.getTime()) < 182 * 24 * 3600 * 1000;
  const day = String(d.getUTCDate()).padStart(2, ' ');
  const when = recent
    ? `${MONTHS[d.getUTCMonth()]} ${day} ${String(d.getUTCHours()).padStart(2, '0')}:${String(d.getUTCMinutes()).padStart(2, '0')}`
    : `${MONTHS[d.getUTCMonth()]} ${day}  ${d.getUTCFullYear()}`;
  const o = owner.slice(0, 8).padEnd(8);
  return `${type}${perms} ${String(type === 'd' ? 2 : 1).padStart(3)} ${o} ${o} ${String(a.size).padStart(8)} ${when} ${name}`;
}

export function flagNames(flags: number): string {
  const names: string[] = [];
  for (const [n, v] of Object.entries(OPEN_MODE) as [string, number][]) if (typeof v === 'number' && flags & v) names.push(n);
  return names.join('|');
}
