// The `sftp-pull` source: log in to the customer's SFTP server (ssh2 client, private key), refuse any host key
// but the pinned one (naming the fingerprint offered), fetch the files in the remote folder that match the
// tenant's patterns and are new or changed (name, size, mtime, then sha256), each downloaded to a temporary
// path and handed over only once complete, then keep, delete or move them on the server.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import ssh2, { type ConnectConfig, type FileEntry, type SFTPWrapper } from 'ssh2';
import type { Logger } from 'pino';
import { globToRegExp } from '../config/patterns.js';
import type { SftpPullSourceConfig } from '../config/source-schema.js';
import type { TenantConfig } from '../config/schema.js';
import { FILE_TYPES } from '../model.js';
import { makeResolver } from './resolve.js';
import { Redactor } from './redact.js';
import { FetchError, type FetchContext, type FetchedFile, type FetchResult, type Source } from './source.js';

interface SeenFile { size: number; mtime: number; sha256: string; fetchedAt: string }
interface PullState { files: Record<string, SeenFile> }

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;

export function fingerprintOf(key: Buffer): string {
  return 'SHA256:' + createHash('sha256').update(key).digest('base64').replace(/=+$/, '');
}

class Connection {
  private constructor(readonly client: ssh2.Client, readonly sftp: SFTPWrapper) {}

  static async open(cfg: SftpPullSourceConfig, privateKey: Buffer, passphrase: string | undefined): Promise<Connection> {
    const client = new ssh2.Client();
    let offered: string | undefined;
    const options: ConnectConfig = {
      host: cfg.host, port: cfg.port, username: cfg.username, privateKey, passphrase,
      readyTimeout: cfg.timeoutSeconds * 1000, keepaliveInterval: 10_000, keepaliveCountMax: 3,
      hostVerifier: (key: Buffer) => {
        offered = fingerprintOf(key);
        return offered === cfg.hostKeySha256;
      },
    };
    await new Promise<void>((resolve, reject) => {
      client.once('ready', () => resolve());
      client.once('error', (err: Error & { level?: string }) => {
        if (offered !== undefined && offered !== cfg.hostKeySha256) {
          reject(new FetchError(`the server ${cfg.host}:${cfg.port} offered host key ${offered}, not the pinned ${cfg.hostKeySha256}: connection refused`, `${cfg.host}:${cfg.port}`,
            'if the customer really changed the server\'s key, confirm the new fingerprint with them out of band and update source.hostKeySha256'));
        } else if (err.level === 'client-authentication') {
          reject(new FetchError(`${cfg.host}:${cfg.port} refused our key for user ${cfg.username}`, `${cfg.host}:${cfg.port}`, 'ask the customer to add our public key to the user\'s authorized_keys'));
        } else reject(err);
      });
      client.connect(options);
    });
    // Later connection errors surface through the transfer that is running (its stream fails or the client
    // closes); without a listener they would be thrown at the process.
    client.on('error', () => undefined);
    const sftp = await new Promise<SFTPWrapper>((resolve, reject) => client.sftp((err, s) => (err ? reject(err) : resolve(s))));
    return new Connection(client, sftp);
  }

  list(dir: string): Promise<FileEntry[]> {
    return new Promise((resolve, reject) => this.sftp.readdir(dir, (err, list) => (err ? reject(new FetchError(`cannot list the remote folder ${dir}: ${err.message}`, dir, 'check source.remoteDir')) : resolve(list))));
  }

  /** Downloads to `dest`, hashing on the way; fails unless exactly `size` bytes arrived. */
  async download(remote: string, dest: string, size: number, timeoutMs: number): Promise<string> {
    const hash = createHash('sha256');
    let bytes = 0;
    await new Promise<void>((resolve, reject) => {
      const input = this.sftp.createReadStream(remote);
      const output = fs.createWriteStream(dest, { mode: 0o640 });
      let idle = setTimeout(() => input.destroy(new Error(`no data for ${timeoutMs / 1000} s`)), timeoutMs);
      const fail = (err: Error) => {
        clearTimeout(idle);
        input.destroy();
        output.destroy();
        reject(err);
      };
      input.on('data', (c: Buffer) => {
        bytes += c.length;
        hash.update(c);
        clearTimeout(idle);
        idle = setTimeout(() => input.destroy(new Error(`no data for ${timeoutMs / 1000} s`)), timeoutMs);
      });
      input.on('error', fail);
      output.on('error', fail);
      // A session that dies mid-transfer ends the stream without an error on some servers: counted below.
      const onClose = () => fail(new Error('the connection closed during the transfer'));
      this.client.once('close', onClose);
      output.on('finish', () => {
        clearTimeout(idle);
        this.client.off('close', onClose);
        resolve();
      });
      input.pipe(output);
    });
    if (bytes !== size) throw new Error(`${bytes} of ${size} bytes arrived (the transfer was cut, or the file changed while it was read)`);
    const fd = fs.openSync(dest, 'r');
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    return hash.digest('hex');
  }

  unlink(p: string): Promise<void> {
    return new Promise((resolve, reject) => this.sftp.unlink(p, (err) => (err ? reject(err) : resolve())));
  }

  rename(from: string, to: string): Promise<void> {
    return new Promise((resolve, reject) => this.sftp.rename(from, to, (err) => (err ? reject(err) : resolve())));
  }

