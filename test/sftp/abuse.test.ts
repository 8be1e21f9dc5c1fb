// The SFTP server against a hostile tenant and a hostile stranger: raw SFTP packets through the ssh2 client's
// subsystem channel, floods of connections from many loopback addresses. Every case checks the answer and that
// the server stays healthy afterwards (another tenant uploads; descriptors and memory back near their baseline).
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OPEN, STATUS, connect, sftpClient, startFixture, waitFor, type Fixture } from './helpers.js';
import { rng } from '../../bench/lib/generate.js';
import { RawSftp, T, noAttrs, openFds, packet, rssMb, sizeAttrs, str, u32, u64 } from './raw.js';

const R = OPEN.READ;
const W = OPEN.WRITE | OPEN.CREAT | OPEN.TRUNC;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function rawSession(f: Fixture, tenant: 'a' | 'b' = 'a') {
  const conn = await connect(f.port, { username: tenant, privateKey: readFileSync(f.keys[tenant].privateKeyPath) });
  conn.on('error', () => undefined);
  return { conn, raw: await RawSftp.open(conn) };
}

let healthyCount = 0;
/** Another tenant logs in and uploads a file that reaches the inbox. */
async function expectHealthy(f: Fixture): Promise<void> {
  const name = `healthy-${++healthyCount}.csv`;
  const c = await sftpClient(f.port, 'b', readFileSync(f.keys.b.privateKeyPath));
  try {
    const h = await c.open(`/${name}`, 'w');
    await c.write(h, Buffer.from('a;b\n1;2\n'), 0);
    await c.close(h);
  } finally {
    c.end();
  }
  await waitFor(() => f.completed.some((u) => u.tenantId === 'b' && u.name === name), 5000, 'the healthy upload');
}

/** Each request id was answered exactly once. */
function expectAnsweredOnce(raw: RawSftp, ids: number[]): void {
  const counts = ids.map((id) => raw.answers.get(id)?.length ?? 0);
  expect(counts.filter((n) => n !== 1)).toEqual([]);
}

async function settleFds(baseline: number, slack = 4): Promise<number> {
  const end = Date.now() + 3000;
  let n = openFds();
  while (n > baseline + slack && Date.now() < end) {
    await sleep(50);
    n = openFds();
  }
  return n;
}

function writeReport(f: Fixture, name: string, bytes: number): Buffer {
  mkdirSync(join(f.home('a'), 'reports'), { recursive: true });
  const data = Buffer.alloc(bytes);
  for (let i = 0; i < bytes; i++) data[i] = (i * 31 + 7) & 0xff;
  writeFileSync(join(f.home('a'), 'reports', name), data);
  return data;
}

