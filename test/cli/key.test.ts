// `wt-sync key add|list|remove` and `tenant add --key` as a user drives them: keys checked as the SFTP server
// checks them at login, the tenant file edited with its comments kept, refusals changing nothing.
// Also `check`/`ingest --type` for files whose names match no pattern.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import ssh2 from 'ssh2';
import YAML from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateEd25519 } from '../../src/sftp/host-key.js';
import { makeWorkspace, REPO, type Workspace } from '../helpers/workspace.js';

let ws: Workspace;
let tenantFile: string;
const ed = generateEd25519('ops@acme');
const ed2 = generateEd25519('backup@acme');
const weak = ssh2.utils.generateKeyPairSync('rsa', { bits: 1024 }).public;
const fingerprint = (line: string) => spawnSync('ssh-keygen', ['-l', '-f', '-'], { input: line, encoding: 'utf8' }).stdout.split(' ')[1];

const HAND_WRITTEN = `# Acme's tenant file, kept by hand.
name: Acme AB   # the customer's legal name
keys:
  # the IT department's key
  - ${ed.public}
files:
  users: { pattern: "*user*.csv", columns: [externalId, firstName, lastName, username] }
  groups: { pattern: "*group*.csv", columns: [name, externalId, parentId] }
  segments: { pattern: "*segment*.csv", columns: [name, externalId] }
`;

beforeAll(() => {
  ws = makeWorkspace();
  tenantFile = path.join(ws.dir, 'config/tenants/acme.yaml');
  fs.writeFileSync(tenantFile, HAND_WRITTEN);
});
afterAll(() => ws.cleanup());

describe('wt-sync key', () => {
  it('adds a key, keeping every comment of the file, and lists type, fingerprint, comment and when added', () => {
    const r = ws.cli(['key', 'add', '--tenant', 'acme', ws.file('backup.pub', `${ed2.public}\n`)]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toBe(`added ssh-ed25519 ${fingerprint(ed2.public)} (backup@acme) to tenant acme\n`);
    const text = fs.readFileSync(tenantFile, 'utf8');
    expect(text).toContain("# Acme's tenant file, kept by hand.");
    expect(text).toContain("name: Acme AB # the customer's legal name");
    expect(text).toContain("  # the IT department's key\n");
    expect(YAML.parse(text).keys).toEqual([ed.public, ed2.public]);
    expect(fs.readdirSync(path.dirname(tenantFile))).toEqual(['acme.yaml']); // no temporary file left

    const list = JSON.parse(ws.cli(['key', 'list', '--tenant', 'acme', '--json']).stdout);
    expect(list).toEqual([
      { type: 'ssh-ed25519', fingerprint: fingerprint(ed.public), comment: 'ops@acme', added: '', refused: null },
      { type: 'ssh-ed25519', fingerprint: fingerprint(ed2.public), comment: 'backup@acme', added: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/), refused: null },
    ]);
    const again = ws.cli(['key', 'add', '--tenant', 'acme', ws.file('backup.pub', `${ed2.public}\n`)]);
    expect(again.status).toBe(0);
    expect(again.stdout).toMatch(/already present: ssh-ed25519 SHA256:\S+; nothing changed/);
    expect(YAML.parse(fs.readFileSync(tenantFile, 'utf8')).keys).toHaveLength(2);
  });

  it.each([
    ['an RSA key of 1024 bits', weak, /RSA key of 1024 bits is too weak \(at least 2048 bits\)/],
    ['a DSA key', 'ssh-dss AAAAB3NzaC1kc3MAAACBAP8= old@acme', /DSA \(ssh-dss\) keys are not accepted/],
    ['a malformed line', 'ssh-ed25519 not-base64!! x', /has no valid base64 key data/],
    ['an unsupported type', 'ssh-xmss@openssh.com AAAA x', /key type "ssh-xmss@openssh.com" is not supported/],
    ['a private key', ed.private, /this is a private key/],
  ])('refuses %s with the reason (exit 2), leaving the file byte for byte as it was', (_what, content, reason) => {
    const before = fs.readFileSync(tenantFile, 'utf8');
    const r = ws.cli(['key', 'add', '--tenant', 'acme', ws.file('bad.pub', `${ed2.public}\n${content}\n`)]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^wt-sync: .*bad\.pub:2: /);
    expect(r.stderr).toMatch(reason);
    expect(fs.readFileSync(tenantFile, 'utf8')).toBe(before);
  });

  it('removes a key by fingerprint, and says so when no key has it', () => {
    const r = ws.cli(['key', 'remove', '--tenant', 'acme', fingerprint(ed.public)]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/removed ssh-ed25519 SHA256:\S+ \(ops@acme\) from tenant acme; its next login is refused/);
    const text = fs.readFileSync(tenantFile, 'utf8');
    expect(YAML.parse(text).keys).toEqual([ed2.public]);
    expect(text).toContain("name: Acme AB # the customer's legal name");
    const before = text;
    const missing = ws.cli(['key', 'remove', '--tenant', 'acme', fingerprint(ed.public)]);
    expect(missing.status).toBe(2);
    expect(missing.stderr).toMatch(/tenant acme has no key with fingerprint SHA256:\S+ \(see `wt-sync key list --tenant acme`\)/);
    expect(fs.readFileSync(tenantFile, 'utf8')).toBe(before);
  });

  it('is a usage error for a tenant that does not exist', () => {
    const r = ws.cli(['key', 'list', '--tenant', 'nobody']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/tenant "nobody" does not exist/);
  });
});

describe('wt-sync tenant add --key', () => {
  it('refuses a key that could never log in, writing no tenant file', () => {
    const r = ws.cli(['tenant', 'add', 'weak', '--key', ws.file('weak.pub', `${weak}\n`)]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/weak\.pub:1: RSA key of 1024 bits is too weak \(at least 2048 bits\); make a new key with ssh-keygen -t ed25519/);
    expect(fs.existsSync(path.join(ws.dir, 'config/tenants/weak.yaml'))).toBe(false);
  });
});

describe('--type for a file whose name matches no pattern', () => {
  const examples = path.join(REPO, 'examples');
  it('check and ingest read employees.csv as users when told, and refuse a bad --type', () => {
    const groups = ws.file('org.csv', fs.readFileSync(path.join(examples, 'wt_groups.csv')));
    const noType = ws.cli(['check', '--tenant', 'acme', groups, '--json']);
    expect(noType.status).toBe(1);
    expect(JSON.parse(noType.stdout).problems[0].message).toMatch(/matches none of the tenant's file patterns/);
    const check = ws.cli(['check', '--tenant', 'acme', '--type', 'groups', groups, '--json']);
    expect(check.status, check.stdout).toBe(0);
    expect(JSON.parse(check.stdout).files[0]).toMatchObject({ name: 'org.csv', type: 'groups', status: 'accepted' });

    const bad = ws.cli(['ingest', '--tenant', 'acme', '--type', 'people', groups]);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toBe('wt-sync: --type must be one of users, groups, segments, got "people"\n');
    expect(JSON.parse(ws.cli(['status', '--tenant', 'acme', '--json']).stdout)[0].files).toEqual([]);

    const ingest = ws.cli(['ingest', '--tenant', 'acme', '--type', 'groups', groups, '--json']);
    expect(ingest.status, ingest.stderr).toBe(0);
    expect(JSON.parse(ingest.stdout).files[0]).toMatchObject({ name: 'org.csv', type: 'groups', status: 'accepted' });
    expect(JSON.parse(ws.cli(['directory', 'groups', '--tenant', 'acme', '--json']).stdout).length).toBeGreaterThan(0);
  });
});
