// A raw SFTP v3 client over the ssh2 client's subsystem channel: sends any bytes (well-formed or not) and
// records every answer by request id, so tests can check that each request is answered exactly once.
import { readdirSync } from 'node:fs';
import type ssh2 from 'ssh2';
import type { ClientChannel } from 'ssh2';

export const T = {
  INIT: 1, VERSION: 2, OPEN: 3, CLOSE: 4, READ: 5, WRITE: 6, LSTAT: 7, FSTAT: 8, SETSTAT: 9, FSETSTAT: 10,
  OPENDIR: 11, READDIR: 12, REMOVE: 13, MKDIR: 14, RMDIR: 15, REALPATH: 16, STAT: 17, RENAME: 18, READLINK: 19,
  SYMLINK: 20, STATUS: 101, HANDLE: 102, DATA: 103, NAME: 104, ATTRS: 105,
} as const;

export interface RawAnswer {
  type: number;
  id: number;
  /** STATUS: code; HANDLE/DATA: the string; NAME: count. */
  code?: number;
  message?: string;
  bytes?: Buffer;
  count?: number;
}

export const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0, 0);
  return b;
};
export const u64 = (n: bigint | number): Buffer => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n), 0);
  return b;
};
export const str = (s: string | Buffer): Buffer => {
  const b = typeof s === 'string' ? Buffer.from(s) : s;
  return Buffer.concat([u32(b.length), b]);
};
/** Attributes with only a size (flag SSH_FILEXFER_ATTR_SIZE). */
export const sizeAttrs = (size: bigint | number): Buffer => Buffer.concat([u32(1), u64(size)]);
export const noAttrs = (): Buffer => u32(0);

export function packet(type: number, body: Buffer): Buffer {
  return Buffer.concat([u32(body.length + 1), Buffer.from([type]), body]);
}

export class RawSftp {
  readonly answers = new Map<number, RawAnswer[]>();
  private buf: Buffer = Buffer.alloc(0);
  private nextId = 1;
  private waiters = new Map<number, (a: RawAnswer) => void>();
  closed = false;
  private closeWaiters: (() => void)[] = [];

  constructor(readonly stream: ClientChannel) {
    stream.on('data', (d: Buffer) => this.onData(d));
    stream.on('close', () => {
      this.closed = true;
      for (const w of this.closeWaiters.splice(0)) w();
    });
    stream.on('error', () => undefined);
  }

  static open(conn: ssh2.Client): Promise<RawSftp> {
    return new Promise((resolve, reject) => {
      conn.subsys('sftp', (err, stream) => {
        if (err) return reject(err);
        const raw = new RawSftp(stream);
        stream.once('data', () => resolve(raw)); // VERSION
        stream.write(packet(T.INIT, u32(3)));
      });
    });
  }

  private onData(d: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d;
    while (this.buf.length >= 4) {
      const len = this.buf.readUInt32BE(0);
      if (this.buf.length < 4 + len) return;
      const p = this.buf.subarray(4, 4 + len);
      this.buf = this.buf.subarray(4 + len);
      const type = p[0];
      if (type === T.VERSION) continue;
      const id = p.readUInt32BE(1);
      const a: RawAnswer = { type, id };
      if (type === T.STATUS) {
        a.code = p.readUInt32BE(5);
        const ml = p.readUInt32BE(9);
        a.message = p.subarray(13, 13 + ml).toString();
      } else if (type === T.HANDLE || type === T.DATA) {
        const l = p.readUInt32BE(5);
        a.bytes = Buffer.from(p.subarray(9, 9 + l));
      } else if (type === T.NAME) {
        a.count = p.readUInt32BE(5);
      }
      const list = this.answers.get(id) ?? [];
      list.push(a);
      this.answers.set(id, list);
      const w = this.waiters.get(id);
      if (w) {
        this.waiters.delete(id);
        w(a);
      }
    }
  }

  id(): number {
    return this.nextId++;
  }

  /** Sends a request (type + body after the id) and returns its id. */
  send(type: number, body: Buffer, id = this.id()): number {
    this.stream.write(packet(type, Buffer.concat([u32(id), body])));
    return id;
  }

  sendRaw(bytes: Buffer): void {
    this.stream.write(bytes);
  }

  /** The first answer to `id`, or 'closed' if the channel closes first, or 'timeout'. */
  answer(id: number, timeoutMs = 10_000): Promise<RawAnswer | 'closed' | 'timeout'> {
    const got = this.answers.get(id)?.[0];
    if (got) return Promise.resolve(got);
    if (this.closed) return Promise.resolve('closed');
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.waiters.delete(id);
        resolve('timeout');
      }, timeoutMs);
      this.waiters.set(id, (a) => {
        clearTimeout(t);
        resolve(a);
      });
      this.closeWaiters.push(() => {
        clearTimeout(t);
        resolve('closed');
      });
    });
  }

  async request(type: number, body: Buffer, timeoutMs?: number): Promise<RawAnswer> {
    const a = await this.answer(this.send(type, body), timeoutMs);
    if (typeof a === 'string') throw new Error(`no answer: ${a}`);
    return a;
  }

  async openFile(path: string, pflags: number, attrs = noAttrs()): Promise<Buffer> {
    const a = await this.request(T.OPEN, Buffer.concat([str(path), u32(pflags), attrs]));
    if (a.type !== T.HANDLE) throw new Error(`OPEN ${path}: status ${a.code} ${a.message}`);
    return a.bytes!;
  }

  read(handle: Buffer, offset: bigint | number, len: number): Promise<RawAnswer> {
    return this.request(T.READ, Buffer.concat([str(handle), u64(offset), u32(len)]));
  }

  write(handle: Buffer, offset: bigint | number, data: Buffer): Promise<RawAnswer> {
    return this.request(T.WRITE, Buffer.concat([str(handle), u64(offset), str(data)]));
  }

  close(handle: Buffer): Promise<RawAnswer> {
    return this.request(T.CLOSE, str(handle));
  }

  end(): void {
    this.stream.end();
  }

  whenClosed(): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((r) => this.closeWaiters.push(r));
  }
}

/** Descriptors open in this process (the server runs in the test process). */
export function openFds(): number {
  return readdirSync('/proc/self/fd').length;
}

export function rssMb(): number {
  return process.memoryUsage().rss / 1024 / 1024;
}
