// An open folder listing (OPENDIR/READDIR), read page by page from the directory stream: an open listing holds
// one page and one directory descriptor, never a copy of the folder, however large the folder is.
//
// A folder shows its real files and folders (never symlinks or special files), then the uploads in progress whose
// path is in that folder (so clients can see and resume them).
import type { Dir } from 'node:fs';
import { promises as fsp } from 'node:fs';
import type { FileEntry } from 'ssh2';
import { baseName, parentOf, relFromPartialKey } from './paths.js';
import { attrsOf, longname } from './status.js';
import type { TenantStore } from './tenant-store.js';

export class DirListing {
  private dir: Dir | undefined;
  private phase: 'home' | 'partial' | 'done' = 'home';
  /** READDIRs of one handle are served one after the other (a client may pipeline them). */
  private chain: Promise<unknown> = Promise.resolve();

  constructor(
    readonly id: number,
    readonly rel: string,
    private readonly hostPath: string,
    private readonly tenant: TenantStore,
  ) {}

  /** Up to `max` entries, or null when the listing is exhausted. */
  next(max: number): Promise<FileEntry[] | null> {
    const page = this.chain.then(() => this.page(max));
    this.chain = page.catch(() => undefined);
    return page;
  }

  private async page(max: number): Promise<FileEntry[] | null> {
    const out: FileEntry[] = [];
    const now = Date.now();
    const owner = this.tenant.tenantId;
    while (out.length < max && this.phase !== 'done') {
      if (!this.dir) {
        try {
          this.dir = await fsp.opendir(this.phase === 'home' ? this.hostPath : this.tenant.partialDir, { bufferSize: 64 });
        } catch (e) {
          if (this.phase === 'home') throw e;
          this.phase = 'done'; // no partial folder yet
          break;
        }
      }
      const d = await this.dir.read();
      if (!d) {
        await this.closeDir();
        this.phase = this.phase === 'home' ? 'partial' : 'done';
        continue;
      }
      const entry = this.phase === 'home' ? await this.homeEntry(d.name, d.isFile() || d.isDirectory()) : await this.partialEntry(d.name);
      if (entry) out.push({ filename: entry.name, longname: longname(entry.name, entry.attrs, owner, now), attrs: entry.attrs });
    }
    return out.length === 0 && this.phase === 'done' ? null : out;
  }

  private async homeEntry(name: string, plain: boolean): Promise<{ name: string; attrs: ReturnType<typeof attrsOf> } | undefined> {
    if (!plain) return undefined; // symlinks and special files are never shown
    try {
      const st = await fsp.lstat(`${this.hostPath}/${name}`);
      return st.isFile() || st.isDirectory() ? { name, attrs: attrsOf(st) } : undefined;
    } catch {
      return undefined; // removed meanwhile
    }
  }

  private async partialEntry(key: string): Promise<{ name: string; attrs: ReturnType<typeof attrsOf> } | undefined> {
    const rel = relFromPartialKey(key);
    if (parentOf(rel) !== this.rel) return undefined;
    const name = baseName(rel);
    try {
      const st = await fsp.lstat(`${this.tenant.partialDir}/${key}`);
      if (!st.isFile()) return undefined;
      // A real entry of the same name was listed already.
      const shadow = await fsp.lstat(`${this.hostPath}/${name}`).catch(() => undefined);
      if (shadow && (shadow.isFile() || shadow.isDirectory())) return undefined;
      return { name, attrs: attrsOf(st) };
    } catch {
      return undefined; // completed meanwhile
    }
  }

  private async closeDir(): Promise<void> {
    const dir = this.dir;
    this.dir = undefined;
    await dir?.close().catch(() => undefined);
  }

  /** Releases the directory descriptor (CLOSE, or the session's end). */
  close(): Promise<void> {
    this.phase = 'done';
    return this.closeDir();
  }
}
