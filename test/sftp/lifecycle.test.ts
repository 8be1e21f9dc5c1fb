// Flow control and shutdown.
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { sftpBatch, sshOptions, startFixture, waitFor, type Fixture } from './helpers.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

function throttledPut(f: Fixture, work: string, file: string, kbits: number) {
  const child = spawn('sftp', [...sshOptions(f.port, f.keys.a.privateKeyPath), '-P', String(f.port), '-l', String(kbits), '-b', '-', 'a@127.0.0.1'], {
    cwd: work,
    stdio: ['pipe', 'ignore', 'pipe'],
  });
  child.stdin.end(`put ${file}\n`);
  const exit = new Promise<number | null>((res) => child.on('close', (code) => res(code)));
  return { child, exit };
}

describe('flow control', () => {
  it('with a tiny write buffer the server pauses the channel and still receives every byte', async () => {
    const f = await startFixture({ maxBufferedWriteBytes: 64 * 1024 });
    try {
      const work = join(f.dir, 'work');
      mkdirSync(work);
      const data = randomBytes(8 * 1024 * 1024);
      writeFileSync(join(work, 'fc.csv'), data);
      const r = await sftpBatch(f, 'a', ['put fc.csv'], { cwd: work });
      expect(r.code).toBe(0);
      await waitFor(() => f.completed.length === 1);
      expect(f.completed[0].sha256).toBe(sha(data));
      await waitFor(() => f.events.some((e) => e.event === 'sftp_session_end'));
      const end = f.events.find((e) => e.event === 'sftp_session_end')!;
      expect(end.flowControlPauses as number).toBeGreaterThan(0);
    } finally {
      await f.stop();
    }
  });
});

describe('close(graceMs)', () => {
  it('stops accepting, lets an in-flight upload finish, then ends', async () => {
    const f = await startFixture();
    try {
      const work = join(f.dir, 'work');
      mkdirSync(work);
      const data = randomBytes(1536 * 1024);
      writeFileSync(join(work, 'inflight.csv'), data);
      const put = throttledPut(f, work, 'inflight.csv', 6000); // ≈ 750 KB/s → ~2 s
      const partial = join(f.partial('a'), 'inflight.csv');
      await waitFor(() => existsSync(partial) && statSync(partial).size > 100_000, 10_000, 'upload under way');
      const closing = f.server.close(15_000);
      // New connections are refused while closing.
      const late = await sftpBatch(f, 'a', ['ls']);
      expect(late.code).not.toBe(0);
      expect(await put.exit).toBe(0);
      await closing;
      expect(f.completed.map((c) => c.name)).toEqual(['inflight.csv']);
      expect(f.completed[0].sha256).toBe(sha(data));
    } finally {
      await f.stop();
    }
  });

  it('ends an upload that does not finish within the grace period; nothing is ingested', async () => {
    const f = await startFixture();
    try {
      const work = join(f.dir, 'work');
      mkdirSync(work);
      writeFileSync(join(work, 'slow.csv'), randomBytes(4 * 1024 * 1024));
      const put = throttledPut(f, work, 'slow.csv', 2000); // ≈ 250 KB/s → ~16 s
      const partial = join(f.partial('a'), 'slow.csv');
      await waitFor(() => existsSync(partial) && statSync(partial).size > 50_000, 10_000, 'upload under way');
      const t0 = Date.now();
      await f.server.close(500);
      expect(Date.now() - t0).toBeLessThan(5000);
      expect(await put.exit).not.toBe(0);
      expect(f.completed).toEqual([]);
      expect(f.events.some((e) => e.event === 'shutdown_abort')).toBe(true);
    } finally {
      await f.stop();
    }
  });
});
