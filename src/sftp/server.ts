// The SFTP server customers upload to: ssh2, public-key login only, one jailed folder per tenant.
// See src/sftp/README.md for the folder layout, the upload life cycle and the audit events.
import { promises as fsp } from 'node:fs';
import net from 'node:net';
import { join, resolve as resolvePath } from 'node:path';
import type { Logger } from 'pino';
import ssh2 from 'ssh2';
import type { AuthContext, Connection, PublicKeyAuthContext, ServerConfig } from 'ssh2';
import { tenantDirs } from '../config/tenant-dirs.js';
import { BanList, findAuthorizedKey, type BanSettings } from './auth.js';
import { fingerprintOfBlob } from './host-key.js';
import { SftpSession } from './session.js';
import { DEFAULT_STARTUP_LIMITS, StartupGate, type Admission, type StartupLimits } from './startups.js';
import { TenantStore } from './tenant-store.js';

export interface SftpTenantAccess {
  /** OpenSSH public key lines allowed for this tenant, or undefined if the tenant does not exist. */
  authorizedKeys(tenantId: string): string[] | undefined;
}

export interface CompletedUpload {
  tenantId: string;
  /** Path relative to the tenant root, e.g. "wt_users.csv" or "sub/x.csv". */
  name: string;
  /** Absolute path now in the inbox: <tenantsRoot>/<id>/inbox/<stamp>-<seq>/<name>. */
  inboxPath: string;
  size: number;
  sha256: string;
  durationMs: number;
}

export interface SftpLimits {
  /** Largest file a customer may upload (bytes). Default 1 GiB. */
  maxFileBytes: number;
  /** Bytes a tenant may hold in home (outside /reports/) + partial + inbox. Default unlimited. */
  tenantQuotaBytes: number;
  /** Files and folders a tenant may hold there (uploads in progress and waiting included). Default 10,000. */
  tenantMaxEntries: number;
  maxHandlesPerSession: number;
  maxSessionsPerTenant: number;
  maxConnectionsPerAddress: number;
  /** Connections not yet authenticated (OpenSSH's MaxStartups start:rate:full), optionally per /24 or /64. */
  maxStartups: StartupLimits;
  /** A connection must authenticate within this time. */
  preAuthTimeoutMs: number;
  /** An authenticated connection without SFTP requests for this long is closed. */
  idleTimeoutMs: number;
  /** Failed logins: maxFailures within windowMs ban the address for banMs. */
  ban: BanSettings;
  /** Authentication attempts (other than `none`) per connection before it is closed. */
  maxAuthAttemptsPerConnection: number;
  /** WRITE data held in memory per SFTP session before the server stops granting SSH window. Default 16 MiB. */
  maxBufferedWriteBytes: number;
  /** READ data (being read + answers the client has not taken) per SFTP session. Default 4 MiB. */
  maxBufferedReadBytes: number;
  /** How long a completed upload's name still answers STAT/SETSTAT. */
  recentlyCompletedMs: number;
  /** In-progress uploads untouched for this long are deleted at start-up. */
  partialRetentionMs: number;
}

export const DEFAULT_SFTP_LIMITS: SftpLimits = {
  maxFileBytes: 1024 ** 3,
  tenantQuotaBytes: Infinity,
  tenantMaxEntries: 10_000,
  maxHandlesPerSession: 64,
  maxSessionsPerTenant: 8,
  maxConnectionsPerAddress: 10,
  maxStartups: DEFAULT_STARTUP_LIMITS,
  preAuthTimeoutMs: 30_000,
  idleTimeoutMs: 15 * 60_000,
  ban: { maxFailures: 10, windowMs: 10 * 60_000, banMs: 15 * 60_000 },
  maxAuthAttemptsPerConnection: 10,
  maxBufferedWriteBytes: 16 * 1024 * 1024,
  maxBufferedReadBytes: 4 * 1024 * 1024,
  recentlyCompletedMs: 2 * 60_000,
  partialRetentionMs: 7 * 24 * 3600_000,
};

