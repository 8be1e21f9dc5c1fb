// One open file handle: every READ, WRITE and resize of it passes through here. It owns what a hostile client
// could abuse — offsets and lengths are validated before any I/O, growth is charged to the tenant's quota (the
// one gate), READ bytes are admitted against the session's budget, and every request it takes gets its answer
// exactly once — so a request can never leave a descriptor open or a CLOSE waiting.
import { createHash, type Hash } from 'node:crypto';
import fs from 'node:fs';
import type { Logger } from 'pino';
import type { IoBudget } from './io-budget.js';
import { toVirtual } from './paths.js';
import type { TenantQuota } from './quota.js';
import { STATUS_CODE, SftpStatusError, fail } from './status.js';
import type { UploadState } from './tenant-store.js';

/** Longest READ answered (clients ask for 32–256 KiB). */
export const MAX_READ = 255 * 1024;
/** Most WRITEs / bytes merged into one pwritev. */
const MAX_WRITE_BATCH = 256;
const MAX_WRITE_BATCH_BYTES = 8 * 1024 * 1024;

export interface TransferEnv {
  quota: TenantQuota;
  budget: IoBudget;
  log: Logger;
  maxFileBytes: number;
}

/** The outcome of one READ/WRITE: an error, or for READ the bytes (null at end of file). */
export type IoAnswer = (err: unknown, data?: Buffer | null) => void;

interface QueuedWrite {
  pos: number;
  data: Buffer;
  answer: IoAnswer;
}

/** An offset as the protocol gives it (uint64 as a JS number): usable only when exact. */
function checkOffset(offset: number): void {
  if (!Number.isSafeInteger(offset) || offset < 0) fail(STATUS_CODE.FAILURE, `Offset ${offset} is out of range`);
}

export class Transfer {
  /** Set when the handle writes an upload (a partial file). */
  upload: UploadState | undefined;
  append = false;
  appendPos = 0;
  bytesWritten = 0;
  bytesRead = 0;
  hash: Hash | null = null;
  hashedUpTo = 0;
  /** Why the upload can no longer complete (a limit was hit, a disk error). */
  failed: string | undefined;
  readonly openedAt = Date.now();
  private pending = 0;
  private readonly drained: (() => void)[] = [];
  /** WRITEs waiting for the disk, in arrival order, and whether a disk write is under way. */
  private readonly queue: QueuedWrite[] = [];
  private writing = false;
  /** Refused WRITEs since open: logged once, counted at close. */
  refusedWrites = 0;
  private refusedReads = 0;

  constructor(
    readonly id: number,
    readonly fd: number,
    readonly rel: string,
    readonly hostPath: string,
    readonly readable: boolean,
    readonly writable: boolean,
    private readonly env: TransferEnv,
  ) {}

  /** Starts hashing an upload that is empty now (the bytes are hashed as they arrive in order). */
  startHash(): void {
    this.hash = createHash('sha256');
    this.hashedUpTo = 0;
  }

  /** Size of the upload as the quota knows it. */
  get size(): number {
    return this.upload?.size ?? 0;
  }

  read(offset: number, len: number, answer: IoAnswer): void {
    try {
      if (!this.readable) fail(STATUS_CODE.PERMISSION_DENIED, 'Handle not open for reading');
      checkOffset(offset);
    } catch (e) {
      this.refuseRead(e);
      throw e;
    }
    const n = Math.min(len >>> 0, MAX_READ);
    if (n === 0) return answer(null, Buffer.alloc(0));
    this.pending++;
    this.env.budget.admitRead(n, (cancelled) => {
      if (cancelled) {
        this.settle();
        return answer(new SftpStatusError(STATUS_CODE.FAILURE, 'Session closed'));
      }
      const buf = Buffer.allocUnsafe(n);
      const done = (err: unknown, got: number) => {
        this.env.budget.readDone(n);
        this.settle();
        if (err) return answer(err);
        if (got === 0) return answer(null, null);
        this.bytesRead += got;
        answer(null, got === n ? buf : buf.subarray(0, got));
      };
      try {
        fs.read(this.fd, buf, 0, n, offset, done);
      } catch (e) {
        done(e, 0);
      }
    });
  }

  write(offset: number, data: Buffer, answer: IoAnswer): void {
    const len = data.length;
    let pos: number;
    try {
      if (!this.writable) fail(STATUS_CODE.PERMISSION_DENIED, 'Handle not open for writing');
      if (this.upload && this.upload.owner !== this) fail(STATUS_CODE.FAILURE, 'This upload was taken over by a newer open of the same file');
      pos = this.append ? this.appendPos : offset;
      checkOffset(pos);
      this.reserve(pos + len);
    } catch (e) {
      this.refuseWrite(e);
      throw e;
    }
    const end = pos + len;
    if (this.append) this.appendPos = end;
    if (this.hash) {
      if (pos === this.hashedUpTo) {
        this.hash.update(data);
        this.hashedUpTo = end;
      } else {
        this.hash = null; // out of order or rewritten: hash the file at completion
      }
    }
    if (len === 0) return answer(null);
    this.pending++;
    this.env.budget.writeBytes += len;
    this.queue.push({ pos, data, answer });
    if (!this.writing) this.flushWrites();
  }

  /** Sets the file's size (FSETSTAT/SETSTAT size). Growth is charged like a WRITE past the end. */
  async resize(size: number): Promise<void> {
    if (!this.writable) fail(STATUS_CODE.PERMISSION_DENIED, 'Handle not open for writing');
    await this.idle();
    const fd = this.fd;
    await resizeUpload(this.env, this.upload, size, (n) => new Promise<void>((res, rej) => fs.ftruncate(fd, n, (e) => (e ? rej(e) : res()))));
    if (this.append) this.appendPos = size;
    if (this.hash && this.hashedUpTo !== size) this.hash = null;
  }