describe('offsets and lengths', () => {
  let f: Fixture;
  beforeAll(async () => {
    f = await startFixture({ maxFileBytes: 2 ** 32 + 4096 });
  });
  afterAll(async () => {
    await f.stop();
  });

  it('a READ past 2^53 is refused, leaks no descriptor and CLOSE still answers (defect 1)', async () => {
    writeReport(f, 'r.txt', 1000);
    const { conn, raw } = await rawSession(f);
    const fds0 = openFds();
    const ids: number[] = [];
    for (let i = 0; i < 300; i++) {
      const h = await raw.openFile('/reports/r.txt', R);
      const read = raw.send(T.READ, Buffer.concat([str(h), u64(2n ** 62n), u32(1024)]));
      const close = raw.send(T.CLOSE, str(h));
      ids.push(read, close);
      const [a, b] = await Promise.all([raw.answer(read, 3000), raw.answer(close, 3000)]);
      expect(b).toMatchObject({ type: T.STATUS, code: STATUS.OK });
      expect(a).toMatchObject({ type: T.STATUS, code: STATUS.FAILURE, message: expect.stringMatching(/out of range/) });
    }
    expectAnsweredOnce(raw, ids);
    expect(await settleFds(fds0)).toBeLessThanOrEqual(fds0 + 4);
    // One audit line for the refused reads of a handle, not one per READ.
    expect(f.events.filter((e) => e.event === 'read_refused').length).toBe(300);
    conn.end();
    await expectHealthy(f);
  });

  it('READ at 0, 2^31, 2^32, 2^53, 2^63−1; zero-length and longest READ', async () => {
    const data = writeReport(f, 'big.txt', 300 * 1024);
    const { conn, raw } = await rawSession(f);
    const h = await raw.openFile('/reports/big.txt', R);
    const at = async (off: bigint, len: number) => raw.read(h, off, len);
    const first = await at(0n, 1000);
    expect(first.type).toBe(T.DATA);
    expect(first.bytes!.equals(data.subarray(0, 1000))).toBe(true);
    expect(await at(2n ** 31n, 1000)).toMatchObject({ type: T.STATUS, code: STATUS.EOF });
    expect(await at(2n ** 32n, 1000)).toMatchObject({ type: T.STATUS, code: STATUS.EOF });
    expect(await at(2n ** 53n, 1000)).toMatchObject({ type: T.STATUS, code: STATUS.FAILURE });
    expect(await at(2n ** 63n - 1n, 1000)).toMatchObject({ type: T.STATUS, code: STATUS.FAILURE });
    const empty = await at(0n, 0);
    expect(empty.type).toBe(T.DATA);
    expect(empty.bytes!.length).toBe(0);
    const longest = await at(0n, 0xffffffff);
    expect(longest.type).toBe(T.DATA);
    expect(longest.bytes!.length).toBe(255 * 1024);
    expect(longest.bytes!.equals(data.subarray(0, 255 * 1024))).toBe(true);
    expect((await raw.close(h)).code).toBe(STATUS.OK);
    conn.end();
  });

  it('WRITE at 0, 2^31, 2^32, 2^53, 2^63−1; zero-length, longest, and overlapping the end of file', async () => {
    const { conn, raw } = await rawSession(f);
    const h = await raw.openFile('/w.filepart', W);
    const chunk = Buffer.alloc(100, 0x61);
    expect(await raw.write(h, 0, chunk)).toMatchObject({ code: STATUS.OK });
    expect(await raw.write(h, 2n ** 31n, chunk)).toMatchObject({ code: STATUS.OK });
    expect(await raw.write(h, 2n ** 32n, chunk)).toMatchObject({ code: STATUS.OK });
    const partial = join(f.partial('a'), 'w.filepart');
    expect(statSync(partial).size).toBe(2 ** 32 + 100);
    expect(await raw.write(h, 2n ** 53n, chunk)).toMatchObject({ code: STATUS.FAILURE, message: expect.stringMatching(/out of range/) });
    expect(await raw.write(h, 2n ** 63n - 1n, chunk)).toMatchObject({ code: STATUS.FAILURE });
    expect(statSync(partial).size).toBe(2 ** 32 + 100); // nothing written by the refused ones
    expect(await raw.write(h, 0, Buffer.alloc(0))).toMatchObject({ code: STATUS.OK });
    expect((await raw.close(h)).code).toBe(STATUS.OK);
    expect((await raw.request(T.REMOVE, str('/w.filepart'))).code).toBe(STATUS.OK);

    const h2 = await raw.openFile('/eof.filepart', W);
    const longest = Buffer.alloc(255 * 1024, 0x62);
    expect(await raw.write(h2, 0, longest)).toMatchObject({ code: STATUS.OK });
    expect(await raw.write(h2, 255 * 1024 - 50, Buffer.alloc(100, 0x63))).toMatchObject({ code: STATUS.OK });
    expect((await raw.close(h2)).code).toBe(STATUS.OK);
    const written = readFileSync(join(f.partial('a'), 'eof.filepart'));
    expect(written.length).toBe(255 * 1024 + 50);
    expect(written.subarray(-100).equals(Buffer.alloc(100, 0x63))).toBe(true);
    // The refused writes were logged once for the handle and counted at its close.
    expect(f.events.filter((e) => e.event === 'write_refused' && e.path === '/w.filepart').length).toBe(1);
    expect(f.events.find((e) => e.event === 'close' && e.path === '/w.filepart')).toMatchObject({ refusedWrites: 2 });
    conn.end();
    await expectHealthy(f);
  });
});

