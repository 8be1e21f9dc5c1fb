// The public keys of a tenant file (`keys:`), edited in place with the YAML document API so every comment and
// the layout of the rest of the file stay as they were. Each key added here carries an "added <time>" comment.
import fs from 'node:fs';
import YAML, { isScalar, isSeq, type Scalar, type YAMLSeq } from 'yaml';
import { ConfigError, replaceTenantFile, tenantFile } from '../config/load.js';
import { checkPublicKey, type PublicKeyInfo } from './public-key.js';

export interface TenantKey extends Partial<PublicKeyInfo> {
  line: string;
  /** When `key add` added it (from its comment), or null. */
  added: string | null;
  /** Why the SFTP server refuses this line (a hand-edited file), or null when it can log in. */
  refused: string | null;
}

const ADDED = /\badded (\S+)/;

function readDocument(tenantsDir: string, id: string): { file: string; doc: YAML.Document } {
  const file = tenantFile(tenantsDir, id);
  if (!fs.existsSync(file)) throw new ConfigError(`tenant "${id}" does not exist: ${file} not found (create it with \`wt-sync tenant add ${id}\`)`);
  const doc = YAML.parseDocument(fs.readFileSync(file, 'utf8'));
  if (doc.errors.length) throw new ConfigError(`${file}: not valid YAML: ${doc.errors[0].message}`);
  return { file, doc };
}

function keySeq(doc: YAML.Document, create: boolean): YAMLSeq<Scalar<string>> | undefined {
  const node = doc.get('keys', true);
  if (isSeq(node)) return node as YAMLSeq<Scalar<string>>;
  if (node !== undefined && node !== null && !(isScalar(node) && node.value === null)) throw new ConfigError('keys: expected a list of public key lines');
  if (!create) return undefined;
  const seq = doc.createNode([]) as YAMLSeq<Scalar<string>>;
  doc.set('keys', seq);
  return seq;
}

function describe(item: Scalar<string>): TenantKey {
  const line = String(item.value);
  const check = checkPublicKey(line);
  const added = ADDED.exec(item.comment ?? '')?.[1] ?? null;
  return check.ok ? { ...check.key, added, refused: null } : { line, added, refused: check.reason };
}

export function listTenantKeys(tenantsDir: string, id: string): TenantKey[] {
  const { doc } = readDocument(tenantsDir, id);
  return (keySeq(doc, false)?.items ?? []).map(describe);
}

/** Adds keys (already checked); one already present is left as it is. Returns the keys actually added. */
export function addTenantKeys(tenantsDir: string, id: string, keys: PublicKeyInfo[], now: Date): PublicKeyInfo[] {
  const { doc } = readDocument(tenantsDir, id);
  const seq = keySeq(doc, true)!;
  seq.flow = false;
  const present = new Set(seq.items.map((i) => describe(i).fingerprint).filter(Boolean));
  const added: PublicKeyInfo[] = [];
  for (const key of keys) {
    if (present.has(key.fingerprint)) continue;
    present.add(key.fingerprint);
    const node = doc.createNode(key.line) as Scalar<string>;
    node.comment = ` added ${now.toISOString().replace(/\.\d+Z$/, 'Z')}`;
    seq.items.push(node);
    added.push(key);
  }
  if (added.length) replaceTenantFile(tenantsDir, id, doc.toString({ lineWidth: 0 }));
  return added;
}

/** Removes the key with this fingerprint ("SHA256:…", the prefix optional). Returns it, or null when absent. */
export function removeTenantKey(tenantsDir: string, id: string, fingerprint: string): TenantKey | null {
  const { doc } = readDocument(tenantsDir, id);
  const seq = keySeq(doc, false);
  const wanted = fingerprint.startsWith('SHA256:') ? fingerprint : `SHA256:${fingerprint}`;
  const index = seq?.items.findIndex((i) => describe(i).fingerprint === wanted) ?? -1;
  if (!seq || index < 0) return null;
  const removed = describe(seq.items[index]);
  seq.items.splice(index, 1);
  replaceTenantFile(tenantsDir, id, doc.toString({ lineWidth: 0 }));
  return removed;
}
