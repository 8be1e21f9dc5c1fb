// Per-tenant storage behind the SFTP view.
//
//   <tenantsRoot>/<id>/home/      jail root, shown as `/` (folders, `/reports/` written by the core)
//   <tenantsRoot>/<id>/partial/   in-progress uploads, one file per tenant+path (see partialKey), not visible
//   <tenantsRoot>/<id>/inbox/     completed uploads: inbox/<UTC stamp>-<seq>/<path relative to `/`>
//
// Every completed upload gets its own folder in the inbox, named so that folders sort in arrival order; inside
// it the file keeps its exact name and sub-path (`sub/x.csv` → inbox/20250102T030405123Z-000007/sub/x.csv), so
// file-name patterns keep matching and an unprocessed file is never overwritten.
import type { Hash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import { tenantDirs } from '../config/tenant-dirs.js';
import { partialKey } from './paths.js';
import { TenantQuota, type QuotaLimits } from './quota.js';

export interface FinalAttrs {
  size: number;
  mtime: number;
}

/** State of one in-progress upload (tenant + path), shared by the handles that write it. */
export interface UploadState {
  rel: string;
  /** ms epoch of the first OPEN of this upload (a resumed upload keeps its original start if known). */
  startedAt: number;
  /** The handle currently allowed to write; an OPEN for write by another handle takes over. */
  owner: object | undefined;
  /** Size of the partial file as charged to the quota (every handle of this upload sees the same). */
  size: number;
}

let inboxSeq = 0;

function stamp(d: Date): string {
  return d.toISOString().replace(/[-:]/g, '').replace('.', '');
}


async function fsyncDir(path: string): Promise<void> {
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

export class TenantStore {
  readonly root: string;
  readonly home: string;
  readonly reports: string;
  readonly partialDir: string;
  readonly inbox: string;
  /** realpath of home, set by ready(). */
  homeReal = '';
  readonly uploads = new Map<string, UploadState>();
  private readonly recent = new Map<string, FinalAttrs & { expires: number }>();
  private readyPromise: Promise<void> | undefined;
  readonly quota: TenantQuota;

  constructor(
    tenantsRoot: string,
    readonly tenantId: string,
    private readonly recentMs: number,
    quotaLimits: QuotaLimits,
  ) {
    const dirs = tenantDirs(tenantsRoot, tenantId);
    this.root = dirs.root;
    this.home = dirs.home;
    this.reports = dirs.reports;
    this.partialDir = dirs.partial;
    this.inbox = dirs.inbox;
    this.quota = new TenantQuota({ home: this.home, partial: this.partialDir, inbox: this.inbox }, quotaLimits);
  }

  /** Creates the folders on demand (idempotent). */
  ready(): Promise<void> {
    this.readyPromise ??= (async () => {
      for (const d of [this.home, this.reports, this.partialDir, this.inbox]) {
        await fsp.mkdir(d, { recursive: true, mode: 0o750 });
      }
      this.homeReal = await fsp.realpath(this.home);
    })();
    this.readyPromise.catch(() => {
      this.readyPromise = undefined;
    });
    return this.readyPromise;
  }

  /** Host path of the home entry for `rel` (lexically inside home; symlinks are checked by the caller). */
  homePath(rel: string): string {
    return rel === '' ? this.home : join(this.home, rel);
  }

  partialPath(rel: string): string {
    return join(this.partialDir, partialKey(rel));
  }

  /** Remembers a just-completed name so STAT/SETSTAT right after CLOSE/RENAME answer with its final attributes. */
  rememberCompleted(rel: string, attrs: FinalAttrs): void {
    const now = Date.now();
    for (const [k, v] of this.recent) if (v.expires <= now) this.recent.delete(k);
    this.recent.set(rel, { ...attrs, expires: now + this.recentMs });
  }

  recentlyCompleted(rel: string): FinalAttrs | undefined {
    const r = this.recent.get(rel);
    if (!r) return undefined;
    if (r.expires <= Date.now()) {
      this.recent.delete(rel);
      return undefined;
    }
    return r;
  }

  forgetCompleted(rel: string): void {
    this.recent.delete(rel);
  }

  /**
   * Moves a finished partial file into the inbox atomically (the caller has fsynced it) and returns the
   * inbox path. The destination folder is new, so nothing is ever overwritten.
   */
  async moveToInbox(partialPath: string, rel: string): Promise<string> {
    const now = new Date();
    inboxSeq = (inboxSeq + 1) % 1_000_000;
    const folder = join(this.inbox, `${stamp(now)}-${String(inboxSeq).padStart(6, '0')}`);
    const dest = join(folder, rel);
    await fsp.mkdir(dirname(dest), { recursive: true, mode: 0o750 });
    await fsp.rename(partialPath, dest);
    await fsyncDir(dirname(dest));
    return dest;
  }
}

/**
 * For the core: once a processed file has left the inbox, removes the per-upload folders it leaves empty
 * (never the inbox itself).
 */
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

/** For the core: the path of an inbox file relative to its per-upload folder (`sub/x.csv`). */
export function inboxRelativeName(inboxRoot: string, inboxPath: string): string {
  const parts = relative(inboxRoot, inboxPath).split(sep);
  return (parts.length > 1 && /^\d{8}T\d{9}Z-\d{6}$/.test(parts[0]) ? parts.slice(1) : parts).join('/');
}

export type { Hash };