describe('memory one session can hold', () => {
  let f: Fixture;
  beforeAll(async () => {
    f = await startFixture();
  });
  afterAll(async () => {
    await f.stop();
  });

  it('thousands of READs whose answers are never taken do not pile up in memory (defect 2)', async () => {
    writeReport(f, 'm.bin', 1024 * 1024);
    const { conn, raw } = await rawSession(f);
    const h = await raw.openFile('/reports/m.bin', R);
    const fds0 = openFds();
    raw.stream.pause(); // never consume the answers: the client stops granting window
    const rss0 = rssMb();
    let peak = rss0;
    const ids: number[] = [];
    for (let i = 0; i < 3000; i++) ids.push(raw.send(T.READ, Buffer.concat([str(h), u64((i % 4) * 255 * 1024), u32(255 * 1024)])));
    for (let i = 0; i < 30; i++) {
      await sleep(50);
      peak = Math.max(peak, rssMb());
    }
    // Unbounded, this queued ~750 MB of answers; bounded, it is the budget (4 MiB) plus the SSH windows.
    expect(peak - rss0).toBeLessThan(120);
    const gone = new Promise<void>((r) => conn.once('close', () => r()));
    conn.end();
    await gone;
    expect(await settleFds(fds0)).toBeLessThanOrEqual(fds0 + 4);
    await expectHealthy(f);
  });

  it('a client that takes its answers gets every READ answered once, with the right bytes', async () => {
    const data = writeReport(f, 'n.bin', 1024 * 1024);
    const { conn, raw } = await rawSession(f);
    const h = await raw.openFile('/reports/n.bin', R);
    raw.stream.pause();
    const ids: number[] = [];
    for (let i = 0; i < 300; i++) ids.push(raw.send(T.READ, Buffer.concat([str(h), u64((i % 4) * 255 * 1024), u32(255 * 1024)])));
    await sleep(300);
    raw.stream.resume();
    const answers = await Promise.all(ids.map((id) => raw.answer(id, 20_000)));
    answers.forEach((a, i) => {
      expect(a).toMatchObject({ type: T.DATA });
      const off = (i % 4) * 255 * 1024;
      expect((a as { bytes: Buffer }).bytes.equals(data.subarray(off, off + 255 * 1024))).toBe(true);
    });
    expectAnsweredOnce(raw, ids);
    expect((await raw.close(h)).code).toBe(STATUS.OK);
    conn.end();
  });

  it('pipelined OPENs cannot exceed the handle limit', async () => {
    writeReport(f, 'o.txt', 10);
    const { conn, raw } = await rawSession(f);
    const ids: number[] = [];
    for (let i = 0; i < 100; i++) ids.push(raw.send(T.OPEN, Buffer.concat([str('/reports/o.txt'), u32(R), noAttrs()])));
    const answers = await Promise.all(ids.map((id) => raw.answer(id)));
    const granted = answers.filter((a) => typeof a !== 'string' && a.type === T.HANDLE);
    expect(granted.length).toBe(64);
    expect(answers.filter((a) => typeof a !== 'string' && a.code === STATUS.FAILURE && /Too many open handles/.test(a.message ?? '')).length).toBe(36);
    expectAnsweredOnce(raw, ids);
    conn.end();
  });

  it('open listings of a large folder are read in pages, not copied whole', async () => {
    const dir = join(f.home('a'), 'many');
    mkdirSync(dir, { recursive: true });
    for (let i = 0; i < 3000; i++) writeFileSync(join(dir, `file-${String(i).padStart(5, '0')}-with-a-longish-name.csv`), '');
    const { conn, raw } = await rawSession(f);
    const rss0 = rssMb();
    const handles: Buffer[] = [];
    for (let i = 0; i < 64; i++) {
      const a = await raw.request(T.OPENDIR, str('/many'));
      handles.push(a.bytes!);
      const page = await raw.request(T.READDIR, str(a.bytes!));
      expect(page.type).toBe(T.NAME);
    }
    // A full copy per listing was ~15 MB for 3,000 entries (×64); a page is 128 entries.
    expect(rssMb() - rss0).toBeLessThan(60);
    // One listing read to the end yields every entry exactly once.
    let total = 0;
    for (;;) {
      const page = await raw.request(T.READDIR, str(handles[0]));
      if (page.type === T.STATUS) {
        expect(page.code).toBe(STATUS.EOF);
        break;
      }
      total += page.count!;
    }
    expect(total + 128).toBe(3000);
    for (const h of handles) expect((await raw.close(h)).code).toBe(STATUS.OK);
    conn.end();
  });
});

