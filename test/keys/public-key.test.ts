// Keys checked at setup get the SFTP server's own verdict, with the reason when it is a refusal.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import ssh2 from 'ssh2';
import { afterAll, describe, expect, it } from 'vitest';
import { checkPublicKey, readPublicKeyLines } from '../../src/keys/public-key.js';
import { parseAuthorizedKey } from '../../src/sftp/auth.js';
import { generateEd25519 } from '../../src/sftp/host-key.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wt-sync-keys-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** A key made by OpenSSH's own ssh-keygen, as a customer would make it. */
function keygen(type: string, bits?: number): string {
  const file = path.join(dir, `${type}-${bits ?? 0}-${Math.random().toString(36).slice(2)}`);
  const r = spawnSync('ssh-keygen', ['-q', '-t', type, ...(bits ? ['-b', String(bits)] : []), '-N', '', '-C', `${type}@customer`, '-f', file], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ssh-keygen -t ${type}: ${r.stderr}`);
  return fs.readFileSync(`${file}.pub`, 'utf8').trim();
}

function sshString(b: Buffer | string): Buffer {
  const buf = Buffer.from(b);
  const len = Buffer.alloc(4);
  len.writeUInt32BE(buf.length);
  return Buffer.concat([len, buf]);
}

const ed = generateEd25519('ed@customer');
const dsaBlob = Buffer.concat([sshString('ssh-dss'), ...[128, 20, 128, 128].map((n) => sshString(Buffer.concat([Buffer.from([0]), Buffer.alloc(n, 7)])))]);

const accepted: [string, string][] = [
  ['ed25519 from ssh-keygen', keygen('ed25519')],
  ['ecdsa-256', keygen('ecdsa', 256)],
  ['ecdsa-384', keygen('ecdsa', 384)],
  ['ecdsa-521', keygen('ecdsa', 521)],
  ['rsa-2048', keygen('rsa', 2048)],
  ['rsa-3072', keygen('rsa', 3072)],
  ['ed25519 without comment', ed.public.split(' ').slice(0, 2).join(' ')],
];

const refused: [string, string, RegExp][] = [
  ['rsa-1024', ssh2.utils.generateKeyPairSync('rsa', { bits: 1024 }).public, /RSA key of 1024 bits is too weak \(at least 2048 bits\)/],
  ['dsa', `ssh-dss ${dsaBlob.toString('base64')} old@customer`, /DSA \(ssh-dss\) keys are not accepted/],
  ['a private key', ed.private.split('\n')[0], /this is a private key; pass the public key/],
  ['an unsupported type', `sk-ssh-ed25519@openssh.com ${Buffer.from('x').toString('base64')} k`, /key type "sk-ssh-ed25519@openssh.com" is not supported; allowed: ssh-ed25519/],
  ['options before the key', `from="10.0.0.1" ${ed.public}`, /not an OpenSSH public key line/],
  ['prose', 'hello world', /not an OpenSSH public key line/],
  ['no key data', 'ssh-ed25519', /has no valid base64 key data/],
  ['bad base64', 'ssh-ed25519 AAAA$$$$ x', /has no valid base64 key data/],
  ['truncated key data', `ssh-ed25519 ${ed.public.split(' ')[1].slice(0, 40)} cut`, /key data cannot be read|would not accept/],
  ['type and data disagree', `ssh-rsa ${ed.public.split(' ')[1]} liar`, /says ssh-rsa but its key data is a ssh-ed25519 key/],
  ['empty', '   ', /empty/],
];

describe('checkPublicKey', () => {
  it.each(accepted)('accepts %s, as the SFTP server does, with its fingerprint', (_name, line) => {
    const check = checkPublicKey(line);
    expect(check.ok).toBe(true);
    expect(parseAuthorizedKey(line)).not.toBeNull();
    if (!check.ok) return;
    const r = spawnSync('ssh-keygen', ['-l', '-f', '-'], { input: line, encoding: 'utf8' });
    expect(r.stdout).toContain(check.key.fingerprint);
    expect(check.key.line).toBe(line.trim());
  });

  it.each(refused)('refuses %s with the reason, as the SFTP server does', (_name, line, reason) => {
    const check = checkPublicKey(line);
    expect(check.ok).toBe(false);
    if (!check.ok) expect(check.reason).toMatch(reason);
    expect(parseAuthorizedKey(line)).toBeNull();
  });

  it('reads a key file line by line, naming the line that cannot log in', () => {
    const good = accepted[0][1];
    expect(readPublicKeyLines(`# our keys\n\n${good}\n${accepted[4][1]}\n`, 'keys.pub').map((k) => k.type)).toEqual(['ssh-ed25519', 'ssh-rsa']);
    expect(() => readPublicKeyLines(`${good}\n${refused[0][1]}\n`, 'keys.pub')).toThrow(/^keys\.pub:2: RSA key of 1024 bits is too weak/);
    expect(() => readPublicKeyLines('# nothing\n', 'keys.pub')).toThrow(/keys\.pub holds no public key line/);
  });
});
