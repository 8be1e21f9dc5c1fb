// One SFTP session (subsystem channel) of an authenticated tenant: protocol dispatch, the handle table and the
// path operations. Reads, writes and resizes of an open file go through its Transfer (transfer.ts), listings
// through a DirListing (listing.ts), upload completion through upload.ts.
//
// What the customer sees under `/` is the tenant's home folder (folders, reports) plus in-progress uploads
// (the partial files, so that clients can resume them); completed uploads have left for the inbox and are only
// remembered for a short while so STAT/SETSTAT right after CLOSE/RENAME succeed.
//
// Every request gets exactly one answer, whatever throws: each is given an Answer that sends once.
import fs, { constants as FS, promises as fsp, type Stats } from 'node:fs';
import type { Logger } from 'pino';
import type { Attributes, FileEntry, SFTPWrapper } from 'ssh2';
import { IoBudget, MAX_WAITING_READS, type IoLimits } from './io-budget.js';
import { DirListing } from './listing.js';
import {
  REPORTS_DIR,
  isInReports,
  isTemporaryName,
  normalizeVirtualPath,
  parentOf,
  partialKey,
  toVirtual,
} from './paths.js';
import type { CompletedUpload } from './server.js';
import { OPEN_MODE, STATUS_CODE, attrsOf, fail, fileAttrs, flagNames, isExpectedError, statusFor } from './status.js';
import type { TenantStore, UploadState } from './tenant-store.js';
import { Transfer, resizeUpload, type IoAnswer } from './transfer.js';
import { completeUpload } from './upload.js';

export interface SessionLimits extends IoLimits {
  maxFileBytes: number;
  maxHandlesPerSession: number;
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
  /** Bytes written to the connection's socket that the client has not taken yet. */
  socketQueuedBytes?: () => number;
}

/** Entries per READDIR answer. */
const READDIR_BATCH = 128;
/** Stop reading from the channel when this many answers wait for the client's window. */
const PAUSE_OUT_PACKETS = 512;
const SSH_MAX_WINDOW = 2 * 1024 * 1024; // ssh2's channel window (lib/Channel.js MAX_WINDOW)

type Handle = Transfer | DirListing;

type Resolved = {
  rel: string;
  host: string;
  /** ok | missing (parent folder does not exist) | escape (a symlink in the chain) */
  parent: 'ok' | 'missing' | 'escape';
  kind: 'none' | 'file' | 'dir' | 'symlink' | 'other';
  st?: Stats;
};

interface ChannelInternals {
  push: (data: Buffer | null) => unknown;
  _buffer?: Buffer[];
  _waitChanDrain?: boolean;
  incoming?: { window: number };
  outgoing?: { id: number; state: string };
  _protocol?: { channelWindowAdjust(id: number, amount: number): void };
}

/** The one answer a request gets. A second attempt is a bug: it is logged, never sent. */
class Answer {
  private sent = false;
  constructor(
    private readonly session: SftpSession,
    readonly reqid: number,
  ) {}

  get done(): boolean {
    return this.sent;
  }

  private send(fn: (sftp: SFTPWrapper) => void): void {
    if (this.sent) {
      this.session.log.error({ event: 'sftp_internal_error', err: `second answer to request ${this.reqid}` }, 'internal error');
      return;
    }
    this.sent = true;
    this.session.send(fn);
  }

  status(code: number, message?: string): void {
    this.send((s) => s.status(this.reqid, code, message));
  }
  data(buf: Buffer): void {
    this.send((s) => s.data(this.reqid, buf));
  }
  handle(buf: Buffer): void {
    this.send((s) => s.handle(this.reqid, buf));
  }
  name(entries: FileEntry[]): void {
    this.send((s) => s.name(this.reqid, entries));
  }
  attrs(a: Attributes): void {
    this.send((s) => s.attrs(this.reqid, a));
  }
  error(e: unknown): void {
    if (this.sent) return;
    if (!isExpectedError(e)) {
      this.session.log.error({ event: 'sftp_internal_error', err: e instanceof Error ? e.message : String(e) }, 'internal error');
    }
    const { code, message } = statusFor(e);
    this.status(code, message);
  }
  /** The answer of a READ or WRITE finished by its Transfer. */
  readonly io: IoAnswer = (err, data) => {
    if (err) return this.error(err);
    if (data === undefined) return this.status(STATUS_CODE.OK);
    if (data === null) return this.status(STATUS_CODE.EOF);
    this.data(data);
  };
}