/** Writes `total` bytes in 64 KiB WRITEs; the first answer that is not OK, or the last OK. */
async function writeChunks(raw: RawSftp, h: Buffer, total: number) {
  let last;
  for (let off = 0; off < total; off += 65536) {
    last = await raw.write(h, off, Buffer.alloc(Math.min(65536, total - off)));
    if (last.code !== STATUS.OK) return last;
  }
  return last;
}

describe('quota', () => {
  let f: Fixture;
  const MiB = 1024 * 1024;
  beforeAll(async () => {
    f = await startFixture({ tenantQuotaBytes: 4 * MiB, tenantMaxEntries: 12 });
  });
  afterAll(async () => {
    await f.stop();
  });

  it('growth by resize counts against the quota like growth by WRITE (defect 3)', async () => {
    const { conn, raw } = await rawSession(f);
    // FSETSTAT on an open upload.
    const h = await raw.openFile('/big.filepart', W);
    const grow = await raw.request(T.FSETSTAT, Buffer.concat([str(h), sizeAttrs(2 ** 30)]));
    expect(grow).toMatchObject({ code: STATUS.FAILURE, message: expect.stringMatching(/quota of 4194304 bytes exceeded/) });
    expect(statSync(join(f.partial('a'), 'big.filepart')).size).toBe(0);
    expect((await raw.close(h)).code).toBe(STATUS.OK);
    // SETSTAT on the path of an upload no handle holds.
    const byPath = await raw.request(T.SETSTAT, Buffer.concat([str('/big.filepart'), sizeAttrs(2 ** 30)]));
    expect(byPath).toMatchObject({ code: STATUS.FAILURE, message: expect.stringMatching(/quota/) });
    expect(statSync(join(f.partial('a'), 'big.filepart')).size).toBe(0);
    // A sparse 3 MiB by SETSTAT is charged: a 2 MiB WRITE elsewhere no longer fits.
    expect((await raw.request(T.SETSTAT, Buffer.concat([str('/big.filepart'), sizeAttrs(3 * MiB)]))).code).toBe(STATUS.OK);
    const h2 = await raw.openFile('/next.filepart', W);
    expect(await writeChunks(raw, h2, 2 * MiB)).toMatchObject({ code: STATUS.FAILURE, message: expect.stringMatching(/quota/) });
    // Shrinking gives the bytes back.
    expect((await raw.request(T.SETSTAT, Buffer.concat([str('/big.filepart'), sizeAttrs(0)]))).code).toBe(STATUS.OK);
    const h3 = await raw.openFile('/ok.filepart', W);
    expect(await writeChunks(raw, h3, 2 * MiB)).toMatchObject({ code: STATUS.OK });
    expect((await raw.close(h3)).code).toBe(STATUS.OK);
    expect((await raw.close(h2)).code).toBe(STATUS.OK);
    // Many would-be 1 GiB sparse files: every one refused, none created that large, the tenant not locked out.
    for (let i = 0; i < 20; i++) {
      const hi = await raw.openFile(`/sparse-${i}.filepart`, W).catch(() => undefined);
      if (!hi) continue; // the entry limit refuses some opens
      expect((await raw.request(T.FSETSTAT, Buffer.concat([str(hi), sizeAttrs(2 ** 30)]))).code).toBe(STATUS.FAILURE);
      await raw.close(hi);
      await raw.request(T.REMOVE, str(`/sparse-${i}.filepart`));
    }
    for (const n of ['big.filepart', 'ok.filepart']) await raw.request(T.REMOVE, str(`/${n}`));
    const h4 = await raw.openFile('/users.csv', W);
    expect(await raw.write(h4, 0, Buffer.from('a;b\n'))).toMatchObject({ code: STATUS.OK });
    expect((await raw.close(h4)).code).toBe(STATUS.OK);
    await waitFor(() => f.completed.some((u) => u.tenantId === 'a' && u.name === 'users.csv'));
    conn.end();
  });

  it('the number of files and folders a tenant may create is bounded', async () => {
    const { conn, raw } = await rawSession(f);
    await sleep(5100); // let the quota re-read the disk after the previous test
    const answers = [];
    for (let i = 0; i < 20; i++) answers.push(await raw.request(T.MKDIR, Buffer.concat([str(`/d${i}`), noAttrs()])));
    const refused = answers.filter((a) => a.code === STATUS.FAILURE && /Too many files and folders: the limit is 12/.test(a.message ?? ''));
    const made = answers.filter((a) => a.code === STATUS.OK).length;
    expect(refused.length).toBeGreaterThan(0);
    expect(made + refused.length).toBe(20);
    // users.csv waits in the inbox (1 entry): 11 folders fit.
    expect(made).toBe(11);
    const h = await raw.openFile('/more.csv', W).then(
      () => 'opened',
      (e: Error) => e.message,
    );
    expect(h).toMatch(/Too many files and folders/);
    conn.end();
  });
});

