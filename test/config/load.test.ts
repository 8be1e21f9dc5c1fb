import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, loadTenant } from '../../src/config/load.js';
import { errorOf } from './helpers.js';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wt-sync-config-'));
  fs.mkdirSync(path.join(dir, 'tenants'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const tenant = (body: string) => fs.writeFileSync(path.join(dir, 'tenants/acme.yaml'), body);
const minimal = `name: Acme
files:
  groups: { pattern: "*group*.csv", columns: [name, externalId, parentId] }
`;

describe('service config', () => {
  it('applies defaults without a file, resolving paths against the working directory', () => {
    const c = loadConfig(undefined, {}, dir);
    expect(c.file).toBeNull();
    expect(c.service.sftp.port).toBe(2222);
    expect(c.service.http).toEqual({ host: '127.0.0.1', port: 8080 });
    expect(c.paths.database).toBe(path.join(dir, 'data/wt-sync.sqlite'));
    expect(c.paths.tenantsDir).toBe(path.join(dir, 'config/tenants'));
  });

  it('takes WT_SYNC_CONFIG and WT_SYNC_DATA_DIR', () => {
    fs.writeFileSync(path.join(dir, 'svc.yaml'), 'dataDir: somewhere\nsftp: { port: 2022 }\n');
    const c = loadConfig(undefined, { WT_SYNC_CONFIG: 'svc.yaml', WT_SYNC_DATA_DIR: '/var/lib/wt' }, dir);
    expect(c.service.sftp.port).toBe(2022);
    expect(c.paths.dataDir).toBe('/var/lib/wt');
  });

  it('names the file, key, value and what is allowed', () => {
    fs.writeFileSync(path.join(dir, 'svc.yaml'), 'sftp: { port: 99999 }\nlog: { level: loud }\nextra: 1\n');
    const msg = errorOf(() => loadConfig(path.join(dir, 'svc.yaml'), {}, dir));
    expect(msg).toContain(`${path.join(dir, 'svc.yaml')}: sftp.port:`);
    expect(msg).toContain('(got 99999)');
    expect(msg).toMatch(/log\.level: .*"info".*\(got "loud"\)/);
    expect(msg).toMatch(/unknown key "extra"/);
  });

  it('refuses a --config that does not exist', () => {
    expect(errorOf(() => loadConfig('nope.yaml', {}, dir))).toMatch(/nope\.yaml: config file not found/);
  });
});

describe('tenant config', () => {
  it('fills in the rules, safeguards and triggers of SPEC §5 by default', () => {
    tenant(minimal);
    const t = loadTenant(path.join(dir, 'tenants'), 'acme');
    expect(t.rules).toEqual({ userRemoval: 'externalIdOnly', userStatusUpdate: 'overwrite', membershipUpdate: 'never', segmentConnectionUpdate: 'never' });
    expect(t.safeguards).toEqual({ maxRemovals: 500, maxRemovalPercent: 10, maxInvalidRowPercent: 20 });
    expect(t.removalGraceDays).toBe(90);
    expect(t.sync).toEqual({ trigger: 'onUpload', settleSeconds: 5 });
    expect(t.files.groups!.listSeparator).toBe(',');
  });

  it('rejects unknown keys, bad rule values, unmapped mandatory fields and bad cron schedules', () => {
    tenant(`${minimal}rules: { membershipUpdate: sometimes }\nsafeguard: {}\nsync: { trigger: cron, cron: "every day", timezone: Mars/Olympus }\n`);
    const msg = errorOf(() => loadTenant(path.join(dir, 'tenants'), 'acme'));
    const file = path.join(dir, 'tenants/acme.yaml');
    expect(msg).toMatch(new RegExp(`${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: rules\\.membershipUpdate: .*"overwriteIfRoleIsGreaterOrEqual".*\\(got "sometimes"\\)`));
    expect(msg).toMatch(/unknown key "safeguard"/);
    expect(msg).toMatch(/sync\.cron: not a valid cron expression/);
    expect(msg).toMatch(/sync\.timezone: not a known IANA time zone/);
  });

  it('rejects a column list without the mandatory fields or with a field twice', () => {
    tenant('name: Acme\nfiles:\n  users: { pattern: "*.csv", columns: [externalId, firstName, firstName] }\n');
    const msg = errorOf(() => loadTenant(path.join(dir, 'tenants'), 'acme'));
    expect(msg).toMatch(/files\.users\.columns\.2: field "firstName" is already mapped at position 1/);
    expect(msg).toMatch(/files\.users\.columns: mandatory field "lastName" is not mapped/);
    expect(msg).toMatch(/mandatory field "username" is not mapped/);
  });

  it('rejects a value map that produces a value the field cannot take', () => {
    tenant('name: Acme\nfiles:\n  users: { pattern: "*.csv", columns: [externalId, firstName, lastName, username, gender], valueMaps: { gender: { "1": man, "2": female, "_": null } } }\n');
    expect(errorOf(() => loadTenant(path.join(dir, 'tenants'), 'acme'))).toMatch(/files\.users\.valueMaps\.gender\.1: maps to "man"; allowed: male, female, other or null/);
  });

  it('rejects a key line that is not an OpenSSH public key', () => {
    tenant(`${minimal}keys: ["-----BEGIN OPENSSH PRIVATE KEY-----"]\n`);
    expect(errorOf(() => loadTenant(path.join(dir, 'tenants'), 'acme'))).toMatch(/keys\.0: expected an OpenSSH public key line/);
  });

  it('says how to create a tenant that does not exist, and refuses unsafe ids', () => {
    expect(errorOf(() => loadTenant(path.join(dir, 'tenants'), 'ghost'))).toMatch(/tenant "ghost" does not exist: .*wt-sync tenant add ghost/);
    expect(errorOf(() => loadTenant(path.join(dir, 'tenants'), '../etc'))).toMatch(/tenant id "..\/etc" is invalid/);
  });
});
