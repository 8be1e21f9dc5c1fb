// Bytes one SFTP session may hold in memory, whatever its client does.
//
// WRITE data is held until the disk has it; when too much waits, the session stops granting SSH window (see
// session.ts). READs are admitted against a budget that counts the buffers being filled *and* the answers not yet
// sent to the client (ssh2's channel queue and the socket's buffer): a client that asks much and reads nothing
// gets its READs executed only as its earlier answers leave, so they wait as small records, not as data.

export interface IoLimits {
  /** WRITE data held per session before the server stops granting SSH window. */
  maxBufferedWriteBytes: number;
  /** READ data (buffers being filled + answers queued for the client) per session. */
  maxBufferedReadBytes: number;
}

interface WaitingRead {
  bytes: number;
  run: (cancelled: boolean) => void;
}

/** READs waiting for budget beyond which the session stops reading requests from the channel. */
export const MAX_WAITING_READS = 256;

export class IoBudget {
  writeBytes = 0;
  readBytes = 0;
  private readonly waiting: WaitingRead[] = [];
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    readonly limits: IoLimits,
    /** Bytes of answers produced but not yet taken by the client. */
    private readonly queuedOutputBytes: () => number,
  ) {}

  get waitingReads(): number {
    return this.waiting.length;
  }

  /** Runs `run(false)` when `bytes` fit in the budget (at once, or once earlier answers have left). */
  admitRead(bytes: number, run: (cancelled: boolean) => void): void {
    if (this.closed) return run(true);
    if (this.waiting.length === 0 && this.fits(bytes)) {
      this.readBytes += bytes;
      run(false);
      return;
    }
    this.waiting.push({ bytes, run });
    this.timer ??= setInterval(() => this.pump(), 10);
    this.timer.unref();
  }

  /** A READ's buffer has been handed to the channel (or dropped). */
  readDone(bytes: number): void {
    this.readBytes -= bytes;
    this.pump();
  }

  /** Ends the session's I/O: every waiting READ is cancelled (its run is told so and does no I/O). */
  close(): void {
    this.closed = true;
    this.stopTimer();
    for (const w of this.waiting.splice(0)) w.run(true);
  }

  private fits(bytes: number): boolean {
    const used = this.readBytes + this.queuedOutputBytes();
    // One READ always goes when nothing is in flight, so a budget below one READ still makes progress.
    return used === 0 || used + bytes <= this.limits.maxBufferedReadBytes;
  }

  private pump(): void {
    while (this.waiting.length > 0 && this.fits(this.waiting[0].bytes)) {
      const w = this.waiting.shift()!;
      this.readBytes += w.bytes;
      w.run(false);
    }
    if (this.waiting.length === 0) this.stopTimer();
  }

  private stopTimer(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