  /** Checks a new end of file against the file size limit and charges any growth to the quota. */
  private reserve(end: number): void {
    const { maxFileBytes, quota, log } = this.env;
    if (end > maxFileBytes) {
      this.failed = 'file too large';
      if (this.refusedWrites === 0) log.warn({ event: 'limit_file_size', path: toVirtual(this.rel), limit: maxFileBytes }, 'file size limit reached');
      fail(STATUS_CODE.FAILURE, `File too large: the limit is ${maxFileBytes} bytes`);
    }
    if (this.upload && end > this.upload.size) {
      try {
        quota.grow(end - this.upload.size);
      } catch (e) {
        this.failed = 'quota exceeded';
        if (this.refusedWrites === 0) log.warn({ event: 'limit_quota', path: toVirtual(this.rel) }, 'tenant quota reached');
        throw e;
      }
      this.upload.size = end;
    }
  }

  private refuseWrite(e: unknown): void {
    if (this.refusedWrites++ === 0) {
      this.env.log.warn({ event: 'write_refused', path: toVirtual(this.rel), reason: (e as Error).message }, 'write refused (further refusals on this handle are counted at close)');
    }
  }

  private refuseRead(e: unknown): void {
    if (this.refusedReads++ === 0) {
      this.env.log.warn({ event: 'read_refused', path: toVirtual(this.rel), reason: (e as Error).message }, 'read refused (further refusals on this handle are counted at close)');
    }
  }

  /** What the close audit event reports about refusals. */
  get refusals(): { refusedWrites?: number; refusedReads?: number } {
    return { refusedWrites: this.refusedWrites || undefined, refusedReads: this.refusedReads || undefined };
  }

  /**
   * One disk write at a time: the WRITEs that arrived meanwhile go out together, contiguous runs as one pwritev
   * (each at its own offset). Each WRITE is answered once its bytes are written.
   */
  private flushWrites(): void {
    const q = this.queue;
    if (q.length === 0) {
      this.writing = false;
      return;
    }
    this.writing = true;
    let n = 1;
    let bytes = q[0].data.length;
    while (n < q.length && n < MAX_WRITE_BATCH && bytes < MAX_WRITE_BATCH_BYTES && q[n].pos === q[n - 1].pos + q[n - 1].data.length) {
      bytes += q[n].data.length;
      n++;
    }
    const batch = q.splice(0, n);
    const done = (err: NodeJS.ErrnoException | null) => {
      this.env.budget.writeBytes -= bytes;
      if (err) {
        this.failed = `write error ${err.code ?? ''}`;
        this.env.log.error({ event: 'write_error', path: toVirtual(this.rel), err: err.message }, 'write failed');
      } else {
        this.bytesWritten += bytes;
      }
      for (const w of batch) {
        this.settle();
        w.answer(err);
      }
      this.flushWrites();
    };
    try {
      if (batch.length === 1) writeAll(this.fd, batch[0].data, batch[0].pos, done);
      else writevAll(this.fd, batch.map((w) => w.data), batch[0].pos, done);
    } catch (e) {
      done(e as NodeJS.ErrnoException);
    }
  }

  private settle(): void {
    this.pending--;
    if (this.pending === 0 && this.drained.length) {
      for (const w of this.drained.splice(0)) w();
    }
  }

  /** Resolves when no READ or WRITE of this handle is under way or waiting. */
  idle(): Promise<void> {
    if (this.pending === 0) return Promise.resolve();
    return new Promise((resolve) => this.drained.push(resolve));
  }
}

/**
 * Resizes an upload: the same size limit and quota gate as a WRITE past the end; shrinking gives the bytes back.
 * Used by a handle's FSETSTAT and by a path's SETSTAT (which may name an upload no handle of this session holds).
 */
export async function resizeUpload(
  env: Pick<TransferEnv, 'quota' | 'maxFileBytes'>,
  upload: UploadState | undefined,
  size: number,
  truncate: (size: number) => Promise<void>,
): Promise<void> {
  checkOffset(size);
  if (size > env.maxFileBytes) fail(STATUS_CODE.FAILURE, `File too large: the limit is ${env.maxFileBytes} bytes`);
  const before = upload?.size ?? 0;
  env.quota.grow(size - before);
  if (upload) upload.size = size;
  try {
    await truncate(size);
  } catch (e) {
    if (upload) upload.size = before;
    env.quota.adjust(before - size);
    throw e;
  }
}

function writevAll(fd: number, bufs: Buffer[], position: number, cb: (err: NodeJS.ErrnoException | null) => void): void {
  fs.writev(fd, bufs, position, (err, n) => {
    if (err) return cb(err);
    let rest = n;
    let i = 0;
    while (i < bufs.length && rest >= bufs[i].length) rest -= bufs[i++].length;
    if (i === bufs.length) return cb(null);
    const remaining = [bufs[i].subarray(rest), ...bufs.slice(i + 1)];
    writevAll(fd, remaining, position + n, cb);
  });
}

function writeAll(fd: number, data: Buffer, position: number, cb: (err: NodeJS.ErrnoException | null) => void): void {
  fs.write(fd, data, 0, data.length, position, (err, n) => {
    if (err) return cb(err);
    if (n < data.length) return writeAll(fd, data.subarray(n), position + n, cb);
    cb(null);
  });
}
