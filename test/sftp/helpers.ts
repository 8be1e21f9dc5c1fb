// Shared fixtures for the SFTP tests: a server on 127.0.0.1:0 in a temp folder with tenants "a" and "b",
// captured audit events, and small wrappers around the real clients.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import ssh2 from 'ssh2';
import type { Attributes, ConnectConfig, FileEntry, SFTPWrapper } from 'ssh2';
import { ensureHostKey, generateClientKeyPair } from '../../src/sftp/host-key.js';
import { startSftpServer, type CompletedUpload, type RunningSftpServer, type SftpServerOptions } from '../../src/sftp/server.js';

export interface AuditEvent {
  event?: string;
  [k: string]: unknown;
}

export interface Fixture {
  dir: string;
  tenantsRoot: string;
  server: RunningSftpServer;
  port: number;
  hostFingerprint: string;
  keys: Record<'a' | 'b' | 'stranger', { privateKeyPath: string; publicKeyLine: string }>;
  completed: CompletedUpload[];
  events: AuditEvent[];
  /** <tenantsRoot>/<id>/home */
  home(tenant: string): string;
  inbox(tenant: string): string;
  partial(tenant: string): string;
  stop(): Promise<void>;
}

export async function startFixture(
  limits?: SftpServerOptions['limits'],
  o: { extraKeys?: Record<string, string[]>; failingTenants?: string[] } = {},
): Promise<Fixture> {
  const dir = mkdtempSync(join(tmpdir(), 'wt-sftp-'));
  const tenantsRoot = join(dir, 'tenants');
  const host = ensureHostKey(join(dir, 'keys'));
  const keys = {
    a: generateClientKeyPair(join(dir, 'clients', 'a')),
    b: generateClientKeyPair(join(dir, 'clients', 'b')),
    stranger: generateClientKeyPair(join(dir, 'clients', 'stranger')),
  };
  const authorized: Record<string, string[]> = { a: [keys.a.publicKeyLine], b: [keys.b.publicKeyLine] };
  for (const [t, lines] of Object.entries(o.extraKeys ?? {})) authorized[t] = [...(authorized[t] ?? []), ...lines];
  const completed: CompletedUpload[] = [];
  const events: AuditEvent[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      for (const line of String(chunk).split('\n')) {
        if (!line.trim()) continue;
        try {
          events.push(JSON.parse(line) as AuditEvent);
        } catch {
          // ignore
        }
      }
      cb();
    },
  });
  const logger = pino({ level: 'debug' }, sink);
  const server = await startSftpServer({
    host: '127.0.0.1',
    port: 0,
    hostKey: host.key,
    tenantsRoot,
    access: {
      authorizedKeys: (t) => {
        if (o.failingTenants?.includes(t)) throw new Error('EMFILE: too many open files, open config/tenants/' + t + '.yaml');
        return authorized[t];
      },
    },
    onUploadComplete: (u) => completed.push(u),
    logger,
    limits,
  });
  let stopped = false;
  return {
    dir,
    tenantsRoot,
    server,
    port: server.port,
    hostFingerprint: host.fingerprint,
    keys,
    completed,
    events,
    home: (t) => join(tenantsRoot, t, 'home'),
    inbox: (t) => join(tenantsRoot, t, 'inbox'),
    partial: (t) => join(tenantsRoot, t, 'partial'),
    async stop() {
      if (stopped) return;
      stopped = true;
      await server.close(500);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs a command with a timeout (SIGKILL), optional stdin; never rejects. */
export function run(cmd: string, args: string[], o: { input?: string; timeoutMs?: number; cwd?: string } = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: o.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    // A client that exits before reading its input (e.g. a refused login) must not fail the test with EPIPE.
    child.stdin.on('error', () => undefined);
    const timer = setTimeout(() => child.kill('SIGKILL'), o.timeoutMs ?? 20_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      resolve({ code: -1, signal: null, stdout, stderr: stderr + String(e) });
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
    child.stdin.end(o.input ?? '');
  });
}

export function sshOptions(port: number, keyPath: string): string[] {
  return [
    '-o', 'StrictHostKeyChecking=no',
    '-o', 'UserKnownHostsFile=/dev/null',
    '-o', 'BatchMode=yes',
    '-o', 'LogLevel=ERROR',
    '-o', 'IdentitiesOnly=yes',
    '-o', 'ConnectTimeout=10',
    '-i', keyPath,
  ];
}

/** `sftp -b -` with the given batch lines. */
export function sftpBatch(f: Fixture, tenant: 'a' | 'b', lines: string[], o: { cwd?: string; extra?: string[]; keyPath?: string } = {}): Promise<RunResult> {
  return run(
    'sftp',
    [...sshOptions(f.port, o.keyPath ?? f.keys[tenant].privateKeyPath), '-P', String(f.port), ...(o.extra ?? []), '-b', '-', `${tenant}@127.0.0.1`],
    { input: lines.join('\n') + '\n', cwd: o.cwd },
  );
}

export async function waitFor(cond: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

// ------------------------------------------------------------------------------------------------------------
// ssh2 client

export interface SftpClient {
  conn: ssh2.Client;
  sftp: SFTPWrapper;
  open(path: string, flags: number | string): Promise<Buffer>;
  write(handle: Buffer, data: Buffer, position: number): Promise<void>;
  read(handle: Buffer, len: number, position: number): Promise<Buffer>;
  close(handle: Buffer): Promise<void>;
  stat(path: string): Promise<Attributes>;
  setstat(path: string, attrs: Partial<Attributes>): Promise<void>;
  fsetstat(handle: Buffer, attrs: Partial<Attributes>): Promise<void>;
  readdir(path: string): Promise<FileEntry[]>;
  rename(from: string, to: string): Promise<void>;
  unlink(path: string): Promise<void>;
  mkdir(path: string): Promise<void>;
  realpath(path: string): Promise<string>;
  readlink(path: string): Promise<string>;
  symlink(target: string, path: string): Promise<void>;
  end(): void;
}

export function connect(port: number, cfg: Partial<ConnectConfig>): Promise<ssh2.Client> {
  return new Promise((resolve, reject) => {
    const conn = new ssh2.Client();
    conn.on('ready', () => resolve(conn));
    conn.on('error', reject);
    conn.on('close', () => reject(new Error('closed before ready')));
    conn.connect({ host: '127.0.0.1', port, readyTimeout: 10_000, ...cfg });
  });
}

const cb2p =
  <T>(fn: (cb: (err: Error | null | undefined, v?: T) => void) => void): Promise<T> =>
    new Promise((resolve, reject) => fn((err, v) => (err ? reject(err) : resolve(v as T))));

export async function sftpClient(port: number, username: string, privateKey: Buffer | string): Promise<SftpClient> {
  const conn = await connect(port, { username, privateKey });
  conn.on('error', () => undefined);
  const sftp = await cb2p<SFTPWrapper>((cb) => conn.sftp(cb));
  return {
    conn,
    sftp,
    open: (p, flags) => cb2p<Buffer>((cb) => sftp.open(p, flags as never, cb)),
    write: (h, d, pos) => cb2p<void>((cb) => sftp.write(h, d, 0, d.length, pos, cb)),
    read: (h, len, pos) =>
      new Promise((resolve, reject) => {
        const buf = Buffer.alloc(len);
        sftp.read(h, buf, 0, len, pos, (err, n) => (err ? reject(err) : resolve(buf.subarray(0, n))));
      }),
    close: (h) => cb2p<void>((cb) => sftp.close(h, cb)),
    stat: (p) => cb2p<Attributes>((cb) => sftp.stat(p, cb)),
    setstat: (p, a) => cb2p<void>((cb) => sftp.setstat(p, a, cb)),
    fsetstat: (h, a) => cb2p<void>((cb) => sftp.fsetstat(h, a, cb)),
    readdir: (p) => cb2p<FileEntry[]>((cb) => sftp.readdir(p, cb)),
    rename: (a, b) => cb2p<void>((cb) => sftp.rename(a, b, cb)),
    unlink: (p) => cb2p<void>((cb) => sftp.unlink(p, cb)),
    mkdir: (p) => cb2p<void>((cb) => sftp.mkdir(p, cb)),
    realpath: (p) => cb2p<string>((cb) => sftp.realpath(p, cb)),
    readlink: (p) => cb2p<string>((cb) => sftp.readlink(p, cb)),
    symlink: (t, p) => cb2p<void>((cb) => sftp.symlink(t, p, cb)),
    end: () => conn.end(),
  };
}

export const OPEN = ssh2.utils.sftp.OPEN_MODE;
export const STATUS = ssh2.utils.sftp.STATUS_CODE;

/** The SFTP status code of a failed client call. */
export async function statusOf(p: Promise<unknown>): Promise<number | 'ok'> {
  try {
    await p;
    return 'ok';
  } catch (e) {
    return (e as { code?: number }).code ?? -1;
  }
}