export interface SftpServerOptions {
  host: string;
  /** 0 = any free port. */
  port: number;
  /** Ed25519 private key, OpenSSH format. */
  hostKey: Buffer;
  /** <dataDir>/tenants */
  tenantsRoot: string;
  access: SftpTenantAccess;
  onUploadComplete: (upload: CompletedUpload) => void;
  /** Audit events go here (pino JSON lines), never secrets. */
  logger: Logger;
  limits?: Partial<Omit<SftpLimits, 'ban' | 'maxStartups'>> & { ban?: Partial<BanSettings>; maxStartups?: Partial<StartupLimits> };
  /** Optional counters (metrics): called on a successful login, each failed attempt, each ban. */
  events?: { login?(tenant: string): void; authFailure?(): void; ban?(): void };
}

export interface SftpServerStats {
  connections: number;
  /** Connections that have not authenticated yet. */
  unauthenticated: number;
  sessions: number;
}

export interface RunningSftpServer {
  port: number;
  stats(): SftpServerStats;
  /** Stop accepting; let in-flight uploads finish up to graceMs; then end every connection. */
  close(graceMs?: number): Promise<void>;
}

/** Only modern algorithms (ssh-audit: no failure). Plain hmac-sha2 kept after the etm ones for libssh2 (curl). */
export const SFTP_ALGORITHMS = {
  kex: ['curve25519-sha256', 'curve25519-sha256@libssh.org', 'diffie-hellman-group16-sha512', 'diffie-hellman-group18-sha512'],
  serverHostKey: ['ssh-ed25519'],
  cipher: [
    'chacha20-poly1305@openssh.com',
    'aes256-gcm@openssh.com',
    'aes128-gcm@openssh.com',
    'aes256-ctr',
    'aes192-ctr',
    'aes128-ctr',
  ],
  hmac: ['hmac-sha2-256-etm@openssh.com', 'hmac-sha2-512-etm@openssh.com', 'hmac-sha2-256', 'hmac-sha2-512'],
  compress: ['none'],
};

/** Same rule as tenant ids in the config: also keeps the user name safe as a folder name. */
const TENANT_ID = /^[a-z0-9][a-z0-9_-]{0,62}$/;
const MAX_CHANNELS_PER_CONNECTION = 10;

interface Conn {
  id: number;
  ip: string;
  socket: net.Socket;
  client: Connection | undefined;
  log: Logger;
  startedAt: number;
  tenant: string | undefined;
  lastActivity: number;
  authAttempts: number;
  countedUnknownKey: boolean;
  preAuthTimer: NodeJS.Timeout | undefined;
  /** Its place among the unauthenticated connections, given back once it has authenticated or is gone. */
  startup: Admission & { ok: true };
  sessions: Set<SftpSession>;
  channels: number;
  closed: boolean;
  corked: boolean;
}

function normalizeIp(ip: string | undefined): string {
  if (!ip) return 'unknown';
  return ip.startsWith('::ffff:') && ip.includes('.') ? ip.slice(7) : ip;
}

function short(s: unknown, n = 128): string {
  const str = String(s ?? '');
  return str.length > n ? str.slice(0, n) + '…' : str;
}

