// Host key (server identity) and client key pairs (demo tenant), Ed25519 in OpenSSH format.
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
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

function sshString(b: Buffer | string): Buffer {
  const buf = typeof b === 'string' ? Buffer.from(b) : b;
  const len = Buffer.alloc(4);
  len.writeUInt32BE(buf.length, 0);
  return Buffer.concat([len, buf]);
}

/** DER of an Ed25519 key before its 32 raw bytes (RFC 8410): SubjectPublicKeyInfo, and PKCS #8 without attributes. */
const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

/** The 32 bytes after `prefix` in `der`; throws when `der` is not exactly that. */
function rawKey(der: Buffer, prefix: Buffer): Buffer {
  if (der.length !== prefix.length + 32 || !der.subarray(0, prefix.length).equals(prefix)) throw new Error('unexpected Ed25519 key encoding');
  return der.subarray(prefix.length);
}

/**
 * A new Ed25519 key pair in OpenSSH formats (private: "openssh-key-v1", unencrypted; public: authorized_keys
 * line). Built with node:crypto rather than ssh2's keygen, which drops a leading zero byte of the public key
 * now and then (about 1 key in 300 cannot be parsed back). The pair comes out of the generator as DER, never as
 * KeyObjects exported to JWK: Node 20's JWK export of an Ed25519 key holds the key's mutex while it allocates, and
 * a garbage collection then that frees the generator's job takes the same mutex, so the process hangs for good
 * (seen in the test suite's vitest forks; 2 of 3 loops of 20,000 keys with a 1 MB young generation).
 */
export function generateEd25519(comment: string): { private: string; public: string } {
  const der = generateKeyPairSync('ed25519', { publicKeyEncoding: { type: 'spki', format: 'der' }, privateKeyEncoding: { type: 'pkcs8', format: 'der' } });
  const pub = rawKey(der.publicKey, ED25519_SPKI_PREFIX);
  const seed = rawKey(der.privateKey, ED25519_PKCS8_PREFIX);
  const blob = Buffer.concat([sshString('ssh-ed25519'), sshString(pub)]);
  const check = randomBytes(4);
  let priv = Buffer.concat([check, check, sshString('ssh-ed25519'), sshString(pub), sshString(Buffer.concat([seed, pub])), sshString(comment)]);
  const pad: number[] = [];
  for (let i = 1; (priv.length + pad.length) % 8 !== 0; i++) pad.push(i);
  priv = Buffer.concat([priv, Buffer.from(pad)]);
  const body = Buffer.concat([
    Buffer.from('openssh-key-v1\0'),
    sshString('none'),
    sshString('none'),
    sshString(''),
    Buffer.from([0, 0, 0, 1]),
    sshString(blob),
    sshString(priv),
  ]).toString('base64');
  const lines = body.match(/.{1,70}/g) ?? [];
  return {
    private: `-----BEGIN OPENSSH PRIVATE KEY-----\n${lines.join('\n')}\n-----END OPENSSH PRIVATE KEY-----\n`,
    public: `ssh-ed25519 ${blob.toString('base64')} ${comment}`,
  };
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
    const pair = generateEd25519('wt-sync host key');
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
  const pair = generateEd25519(comment);
  writeSecret(privateKeyPath, pair.private);
  const publicKeyLine = pair.public.trim();
  writeFileSync(publicPath, publicKeyLine + '\n', { mode: 0o644 });
  return { privateKeyPath, publicKeyLine };
}