describe('connections that never authenticate', () => {
  /** Opens `n` stalled TCP connections from 127.0.<a>.<b> addresses; resolves when each is accepted or dropped. */
  async function flood(port: number, addresses: string[], perAddress: number) {
    const sockets: net.Socket[] = [];
    await Promise.all(
      addresses.flatMap((localAddress) =>
        Array.from({ length: perAddress }, () =>
          new Promise<void>((resolve) => {
            const s = net.connect({ host: '127.0.0.1', port, localAddress });
            sockets.push(s);
            // Bounded: a connection neither greeted nor closed within 10 s ends the wait (and fails the counts below).
            const t = setTimeout(() => resolve(), 10_000);
            const done = () => {
              clearTimeout(t);
              resolve();
            };
            s.on('error', done);
            s.on('close', done);
            s.once('data', done); // the server's SSH identification: accepted
          }),
        ),
      ),
    );
    return sockets;
  }

  it('a flood from 200 addresses is capped (start:rate:full), then the legitimate client is served (defect 4)', async () => {
    const f = await startFixture({ maxStartups: { start: 10, rate: 30, full: 40, perSubnet: 0 }, preAuthTimeoutMs: 30_000 });
    try {
      const addresses = Array.from({ length: 200 }, (_, i) => `127.0.${1 + Math.floor(i / 100)}.${1 + (i % 100)}`);
      const sockets = await flood(f.port, addresses, 5);
      await sleep(200);
      const held = f.server.stats().unauthenticated;
      expect(held).toBeLessThanOrEqual(40);
      expect(held).toBeGreaterThanOrEqual(10);
      const dropped = f.events.filter((e) => e.event === 'connection_refused' && /unauthenticated/.test(String(e.reason)));
      expect(dropped.length).toBeGreaterThanOrEqual(1000 - 40);
      // During the flood a newcomer is refused once the cap is full…
      expect(f.server.stats().unauthenticated).toBeGreaterThanOrEqual(10);
      for (const s of sockets) s.destroy();
      await waitFor(() => f.server.stats().unauthenticated === 0, 5000, 'flood connections to go');
      // …and served once it ends.
      await expectHealthy(f);
      expect(f.server.stats().unauthenticated).toBe(0);
    } finally {
      await f.stop();
    }
  });

  it('optionally counts per /24: one network cannot take the whole allowance', async () => {
    const f = await startFixture({ maxStartups: { start: 100, rate: 30, full: 100, perSubnet: 3 } });
    try {
      const a = await flood(f.port, ['127.0.9.1', '127.0.9.2', '127.0.9.3', '127.0.9.4'], 1);
      await sleep(100);
      expect(f.server.stats().unauthenticated).toBe(3);
      expect(f.events.some((e) => e.event === 'connection_refused' && /from 127\.0\.9\.0\/24 \(limit 3\)/.test(String(e.reason)))).toBe(true);
      const other = await flood(f.port, ['127.0.10.1'], 1);
      await sleep(100);
      expect(f.server.stats().unauthenticated).toBe(4);
      for (const s of [...a, ...other]) s.destroy();
      // An authenticated connection no longer counts.
      await expectHealthy(f);
    } finally {
      await f.stop();
    }
  });

  it('per-tenant sessions, per-address connections and the ban still hold', async () => {
    const f = await startFixture({ maxSessionsPerTenant: 2, maxConnectionsPerAddress: 3, ban: { maxFailures: 3, windowMs: 60_000, banMs: 60_000 } });
    try {
      const key = readFileSync(f.keys.a.privateKeyPath);
      const c1 = await sftpClient(f.port, 'a', key);
      const c2 = await sftpClient(f.port, 'a', key);
      const third = await sftpClient(f.port, 'a', key).then(
        (c) => (c.end(), 'granted'),
        (e: Error) => e.message,
      );
      expect(third).not.toBe('granted');
      expect(f.events.some((e) => e.event === 'limit_sessions')).toBe(true);
      c1.end();
      c2.end();
      const held = await flood(f.port, ['127.0.20.1'], 4);
      await sleep(100);
      expect(f.events.some((e) => e.event === 'connection_refused' && e.ip === '127.0.20.1' && /too many connections from this address/.test(String(e.reason)))).toBe(true);
      for (const s of held) s.destroy();
      const stranger = readFileSync(f.keys.stranger.privateKeyPath);
      for (let i = 0; i < 3; i++) await connect(f.port, { username: 'a', privateKey: stranger, localAddress: '127.0.30.1' }).then((c) => c.end(), () => undefined);
      await waitFor(() => f.events.some((e) => e.event === 'ban' && e.ip === '127.0.30.1'));
      const banned = await connect(f.port, { username: 'a', privateKey: key, localAddress: '127.0.30.1' }).then(
        (c) => (c.end(), 'connected'),
        () => 'refused',
      );
      expect(banned).toBe('refused');
      await expectHealthy(f);
    } finally {
      await f.stop();
    }
  });
});

