// A tenant's storage quota: bytes and entries held in home/ + partial/ + inbox/ (archive/ is the service's own
// retention and is not counted). One gate for every way an upload grows — WRITE past the end and resize alike —
// so no path around it exists.
import type { Dirent } from 'node:fs';
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { REPORTS_DIR } from '../config/tenant-dirs.js';
import { STATUS_CODE, fail } from './status.js';

export interface QuotaLimits {
  /** Bytes (apparent size: a sparse file counts whole). Infinity = no limit. */
  tenantQuotaBytes: number;
  /** Files and folders the tenant may create (uploads in progress and waiting in the inbox included). */
  tenantMaxEntries: number;
}

export interface QuotaFolders {
  home: string;
  partial: string;
  inbox: string;
}

/** Re-read from disk at most this often; in between, growth and shrinkage are counted as they happen. */
const RESCAN_MS = 5000;

export class TenantQuota {
  bytes = 0;
  entries = 0;
  private scannedAt = 0;
  private scanning: Promise<void> | undefined;

  constructor(
    private readonly folders: QuotaFolders,
    private readonly limits: QuotaLimits,
  ) {}

  get limited(): boolean {
    return Number.isFinite(this.limits.tenantQuotaBytes) || Number.isFinite(this.limits.tenantMaxEntries);
  }

  /** Brings the counts up to date with the disk (files the core archived, reports written) when stale. */
  async refresh(): Promise<void> {
    if (!this.limited || Date.now() - this.scannedAt < RESCAN_MS) return;
    this.scanning ??= (async () => {
      const home = await scan(this.folders.home, (rel) => rel === REPORTS_DIR);
      const partial = await scan(this.folders.partial);
      const inbox = await scan(this.folders.inbox, undefined, false);
      this.bytes = home.bytes + partial.bytes + inbox.bytes;
      this.entries = home.entries + partial.entries + inbox.entries;
      this.scannedAt = Date.now();
    })().finally(() => {
      this.scanning = undefined;
    });
    await this.scanning;
  }

  /** Refuses when the tenant is already at its byte quota (an OPEN for write). */
  checkNotFull(): void {
    const limit = this.limits.tenantQuotaBytes;
    if (this.bytes >= limit) fail(STATUS_CODE.FAILURE, `Tenant storage quota of ${limit} bytes exceeded`);
  }

  /** The one gate for growth: `delta` more bytes, or a refusal that names the quota. */
  grow(delta: number): void {
    if (delta <= 0) return this.adjust(delta);
    const limit = this.limits.tenantQuotaBytes;
    if (this.bytes + delta > limit) fail(STATUS_CODE.FAILURE, `Tenant storage quota of ${limit} bytes exceeded`);
    this.bytes += delta;
  }

  /** Unconditional change (a shrink, or undoing a charge whose I/O failed). */
  adjust(delta: number): void {
    this.bytes = Math.max(0, this.bytes + delta);
  }

  /** A new file or folder; refused past `tenantMaxEntries`. */
  addEntry(): void {
    const limit = this.limits.tenantMaxEntries;
    if (this.entries + 1 > limit) fail(STATUS_CODE.FAILURE, `Too many files and folders: the limit is ${limit} per tenant`);
    this.entries++;
  }

  /** A file or folder of `bytes` is gone. */
  removed(bytes: number, entries = 1): void {
    this.bytes = Math.max(0, this.bytes - bytes);
    this.entries = Math.max(0, this.entries - entries);
  }
}

/** Apparent bytes and entries under `dir`; `skip` names top-level entries left out; folders count unless told. */
async function scan(dir: string, skip?: (name: string) => boolean, countFolders = true): Promise<{ bytes: number; entries: number }> {
  let bytes = 0;
  let entries = 0;
  const walk = async (d: string, top: boolean): Promise<void> => {
    let list: Dirent[];
    try {
      list = await fsp.readdir(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of list) {
      if (top && skip?.(e.name)) continue;
      const p = join(d, e.name);
      if (e.isDirectory()) {
        if (countFolders) entries++;
        await walk(p, false);
      } else if (e.isFile()) {
        entries++;
        try {
          bytes += (await fsp.stat(p)).size;
        } catch {
          // vanished meanwhile
        }
      }
    }
  };
  await walk(dir, true);
  return { bytes, entries };
}
