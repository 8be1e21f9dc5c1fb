// Public-key authentication helpers and the per-address ban list.
import { createPublicKey, timingSafeEqual } from 'node:crypto';
import ssh2 from 'ssh2';
import type { ParsedKey } from 'ssh2';

const { utils } = ssh2;

export const ALLOWED_KEY_TYPES = new Set([
  'ssh-ed25519',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'ssh-rsa',
]);
export const MIN_RSA_BITS = 2048;

interface AuthorizedKey {
  type: string;
  blob: Buffer;
  parsed: ParsedKey;
}

const parsedCache = new Map<string, AuthorizedKey | null>();

/** Parses one authorized_keys line (options prefixes are not supported); null for unusable keys. */
export function parseAuthorizedKey(line: string): AuthorizedKey | null {
  const trimmed = line.trim();
  const cached = parsedCache.get(trimmed);
  if (cached !== undefined) return cached;
  let result: AuthorizedKey | null = null;
  const parsed = trimmed ? utils.parseKey(trimmed) : new Error('empty');
  if (!(parsed instanceof Error)) {
    const k = Array.isArray(parsed) ? (parsed[0] as ParsedKey) : parsed;
    if (ALLOWED_KEY_TYPES.has(k.type) && !k.isPrivateKey()) {
      let ok = true;
      if (k.type === 'ssh-rsa') {
        try {
          const bits = createPublicKey(k.getPublicPEM()).asymmetricKeyDetails?.modulusLength ?? 0;
          ok = bits >= MIN_RSA_BITS;
        } catch {
          ok = false;
        }
      }
      if (ok) result = { type: k.type, blob: k.getPublicSSH(), parsed: k };
    }
  }
  if (parsedCache.size > 10_000) parsedCache.clear();
  parsedCache.set(trimmed, result);
  return result;
}

/**
 * Finds the authorized key equal to the offered one. Every candidate is compared (no early exit) and the
 * blob comparison is constant-time.
 */
export function findAuthorizedKey(lines: readonly string[], offeredType: string, offeredBlob: Buffer): AuthorizedKey | undefined {
  let match: AuthorizedKey | undefined;
  for (const line of lines) {
    const k = parseAuthorizedKey(line);
    if (!k) continue;
    const sameLen = k.blob.length === offeredBlob.length;
    // Compare against a same-length buffer either way so the work done does not depend on the key bytes.
    const equal = timingSafeEqual(sameLen ? k.blob : offeredBlob, offeredBlob) && sameLen && k.type === offeredType;
    if (equal && !match) match = k;
  }
  return match;
}

export interface BanSettings {
  maxFailures: number;
  windowMs: number;
  banMs: number;
}

/** Failed-login tracking per address: `maxFailures` within `windowMs` bans the address for `banMs`. */
export class BanList {
  private readonly failures = new Map<string, number[]>();
  private readonly banned = new Map<string, number>();

  constructor(private readonly settings: BanSettings) {}

  isBanned(ip: string, now = Date.now()): boolean {
    const until = this.banned.get(ip);
    if (until === undefined) return false;
    if (until <= now) {
      this.banned.delete(ip);
      return false;
    }
    return true;
  }

  bannedUntil(ip: string): number | undefined {
    return this.isBanned(ip) ? this.banned.get(ip) : undefined;
  }

  /** Records a failure; returns the ban end time when this failure triggers a ban. */
  recordFailure(ip: string, now = Date.now()): number | undefined {
    const { maxFailures, windowMs, banMs } = this.settings;
    const list = (this.failures.get(ip) ?? []).filter((t) => t > now - windowMs);
    list.push(now);
    this.failures.set(ip, list);
    if (list.length >= maxFailures && !this.isBanned(ip, now)) {
      const until = now + banMs;
      this.banned.set(ip, until);
      this.failures.delete(ip);
      return until;
    }
    return undefined;
  }

  /** Drops expired state (called periodically). */
  sweep(now = Date.now()): void {
    for (const [ip, until] of this.banned) if (until <= now) this.banned.delete(ip);
    for (const [ip, list] of this.failures) {
      const kept = list.filter((t) => t > now - this.settings.windowMs);
      if (kept.length) this.failures.set(ip, kept);
      else this.failures.delete(ip);
    }
  }
}