export class SftpSession {
  private readonly handles = new Map<number, Handle>();
  /** OPEN/OPENDIR requests holding a handle slot while they do their I/O. */
  private reservedHandles = 0;
  private nextHandle = 1;
  private readonly budget: IoBudget;
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
    this.budget = new IoBudget(ctx.limits, () => this.queuedOutputBytes());
  }

  private get tenant(): TenantStore {
    return this.ctx.tenant;
  }

  /** Number of open write handles and uploads being completed (in-flight uploads). */
  get openWrites(): number {
    let n = this.finishing;
    for (const h of this.handles.values()) if (h instanceof Transfer && h.writable) n++;
    return n;
  }

  /** Sends an answer unless the channel is gone. */
  send(fn: (sftp: SFTPWrapper) => void): void {
    if (this.ended || !this.sftp) return;
    this.ctx.batchReplies?.();
    try {
      fn(this.sftp);
    } catch {
      // channel gone
    }
  }

  attach(sftp: SFTPWrapper): void {
    this.sftp = sftp;
    this.installFlowControl(sftp);
    const on = (ev: string, fn: (a: Answer, ...args: never[]) => Promise<void> | void) => {
      sftp.on(ev, (reqid: number, ...args: never[]) => {
        this.ctx.touch();
        const a = new Answer(this, reqid);
        let r: Promise<void> | void;
        try {
          r = fn.call(this, a, ...args);
        } catch (e) {
          a.error(e);
          return;
        }
        if (r) r.catch((e) => a.error(e));
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
    on('READLINK', ((a: Answer, path: string) => this.refuseLink(a, 'readlink', path)) as never);
    on('SYMLINK', ((a: Answer, linkPath: string, target: string) => this.refuseLink(a, 'symlink', linkPath, target)) as never);
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

  private refuseLink(a: Answer, request: string, path: string, target?: string): void {
    this.log.warn({ event: 'path_refused', request, path: String(path).slice(0, 256), target: target === undefined ? undefined : String(target).slice(0, 256), reason: 'symbolic links are not supported' }, 'path refused');
    a.status(STATUS_CODE.OP_UNSUPPORTED, 'Symbolic links are not supported');
  }

  // ---------------------------------------------------------------------------------------------------------
  // Flow control: when too much WRITE data waits for the disk, too many answers wait for the client, or too many
  // READs wait for budget, stop granting SSH window (ssh2 does that when the channel's push() returns false)
  // until it has caught up. A malformed packet that makes ssh2's parser throw ends this channel, not the process.

  private installFlowControl(sftp: SFTPWrapper): void {
    const chan = sftp as unknown as ChannelInternals;
    if (typeof chan.push !== 'function') return;
    const orig = chan.push.bind(sftp);
    chan.push = (data: Buffer | null) => {
      let r: unknown;
      try {
        r = orig(data);
      } catch (e) {
        this.log.warn({ event: 'sftp_error', err: e instanceof Error ? e.message : String(e) }, 'malformed SFTP packet, closing the channel');
        try {
          sftp.destroy();
        } catch {
          // already gone
        }
        return false;
      }
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

  private outPackets(): Buffer[] {
    const b = (this.sftp as unknown as ChannelInternals | undefined)?._buffer;
    return Array.isArray(b) ? b : [];
  }

  private queuedOutputBytes(): number {
    let n = this.ctx.socketQueuedBytes?.() ?? 0;
    for (const p of this.outPackets()) n += p.length;
    return n;
  }

  private mustPause(): boolean {
    return (
      this.budget.writeBytes > this.ctx.limits.maxBufferedWriteBytes ||
      this.outPackets().length > PAUSE_OUT_PACKETS ||
      this.budget.waitingReads > MAX_WAITING_READS
    );
  }

  private maybeResume(): void {
    if (!this.paused) return;
    if (
      !this.ended &&
      (this.budget.writeBytes > this.ctx.limits.maxBufferedWriteBytes / 4 ||
        this.outPackets().length > PAUSE_OUT_PACKETS / 4 ||
        this.budget.waitingReads > MAX_WAITING_READS / 4)
    ) {
      return;
    }
    this.paused = false;
    if (this.pauseTimer) clearInterval(this.pauseTimer);
    this.pauseTimer = undefined;
    const chan = this.sftp as unknown as ChannelInternals;
    if (!chan?._waitChanDrain) return;
    chan._waitChanDrain = false;
    if (!chan.incoming || !chan.outgoing || !chan._protocol || chan.outgoing.state === 'closed') return;
    const amt = SSH_MAX_WINDOW - chan.incoming.window;
    if (amt <= 0) return;
    chan.incoming.window += amt;
    chan._protocol.channelWindowAdjust(chan.outgoing.id, amt);
  }

  // ---------------------------------------------------------------------------------------------------------
  // Handles

  /** Takes a handle slot before the first await, so pipelined OPENs cannot exceed the limit. */
  private reserveHandle(): void {
    if (this.handles.size + this.reservedHandles >= this.ctx.limits.maxHandlesPerSession) {
      fail(STATUS_CODE.FAILURE, `Too many open handles (limit ${this.ctx.limits.maxHandlesPerSession})`);
    }
    this.reservedHandles++;
  }

  /** Turns the reserved slot into a handle and answers with it. */
  private grantHandle(a: Answer, make: (id: number) => Handle): void {
    const id = this.nextHandle++ >>> 0;
    const h = make(id);
    this.handles.set(id, h);
    const buf = Buffer.alloc(4);
    buf.writeUInt32BE(id, 0);
    a.handle(buf);
  }

  /** Runs an OPEN/OPENDIR with a reserved slot; the slot is released if it fails. */
  private async withHandleSlot(fn: () => Promise<void>): Promise<void> {
    this.reserveHandle();
    try {
      await fn();
    } finally {
      this.reservedHandles--;
    }
  }

  private lookup(hbuf: Buffer): Handle | undefined {
    return Buffer.isBuffer(hbuf) && hbuf.length === 4 ? this.handles.get(hbuf.readUInt32BE(0)) : undefined;
  }

  private transfer(hbuf: Buffer): Transfer {
    const h = this.lookup(hbuf);
    if (!(h instanceof Transfer)) return fail(STATUS_CODE.FAILURE, 'Invalid handle');
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
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOTDIR') return { rel, host, parent: 'missing', kind: 'none' };
      if (code === 'ENOENT') return { rel, host, parent: 'ok', kind: 'none' };
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

  private transferEnv() {
    return { quota: this.tenant.quota, budget: this.budget, log: this.log, maxFileBytes: this.ctx.limits.maxFileBytes };
  }

  // ---------------------------------------------------------------------------------------------------------
  // OPEN / READ / WRITE / CLOSE

  private onOpen(a: Answer, filename: string, flags: number, _attrs: Attributes): Promise<void> {
    return this.withHandleSlot(() => this.open(a, filename, flags));
  }

  private async open(a: Answer, filename: string, flags: number): Promise<void> {
    const wantsWrite = (flags & (OPEN_MODE.WRITE | OPEN_MODE.APPEND)) !== 0;
    const r = await this.resolve(filename);
    this.refuseUnsafe(r);
    if (!wantsWrite) {
      let hostPath: string;
      if (r.kind === 'file') hostPath = r.host;
      else if (r.kind === 'dir') return fail(STATUS_CODE.FAILURE, 'Is a directory');
      else if (r.parent === 'ok' && (await this.partialStat(r.rel))) hostPath = this.tenant.partialPath(r.rel);
      else return fail(STATUS_CODE.NO_SUCH_FILE, 'No such file');
      const fd = await openFd(hostPath, FS.O_RDONLY | FS.O_NOFOLLOW);
      if (this.ended) return closeFd(fd);
      this.log.info({ event: 'open', path: toVirtual(r.rel), mode: 'read' }, 'open');
      this.grantHandle(a, (id) => new Transfer(id, fd, r.rel, hostPath, true, false, this.transferEnv()));
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
    const quota = this.tenant.quota;
    await quota.refresh();
    quota.checkNotFull();
    if (!existing) quota.addEntry();
    const truncate = (flags & OPEN_MODE.TRUNC) !== 0;
    const readable = (flags & OPEN_MODE.READ) !== 0;
    let fd: number;
    let size: number;
    try {
      fd = await openFd(partialPath, (readable ? FS.O_RDWR : FS.O_WRONLY) | FS.O_CREAT | (truncate ? FS.O_TRUNC : 0) | FS.O_NOFOLLOW, 0o640);
    } catch (e) {
      if (!existing) quota.removed(0);
      throw e;
    }
    try {
      size = (await fstatFd(fd)).size;
    } catch (e) {
      await closeFd(fd);
      throw e;
    }
    if (this.ended) return closeFd(fd);
    let upload = this.tenant.uploads.get(r.rel);
    if (!upload || !existing || truncate) {
      if (existing && truncate) quota.adjust(-(upload?.size ?? existing.size));
      upload = { rel: r.rel, startedAt: Date.now(), owner: undefined, size };
      this.tenant.uploads.set(r.rel, upload);
    }
    const up = upload;
    if (up.owner) this.log.info({ event: 'upload_takeover', path: toVirtual(r.rel) }, 'a newer open takes over the upload');
    this.log.info(
      { event: 'open', path: toVirtual(r.rel), mode: 'write', flags: flagNames(flags), resumeAt: existing && !truncate ? size : undefined },
      'open',
    );
    this.grantHandle(a, (id) => {
      const t = new Transfer(id, fd, r.rel, partialPath, readable, true, this.transferEnv());
      t.upload = up;
      t.append = (flags & OPEN_MODE.APPEND) !== 0;
      t.appendPos = size;
      if (size === 0) t.startHash();
      up.owner = t;
      return t;
    });
  }

  private onRead(a: Answer, hbuf: Buffer, offset: number, len: number): void {
    this.transfer(hbuf).read(offset, len, a.io);
  }

  private onWrite(a: Answer, hbuf: Buffer, offset: number, data: Buffer): void {
    this.transfer(hbuf).write(offset, data, a.io);
    if (this.paused) this.maybeResume();
  }

  private async onClose(a: Answer, hbuf: Buffer): Promise<void> {
    const h = this.lookup(hbuf);
    if (!h) return fail(STATUS_CODE.FAILURE, 'Invalid handle');
    this.handles.delete(h.id);
    if (h instanceof DirListing) {
      await h.close();
      a.status(STATUS_CODE.OK);
      return;
    }
    await h.idle();
    if (!h.writable) {
      await closeFd(h.fd);
      this.log.info({ event: 'close', path: toVirtual(h.rel), mode: 'read', bytes: h.bytesRead, ...h.refusals }, 'close');
      a.status(STATUS_CODE.OK);
      return;
    }
    // Still an upload in flight for close(graceMs) until the file is in the inbox and the client has its answer.
    this.finishing++;
    try {
      await this.finishWrite(h, false);
      a.status(STATUS_CODE.OK);
    } finally {
      this.finishing--;
    }
  }

  /**
   * Closes a write handle. On a clean CLOSE of the current owner with a final (non-temporary) name the upload is
   * completed; otherwise the partial file stays for a resume (or is discarded after a limit error).
   */
  private async finishWrite(h: Transfer, aborted: boolean): Promise<void> {
    const upload = h.upload;
    const isOwner = upload !== undefined && upload.owner === h;
    if (isOwner) upload.owner = undefined;
    const base = { path: toVirtual(h.rel), mode: 'write', bytes: h.bytesWritten, size: h.size, ...h.refusals };
    if (aborted || !isOwner || h.failed || isTemporaryName(h.rel)) {
      await closeFd(h.fd);
      if (isOwner && h.failed && !aborted) {
        await fsp.rm(h.hostPath, { force: true });
        this.tenant.uploads.delete(h.rel);
        this.tenant.quota.removed(upload.size);
        this.log.info({ event: 'close', ...base, outcome: 'discarded', reason: h.failed }, 'close');
        return;
      }
      const outcome = aborted ? 'interrupted' : !isOwner ? 'superseded' : 'temporary';
      this.log.info({ event: 'close', ...base, outcome }, 'close');
      return;
    }
    await this.complete({ fromRel: h.rel, name: h.rel, partialPath: h.hostPath, fd: h.fd, hash: h.hash, hashedUpTo: h.hashedUpTo, startedAt: upload.startedAt });
    this.log.info({ event: 'close', ...base, outcome: 'completed' }, 'close');
  }

  private complete(c: Parameters<typeof completeUpload>[3]): Promise<void> {
    return completeUpload(this.tenant, this.log, this.ctx.onUploadComplete, c);
  }

  // ---------------------------------------------------------------------------------------------------------
  // Attributes

  private onFstat(a: Answer, hbuf: Buffer): void {
    const h = this.transfer(hbuf);
    fs.fstat(h.fd, (err, st) => {
      if (err) return a.error(err);
      a.attrs(attrsOf(st));
    });
  }

  private async onFsetstat(a: Answer, hbuf: Buffer, attrs: Partial<Attributes>): Promise<void> {
    const h = this.transfer(hbuf);
    if (typeof attrs?.size === 'number') await h.resize(attrs.size);
    a.status(STATUS_CODE.OK);
  }

  private async onStat(a: Answer, path: string): Promise<void> {
    const r = await this.resolve(path);
    this.refuseUnsafe(r);
    if (r.st && (r.kind === 'file' || r.kind === 'dir')) return a.attrs(attrsOf(r.st));
    if (r.parent === 'ok') {
      const p = await this.partialStat(r.rel);
      if (p) return a.attrs(attrsOf(p));
      const recent = this.tenant.recentlyCompleted(r.rel);
      if (recent) return a.attrs(fileAttrs(recent.size, recent.mtime));
    }
    fail(STATUS_CODE.NO_SUCH_FILE, 'No such file');
  }

  private async onSetstat(a: Answer, path: string, attrs: Partial<Attributes>): Promise<void> {
    const r = await this.resolve(path);
    this.refuseUnsafe(r);
    const size = attrs?.size;
    const wantsSize = typeof size === 'number';
    if (r.kind === 'dir' || r.kind === 'file') {
      // Modes, owners and times are accepted and not applied (the server owns the files); size only for uploads.
      if (wantsSize && r.kind === 'file') return fail(STATUS_CODE.PERMISSION_DENIED, 'Only uploads can be resized');
      return a.status(STATUS_CODE.OK);
    }
    if (r.parent === 'ok') {
      const p = await this.partialStat(r.rel);
      if (p) {
        if (wantsSize) await this.resizeByPath(r.rel, p, size);
        return a.status(STATUS_CODE.OK);
      }
      if (this.tenant.recentlyCompleted(r.rel)) return a.status(STATUS_CODE.OK);
    }
    fail(STATUS_CODE.NO_SUCH_FILE, 'No such file');
  }

  /** SETSTAT size on an upload: through this session's handle when it holds the upload, else on the path. */
  private async resizeByPath(rel: string, st: Stats, size: number): Promise<void> {
    let upload = this.tenant.uploads.get(rel);
    const owner = upload?.owner;
    if (owner instanceof Transfer && this.handles.get(owner.id) === owner) return owner.resize(size);
    if (!upload) {
      upload = { rel, startedAt: st.birthtimeMs, owner: undefined, size: st.size } satisfies UploadState;
      this.tenant.uploads.set(rel, upload);
    }
    const partialPath = this.tenant.partialPath(rel);
    await resizeUpload(this.transferEnv(), upload, size, (n) => fsp.truncate(partialPath, n));
  }

  // ---------------------------------------------------------------------------------------------------------
  // Folders

  private onOpendir(a: Answer, path: string): Promise<void> {
    return this.withHandleSlot(async () => {
      const r = await this.resolve(path);
      this.refuseUnsafe(r);
      if (r.kind === 'none') return fail(STATUS_CODE.NO_SUCH_FILE, 'No such folder');
      if (r.kind !== 'dir') return fail(STATUS_CODE.FAILURE, 'Not a directory');
      this.log.debug({ event: 'opendir', path: toVirtual(r.rel) }, 'opendir');
      this.grantHandle(a, (id) => new DirListing(id, r.rel, r.host, this.tenant));
    });
  }

  private async onReaddir(a: Answer, hbuf: Buffer): Promise<void> {
    const h = this.lookup(hbuf);
    if (!(h instanceof DirListing)) return fail(STATUS_CODE.FAILURE, 'Invalid handle');
    const page = await h.next(READDIR_BATCH);
    if (page === null) return a.status(STATUS_CODE.EOF);
    a.name(page);
  }

  private async onRealpath(a: Answer, path: string): Promise<void> {
    const rel = normalizeVirtualPath(path);
    const v = toVirtual(rel);
    a.name([{ filename: v, longname: v, attrs: {} as Attributes }]);
  }

  private async onMkdir(a: Answer, path: string, _attrs: Attributes): Promise<void> {
    const r = await this.resolve(path);
    this.refuseUnsafe(r);
    if (r.rel === '' || isInReports(r.rel)) return fail(STATUS_CODE.PERMISSION_DENIED, `/${REPORTS_DIR} is read-only`);
    if (r.parent !== 'ok') return fail(STATUS_CODE.NO_SUCH_FILE, 'No such folder');
    if (r.kind !== 'none') return fail(STATUS_CODE.FAILURE, 'File already exists');
    const quota = this.tenant.quota;
    await quota.refresh();
    quota.addEntry();
    try {
      await fsp.mkdir(r.host, { mode: 0o750 });
    } catch (e) {
      quota.removed(0);
      throw e;
    }
    this.log.info({ event: 'mkdir', path: toVirtual(r.rel) }, 'mkdir');
    a.status(STATUS_CODE.OK);
  }

  private async onRmdir(a: Answer, path: string): Promise<void> {
    const r = await this.resolve(path);
    this.refuseUnsafe(r);
    if (r.rel === '' || r.rel === REPORTS_DIR) return fail(STATUS_CODE.PERMISSION_DENIED, 'This folder cannot be removed');
    if (r.kind === 'none') return fail(STATUS_CODE.NO_SUCH_FILE, 'No such folder');
    if (r.kind !== 'dir') return fail(STATUS_CODE.FAILURE, 'Not a directory');
    await fsp.rmdir(r.host);
    if (!isInReports(r.rel)) this.tenant.quota.removed(0);
    this.log.info({ event: 'rmdir', path: toVirtual(r.rel) }, 'rmdir');
    a.status(STATUS_CODE.OK);
  }

  private async onRemove(a: Answer, path: string): Promise<void> {
    const r = await this.resolve(path);
    this.refuseUnsafe(r);
    if (r.kind === 'dir') return fail(STATUS_CODE.FAILURE, 'Is a directory');
    if (r.kind === 'file') {
      await fsp.unlink(r.host);
      if (!isInReports(r.rel)) this.tenant.quota.removed(r.st?.size ?? 0);
      this.log.info({ event: 'remove', path: toVirtual(r.rel), bytes: r.st?.size }, 'remove');
      return a.status(STATUS_CODE.OK);
    }
    if (r.parent === 'ok') {
      const p = await this.partialStat(r.rel);
      if (p) {
        const upload = this.tenant.uploads.get(r.rel);
        if (upload) upload.owner = undefined; // an open writer can no longer complete it
        this.tenant.uploads.delete(r.rel);
        await fsp.rm(this.tenant.partialPath(r.rel), { force: true });
        this.tenant.quota.removed(upload?.size ?? p.size);
        this.log.info({ event: 'remove', path: toVirtual(r.rel), bytes: p.size, partial: true }, 'remove');
        return a.status(STATUS_CODE.OK);
      }
    }
    fail(STATUS_CODE.NO_SUCH_FILE, 'No such file');
  }

  private async onRename(a: Answer, oldPath: string, newPath: string): Promise<void> {
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
      if (from.rel === to.rel) return a.status(STATUS_CODE.OK);
      if (Buffer.byteLength(partialKey(to.rel)) > 255) return fail(STATUS_CODE.FAILURE, 'Path too long for an upload');
      if (isTemporaryName(to.rel)) {
        // temporary → temporary: the partial file just changes its key (replacing the target).
        const replaced = await this.partialStat(to.rel);
        await fsp.rename(this.tenant.partialPath(from.rel), this.tenant.partialPath(to.rel));
        if (replaced) this.tenant.quota.removed(this.tenant.uploads.get(to.rel)?.size ?? replaced.size);
        this.tenant.uploads.delete(from.rel);
        this.tenant.uploads.set(to.rel, { rel: to.rel, startedAt: upload?.startedAt ?? p.birthtimeMs, owner: undefined, size: upload?.size ?? p.size });
        this.log.info({ event: 'rename', ...logBase, bytes: p.size }, 'rename');
        return a.status(STATUS_CODE.OK);
      }
      // temporary (or any upload) → final name: the upload is complete.
      this.log.info({ event: 'rename', ...logBase, bytes: p.size }, 'rename');
      await this.complete({
        fromRel: from.rel,
        name: to.rel,
        partialPath: this.tenant.partialPath(from.rel),
        hash: null,
        hashedUpTo: 0,
        startedAt: upload?.startedAt ?? p.birthtimeMs,
      });
      return a.status(STATUS_CODE.OK);
    }
    if (from.kind === 'none') return fail(STATUS_CODE.NO_SUCH_FILE, 'No such file');
    if (isInReports(from.rel) && from.rel !== to.rel) return fail(STATUS_CODE.PERMISSION_DENIED, `/${REPORTS_DIR} is read-only`);
    // A real folder or file of the home folder (e.g. a subfolder the customer created).
    await fsp.rename(from.host, to.host);
    if (to.kind === 'file') this.tenant.quota.removed(to.st?.size ?? 0);
    this.log.info({ event: 'rename', ...logBase, bytes: from.kind === 'file' ? from.st?.size : undefined }, 'rename');
    a.status(STATUS_CODE.OK);
  }

  // ---------------------------------------------------------------------------------------------------------

  /** Ends the session: open handles are closed, unfinished uploads stay as partial files (nothing is ingested). */
  async end(reason: string): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    if (this.pauseTimer) clearInterval(this.pauseTimer);
    this.pauseTimer = undefined;
    this.budget.close();
    const handles = [...this.handles.values()];
    this.handles.clear();
    for (const h of handles) {
      if (h instanceof DirListing) {
        await h.close();
        continue;
      }
      // Disk operations always call back; the bound only guards against a stuck filesystem.
      await Promise.race([h.idle(), new Promise<void>((r) => setTimeout(r, 10_000).unref())]);
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

