// Completing an upload: fsync, sha256 (from the bytes hashed in flight when they arrived in order), and the
// hand-over to intake (intake/handover.ts: the atomic move into the tenant's inbox, the sha256 carried along).
import type { Hash } from 'node:crypto';
import fs, { constants as FS, promises as fsp } from 'node:fs';
import type { Logger } from 'pino';
import { deliver } from '../intake/handover.js';
import { toVirtual } from './paths.js';
import type { CompletedUpload } from './server.js';
import { toSec } from './status.js';
import type { TenantStore } from './tenant-store.js';

export interface Completion {
  /** Path the upload was written under (its partial key), and the final name it completes as. */
  fromRel: string;
  name: string;
  partialPath: string;
  /** An open descriptor of the partial file (closed here), or none: the file is opened here. */
  fd?: number;
  hash: Hash | null;
  hashedUpTo: number;
  startedAt: number;
}

export async function completeUpload(
  tenant: TenantStore,
  log: Logger,
  onUploadComplete: (upload: CompletedUpload) => void,
  c: Completion,
): Promise<void> {
  const t0 = Date.now();
  let size: number;
  if (c.fd !== undefined) {
    const fd = c.fd;
    try {
      await new Promise<void>((res, rej) => fs.fsync(fd, (e) => (e ? rej(e) : res())));
      size = await new Promise<number>((res, rej) => fs.fstat(fd, (e, st) => (e ? rej(e) : res(st.size))));
    } finally {
      await new Promise<void>((res) => fs.close(fd, () => res()));
    }
  } else {
    const fh = await fsp.open(c.partialPath, FS.O_RDONLY | FS.O_NOFOLLOW);
    try {
      await fh.sync();
      size = (await fh.stat()).size;
    } finally {
      await fh.close();
    }
  }
  // Out-of-order or rewritten bytes were not hashed in flight: the hand-over hashes the file then, once.
  const { inboxPath, sha256 } = await deliver(tenant.tenantsRoot, tenant.tenantId, c.partialPath, c.name, {
    sha256: c.hash && c.hashedUpTo === size ? c.hash.digest('hex') : undefined, fsynced: true,
  });
  tenant.uploads.delete(c.fromRel);
  tenant.rememberCompleted(c.name, { size, mtime: toSec(Date.now()) });
  const durationMs = Date.now() - c.startedAt;
  const finalizeMs = Date.now() - t0;
  log.info({ event: 'upload_completed', path: toVirtual(c.name), size, sha256, durationMs, finalizeMs, inboxPath }, 'upload completed');
  try {
    onUploadComplete({ tenantId: tenant.tenantId, name: c.name, inboxPath, size, sha256, durationMs });
  } catch (e) {
    log.error({ event: 'upload_callback_error', err: e instanceof Error ? e.message : String(e) }, 'onUploadComplete threw');
  }
}