describe('the server\'s own trouble and refused requests', () => {
  it('a tenant file that cannot be read refuses the login but never bans the address', async () => {
    const f = await startFixture({ ban: { maxFailures: 3, windowMs: 60_000, banMs: 60_000 } }, { failingTenants: ['broken'] });
    try {
      const key = readFileSync(f.keys.a.privateKeyPath);
      for (let i = 0; i < 6; i++) {
        const r = await connect(f.port, { username: 'broken', privateKey: key, localAddress: '127.0.40.1' }).then((c) => (c.end(), 'in'), () => 'refused');
        expect(r).toBe('refused');
      }
      expect(f.events.filter((e) => e.event === 'access_error').length).toBeGreaterThan(0);
      expect(f.events.some((e) => e.event === 'ban')).toBe(false);
      const c = await connect(f.port, { username: 'a', privateKey: key, localAddress: '127.0.40.1' });
      c.end();
    } finally {
      await f.stop();
    }
  });

  it('SYMLINK and READLINK are refused and audited', async () => {
    const f = await startFixture();
    try {
      const { conn, raw } = await rawSession(f);
      expect(await raw.request(T.SYMLINK, Buffer.concat([str('/l'), str('/etc/passwd')]))).toMatchObject({ code: STATUS.OP_UNSUPPORTED });
      expect(await raw.request(T.READLINK, str('/l'))).toMatchObject({ code: STATUS.OP_UNSUPPORTED });
      expect(f.events.filter((e) => e.event === 'path_refused').map((e) => e.request)).toEqual(['symlink', 'readlink']);
      conn.end();
    } finally {
      await f.stop();
    }
  });
});

