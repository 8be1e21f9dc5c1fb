// Host key (server identity) and client key pairs (demo tenant), Ed25519 in OpenSSH format.
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import ssh2 from 'ssh2';

const { utils } = ssh2;

/** "SHA256:<base64 without padding>" of an SSH public key blob — the form OpenSSH prints. */
export function fingerprintOfBlob(blob: Buffer): string {
  return 'SHA256:' + createHash('sha256').update(blob).digest('base64').replace(/=+$/, '');
}

/** Fingerprint of an OpenSSH private key or public key line. Throws when the key cannot be parsed. */
export function fingerprintOfKey(key: Buffer | string): string {
  const parsed = utils.parseKey(key);
  if (parsed instanceof Error) throw new Error(`cannot parse key: ${parsed.message}`);
  const k = Array.isArray(parsed) ? parsed[0] : parsed;
  return fingerprintOfBlob(k.getPublicSSH());
}

function writeSecret(path: string, data: string): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, data, { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, path);
}

/**
 * Returns the server's Ed25519 host key, generating `<keysDir>/host/ssh_host_ed25519_key` (mode 0600,
 * plus a `.pub`) on first call and reusing it afterwards.
 */
export function ensureHostKey(keysDir: string): { key: Buffer; fingerprint: string } {
  const dir = join(keysDir, 'host');
  const path = join(dir, 'ssh_host_ed25519_key');
  if (!existsSync(path)) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const pair = utils.generateKeyPairSync('ed25519', { comment: 'wt-sync host key' });
    writeSecret(path, pair.private);
    writeFileSync(`${path}.pub`, pair.public.trim() + '\n', { mode: 0o644 });
  }
  const key = readFileSync(path);
  const parsed = utils.parseKey(key);
  if (parsed instanceof Error) throw new Error(`host key ${path} cannot be parsed: ${parsed.message}`);
  const k = Array.isArray(parsed) ? parsed[0] : parsed;
  if (k.type !== 'ssh-ed25519') throw new Error(`host key ${path} is ${k.type}; only ssh-ed25519 is allowed`);
  return { key, fingerprint: fingerprintOfBlob(k.getPublicSSH()) };
}

/**
 * Ed25519 client key pair for a tenant (the demo tenant): `<dir>/id_ed25519` (0600) and `<dir>/id_ed25519.pub`.
 * An existing pair is reused.
 */
export function generateClientKeyPair(dir: string, comment = 'wt-sync tenant key'): { privateKeyPath: string; publicKeyLine: string } {
  const privateKeyPath = join(dir, 'id_ed25519');
  const publicPath = `${privateKeyPath}.pub`;
  if (existsSync(privateKeyPath) && existsSync(publicPath)) {
    return { privateKeyPath, publicKeyLine: readFileSync(publicPath, 'utf8').trim() };
  }
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const pair = utils.generateKeyPairSync('ed25519', { comment });
  writeSecret(privateKeyPath, pair.private);
  const publicKeyLine = pair.public.trim();
  writeFileSync(publicPath, publicKeyLine + '\n', { mode: 0o644 });
  return { privateKeyPath, publicKeyLine };
}
