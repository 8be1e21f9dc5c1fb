// One SFTP session (subsystem channel) of an authenticated tenant: the SFTP v3 request handlers.
//
// What the customer sees under `/` is the tenant's home folder (folders, reports) plus in-progress uploads
// (the partial files, so that clients can resume them); completed uploads have left for the inbox and are only
// remembered for a short while so STAT/SETSTAT right after CLOSE/RENAME succeed.
import type { CompletedUpload } from './server.js';
import { createHash, type Hash } from 'node:crypto';
import fs, { constants as FS, promises as fsp, type Stats } from 'node:fs';
import type { Logger } from 'pino';
import ssh2 from 'ssh2';
import type { Attributes, FileEntry, SFTPWrapper } from 'ssh2';
import {
  PathError,
  REPORTS_DIR,
  baseName,
  isInReports,
  isTemporaryName,
  normalizeVirtualPath,
  parentOf,
  partialKey,
  relFromPartialKey,
  toVirtual,
} from './paths.js';
import { sha256File } from '../intake/sha256.js';
import type { TenantStore, UploadState } from './tenant-store.js';

const { OPEN_MODE, STATUS_CODE } = ssh2.utils.sftp;

export interface SessionLimits {
  maxFileBytes: number;
  tenantQuotaBytes: number;
  maxHandlesPerSession: number;
  /** WRITE bytes held in memory per session before the server stops granting SSH window. */
  maxBufferedWriteBytes: number;
}


export interface SessionContext {
  tenant: TenantStore;
  logger: Logger;
  limits: SessionLimits;
  onUploadComplete: (upload: CompletedUpload) => void;
  /** Marks activity (idle timeout). */
  touch: () => void;
  isShuttingDown: () => boolean;
  /** Optional: called before each answer; lets the server coalesce answers into fewer socket writes. */
  batchReplies?: () => void;
}

/** Longest READ answered (clients ask for 32–256 KiB). */
const MAX_READ = 255 * 1024;
/** Entries per READDIR answer. */
const READDIR_BATCH = 128;
/** Stop reading from the channel when this many answers wait for the client's window. */
const PAUSE_OUT_PACKETS = 512;
const SSH_MAX_WINDOW = 2 * 1024 * 1024; // ssh2's channel window (lib/Channel.js MAX_WINDOW)
/** Most WRITEs / bytes merged into one pwritev. */
const MAX_WRITE_BATCH = 256;
const MAX_WRITE_BATCH_BYTES = 8 * 1024 * 1024;

class SftpStatusError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}
const fail = (code: number, message: string): never => {
  throw new SftpStatusError(code, message);
};

interface FileHandle {
  kind: 'file';
  id: number;
  fd: number;
  rel: string;
  hostPath: string;
  readable: boolean;
  writable: boolean;
  /** Set when the handle writes an upload (a partial file). */
  upload: UploadState | undefined;
  append: boolean;
  appendPos: number;
  size: number;
  bytesWritten: number;
  bytesRead: number;
  hash: Hash | null;
  hashedUpTo: number;
  pending: number;
  drained: (() => void)[];
  /** WRITEs waiting for the disk, in arrival order, and whether a disk write is under way. */
  queue: { reqid: number; pos: number; data: Buffer }[];
  writing: boolean;
  failed: string | undefined;
  openedAt: number;
}

interface DirHandle {
  kind: 'dir';
  id: number;
  rel: string;
  hostPath: string;
  entries: FileEntry[] | undefined;
  pos: number;
}

type Handle = FileHandle | DirHandle;

type Resolved = {
  rel: string;
  host: string;
  /** ok | missing (parent folder does not exist) | escape (a symlink in the chain) */
  parent: 'ok' | 'missing' | 'escape';
  kind: 'none' | 'file' | 'dir' | 'symlink' | 'other';
  st?: Stats;
};

function errCode(e: unknown): string | undefined {
  return typeof e === 'object' && e !== null && 'code' in e ? String((e as { code: unknown }).code) : undefined;
}