describe('random and malformed packets', () => {
  let f: Fixture;
  beforeAll(async () => {
    f = await startFixture({ maxFileBytes: 1024 * 1024 });
  });
  afterAll(async () => {
    await f.stop();
  });

  it('2,000 seeded packets: every well-formed request answered once, a malformed one ends only its channel', async () => {
    const seed = 20261201;
    const rand = rng(seed);
    const int = (n: number) => Math.floor(rand() * n);
    const pick = <X>(xs: X[]): X => xs[int(xs.length)];
    const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => int(256)));
    const big = [0n, 1n, 2n ** 31n, 2n ** 32n, 2n ** 53n, 2n ** 63n - 1n, 2n ** 64n - 1n];
    const paths = ['/', '/x.csv', '/sub/../x.csv', '/../../etc/passwd', '/reports/r.txt', '/reports', 'a\u0000b', '/' + 'n'.repeat(300), '/t.filepart', '/d'];
    writeReport(f, 'r.txt', 4096);
    const handles: Buffer[] = [];
    const wellFormed = (): [number, Buffer] => {
      const h = handles.length && rand() < 0.8 ? pick(handles) : bytes(int(8));
      switch (pick([T.OPEN, T.READ, T.WRITE, T.CLOSE, T.FSTAT, T.FSETSTAT, T.SETSTAT, T.STAT, T.LSTAT, T.OPENDIR, T.READDIR, T.REMOVE, T.MKDIR, T.RMDIR, T.REALPATH, T.RENAME, T.READLINK, T.SYMLINK])) {
        case T.OPEN: return [T.OPEN, Buffer.concat([str(pick(paths)), u32(int(64)), rand() < 0.5 ? noAttrs() : sizeAttrs(pick(big))])];
        case T.READ: return [T.READ, Buffer.concat([str(h), u64(pick(big)), u32(pick([0, 1, 32768, 0xffffffff]))])];
        case T.WRITE: return [T.WRITE, Buffer.concat([str(h), u64(pick(big)), str(bytes(int(200)))])];
        case T.CLOSE: return [T.CLOSE, str(h)];
        case T.FSTAT: return [T.FSTAT, str(h)];
        case T.FSETSTAT: return [T.FSETSTAT, Buffer.concat([str(h), sizeAttrs(pick(big))])];
        case T.SETSTAT: return [T.SETSTAT, Buffer.concat([str(pick(paths)), sizeAttrs(pick(big))])];
        case T.STAT: return [T.STAT, str(pick(paths))];
        case T.LSTAT: return [T.LSTAT, str(pick(paths))];
        case T.OPENDIR: return [T.OPENDIR, str(pick(paths))];
        case T.READDIR: return [T.READDIR, str(h)];
        case T.REMOVE: return [T.REMOVE, str(pick(paths))];
        case T.MKDIR: return [T.MKDIR, Buffer.concat([str(pick(paths)), noAttrs()])];
        case T.RMDIR: return [T.RMDIR, str(pick(paths))];
        case T.REALPATH: return [T.REALPATH, str(pick(paths))];
        case T.RENAME: return [T.RENAME, Buffer.concat([str(pick(paths)), str(pick(paths))])];
        case T.READLINK: return [T.READLINK, str(pick(paths))];
        default: return [T.SYMLINK, Buffer.concat([str(pick(paths)), str(pick(paths))])];
      }
    };
    const fds0 = openFds();
    let session = await rawSession(f);
    let unanswered = 0;
    let doubled = 0;
    let channelsEnded = 0;
    for (let i = 0; i < 2000; i++) {
      if (session.raw.closed) {
        channelsEnded++;
        session.conn.end();
        session = await rawSession(f);
      }
      const raw = session.raw;
      const kind = rand();
      if (kind < 0.7) {
        // Well-formed, random values: must be answered exactly once.
        const [type, body] = wellFormed();
        const id = raw.send(type, body);
        const a = await raw.answer(id, 5000);
        if (a === 'timeout') unanswered++;
        else if (a !== 'closed' && a.type === T.HANDLE) handles.push(a.bytes!);
      } else if (kind < 0.85) {
        // A known type with its fields cut short.
        const [type, body] = wellFormed();
        const id = raw.id();
        const full = Buffer.concat([u32(id), body]);
        const cut = full.subarray(0, int(full.length));
        raw.sendRaw(packet(type, cut));
        const a = await raw.answer(id, 1000);
        if (a === 'timeout') {
          // A request whose id was cut off cannot be answered; the channel must still work.
          const probe = await raw.answer(raw.send(T.REALPATH, str('/')), 3000);
          if (probe === 'timeout') unanswered++;
        }
      } else if (kind < 0.95) {
        // Unknown or random type with random bytes.
        const id = raw.id();
        raw.sendRaw(packet(pick([0, 21, 99, 100, 200, 255, int(256)]), Buffer.concat([u32(id), bytes(int(64))])));
        const a = await raw.answer(id, 1000);
        if (a === 'timeout') {
          const probe = await raw.answer(raw.send(T.REALPATH, str('/')), 3000);
          if (probe === 'timeout') unanswered++;
        }
      } else {
        // A bad length prefix: zero, or beyond the packet limit.
        raw.sendRaw(Buffer.concat([u32(pick([0, 0x7fffffff, 300 * 1024])), bytes(int(16))]));
        await Promise.race([raw.whenClosed(), sleep(500)]);
      }
      for (const list of raw.answers.values()) if (list.length > 1) doubled++;
    }
    session.conn.end();
    expect({ unanswered, doubled }).toEqual({ unanswered: 0, doubled: 0 });
    expect(channelsEnded).toBeGreaterThan(10); // malformed packets did end channels, one at a time
    expect(f.events.filter((e) => e.event === 'sftp_internal_error')).toEqual([]);
    await sleep(300);
    expect(await settleFds(fds0, 8)).toBeLessThanOrEqual(fds0 + 8);
    await expectHealthy(f);
  });
});