  close(): void {
    this.client.end();
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class SftpPullSource implements Source {
  constructor(private readonly cfg: SftpPullSourceConfig) {}

  private matches(tenant: TenantConfig, name: string): boolean {
    if (name.startsWith('.')) return false;
    return FILE_TYPES.filter((t) => tenant.files[t] && globToRegExp(tenant.files[t]!.pattern).test(name)).length === 1;
  }

  async fetch(ctx: FetchContext): Promise<FetchResult> {
    const cfg = this.cfg;
    const redactor = new Redactor();
    const resolve = makeResolver(ctx.tenant, ctx.env, redactor);
    const passphrase = cfg.passphrase ? resolve(cfg.passphrase) : undefined;
    let privateKey: Buffer;
    try {
      privateKey = fs.readFileSync(cfg.privateKeyPath);
    } catch (err) {
      throw new FetchError(`cannot read the private key ${cfg.privateKeyPath}: ${(err as Error).message}`, undefined, 'check source.privateKeyPath');
    }
    const statePath = path.join(ctx.stateDir, 'sftp-pull.json');
    const state = readState(statePath);
    const where = `sftp://${cfg.username}@${cfg.host}:${cfg.port}/${cfg.remoteDir}`;
    for (let attempt = 1; ; attempt++) {
      const files: FetchedFile[] = [];
      const seen: Record<string, SeenFile> = {};
      try {
        const conn = await Connection.open(cfg, privateKey, passphrase);
        try {
          const entries = (await conn.list(cfg.remoteDir)).filter((e) => (e.attrs.mode & S_IFMT) === S_IFREG && this.matches(ctx.tenant, e.filename)).sort((a, b) => a.filename.localeCompare(b.filename));
          let unchanged = 0;
          for (const e of entries) {
            const prev = state.files[e.filename];
            if (prev && prev.size === e.attrs.size && prev.mtime === e.attrs.mtime) {
              unchanged++;
              continue;
            }
            const remote = path.posix.join(cfg.remoteDir, e.filename);
            const dest = path.join(ctx.workDir, `.pull-${process.pid}-${Date.now()}-${e.filename}`);
            let sha256: string;
            try {
              sha256 = await conn.download(remote, dest, e.attrs.size, cfg.timeoutSeconds * 1000);
            } catch (err) {
              fs.rmSync(dest, { force: true });
              for (const f of files) fs.rmSync(f.tempPath, { force: true });
              throw new Error(`${remote}: ${(err as Error).message}`);
            }
            const info = { size: e.attrs.size, mtime: e.attrs.mtime, sha256, fetchedAt: ctx.now().toISOString() };
            if (prev && prev.sha256 === sha256) {
              // Touched but not changed: remember the new mtime, hand nothing over.
              fs.rmSync(dest, { force: true });
              seen[e.filename] = info;
              unchanged++;
              continue;
            }
            ctx.logger.info({ event: 'sftp_pull_file', remote, size: e.attrs.size, sha256 }, 'pulled file');
            files.push({ tempPath: dest, name: e.filename, sha256, size: e.attrs.size });
            seen[e.filename] = info;
          }
          ctx.logger.info({ event: 'sftp_pull_listed', where, matching: entries.length, new: files.length, unchanged }, 'sftp-pull listing');
          const commit = async () => {
            // A file deleted or moved away is forgotten: one that appears later under its name is a new file.
            const gone = cfg.afterPull !== 'keep' && files.length > 0 ? await this.afterPull(files.map((f) => f.name), privateKey, passphrase, ctx.logger) : [];
            for (const [name, info] of Object.entries(seen)) {
              if (gone.includes(name)) delete state.files[name];
              else state.files[name] = info;
            }
            writeState(statePath, state);
          };
          return { files, summary: { files: files.length, unchanged }, ...(ctx.dryRun ? {} : { commit }) };
        } finally {
          conn.close();
        }
      } catch (err) {
        for (const f of files) fs.rmSync(f.tempPath, { force: true });
        if (err instanceof FetchError) throw new FetchError(redactor.redact(err.message), err.where, err.hint);
        const message = redactor.redact((err as Error).message);
        if (attempt >= cfg.retry.maxAttempts) throw new FetchError(`${message} (after ${attempt} attempt${attempt > 1 ? 's' : ''})`, where, 'nothing was handed over; the next scheduled fetch tries again');
        const wait = Math.round(Math.min(cfg.retry.maxDelayMs, cfg.retry.baseDelayMs * 2 ** (attempt - 1)) * (0.5 + Math.random() * 0.5));
        ctx.logger.warn({ event: 'sftp_pull_retry', where, attempt, waitMs: wait, error: message }, 'sftp-pull failed; retrying');
        await sleep(wait);
      }
    }
  }

  /** keep / delete / move on the server, once the files are safely in the inbox. A failure here is logged, not fatal. */
  private async afterPull(names: string[], privateKey: Buffer, passphrase: string | undefined, logger: Logger): Promise<string[]> {
    const cfg = this.cfg;
    const done: string[] = [];
    let conn: Connection | undefined;
    try {
      conn = await Connection.open(cfg, privateKey, passphrase);
      for (const name of names) {
        const remote = path.posix.join(cfg.remoteDir, name);
        if (cfg.afterPull === 'delete') await conn.unlink(remote);
        else await conn.rename(remote, path.posix.join(cfg.moveTo!, name));
        done.push(name);
        logger.info({ event: 'sftp_pull_after', action: cfg.afterPull, remote }, `remote file ${cfg.afterPull === 'delete' ? 'deleted' : 'moved'}`);
      }
    } catch (err) {
      logger.error({ event: 'sftp_pull_after_failed', action: cfg.afterPull, error: (err as Error).message }, 'after-pull action failed; the files stay on the server and are not fetched again unless they change');
    } finally {
      conn?.close();
    }
    return done;
  }
}

function readState(file: string): PullState {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as PullState;
  } catch {
    return { files: {} };
  }
}

function writeState(file: string, state: PullState): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(state, null, 2));
  fs.renameSync(tmp, file);
}
