// Checks a customer's OpenSSH public key line at setup (`tenant add --key`, `key add`), with the reason when it
// could never log in. The verdict is the SFTP server's own (src/sftp/auth.ts parseAuthorizedKey); this only
// explains a refusal.
import { createPublicKey } from 'node:crypto';
import ssh2 from 'ssh2';
import type { ParsedKey } from 'ssh2';
import { ALLOWED_KEY_TYPES, MIN_RSA_BITS, parseAuthorizedKey } from '../sftp/auth.js';
import { fingerprintOfBlob } from '../sftp/host-key.js';

export interface PublicKeyInfo {
  /** The key line as it is stored in the tenant file: type, base64 and comment, trimmed. */
  line: string;
  type: string;
  /** "SHA256:…" as OpenSSH prints it. */
  fingerprint: string;
  comment: string;
  /** RSA modulus length; null for other types. */
  bits: number | null;
}

export type PublicKeyCheck = { ok: true; key: PublicKeyInfo } | { ok: false; reason: string };

const TYPE_NAMES = [...ALLOWED_KEY_TYPES].join(', ');

export function checkPublicKey(raw: string): PublicKeyCheck {
  const line = raw.trim().replace(/\s+/g, ' ');
  if (!line) return { ok: false, reason: 'the line is empty' };
  if (line.includes('PRIVATE KEY')) return { ok: false, reason: 'this is a private key; pass the public key (the .pub file) and keep the private key with the customer' };
  const [type, data, ...rest] = line.split(' ');
  if (type === 'ssh-dss') return { ok: false, reason: 'DSA (ssh-dss) keys are not accepted: they are limited to 1024 bits and disabled in OpenSSH; use an ed25519 key (ssh-keygen -t ed25519)' };
  if (!ALLOWED_KEY_TYPES.has(type)) {
    if (/^(ssh|ecdsa|sk-|rsa)/.test(type)) return { ok: false, reason: `key type "${type.slice(0, 60)}" is not supported; allowed: ${TYPE_NAMES}` };
    return { ok: false, reason: `not an OpenSSH public key line (expected "<type> <base64> [comment]" with type one of ${TYPE_NAMES})` };
  }
  if (!data || !/^[A-Za-z0-9+/]+={0,2}$/.test(data)) return { ok: false, reason: `the ${type} key has no valid base64 key data after its type` };
  const inner = typeInBlob(Buffer.from(data, 'base64'));
  if (inner !== null && inner !== type) return { ok: false, reason: `the line says ${type} but its key data is a ${inner.slice(0, 60)} key; copy the line unchanged from the .pub file` };
  const parsed = ssh2.utils.parseKey(`${type} ${data}`);
  if (parsed instanceof Error) return { ok: false, reason: `the ${type} key data cannot be read (${parsed.message}); copy the whole line from the .pub file` };
  const k = (Array.isArray(parsed) ? parsed[0] : parsed) as ParsedKey;
  if (k.type !== type) return { ok: false, reason: `the line says ${type} but its key data is a ${k.type} key; copy the line unchanged from the .pub file` };
  let bits: number | null = null;
  if (type === 'ssh-rsa') {
    try {
      bits = createPublicKey(k.getPublicPEM()).asymmetricKeyDetails?.modulusLength ?? 0;
    } catch {
      return { ok: false, reason: 'the RSA key data cannot be read; copy the whole line from the .pub file' };
    }
    if (bits < MIN_RSA_BITS) return { ok: false, reason: `RSA key of ${bits} bits is too weak (at least ${MIN_RSA_BITS} bits); make a new key with ssh-keygen -t ed25519 (or -t rsa -b 4096)` };
  }
  // The server's own verdict decides; anything it refuses that is not explained above is still refused.
  if (!parseAuthorizedKey(line)) return { ok: false, reason: `the SFTP server would not accept this ${type} key` };
  return { ok: true, key: { line, type, fingerprint: fingerprintOfBlob(k.getPublicSSH()), comment: rest.join(' '), bits } };
}

/** The key type named at the start of an SSH public key blob, or null when the blob is too short to say. */
function typeInBlob(blob: Buffer): string | null {
  if (blob.length < 4) return null;
  const len = blob.readUInt32BE(0);
  return len > 0 && len <= 64 && blob.length >= 4 + len ? blob.subarray(4, 4 + len).toString('latin1') : null;
}

/**
 * Every key line of a public key file (blank lines and # comments skipped), each checked; the first bad one
 * throws with its line number and reason.
 */
export function readPublicKeyLines(text: string, source: string): PublicKeyInfo[] {
  const keys: PublicKeyInfo[] = [];
  for (const [i, raw] of text.split(/\r?\n/).entries()) {
    const l = raw.trim();
    if (!l || l.startsWith('#')) continue;
    const check = checkPublicKey(l);
    if (!check.ok) throw new KeyRefused(`${source}:${i + 1}: ${check.reason}`);
    keys.push(check.key);
  }
  if (keys.length === 0) throw new KeyRefused(`${source} holds no public key line`);
  return keys;
}

export class KeyRefused extends Error {}
