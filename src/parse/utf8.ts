// A pass-through Transform that proves the byte stream is UTF-8 without decoding it.
// The CSV parser decodes on its own; this stage only validates (buffer.isUtf8 is native
// and fast), strips a BOM, counts bytes and line breaks so an encoding error can be
// located, and remembers the first 64 KiB so a separator problem can be named even when
// the CSV parser chokes on it.
import { isUtf8 } from 'node:buffer';
import { Transform, type TransformCallback } from 'node:stream';

export class Utf8Error extends Error {
  constructor(
    /** 1-based offset of the first invalid byte in the file (BOM included). */
    readonly byteOffset: number,
    /** 1-based physical line holding that byte. */
    readonly line: number,
    /** The offending byte as hex (e.g. "E9"), or '' when the file ends inside a character. */
    readonly bytesHex: string,
  ) {
    super(`invalid UTF-8 at line ${line}, byte ${byteOffset}`);
    this.name = 'Utf8Error';
  }
}

const LF = 0x0a;
const CR = 0x0d;
const HEAD_MAX = 64 * 1024;

/** Length of a UTF-8 sequence given its lead byte, or 0 when it cannot lead one. */
function sequenceLength(lead: number): number {
  if (lead < 0x80) return 1;
  if (lead >= 0xc2 && lead <= 0xdf) return 2;
  if (lead >= 0xe0 && lead <= 0xef) return 3;
  if (lead >= 0xf0 && lead <= 0xf4) return 4;
  return 0;
}

/**
 * Where the last complete character ends: a multi-byte sequence cut by the chunk
 * boundary is held back and validated together with the next chunk.
 */
function completeLength(buf: Buffer): number {
  const n = buf.length;
  // A sequence is at most 4 bytes, so only the last 3 can start an incomplete one.
  for (let i = n - 1; i >= 0 && i >= n - 3; i--) {
    const b = buf[i];
    if ((b & 0xc0) === 0x80) continue; // continuation byte: keep looking for the lead
    const len = sequenceLength(b);
    return len > n - i ? i : n;
  }
  return n;
}

/** Index of the first byte that is not part of valid UTF-8 (slow path, error only). */
export function firstInvalidIndex(buf: Buffer): number {
  let i = 0;
  const n = buf.length;
  while (i < n) {
    const b = buf[i];
    if (b < 0x80) { i++; continue; }
    const len = sequenceLength(b);
    if (len === 0 || i + len > n) return i;
    const b1 = buf[i + 1];
    // Second byte ranges exclude overlongs, surrogates and code points above U+10FFFF.
    const lo = b === 0xe0 ? 0xa0 : b === 0xf0 ? 0x90 : 0x80;
    const hi = b === 0xed ? 0x9f : b === 0xf4 ? 0x8f : 0xbf;
    if (b1 < lo || b1 > hi) return i;
    for (let k = 2; k < len; k++) if ((buf[i + k] & 0xc0) !== 0x80) return i;
    i += len;
  }
  return -1;
}

export class Utf8Guard extends Transform {
  /** Bytes received so far (BOM included). */
  bytesRead = 0;
  /** Line breaks (LF, CRLF or lone CR) before the bytes not yet counted. */
  private lineBreaks = 0;
  private lastWasCR = false;
  private tail: Buffer | null = null;
  private started = false;
  private headParts: Buffer[] | null = [];
  private headBytes = 0;
  private head: string | null = null;

  constructor(private readonly onProgress?: (bytesRead: number) => void) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    const chunkStart = this.bytesRead; // file offset of chunk[0]
    this.bytesRead += chunk.length;
    let buf = chunk;
    let bufStart = chunkStart;
    if (this.tail !== null) {
      buf = Buffer.concat([this.tail, chunk]);
      bufStart -= this.tail.length;
      this.tail = null;
    }
    if (!this.started) {
      // Wait for 3 bytes to decide on the BOM (a first chunk that small is rare).
      if (buf.length < 3) { this.tail = buf; return done(); }
      this.started = true;
      if (buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf) { buf = buf.subarray(3); bufStart += 3; }
    }
    const end = completeLength(buf);
    const whole = end === buf.length ? buf : buf.subarray(0, end);
    if (!isUtf8(whole)) return done(this.errorAt(whole, bufStart));
    if (end < buf.length) this.tail = Buffer.from(buf.subarray(end));
    this.countLines(whole);
    if (this.headParts !== null) this.collectHead(whole);
    this.onProgress?.(this.bytesRead);
    if (whole.length > 0) this.push(whole);
    done();
  }

  override _flush(done: TransformCallback): void {
    if (this.tail !== null) {
      const tail = this.tail;
      this.tail = null;
      const tailStart = this.bytesRead - tail.length;
      if (!this.started) {
        this.started = true;
        // A file shorter than 3 bytes: no room for a BOM unless it is exactly one.
        if (!isUtf8(tail)) return done(this.errorAt(tail, tailStart));
        if (this.headParts !== null) this.collectHead(tail);
        this.push(tail);
      } else {
        // Bytes held back as the start of a sequence the file never finished.
        return done(this.errorAt(tail, tailStart));
      }
    }
    if (this.headParts !== null) this.finishHead();
    done();
  }

  private errorAt(buf: Buffer, bufStart: number): Utf8Error {
    let bad = firstInvalidIndex(buf);
    if (bad < 0) bad = buf.length; // incomplete sequence at end of input
    const before = buf.subarray(0, bad);
    this.countLines(before);
    const hex = bad < buf.length ? buf[bad].toString(16).toUpperCase().padStart(2, '0') : '';
    return new Utf8Error(bufStart + bad + 1, this.lineBreaks + 1, hex);
  }

  /** Counts LF, CRLF (once) and lone CR, matching how the CSV parser splits lines. */
  private countLines(buf: Buffer): void {
    let count = 0;
    for (let i = buf.indexOf(LF); i !== -1; i = buf.indexOf(LF, i + 1)) count++;
    let i = buf.indexOf(CR);
    if (this.lastWasCR && buf.length > 0 && buf[0] !== LF) count++; // CR that ended the previous chunk was alone
    for (; i !== -1; i = buf.indexOf(CR, i + 1)) {
      if (i + 1 < buf.length && buf[i + 1] !== LF) count++;
    }
    if (buf.length > 0) this.lastWasCR = buf[buf.length - 1] === CR;
    this.lineBreaks += count;
  }

  private collectHead(buf: Buffer): void {
    const room = HEAD_MAX - this.headBytes;
    const part = buf.length > room ? buf.subarray(0, completeLength(buf.subarray(0, room))) : buf;
    this.headParts!.push(Buffer.from(part));
    this.headBytes += part.length;
    if (buf.length >= room) this.finishHead();
  }

  /** The first 64 KiB of valid text seen so far (BOM stripped): lets the caller name a wrong separator. */
  headText(): string {
    return this.head ?? Buffer.concat(this.headParts ?? []).toString('utf8');
  }

  private finishHead(): void {
    this.head = Buffer.concat(this.headParts!).toString('utf8');
    this.headParts = null;
  }
}