export async function startSftpServer(opts: SftpServerOptions): Promise<RunningSftpServer> {
  const limits: SftpLimits = {
    ...DEFAULT_SFTP_LIMITS,
    ...(opts.limits as Partial<SftpLimits>),
    ban: { ...DEFAULT_SFTP_LIMITS.ban, ...(opts.limits?.ban ?? {}) },
    maxStartups: { ...DEFAULT_SFTP_LIMITS.maxStartups, ...(opts.limits?.maxStartups ?? {}) },
  };
  const tenantsRoot = resolvePath(opts.tenantsRoot);
  const log = opts.logger.child({ component: 'sftp' });

  const parsedHostKey = ssh2.utils.parseKey(opts.hostKey);
  if (parsedHostKey instanceof Error) throw new Error(`SFTP host key cannot be parsed: ${parsedHostKey.message}`);
  const hk = Array.isArray(parsedHostKey) ? parsedHostKey[0] : parsedHostKey;
  if (hk.type !== 'ssh-ed25519' || !hk.isPrivateKey()) throw new Error(`SFTP host key must be an Ed25519 private key (got ${hk.type})`);

  await fsp.mkdir(tenantsRoot, { recursive: true, mode: 0o750 });
  await sweepOldPartials(tenantsRoot, limits.partialRetentionMs, log);

  const bans = new BanList(limits.ban);
  const startups = new StartupGate(limits.maxStartups);
  const stores = new Map<string, TenantStore>();
  const storeFor = (tenantId: string): TenantStore => {
    let s = stores.get(tenantId);
    if (!s) {
      s = new TenantStore(tenantsRoot, tenantId, limits.recentlyCompletedMs, limits);
      stores.set(tenantId, s);
    }
    return s;
  };
  const conns = new Set<Conn>();
  const bySocket = new WeakMap<net.Socket, Conn>();
  const perAddress = new Map<string, number>();
  const sessionsPerTenant = new Map<string, number>();
  const sessionEnds = new Set<Promise<void>>();
  let nextConnId = 1;
  let shuttingDown = false;

  const config: ServerConfig = {
    hostKeys: [opts.hostKey],
    algorithms: SFTP_ALGORITHMS as ServerConfig['algorithms'],
    ident: 'wt-sync',
  };
  const ssh = new ssh2.Server(config);
  ssh.on('error', (err: Error) => log.warn({ event: 'server_error', err: err.message }, 'ssh server error'));
  ssh.on('connection', (client: Connection) => {
    const socket = (client as unknown as { _sock?: net.Socket })._sock;
    const conn = socket ? bySocket.get(socket) : undefined;
    if (!conn) {
      client.end();
      return;
    }
    conn.client = client;
    onClient(conn, client);
  });

  const tcp = net.createServer({ noDelay: true }, (socket) => onSocket(socket));
  tcp.on('error', (err) => log.error({ event: 'listen_error', err: err.message }, 'SFTP listener error'));

  function onSocket(socket: net.Socket): void {
    socket.setNoDelay(true);
    const ip = normalizeIp(socket.remoteAddress);
    if (shuttingDown) {
      socket.destroy();
      return;
    }
    const until = bans.bannedUntil(ip);
    if (until !== undefined) {
      log.warn({ event: 'connection_refused', ip, reason: 'banned', bannedUntil: new Date(until).toISOString() }, 'connection refused: address banned');
      socket.destroy();
      return;
    }
    const count = perAddress.get(ip) ?? 0;
    if (count >= limits.maxConnectionsPerAddress) {
      log.warn({ event: 'connection_refused', ip, reason: 'too many connections from this address', limit: limits.maxConnectionsPerAddress }, 'connection refused');
      socket.destroy();
      return;
    }
    const startup = startups.admit(ip);
    if (!startup.ok) {
      log.warn({ event: 'connection_refused', ip, reason: startup.reason }, 'connection refused');
      socket.destroy();
      return;
    }
    perAddress.set(ip, count + 1);
    const id = nextConnId++;
    const conn: Conn = {
      id,
      ip,
      socket,
      client: undefined,
      log: log.child({ conn: id, ip }),
      startedAt: Date.now(),
      tenant: undefined,
      lastActivity: Date.now(),
      authAttempts: 0,
      countedUnknownKey: false,
      preAuthTimer: undefined,
      startup,
      sessions: new Set(),
      channels: 0,
      closed: false,
      corked: false,
    };
    conns.add(conn);
    bySocket.set(socket, conn);
    conn.log.info({ event: 'connect', port: socket.remotePort }, 'connection');
    conn.preAuthTimer = setTimeout(() => {
      conn.log.warn({ event: 'pre_auth_timeout', timeoutMs: limits.preAuthTimeoutMs }, 'no login in time, closing');
      socket.destroy();
    }, limits.preAuthTimeoutMs);
    conn.preAuthTimer.unref();
    socket.on('error', () => undefined);
    socket.once('close', () => onSocketClose(conn));
    ssh.injectSocket(socket);
  }

  function onSocketClose(conn: Conn): void {
    if (conn.closed) return;
    conn.closed = true;
    if (conn.preAuthTimer) clearTimeout(conn.preAuthTimer);
    conn.startup.release();
    conns.delete(conn);
    const n = (perAddress.get(conn.ip) ?? 1) - 1;
    if (n > 0) perAddress.set(conn.ip, n);
    else perAddress.delete(conn.ip);
    for (const s of conn.sessions) endSession(conn, s, 'disconnect');
    conn.log.info({ event: 'disconnect', durationMs: Date.now() - conn.startedAt }, 'disconnect');
  }

  function endSession(conn: Conn, s: SftpSession, reason: string): void {
    if (!conn.sessions.delete(s)) return;
    if (conn.tenant) {
      const n = (sessionsPerTenant.get(conn.tenant) ?? 1) - 1;
      if (n > 0) sessionsPerTenant.set(conn.tenant, n);
      else sessionsPerTenant.delete(conn.tenant);
    }
    const p = s.end(reason).catch(() => undefined);
    sessionEnds.add(p);
    void p.finally(() => sessionEnds.delete(p));
  }

  function authFailure(conn: Conn, ctx: AuthContext, reason: string, extra: Record<string, unknown>, count: boolean): void {
    conn.log.warn(
      { event: 'auth_failure', tenant: short(ctx.username, 64), method: ctx.method, reason, ...extra },
      'authentication failed',
    );
    opts.events?.authFailure?.();
    let bannedUntil: number | undefined;
    if (count) bannedUntil = bans.recordFailure(conn.ip);
    if (bannedUntil !== undefined) {
      opts.events?.ban?.();
      conn.log.warn(
        { event: 'ban', until: new Date(bannedUntil).toISOString(), maxFailures: limits.ban.maxFailures, windowMs: limits.ban.windowMs },
        'address banned after repeated failed logins',
      );
      ctx.reject([]);
      conn.client?.end();
      return;
    }
    ctx.reject(['publickey']);
    if (conn.authAttempts >= limits.maxAuthAttemptsPerConnection) {
      conn.log.warn({ event: 'auth_attempts_exceeded', attempts: conn.authAttempts }, 'too many authentication attempts, closing');
      conn.client?.end();
    }
  }

  function onAuth(conn: Conn, ctx: AuthContext): void {
    if (ctx.method === 'none') {
      ctx.reject(['publickey']);
      return;
    }
    conn.authAttempts++;
    if (bans.isBanned(conn.ip)) {
      ctx.reject([]);
      conn.client?.end();
      return;
    }
    if (ctx.method !== 'publickey') {
      authFailure(conn, ctx, `method ${ctx.method} is not allowed (public key only)`, {}, true);
      return;
    }
    const pk = ctx as PublicKeyAuthContext;
    const fingerprint = fingerprintOfBlob(pk.key.data);
    const keyInfo = { fingerprint, keyType: pk.key.algo };
    const tenantId = ctx.username;
    let keys: string[] | undefined;
    if (TENANT_ID.test(tenantId)) {
      try {
        keys = opts.access.authorizedKeys(tenantId);
      } catch (e) {
        // Our failure (e.g. no descriptors left to read the tenant file), not the client's: refused, never counted
        // towards a ban, so a real customer is not banned for the server's trouble.
        conn.log.error({ event: 'access_error', err: e instanceof Error ? e.message : String(e) }, 'tenant key lookup failed');
        authFailure(conn, ctx, 'tenant keys could not be read', keyInfo, false);
        return;
      }
    }
    if (!keys) {
      const first = !conn.countedUnknownKey;
      conn.countedUnknownKey = true;
      authFailure(conn, ctx, 'unknown tenant', keyInfo, first || !!pk.signature);
      return;
    }
    if (pk.key.algo === 'ssh-rsa' && !pk.hashAlgo) {
      authFailure(conn, ctx, 'ssh-rsa (SHA-1) signatures are refused; use rsa-sha2-256 or rsa-sha2-512', keyInfo, !!pk.signature);
      return;
    }
    const match = findAuthorizedKey(keys, pk.key.algo, pk.key.data);
    if (!match) {
      // A client offering several keys asks about each one: count that once per connection.
      const first = !conn.countedUnknownKey;
      conn.countedUnknownKey = true;
      authFailure(conn, ctx, 'key not authorized for this tenant', keyInfo, first || !!pk.signature);
      return;
    }
    if (!pk.signature || !pk.blob) {
      ctx.accept(); // "would this key be accepted?" → PK_OK; the signed request follows
      return;
    }
    if (match.parsed.verify(pk.blob, pk.signature, pk.hashAlgo) !== true) {
      authFailure(conn, ctx, 'signature verification failed', keyInfo, true);
      return;
    }
    conn.tenant = tenantId;
    conn.log = conn.log.child({ tenant: tenantId });
    conn.log.info({ event: 'auth_success', method: 'publickey', ...keyInfo }, 'authenticated');
    opts.events?.login?.(tenantId);
    ctx.accept();
  }

  function refuse(conn: Conn, what: string, reject: (() => void) | undefined, extra: Record<string, unknown> = {}): void {
    conn.log.warn({ event: 'request_refused', request: what, ...extra }, `refused: ${what}`);
    reject?.();
  }

  function onClient(conn: Conn, client: Connection): void {
    client.on('error', (err: Error & { level?: string }) => {
      conn.log.debug({ event: 'connection_error', err: err.message, level: err.level }, 'connection error');
    });
    client.on('authentication', (ctx: AuthContext) => onAuth(conn, ctx));
    client.on('ready', () => {
      conn.startup.release();
      if (conn.preAuthTimer) clearTimeout(conn.preAuthTimer);
      conn.preAuthTimer = undefined;
      conn.lastActivity = Date.now();
    });
    client.on('tcpip', (_accept: unknown, reject: () => void, info: unknown) => refuse(conn, 'port forwarding (direct-tcpip)', reject, { info }));
    client.on('openssh.streamlocal', (_accept: unknown, reject: () => void) => refuse(conn, 'unix socket forwarding', reject));
    client.on('request', (_accept: unknown, reject: (() => void) | undefined, name: string) => refuse(conn, `global request ${short(name, 64)}`, reject));
    client.on('session', (accept: () => ssh2.Session, reject: () => void) => {
      if (!conn.tenant || shuttingDown || conn.channels >= MAX_CHANNELS_PER_CONNECTION) {
        refuse(conn, 'session channel', reject, { reason: shuttingDown ? 'shutting down' : 'too many channels' });
        return;
      }
      conn.channels++;
      const session = accept();
      session.on('close', () => {
        conn.channels--;
      });
      session.on('pty', (_a: unknown, reject: (() => void) | undefined) => refuse(conn, 'pty', reject));
      session.on('x11', (_a: unknown, reject: (() => void) | undefined) => refuse(conn, 'x11 forwarding', reject));
      session.on('auth-agent', (_a: unknown, reject: (() => void) | undefined) => refuse(conn, 'agent forwarding', reject));
      session.on('env', (_a: unknown, reject: (() => void) | undefined) => reject?.());
      session.on('signal', (_a: unknown, reject: (() => void) | undefined) => reject?.());
      session.on('window-change', (_a: unknown, reject: (() => void) | undefined) => reject?.());
      session.on('shell', (_a: unknown, reject: (() => void) | undefined) => refuse(conn, 'shell', reject));
      session.on('exec', (_a: unknown, reject: (() => void) | undefined, info: { command?: string }) =>
        refuse(conn, 'exec', reject, { command: short(info?.command, 200) }),
      );
      session.on('subsystem', (_a: unknown, reject: (() => void) | undefined, info: { name?: string }) =>
        refuse(conn, `subsystem ${short(info?.name, 64)}`, reject),
      );
      session.on('sftp', (acceptSftp: () => ssh2.SFTPWrapper, rejectSftp: () => void) => {
        const tenant = conn.tenant!;
        if (shuttingDown) return refuse(conn, 'sftp', rejectSftp, { reason: 'shutting down' });
        const active = sessionsPerTenant.get(tenant) ?? 0;
        if (active >= limits.maxSessionsPerTenant) {
          conn.log.warn({ event: 'limit_sessions', limit: limits.maxSessionsPerTenant }, 'too many SFTP sessions for this tenant');
          rejectSftp();
          return;
        }
        sessionsPerTenant.set(tenant, active + 1);
        const store = storeFor(tenant);
        const s = new SftpSession({
          tenant: store,
          logger: conn.log,
          limits,
          onUploadComplete: (u) => opts.onUploadComplete(u),
          touch: () => {
            conn.lastActivity = Date.now();
          },
          isShuttingDown: () => shuttingDown,
          socketQueuedBytes: () => conn.socket.writableLength,
          // Answers produced in the same event-loop turn (e.g. many WRITEs finishing together) leave in one
          // socket write instead of one syscall each; sent at the end of the turn, so no added latency.
          batchReplies: () => {
            if (conn.corked || conn.closed) return;
            conn.corked = true;
            conn.socket.cork();
            setImmediate(() => {
              conn.corked = false;
              conn.socket.uncork();
            });
          },
        });
        conn.sessions.add(s);
        const sftp = acceptSftp();
        s.attach(sftp);
        sftp.on('close', () => endSession(conn, s, 'channel closed'));
        conn.log.info({ event: 'sftp_start' }, 'SFTP session started');
        store.ready().catch((e: Error) => conn.log.error({ event: 'tenant_folder_error', err: e.message }, 'cannot create tenant folders'));
      });
    });
  }

  const idleTimer = setInterval(
    () => {
      const now = Date.now();
      for (const conn of conns) {
        if (conn.tenant && now - conn.lastActivity > limits.idleTimeoutMs) {
          conn.log.info({ event: 'idle_timeout', idleMs: now - conn.lastActivity }, 'idle, closing');
          endConn(conn);
        }
      }
      bans.sweep(now);
    },
    Math.max(50, Math.min(limits.idleTimeoutMs / 2, 30_000)),
  );
  idleTimer.unref();

  function endConn(conn: Conn): void {
    try {
      conn.client?.end();
    } catch {
      // already gone
    }
    const t = setTimeout(() => conn.socket.destroy(), 1000);
    t.unref();
  }

  await new Promise<void>((resolve, reject) => {
    tcp.once('error', reject);
    tcp.listen(opts.port, opts.host, () => {
      tcp.off('error', reject);
      resolve();
    });
  });
  const address = tcp.address();
  const port = typeof address === 'object' && address ? address.port : opts.port;
  log.info({ event: 'listening', host: opts.host, port, hostKeyFingerprint: fingerprintOfBlob(hk.getPublicSSH()) }, 'SFTP server listening');

  let closing: Promise<void> | undefined;
  /** At shutdown, how long a client whose upload just completed may take to leave by itself. */
  const UPLOAD_SETTLE_MS = 1000;
  async function close(graceMs = 10_000): Promise<void> {
    shuttingDown = true;
    const closed = new Promise<void>((resolve) => tcp.close(() => resolve()));
    const deadline = Date.now() + graceMs;
    // A connection whose upload was still in flight gets a moment after it completes to read the answer and leave
    // by itself: ended at once, its client (OpenSSH sftp) reports the lost connection, exit 255, for a good upload.
    const settleMs = Math.min(UPLOAD_SETTLE_MS, graceMs);
    const uploadEnded = new Map<Conn, number>();
    for (;;) {
      const now = Date.now();
      for (const conn of conns) {
        let writes = 0;
        for (const s of conn.sessions) writes += s.openWrites;
        if (writes > 0) uploadEnded.set(conn, Infinity);
        else if (uploadEnded.get(conn) === Infinity) uploadEnded.set(conn, now);
        const ended = uploadEnded.get(conn);
        if (writes === 0 && (ended === undefined || now - ended >= settleMs)) endConn(conn);
      }
      if (conns.size === 0 || Date.now() >= deadline) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    for (const conn of conns) {
      conn.log.warn({ event: 'shutdown_abort' }, 'closing connection at shutdown');
      conn.socket.destroy();
    }
    clearInterval(idleTimer);
    await closed;
    await Promise.race([Promise.all([...sessionEnds]), new Promise<void>((r) => setTimeout(r, 15_000).unref())]);
    log.info({ event: 'stopped' }, 'SFTP server stopped');
  }

  return {
    port,
    stats: () => {
      let sessions = 0;
      for (const c of conns) sessions += c.sessions.size;
      return { connections: conns.size, unauthenticated: startups.unauthenticated, sessions };
    },
    close: (graceMs?: number) => (closing ??= close(graceMs)),
  };
}

async function sweepOldPartials(tenantsRoot: string, retentionMs: number, log: Logger): Promise<void> {
  let tenants: string[];
  try {
    tenants = await fsp.readdir(tenantsRoot);
  } catch {
    return;
  }
  const cutoff = Date.now() - retentionMs;
  for (const t of tenants) {
    const dir = tenantDirs(tenantsRoot, t).partial;
    let names: string[];
    try {
      names = await fsp.readdir(dir);
    } catch {
      continue;
    }
    for (const n of names) {
      try {
        const st = await fsp.lstat(join(dir, n));
        if (st.mtimeMs < cutoff) {
          await fsp.rm(join(dir, n), { force: true });
          log.info({ event: 'partial_expired', tenant: t, key: n, size: st.size }, 'removed an abandoned partial upload');
        }
      } catch {
        // ignore
      }
    }
  }
}
