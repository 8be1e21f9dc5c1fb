// The one interface every source uses to hand a completed file to intake (the SFTP server, sftp-pull, api):
// the source writes under a temporary name in the tenant's partial folder, then `deliver` fsyncs it, moves it
// atomically into the inbox and remembers its sha256, so the receive step never hashes it a second time.
// Intake knows no source; a source knows only this file.
//
//   <tenantsRoot>/<id>/partial/   files being written, never seen by the watcher
//   <tenantsRoot>/<id>/inbox/     completed files: inbox/<UTC stamp>-<seq>/<name>
//
// Every completed file gets its own folder in the inbox, named so that folders sort in arrival order; inside it
// the file keeps its exact name and sub-path (`sub/x.csv` → inbox/20250102T030405123Z-000007/sub/x.csv), so
// file-name patterns keep matching and an unprocessed file is never overwritten.
import { randomBytes } from 'node:crypto';
import fs, { promises as fsp } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import { tenantDirs } from '../config/tenant-dirs.js';
import { sha256File } from './sha256.js';

/** What the source knows about a delivered file and the receive step should not work out again. */
export interface Carried {
  sha256: string;
  size: number;
  /** The file is a source's rendering of records (api): problems say "record N" instead of "line N". */
  recordNumbers?: boolean;
}

export interface Delivery extends Carried {
  tenant: string;
  /** The name the file is received under (relative, `/`-separated). */
  name: string;
  inboxPath: string;
}

let inboxSeq = 0;
const carried = new Map<string, Carried>();

function stamp(d: Date): string {
  return d.toISOString().replace(/[-:]/g, '').replace('.', '');
}

export async function fsyncDir(path: string): Promise<void> {
  let fh: fsp.FileHandle | undefined;
  try {
    fh = await fsp.open(path, 'r');
    await fh.sync();
  } catch {
    // best effort: some filesystems refuse fsync on directories
  } finally {
    await fh?.close().catch(() => undefined);
  }
}

/** A fresh temporary path in the tenant's partial folder for a source to write a file into. */
export function arrivalPath(tenantsRoot: string, tenant: string, label: string): string {
  const dir = tenantDirs(tenantsRoot, tenant).partial;
  fs.mkdirSync(dir, { recursive: true, mode: 0o750 });
  return join(dir, `.arrival-${randomBytes(6).toString('hex')}-${label.replace(/[^A-Za-z0-9._-]/g, '_')}`);
}

/**
 * Hands a completed file to intake: fsync, atomic move into a new inbox folder, the sha256 carried through.
 * `tempPath` must be on the same filesystem as the inbox (arrivalPath gives one). Without `sha256` the file is
 * hashed here, once. Set `fsynced` when the caller has already fsynced the file (the SFTP server does at CLOSE).
 */
export async function deliver(
  tenantsRoot: string, tenant: string, tempPath: string, name: string,
  o: { sha256?: string; fsynced?: boolean; recordNumbers?: boolean; now?: Date } = {},
): Promise<Delivery> {
  if (!o.fsynced) {
    const fh = await fsp.open(tempPath, 'r+');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  }
  const size = (await fsp.stat(tempPath)).size;
  const sha256 = o.sha256 ?? (await sha256File(tempPath));
  const inbox = tenantDirs(tenantsRoot, tenant).inbox;
  inboxSeq = (inboxSeq + 1) % 1_000_000;
  const folder = join(inbox, `${stamp(o.now ?? new Date())}-${String(inboxSeq).padStart(6, '0')}`);
  const inboxPath = join(folder, name);
  await fsp.mkdir(dirname(inboxPath), { recursive: true, mode: 0o750 });
  const info: Carried = { sha256, size, ...(o.recordNumbers ? { recordNumbers: true } : {}) };
  carried.set(inboxPath, info);
  try {
    await fsp.rename(tempPath, inboxPath);
  } catch (err) {
    carried.delete(inboxPath);
    throw err;
  }
  await fsyncDir(dirname(inboxPath));
  return { tenant, name, inboxPath, ...info };
}

/**
 * What the source carried for an inbox file, if it was delivered by this process and is unchanged since
 * (same size); a file found in the inbox after a restart has nothing carried and is hashed by the receive step.
 */
export function carriedFor(inboxPath: string): Carried | undefined {
  const c = carried.get(inboxPath);
  if (!c) return undefined;
  try {
    if (fs.statSync(inboxPath).size === c.size) return c;
  } catch {
    // gone
  }
  carried.delete(inboxPath);
  return undefined;
}

/** Called once a file has left the inbox. */
export function forgetCarried(inboxPath: string): void {
  carried.delete(inboxPath);
}

/** Once a processed file has left the inbox, removes the arrival folders it leaves empty (never the inbox itself). */
export async function removeEmptyArrivalFolders(inboxRoot: string, inboxPath: string): Promise<void> {
  let dir = dirname(inboxPath);
  const root = inboxRoot.replace(/[/\\]+$/, '');
  while (dir !== root && !relative(root, dir).startsWith('..') && relative(root, dir) !== '') {
    try {
      await fsp.rmdir(dir);
    } catch {
      break;
    }
    dir = dirname(dir);
  }
}

/** The path of an inbox file relative to its arrival folder (`sub/x.csv`); files put at the top keep their name. */
export function inboxRelativeName(inboxRoot: string, inboxPath: string): string {
  const parts = relative(inboxRoot, inboxPath).split(sep);
  return (parts.length > 1 && /^\d{8}T\d{9}Z-\d{6}$/.test(parts[0]) ? parts.slice(1) : parts).join('/');
}
