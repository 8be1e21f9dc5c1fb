// Per-tenant storage behind the SFTP view.
//
//   <tenantsRoot>/<id>/home/      jail root, shown as `/` (folders, `/reports/` written by the core)
//   <tenantsRoot>/<id>/partial/   in-progress uploads, one file per tenant+path (see partialKey), not visible
//   <tenantsRoot>/<id>/inbox/     completed uploads, handed over through intake/handover.ts (its layout is there)
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
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
    readonly tenantsRoot: string,
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
}