function statusFor(e: unknown): { code: number; message: string } {
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

function toSec(ms: number): number {
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

function fileAttrs(size: number, mtime: number): Attributes {
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

export class SftpSession {
  private readonly handles = new Map<number, Handle>();
  private nextHandle = 1;
  private inflightWriteBytes = 0;
  private paused = false;
  private finishing = 0;
  /** How often the session stopped reading because of buffered data (for tests and diagnostics). */
  pauses = 0;
  private pauseTimer: NodeJS.Timeout | undefined;
  private sftp: SFTPWrapper | undefined;
  private ended = false;
  readonly log: Logger;

  constructor(private readonly ctx: SessionContext) {
    this.log = ctx.logger;
  }

  private get tenant(): TenantStore {
    return this.ctx.tenant;
  }

  /** Number of open write handles and uploads being completed (in-flight uploads). */
  get openWrites(): number {
    let n = this.finishing;
    for (const h of this.handles.values()) if (h.kind === 'file' && h.writable) n++;
    return n;
  }

  attach(sftp: SFTPWrapper): void {
    this.sftp = sftp;
    this.installFlowControl(sftp);
    const on = (ev: string, fn: (reqid: number, ...args: never[]) => Promise<void> | void) => {
      sftp.on(ev, (reqid: number, ...args: never[]) => {
        this.ctx.touch();
        let r: Promise<void> | void;
        try {
          r = fn.call(this, reqid, ...args);
        } catch (e) {
          this.replyError(reqid, e);
          return;
        }
        if (r) r.catch((e) => this.replyError(reqid, e));
      });
    };
    on('OPEN', this.onOpen as never);
    on('READ', this.onRead as never);
    on('WRITE', this.onWrite as never);
    on('CLOSE', this.onClose as never);
    on('FSTAT', this.onFstat as never);
    on('FSETSTAT', this.onFsetstat as never);
    on('STAT', this.onStat as never);
    on('LSTAT', this.onStat as never);
    on('SETSTAT', this.onSetstat as never);
    on('OPENDIR', this.onOpendir as never);
    on('READDIR', this.onReaddir as never);
    on('REALPATH', this.onRealpath as never);
    on('REMOVE', this.onRemove as never);
    on('RENAME', this.onRename as never);
    on('MKDIR', this.onMkdir as never);
    on('RMDIR', this.onRmdir as never);
    on('READLINK', ((reqid: number) => this.reply(reqid, STATUS_CODE.OP_UNSUPPORTED, 'Symbolic links are not supported')) as never);
    on('SYMLINK', ((reqid: number) => this.reply(reqid, STATUS_CODE.OP_UNSUPPORTED, 'Symbolic links are not supported')) as never);
    sftp.on('close', () => void this.end('channel closed'));
    // The client sent EOF: finish up and close the channel (OpenSSH waits for the close before exiting).
    sftp.on('end', () => {
      void this.end('channel ended').finally(() => {
        try {
          sftp.end();
        } catch {
          // already closed
        }
      });
    });
    sftp.on('error', (err: Error) => {
      this.log.warn({ event: 'sftp_error', err: err.message }, 'SFTP protocol error');
    });
  }

  // ---------------------------------------------------------------------------------------------------------
  // Flow control: a WRITE's data is held until the disk write finished. When too many bytes wait, stop
  // granting SSH window (ssh2 does that when the channel's push() returns false) until the disk caught up.

  private installFlowControl(sftp: SFTPWrapper): void {
    const chan = sftp as unknown as {
      push: (data: Buffer | null) => unknown;
      _buffer?: unknown[];
    };
    if (typeof chan.push !== 'function') return;
    const orig = chan.push.bind(sftp);
    chan.push = (data: Buffer | null) => {
      const r = orig(data);
      if (data !== null && this.mustPause()) {
        if (!this.paused) this.pauses++;
        this.paused = true;
        if (!this.pauseTimer) {
          this.pauseTimer = setInterval(() => this.maybeResume(), 20);
          this.pauseTimer.unref();
        }
        return false;
      }
      return r;
    };
  }

  private outQueued(): number {
    const b = (this.sftp as unknown as { _buffer?: unknown[] } | undefined)?._buffer;
    return Array.isArray(b) ? b.length : 0;
  }

  private mustPause(): boolean {
    return this.inflightWriteBytes > this.ctx.limits.maxBufferedWriteBytes || this.outQueued() > PAUSE_OUT_PACKETS;
  }

  private maybeResume(): void {
    if (!this.paused) return;
    if (!this.ended && (this.inflightWriteBytes > this.ctx.limits.maxBufferedWriteBytes / 4 || this.outQueued() > PAUSE_OUT_PACKETS / 4)) return;
    this.paused = false;
    if (this.pauseTimer) clearInterval(this.pauseTimer);
    this.pauseTimer = undefined;
    const chan = this.sftp as unknown as {
      _waitChanDrain?: boolean;
      incoming?: { window: number };
      outgoing?: { id: number; state: string };
      _protocol?: { channelWindowAdjust(id: number, amount: number): void };
    };
    if (!chan?._waitChanDrain) return;
    chan._waitChanDrain = false;
    if (!chan.incoming || !chan.outgoing || !chan._protocol || chan.outgoing.state === 'closed') return;
    const amt = SSH_MAX_WINDOW - chan.incoming.window;
    if (amt <= 0) return;
    chan.incoming.window += amt;
    chan._protocol.channelWindowAdjust(chan.outgoing.id, amt);
  }

  // ---------------------------------------------------------------------------------------------------------

  private reply(reqid: number, code: number, message?: string): void {
    if (this.ended || !this.sftp) return;
    this.ctx.batchReplies?.();
    try {
      this.sftp.status(reqid, code, message);
    } catch {
      // channel gone
    }
  }

  private replyError(reqid: number, e: unknown): void {
    const { code, message } = statusFor(e);
    if (!(e instanceof SftpStatusError) && !(e instanceof PathError) && !errCode(e)) {
      this.log.error({ event: 'sftp_internal_error', err: e instanceof Error ? e.message : String(e) }, 'internal error');
    }
    this.reply(reqid, code, message);
  }

  private newHandleId(): { id: number; buf: Buffer } {
    if (this.handles.size >= this.ctx.limits.maxHandlesPerSession) {
      fail(STATUS_CODE.FAILURE, `Too many open handles (limit ${this.ctx.limits.maxHandlesPerSession})`);
    }
    const id = this.nextHandle++ >>> 0;
    const buf = Buffer.alloc(4);
    buf.writeUInt32BE(id, 0);
    return { id, buf };
  }

  private lookup(hbuf: Buffer): Handle | undefined {
    return hbuf.length === 4 ? this.handles.get(hbuf.readUInt32BE(0)) : undefined;
  }

  private fileHandle(hbuf: Buffer): FileHandle {
    const h = this.lookup(hbuf);
    if (!h || h.kind !== 'file') return fail(STATUS_CODE.FAILURE, 'Invalid handle');
    return h;
  }

  /** Resolves a client path to its home entry, refusing symlinks anywhere in the chain. */
  private async resolve(path: string): Promise<Resolved> {
    const rel = normalizeVirtualPath(path);
    await this.tenant.ready();
    const host = this.tenant.homePath(rel);
    if (rel === '') {
      const st = await fsp.lstat(host);
      return { rel, host, parent: 'ok', kind: 'dir', st };
    }
    const parentRel = parentOf(rel);
    const expected = parentRel === '' ? this.tenant.homeReal : `${this.tenant.homeReal}/${parentRel}`;
    let real: string;
    try {
      real = await fsp.realpath(this.tenant.homePath(parentRel));
    } catch {
      return { rel, host, parent: 'missing', kind: 'none' };
    }
    if (real !== expected) return { rel, host, parent: 'escape', kind: 'none' };
    try {
      const st = await fsp.lstat(host);
      const kind = st.isSymbolicLink() ? 'symlink' : st.isDirectory() ? 'dir' : st.isFile() ? 'file' : 'other';
      return { rel, host, parent: 'ok', kind, st };
    } catch (e) {
      if (errCode(e) === 'ENOTDIR') return { rel, host, parent: 'missing', kind: 'none' };
      if (errCode(e) === 'ENOENT') return { rel, host, parent: 'ok', kind: 'none' };
      throw e;
    }
  }

  private refuseUnsafe(r: Resolved): void {
    if (r.parent === 'escape' || r.kind === 'symlink' || r.kind === 'other') {
      this.log.warn({ event: 'path_refused', path: toVirtual(r.rel), reason: r.kind === 'symlink' || r.parent === 'escape' ? 'symlink' : 'special file' }, 'path refused');
      fail(STATUS_CODE.PERMISSION_DENIED, 'Symbolic links and special files are not allowed');
    }
  }

  private async partialStat(rel: string): Promise<Stats | undefined> {
    if (rel === '' || Buffer.byteLength(partialKey(rel)) > 255) return undefined;
    try {
      const st = await fsp.lstat(this.tenant.partialPath(rel));
      return st.isFile() ? st : undefined;
    } catch {
      return undefined;
    }
  }

  // ---------------------------------------------------------------------------------------------------------
  // OPEN / READ / WRITE / CLOSE

  private async onOpen(reqid: number, filename: string, flags: number, _attrs: Attributes): Promise<void> {
    const wantsWrite = (flags & (OPEN_MODE.WRITE | OPEN_MODE.APPEND)) !== 0;
    const r = await this.resolve(filename);
    this.refuseUnsafe(r);
    const { id, buf } = this.newHandleId();
    if (!wantsWrite) {
      let hostPath: string;
      if (r.kind === 'file') hostPath = r.host;
      else if (r.kind === 'dir') return fail(STATUS_CODE.FAILURE, 'Is a directory');
      else if (r.parent === 'ok' && (await this.partialStat(r.rel))) hostPath = this.tenant.partialPath(r.rel);
      else return fail(STATUS_CODE.NO_SUCH_FILE, 'No such file');
      const fd = await openFd(hostPath, FS.O_RDONLY | FS.O_NOFOLLOW);
      this.handles.set(id, this.newFileHandle(id, fd, r.rel, hostPath, { readable: true, writable: false, size: 0 }));
      this.log.info({ event: 'open', path: toVirtual(r.rel), mode: 'read' }, 'open');
      this.sftp!.handle(reqid, buf);
      return;
    }

    // Upload.
    if (r.rel === '') return fail(STATUS_CODE.FAILURE, 'Is a directory');
    if (isInReports(r.rel)) return fail(STATUS_CODE.PERMISSION_DENIED, `/${REPORTS_DIR} is read-only`);
    if (this.ctx.isShuttingDown()) return fail(STATUS_CODE.FAILURE, 'Server is shutting down, try again shortly');
    if (r.parent !== 'ok') return fail(STATUS_CODE.NO_SUCH_FILE, 'No such folder');
    if (r.kind === 'dir') return fail(STATUS_CODE.FAILURE, 'Is a directory');
    if (Buffer.byteLength(partialKey(r.rel)) > 255) return fail(STATUS_CODE.FAILURE, 'Path too long for an upload');
    const partialPath = this.tenant.partialPath(r.rel);
    const existing = await this.partialStat(r.rel);
    if (flags & OPEN_MODE.EXCL && (existing || r.kind === 'file')) return fail(STATUS_CODE.FAILURE, 'File already exists');
    if (!existing && !(flags & OPEN_MODE.CREAT)) return fail(STATUS_CODE.NO_SUCH_FILE, 'No such file');
    const { tenantQuotaBytes } = this.ctx.limits;
    if (Number.isFinite(tenantQuotaBytes) && (await this.tenant.currentUsage()) >= tenantQuotaBytes) {
      return fail(STATUS_CODE.FAILURE, `Tenant storage quota of ${tenantQuotaBytes} bytes exceeded`);
    }
    const truncate = (flags & OPEN_MODE.TRUNC) !== 0;
    const readable = (flags & OPEN_MODE.READ) !== 0;
    const fd = await openFd(partialPath, (readable ? FS.O_RDWR : FS.O_WRONLY) | FS.O_CREAT | (truncate ? FS.O_TRUNC : 0) | FS.O_NOFOLLOW, 0o640);
    let size: number;
    try {
      size = (await fstatFd(fd)).size;
    } catch (e) {
      await closeFd(fd);
      throw e;
    }
    const now = Date.now();
    let upload = this.tenant.uploads.get(r.rel);
    if (!upload || !existing || truncate) {
      upload = { rel: r.rel, startedAt: now, owner: undefined };
      this.tenant.uploads.set(r.rel, upload);
    }
    const h = this.newFileHandle(id, fd, r.rel, partialPath, { readable, writable: true, size });
    h.upload = upload;
    h.append = (flags & OPEN_MODE.APPEND) !== 0;
    h.appendPos = size;
    if (size === 0) {
      h.hash = createHash('sha256');
      h.hashedUpTo = 0;
    }
    if (upload.owner) this.log.info({ event: 'upload_takeover', path: toVirtual(r.rel) }, 'a newer open takes over the upload');
    upload.owner = h;
    this.handles.set(id, h);
    this.log.info(
      { event: 'open', path: toVirtual(r.rel), mode: 'write', flags: flagNames(flags), resumeAt: existing && !truncate ? size : undefined },
      'open',
    );
    this.sftp!.handle(reqid, buf);
  }

  private newFileHandle(id: number, fd: number, rel: string, hostPath: string, o: { readable: boolean; writable: boolean; size: number }): FileHandle {
    return {
      kind: 'file',
      id,
      fd,
      rel,
      hostPath,
      readable: o.readable,
      writable: o.writable,
      upload: undefined,
      append: false,
      appendPos: 0,
      size: o.size,
      bytesWritten: 0,
      bytesRead: 0,
      hash: null,
      hashedUpTo: 0,
      pending: 0,
      drained: [],
      queue: [],
      writing: false,
      failed: undefined,
      openedAt: Date.now(),
    };
  }

  private onRead(reqid: number, hbuf: Buffer, offset: number, len: number): void {
    const h = this.fileHandle(hbuf);
    if (!h.readable) return fail(STATUS_CODE.PERMISSION_DENIED, 'Handle not open for reading');
    const n = Math.max(0, Math.min(len, MAX_READ));
    const buf = Buffer.allocUnsafe(n);
    h.pending++;
    fs.read(h.fd, buf, 0, n, offset, (err, got) => {
      this.settle(h);
      if (err) return this.replyError(reqid, err);
      if (got === 0) return this.reply(reqid, STATUS_CODE.EOF);
      h.bytesRead += got;
      this.ctx.batchReplies?.();
      if (!this.ended) this.sftp!.data(reqid, got === n ? buf : buf.subarray(0, got));
    });
  }

  private onWrite(reqid: number, hbuf: Buffer, offset: number, data: Buffer): void {
    const h = this.fileHandle(hbuf);
    if (!h.writable) return fail(STATUS_CODE.PERMISSION_DENIED, 'Handle not open for writing');
    if (h.upload && h.upload.owner !== h) return fail(STATUS_CODE.FAILURE, 'This upload was taken over by a newer open of the same file');
    const len = data.length;
    const pos = h.append ? h.appendPos : offset;
    const end = pos + len;
    const { maxFileBytes, tenantQuotaBytes } = this.ctx.limits;
    if (end > maxFileBytes) {
      h.failed = 'file too large';
      this.log.warn({ event: 'limit_file_size', path: toVirtual(h.rel), limit: maxFileBytes }, 'file size limit reached');
      return fail(STATUS_CODE.FAILURE, `File too large: the limit is ${maxFileBytes} bytes`);
    }
    if (end > h.size) {
      if (Number.isFinite(tenantQuotaBytes)) {
        const delta = end - h.size;
        if (this.tenant.usage + delta > tenantQuotaBytes) {
          h.failed = 'quota exceeded';
          this.log.warn({ event: 'limit_quota', path: toVirtual(h.rel), limit: tenantQuotaBytes }, 'tenant quota reached');
          return fail(STATUS_CODE.FAILURE, `Tenant storage quota of ${tenantQuotaBytes} bytes exceeded`);
        }
        this.tenant.usage += delta;
      }
      h.size = end;
    }
    if (h.append) h.appendPos = end;
    if (h.hash) {
      if (pos === h.hashedUpTo) {
        h.hash.update(data);
        h.hashedUpTo = end;
      } else {
        h.hash = null; // out of order or rewritten: hash the file at CLOSE
      }
    }
    h.pending++;
    this.inflightWriteBytes += len;
    h.queue.push({ reqid, pos, data });
    if (!h.writing) this.flushWrites(h);
  }

  /**
   * One disk write per handle at a time: the WRITEs that arrived meanwhile go out together, contiguous runs as
   * one pwritev (each at its own offset). Each WRITE is answered once its bytes are written.
   */
  private flushWrites(h: FileHandle): void {
    const q = h.queue;
    if (q.length === 0) {
      h.writing = false;
      return;
    }
    h.writing = true;
    let n = 1;
    let bytes = q[0].data.length;
    while (n < q.length && n < MAX_WRITE_BATCH && bytes < MAX_WRITE_BATCH_BYTES && q[n].pos === q[n - 1].pos + q[n - 1].data.length) {
      bytes += q[n].data.length;
      n++;
    }
    const batch = q.splice(0, n);
    const done = (err: NodeJS.ErrnoException | null) => {
      this.inflightWriteBytes -= bytes;
      if (err) {
        h.failed = `write error ${err.code ?? ''}`;
        this.log.error({ event: 'write_error', path: toVirtual(h.rel), err: err.message }, 'write failed');
      } else {
        h.bytesWritten += bytes;
      }
      for (const w of batch) {
        if (err) this.replyError(w.reqid, err);
        else this.reply(w.reqid, STATUS_CODE.OK);
      }
      for (let i = 0; i < batch.length; i++) this.settle(h);
      if (this.paused) this.maybeResume();
      this.flushWrites(h);
    };
    if (batch.length === 1) writeAll(h.fd, batch[0].data, batch[0].pos, done);
    else writevAll(h.fd, batch.map((w) => w.data), batch[0].pos, done);
  }

  private settle(h: FileHandle): void {
    h.pending--;
    if (h.pending === 0 && h.drained.length) {
      const waiters = h.drained.splice(0);
      for (const w of waiters) w();
    }
  }

  private idle(h: FileHandle): Promise<void> {
    if (h.pending === 0) return Promise.resolve();
    return new Promise((resolve) => h.drained.push(resolve));
  }

  private async onClose(reqid: number, hbuf: Buffer): Promise<void> {
    const h = this.lookup(hbuf);
    if (!h) return fail(STATUS_CODE.FAILURE, 'Invalid handle');
    this.handles.delete(h.id);
    if (h.kind === 'dir') {
      this.reply(reqid, STATUS_CODE.OK);
      return;
    }
    await this.idle(h);
    if (!h.writable) {
      await closeFd(h.fd);
      this.log.info({ event: 'close', path: toVirtual(h.rel), mode: 'read', bytes: h.bytesRead }, 'close');
      this.reply(reqid, STATUS_CODE.OK);
      return;
    }
    // Still an upload in flight for close(graceMs) until the file is in the inbox and the client has its answer.
    this.finishing++;
    try {
      await this.finishWrite(h, false);
      this.reply(reqid, STATUS_CODE.OK);
    } finally {
      this.finishing--;
    }
  }

  /**
   * Closes a write handle. On a clean CLOSE of the current owner with a final (non-temporary) name the upload is
   * completed; otherwise the partial file stays for a resume (or is discarded after a limit error).
   */
  private async finishWrite(h: FileHandle, aborted: boolean): Promise<void> {
    const upload = h.upload;
    const isOwner = upload !== undefined && upload.owner === h;
    if (isOwner) upload.owner = undefined;
    const base = { path: toVirtual(h.rel), mode: 'write', bytes: h.bytesWritten, size: h.size };
    if (aborted || !isOwner || h.failed || isTemporaryName(h.rel)) {
      await closeFd(h.fd);
      if (isOwner && h.failed && !aborted) {
        await fsp.rm(h.hostPath, { force: true });
        this.tenant.uploads.delete(h.rel);
        this.log.info({ event: 'close', ...base, outcome: 'discarded', reason: h.failed }, 'close');
        return;
      }
      const outcome = aborted ? 'interrupted' : !isOwner ? 'superseded' : 'temporary';
      this.log.info({ event: 'close', ...base, outcome }, 'close');
      return;
    }
    await this.complete(h.rel, h.rel, h.hostPath, { fd: h.fd, hash: h.hash, hashedUpTo: h.hashedUpTo, startedAt: upload.startedAt });
    this.log.info({ event: 'close', ...base, outcome: 'completed' }, 'close');
  }

  /** fsync, hash, atomic move into the inbox, notify. `fd` is closed here when given. */
  private async complete(
    fromRel: string,
    name: string,
    partialPath: string,
    o: { fd?: number; hash: Hash | null; hashedUpTo: number; startedAt: number },
  ): Promise<void> {
    const t0 = Date.now();
    let size: number;
    if (o.fd !== undefined) {
      const fd = o.fd;
      try {
        await new Promise<void>((res, rej) => fs.fsync(fd, (e) => (e ? rej(e) : res())));
        size = (await fstatFd(fd)).size;
      } finally {
        await closeFd(fd);
      }
    } else {
      const fh = await fsp.open(partialPath, FS.O_RDONLY | FS.O_NOFOLLOW);
      try {
        await fh.sync();
        size = (await fh.stat()).size;
      } finally {
        await fh.close();
      }
    }
    const sha256 = o.hash && o.hashedUpTo === size ? o.hash.digest('hex') : await sha256File(partialPath);
    const inboxPath = await this.tenant.moveToInbox(partialPath, name);
    this.tenant.uploads.delete(fromRel);
    this.tenant.rememberCompleted(name, { size, mtime: toSec(Date.now()) });
    const durationMs = Date.now() - o.startedAt;
    const finalizeMs = Date.now() - t0;
    this.log.info({ event: 'upload_completed', path: toVirtual(name), size, sha256, durationMs, finalizeMs, inboxPath }, 'upload completed');
    try {
      this.ctx.onUploadComplete({ tenantId: this.tenant.tenantId, name, inboxPath, size, sha256, durationMs });
    } catch (e) {
      this.log.error({ event: 'upload_callback_error', err: e instanceof Error ? e.message : String(e) }, 'onUploadComplete threw');
    }
  }

  // ---------------------------------------------------------------------------------------------------------
  // Attributes

  private onFstat(reqid: number, hbuf: Buffer): void {
    const h = this.fileHandle(hbuf);
    fs.fstat(h.fd, (err, st) => {
      if (err) return this.replyError(reqid, err);
      this.sftp!.attrs(reqid, attrsOf(st));
    });
  }

  private async onFsetstat(reqid: number, hbuf: Buffer, attrs: Partial<Attributes>): Promise<void> {
    const h = this.fileHandle(hbuf);
    if (typeof attrs.size === 'number') {
      if (!h.writable) return fail(STATUS_CODE.PERMISSION_DENIED, 'Handle not open for writing');
      await this.idle(h);
      await this.truncateTo(h.hostPath, attrs.size, h);
    }
    this.reply(reqid, STATUS_CODE.OK);
  }

  private async truncateTo(hostPath: string, size: number, h: FileHandle | undefined): Promise<void> {
    if (size > this.ctx.limits.maxFileBytes) fail(STATUS_CODE.FAILURE, `File too large: the limit is ${this.ctx.limits.maxFileBytes} bytes`);
    if (h) {
      await new Promise<void>((res, rej) => fs.ftruncate(h.fd, size, (e) => (e ? rej(e) : res())));
      if (Number.isFinite(this.ctx.limits.tenantQuotaBytes)) this.tenant.usage += size - h.size;
      h.size = size;
      if (h.append) h.appendPos = size;
      if (h.hash && h.hashedUpTo !== size) h.hash = null;
    } else {
      await fsp.truncate(hostPath, size);
    }
  }

  private async onStat(reqid: number, path: string): Promise<void> {
    const r = await this.resolve(path);
    this.refuseUnsafe(r);
    if (r.st && (r.kind === 'file' || r.kind === 'dir')) return this.sftp!.attrs(reqid, attrsOf(r.st));
    if (r.parent === 'ok') {
      const p = await this.partialStat(r.rel);
      if (p) return this.sftp!.attrs(reqid, attrsOf(p));
      const recent = this.tenant.recentlyCompleted(r.rel);
      if (recent) return this.sftp!.attrs(reqid, fileAttrs(recent.size, recent.mtime));
    }
    fail(STATUS_CODE.NO_SUCH_FILE, 'No such file');
  }

  private async onSetstat(reqid: number, path: string, attrs: Partial<Attributes>): Promise<void> {
    const r = await this.resolve(path);
    this.refuseUnsafe(r);
    const wantsSize = typeof attrs.size === 'number';
    if (r.kind === 'dir' || r.kind === 'file') {
      // Modes, owners and times are accepted and not applied (the server owns the files); size only for uploads.
      if (wantsSize && r.kind === 'file') return fail(STATUS_CODE.PERMISSION_DENIED, 'Only uploads can be resized');
      return this.reply(reqid, STATUS_CODE.OK);
    }
    if (r.parent === 'ok') {
      if (await this.partialStat(r.rel)) {
        if (wantsSize) {
          const owner = this.tenant.uploads.get(r.rel)?.owner as FileHandle | undefined;
          const mine = owner && this.handles.get(owner.id) === owner ? owner : undefined;
          if (mine) await this.idle(mine);
          await this.truncateTo(this.tenant.partialPath(r.rel), attrs.size as number, mine);
        }
        return this.reply(reqid, STATUS_CODE.OK);
      }
      if (this.tenant.recentlyCompleted(r.rel)) return this.reply(reqid, STATUS_CODE.OK);
    }
    fail(STATUS_CODE.NO_SUCH_FILE, 'No such file');
  }

  // ---------------------------------------------------------------------------------------------------------
  // Folders

  private async onOpendir(reqid: number, path: string): Promise<void> {
    const r = await this.resolve(path);
    this.refuseUnsafe(r);
    if (r.kind === 'none') return fail(STATUS_CODE.NO_SUCH_FILE, 'No such folder');
    if (r.kind !== 'dir') return fail(STATUS_CODE.FAILURE, 'Not a directory');
    const { id, buf } = this.newHandleId();
    this.handles.set(id, { kind: 'dir', id, rel: r.rel, hostPath: r.host, entries: undefined, pos: 0 });
    this.log.debug({ event: 'opendir', path: toVirtual(r.rel) }, 'opendir');
    this.sftp!.handle(reqid, buf);
  }

  private async onReaddir(reqid: number, hbuf: Buffer): Promise<void> {
    const h = this.lookup(hbuf);
    if (!h || h.kind !== 'dir') return fail(STATUS_CODE.FAILURE, 'Invalid handle');
    h.entries ??= await this.listDir(h);
    if (h.pos >= h.entries.length) return this.reply(reqid, STATUS_CODE.EOF);
    const batch = h.entries.slice(h.pos, h.pos + READDIR_BATCH);
    h.pos += batch.length;
    this.sftp!.name(reqid, batch);
  }

  private async listDir(h: DirHandle): Promise<FileEntry[]> {
    const owner = this.tenant.tenantId;
    const now = Date.now();
    const out: FileEntry[] = [];
    const seen = new Set<string>();
    for (const d of await fsp.readdir(h.hostPath, { withFileTypes: true })) {
      if (!d.isFile() && !d.isDirectory()) continue; // symlinks and special files are never shown
      let st: Stats;
      try {
        st = await fsp.lstat(`${h.hostPath}/${d.name}`);
      } catch {
        continue;
      }
      if (!st.isFile() && !st.isDirectory()) continue;
      const attrs = attrsOf(st);
      seen.add(d.name);
      out.push({ filename: d.name, longname: longname(d.name, attrs, owner, now), attrs });
    }
    // In-progress uploads of this folder (so that clients can see and resume them).
    let keys: string[] = [];
    try {
      keys = await fsp.readdir(this.tenant.partialDir);
    } catch {
      // no partial folder yet
    }
    for (const key of keys) {
      const rel = relFromPartialKey(key);
      if (parentOf(rel) !== h.rel) continue;
      const name = baseName(rel);
      if (seen.has(name)) continue;
      try {
        const st = await fsp.lstat(`${this.tenant.partialDir}/${key}`);
        if (!st.isFile()) continue;
        const attrs = attrsOf(st);
        out.push({ filename: name, longname: longname(name, attrs, owner, now), attrs });
      } catch {
        // completed meanwhile
      }
    }
    return out;
  }

  private async onRealpath(reqid: number, path: string): Promise<void> {
    const rel = normalizeVirtualPath(path);
    const v = toVirtual(rel);
    this.sftp!.name(reqid, [{ filename: v, longname: v, attrs: {} as Attributes }]);
  }

  private async onMkdir(reqid: number, path: string, _attrs: Attributes): Promise<void> {
    const r = await this.resolve(path);
    this.refuseUnsafe(r);
    if (r.rel === '' || isInReports(r.rel)) return fail(STATUS_CODE.PERMISSION_DENIED, `/${REPORTS_DIR} is read-only`);
    if (r.parent !== 'ok') return fail(STATUS_CODE.NO_SUCH_FILE, 'No such folder');
    if (r.kind !== 'none') return fail(STATUS_CODE.FAILURE, 'File already exists');
    await fsp.mkdir(r.host, { mode: 0o750 });
    this.log.info({ event: 'mkdir', path: toVirtual(r.rel) }, 'mkdir');
    this.reply(reqid, STATUS_CODE.OK);
  }

  private async onRmdir(reqid: number, path: string): Promise<void> {
    const r = await this.resolve(path);
    this.refuseUnsafe(r);
    if (r.rel === '' || r.rel === REPORTS_DIR) return fail(STATUS_CODE.PERMISSION_DENIED, 'This folder cannot be removed');
    if (r.kind === 'none') return fail(STATUS_CODE.NO_SUCH_FILE, 'No such folder');
    if (r.kind !== 'dir') return fail(STATUS_CODE.FAILURE, 'Not a directory');
    await fsp.rmdir(r.host);
    this.log.info({ event: 'rmdir', path: toVirtual(r.rel) }, 'rmdir');
    this.reply(reqid, STATUS_CODE.OK);
  }

  private async onRemove(reqid: number, path: string): Promise<void> {
    const r = await this.resolve(path);
    this.refuseUnsafe(r);
    if (r.kind === 'dir') return fail(STATUS_CODE.FAILURE, 'Is a directory');
    if (r.kind === 'file') {
      await fsp.unlink(r.host);
      this.log.info({ event: 'remove', path: toVirtual(r.rel), bytes: r.st?.size }, 'remove');
      return this.reply(reqid, STATUS_CODE.OK);
    }
    if (r.parent === 'ok') {
      const p = await this.partialStat(r.rel);
      if (p) {
        const upload = this.tenant.uploads.get(r.rel);
        if (upload) upload.owner = undefined; // an open writer can no longer complete it
        this.tenant.uploads.delete(r.rel);
        await fsp.rm(this.tenant.partialPath(r.rel), { force: true });
        this.log.info({ event: 'remove', path: toVirtual(r.rel), bytes: p.size, partial: true }, 'remove');
        return this.reply(reqid, STATUS_CODE.OK);
      }
    }
    fail(STATUS_CODE.NO_SUCH_FILE, 'No such file');
  }

  private async onRename(reqid: number, oldPath: string, newPath: string): Promise<void> {
    const from = await this.resolve(oldPath);
    const to = await this.resolve(newPath);
    this.refuseUnsafe(from);
    this.refuseUnsafe(to);
    if (from.rel === '' || to.rel === '') return fail(STATUS_CODE.PERMISSION_DENIED, 'Cannot rename the root folder');
    if (from.rel === REPORTS_DIR || isInReports(to.rel)) return fail(STATUS_CODE.PERMISSION_DENIED, `/${REPORTS_DIR} is read-only`);
    if (to.parent !== 'ok') return fail(STATUS_CODE.NO_SUCH_FILE, 'No such folder');
    if (to.kind === 'dir') return fail(STATUS_CODE.FAILURE, 'Target is a directory');
    const logBase = { from: toVirtual(from.rel), to: toVirtual(to.rel) };

    if (from.kind === 'none' && from.parent === 'ok') {
      const p = await this.partialStat(from.rel);
      if (!p) return fail(STATUS_CODE.NO_SUCH_FILE, 'No such file');
      const upload = this.tenant.uploads.get(from.rel);
      if (upload?.owner) return fail(STATUS_CODE.FAILURE, 'File is still open for writing');
      if (from.rel === to.rel) return this.reply(reqid, STATUS_CODE.OK);
      if (Buffer.byteLength(partialKey(to.rel)) > 255) return fail(STATUS_CODE.FAILURE, 'Path too long for an upload');
      if (isTemporaryName(to.rel)) {
        // temporary → temporary: the partial file just changes its key (replacing the target).
        await fsp.rename(this.tenant.partialPath(from.rel), this.tenant.partialPath(to.rel));
        this.tenant.uploads.delete(from.rel);
        this.tenant.uploads.set(to.rel, { rel: to.rel, startedAt: upload?.startedAt ?? p.birthtimeMs, owner: undefined });
        this.log.info({ event: 'rename', ...logBase, bytes: p.size }, 'rename');
        return this.reply(reqid, STATUS_CODE.OK);
      }
      // temporary (or any upload) → final name: the upload is complete.
      this.log.info({ event: 'rename', ...logBase, bytes: p.size }, 'rename');
      await this.complete(from.rel, to.rel, this.tenant.partialPath(from.rel), {
        hash: null,
        hashedUpTo: 0,
        startedAt: upload?.startedAt ?? p.birthtimeMs,
      });
      return this.reply(reqid, STATUS_CODE.OK);
    }
    if (from.kind === 'none') return fail(STATUS_CODE.NO_SUCH_FILE, 'No such file');
    if (isInReports(from.rel) && from.rel !== to.rel) return fail(STATUS_CODE.PERMISSION_DENIED, `/${REPORTS_DIR} is read-only`);
    // A real folder or file of the home folder (e.g. a subfolder the customer created).
    await fsp.rename(from.host, to.host);
    this.log.info({ event: 'rename', ...logBase, bytes: from.kind === 'file' ? from.st?.size : undefined }, 'rename');
    this.reply(reqid, STATUS_CODE.OK);
  }

  // ---------------------------------------------------------------------------------------------------------

  /** Ends the session: open handles are closed, unfinished uploads stay as partial files (nothing is ingested). */
  async end(reason: string): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    if (this.pauseTimer) clearInterval(this.pauseTimer);
    this.pauseTimer = undefined;
    const handles = [...this.handles.values()];
    this.handles.clear();
    for (const h of handles) {
      if (h.kind !== 'file') continue;
      // Disk operations always call back; the bound only guards against a stuck filesystem.
      await Promise.race([this.idle(h), new Promise<void>((r) => setTimeout(r, 10_000).unref())]);
      if (h.writable) await this.finishWrite(h, true).catch(() => undefined);
      else await closeFd(h.fd);
    }
    this.log.debug({ event: 'sftp_session_end', reason, flowControlPauses: this.pauses }, 'sftp session ended');
  }
}

function openFd(path: string, flags: number, mode?: number): Promise<number> {
  return new Promise((resolve, reject) => fs.open(path, flags, mode, (e, fd) => (e ? reject(e) : resolve(fd))));
}

function fstatFd(fd: number): Promise<Stats> {
  return new Promise((resolve, reject) => fs.fstat(fd, (e, st) => (e ? reject(e) : resolve(st))));
}

function closeFd(fd: number): Promise<void> {
  return new Promise((resolve) => fs.close(fd, () => resolve()));
}

function flagNames(flags: number): string {
  const names: string[] = [];
  for (const [n, v] of Object.entries(OPEN_MODE) as [string, number][]) if (typeof v === 'number' && flags & v) names.push(n);
  return names.join('|');
}
