// The ssh2 client: request patterns of WinSCP, FileZilla and friends, at the protocol level.
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { OPEN, STATUS, sftpClient, startFixture, statusOf, waitFor, type Fixture, type SftpClient } from './helpers.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const W = OPEN.WRITE | OPEN.CREAT | OPEN.TRUNC;

describe('ssh2 client', () => {
  let f: Fixture;
  let c: SftpClient;
  beforeEach(async () => {
    f = await startFixture({ maxFileBytes: 8 * 1024 * 1024, maxHandlesPerSession: 8 });
    c = await sftpClient(f.port, 'a', readFileSync(f.keys.a.privateKeyPath));
  });
  afterEach(async () => {
    c.end();
    await f.stop();
  });

  it('out-of-order offset writes: each WRITE lands at its own offset; hash is right', async () => {
    const data = randomBytes(1024 * 1024 + 123);
    const chunk = 32 * 1024;
    const offsets: number[] = [];
    for (let o = 0; o < data.length; o += chunk) offsets.push(o);
    offsets.reverse(); // last chunk first
    [offsets[3], offsets[10]] = [offsets[10], offsets[3]];
    const h = await c.open('/ooo.csv', W);
    await Promise.all(offsets.map((o) => c.write(h, data.subarray(o, o + chunk), o)));
    await c.close(h);
    await waitFor(() => f.completed.length === 1);
    expect(f.completed[0].size).toBe(data.length);
    expect(f.completed[0].sha256).toBe(sha(data));
    expect(sha(readFileSync(f.completed[0].inboxPath))).toBe(sha(data));
  });

  it('WinSCP: upload to name.filepart, setstat, rename to the final name (replacing) completes it once', async () => {
    const data = Buffer.from('externalId;name\ng1;Sales\n');
    const h = await c.open('/groups.csv.filepart', W);
    await c.write(h, data, 0);
    await c.close(h);
    expect(f.completed).toEqual([]);
    expect((await c.readdir('/')).map((e) => e.filename)).toContain('groups.csv.filepart');
    await c.setstat('/groups.csv.filepart', { atime: 1_700_000_000, mtime: 1_700_000_000 });
    await c.rename('/groups.csv.filepart', '/groups.csv');
    await waitFor(() => f.completed.length === 1);
    expect(f.completed[0]).toMatchObject({ name: 'groups.csv', size: data.length, sha256: sha(data) });
    // WinSCP then sets the times on the final name: must not fail although the file moved on.
    await c.setstat('/groups.csv', { atime: 1_700_000_000, mtime: 1_700_000_000 });
    const st = await c.stat('/groups.csv');
    expect(st.size).toBe(data.length);
    expect((await c.readdir('/')).map((e) => e.filename)).toEqual(['reports']);
    expect(readdirSync(f.partial('a'))).toEqual([]);
  });

  it('dot-file and .tmp temporaries complete on rename, not on close', async () => {
    for (const tmp of ['/.users.csv', '/users.csv.tmp', '/users.csv.part']) {
      const h = await c.open(tmp, W);
      await c.write(h, Buffer.from(tmp), 0);
      await c.close(h);
    }
    expect(f.completed).toEqual([]);
    await c.rename('/.users.csv', '/a.csv');
    await c.rename('/users.csv.tmp', '/b.csv');
    await c.rename('/users.csv.part', '/c.csv');
    await waitFor(() => f.completed.length === 3);
    expect(f.completed.map((u) => u.name)).toEqual(['a.csv', 'b.csv', 'c.csv']);
  });

  it('FileZilla: a WRITE-only open (no CREAT/TRUNC) of an interrupted upload resumes at an offset', async () => {
    const data = randomBytes(300_000);
    const first = await sftpClient(f.port, 'a', readFileSync(f.keys.a.privateKeyPath));
    const h1 = await first.open('/resume.csv', W);
    await first.write(h1, data.subarray(0, 100_000), 0);
    first.conn.end(); // connection lost with the handle open
    await waitFor(() => f.events.some((e) => e.event === 'close' && e.outcome === 'interrupted'));
    expect(f.completed).toEqual([]);

    const st = await c.stat('/resume.csv');
    expect(st.size).toBe(100_000);
    const h2 = await c.open('/resume.csv', OPEN.WRITE);
    for (let o = st.size; o < data.length; o += 32_768) await c.write(h2, data.subarray(o, Math.min(o + 32_768, data.length)), o);
    await c.close(h2);
    await waitFor(() => f.completed.length === 1);
    expect(f.completed[0]).toMatchObject({ name: 'resume.csv', size: data.length, sha256: sha(data) });
  });

  it('APPEND writes at the end of the file whatever the offset', async () => {
    const h1 = await c.open('/app.csv.filepart', W);
    await c.write(h1, Buffer.from('hello '), 0);
    await c.close(h1);
    const h2 = await c.open('/app.csv.filepart', OPEN.WRITE | OPEN.APPEND);
    await c.write(h2, Buffer.from('world'), 0);
    await c.write(h2, Buffer.from('!'), 0);
    await c.close(h2);
    await c.rename('/app.csv.filepart', '/app.csv');
    await waitFor(() => f.completed.length === 1);
    expect(readFileSync(f.completed[0].inboxPath, 'utf8')).toBe('hello world!');
  });

  it('STAT, SETSTAT and FSTAT right after CLOSE answer with the final attributes', async () => {
    const data = randomBytes(5000);
    const h = await c.open('/t.csv', W);
    await c.write(h, data, 0);
    const fst = await new Promise<{ size: number }>((res, rej) => c.sftp.fstat(h, (e, s) => (e ? rej(e) : res(s))));
    expect(fst.size).toBe(5000);
    await c.fsetstat(h, { mtime: 1_600_000_000, atime: 1_600_000_000 });
    await c.close(h);
    await c.setstat('/t.csv', { mtime: 1_600_000_000, atime: 1_600_000_000 });
    expect((await c.stat('/t.csv')).size).toBe(5000);
    await waitFor(() => f.completed.length === 1);
  });

  it('SETSTAT/FSETSTAT size truncates an upload', async () => {
    const h = await c.open('/s.csv', W);
    await c.write(h, Buffer.from('0123456789'), 0);
    await c.fsetstat(h, { size: 4 });
    await c.close(h);
    await waitFor(() => f.completed.length === 1);
    expect(readFileSync(f.completed[0].inboxPath, 'utf8')).toBe('0123');
    expect(f.completed[0].sha256).toBe(sha(Buffer.from('0123')));
  });

  it('EXCL refuses an existing upload; READ of a report; /reports is not writable but deletable', async () => {
    const h = await c.open('/x.csv.filepart', W);
    await c.close(h);
    expect(await statusOf(c.open('/x.csv.filepart', OPEN.WRITE | OPEN.CREAT | OPEN.EXCL))).toBe(STATUS.FAILURE);

    mkdirSync(join(f.home('a'), 'reports'), { recursive: true });
    writeFileSync(join(f.home('a'), 'reports', 'r1.json'), '{"ok":true}');
    const rh = await c.open('/reports/r1.json', 'r');
    expect((await c.read(rh, 1000, 0)).toString()).toBe('{"ok":true}');
    expect((await c.read(rh, 1000, 11)).length).toBe(0); // EOF
    await c.close(rh);
    expect(await statusOf(c.open('/reports/new.csv', W))).toBe(STATUS.PERMISSION_DENIED);
    expect(await statusOf(c.open('/reports/r1.json', W))).toBe(STATUS.PERMISSION_DENIED);
    expect(await statusOf(c.mkdir('/reports/sub'))).toBe(STATUS.PERMISSION_DENIED);
    expect(await statusOf(c.rename('/x.csv.filepart', '/reports/x.csv'))).toBe(STATUS.PERMISSION_DENIED);
    expect(await statusOf(c.setstat('/reports/r1.json', { size: 0 }))).toBe(STATUS.PERMISSION_DENIED);
    const entries = await c.readdir('/reports');
    expect(entries.map((e) => e.filename)).toEqual(['r1.json']);
    expect(entries[0].longname).toMatch(/^-rw-r--r--\s+1 a\s+a\s+11 \w{3} [ \d]\d [\d:]{5} r1\.json$/);
    await c.unlink('/reports/r1.json');
    expect(readdirSync(join(f.home('a'), 'reports'))).toEqual([]);
  });

  it('REALPATH, MKDIR, RMDIR, REMOVE of a partial upload', async () => {
    expect(await c.realpath('.')).toBe('/');
    expect(await c.realpath('sub/../x/./y')).toBe('/x/y');
    expect(await c.realpath('/../../..')).toBe('/');
    await c.mkdir('/sub');
    expect(await statusOf(c.open('/nope/x.csv', W))).toBe(STATUS.NO_SUCH_FILE);
    const h = await c.open('/sub/x.csv.tmp', W);
    await c.write(h, Buffer.from('abc'), 0);
    await c.close(h);
    expect((await c.readdir('/sub')).map((e) => e.filename)).toEqual(['x.csv.tmp']);
    await c.unlink('/sub/x.csv.tmp');
    expect(await c.readdir('/sub')).toEqual([]);
    await new Promise<void>((res, rej) => c.sftp.rmdir('/sub', (e) => (e ? rej(e) : res())));
    expect(await statusOf(c.stat('/sub'))).toBe(STATUS.NO_SUCH_FILE);
    expect(f.completed).toEqual([]);
  });

  it('limits: max file size and max open handles per session fail with a clear status', async () => {
    const h = await c.open('/huge.csv', W);
    const err = await c.write(h, Buffer.alloc(1024), 8 * 1024 * 1024).catch((e: Error & { code?: number }) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as { code?: number }).code).toBe(STATUS.FAILURE);
    expect((err as Error).message).toMatch(/too large/i);
    await c.close(h);
    expect(f.completed).toEqual([]); // a file that hit the limit is discarded, not ingested

    const handles: Buffer[] = [];
    for (let i = 0; i < 8; i++) handles.push(await c.open(`/h${i}.tmp`, W));
    const e2 = await c.open('/h9.tmp', W).catch((e: Error) => e);
    expect((e2 as Error).message).toMatch(/too many open handles/i);
    for (const x of handles) await c.close(x);
  });

  it('READLINK and SYMLINK are refused', async () => {
    expect(await statusOf(c.symlink('/etc/passwd', '/link'))).toBe(STATUS.OP_UNSUPPORTED);
    expect(await statusOf(c.readlink('/reports'))).toBe(STATUS.OP_UNSUPPORTED);
  });
});

describe('tenant quota', () => {
  it('a write beyond the tenant quota fails', async () => {
    const f = await startFixture({ tenantQuotaBytes: 100_000 });
    const c = await sftpClient(f.port, 'a', readFileSync(f.keys.a.privateKeyPath));
    try {
      const h = await c.open('/q.csv', W);
      await c.write(h, Buffer.alloc(60_000), 0);
      const err = await c.write(h, Buffer.alloc(60_000), 60_000).catch((e: Error) => e);
      expect((err as Error).message).toMatch(/quota/i);
      await c.close(h);
      expect(f.completed).toEqual([]);
      expect(f.events.some((e) => e.event === 'limit_quota')).toBe(true);
    } finally {
      c.end();
      await f.stop();
    }
  });
});
