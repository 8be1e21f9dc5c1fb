// The config keys for operating the service: smtp (service), reports.email and expect.everyHours (tenant).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, loadTenant, replaceTenantFile } from '../../src/config/load.js';
import { mailSettings } from '../../src/notify/mailer.js';
import { errorOf } from './helpers.js';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wt-sync-config-'));
  fs.mkdirSync(path.join(dir, 'tenants'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const minimal = 'name: Acme\nfiles:\n  groups: { pattern: "*group*.csv", columns: [name, externalId, parentId] }\n';
const tenant = (extra: string) => {
  fs.writeFileSync(path.join(dir, 'tenants/acme.yaml'), minimal + extra);
  return () => loadTenant(path.join(dir, 'tenants'), 'acme');
};
const service = (body: string) => {
  fs.writeFileSync(path.join(dir, 'wt-sync.yaml'), body);
  return () => loadConfig(path.join(dir, 'wt-sync.yaml'), {}, dir);
};
describe('tenant reports and expect', () => {
  it('defaults to no recipients and no expectation', () => {
    expect(tenant('')()).toMatchObject({ reports: { email: [] } });
    expect(tenant('')().expect).toBeUndefined();
    expect(tenant('reports: { email: [hr@acme.example] }\nexpect: { everyHours: 26 }\n')()).toMatchObject({ reports: { email: ['hr@acme.example'] }, expect: { everyHours: 26 } });
  });

  it('names the key and the bad value', () => {
    expect(errorOf(tenant('reports: { email: [not-an-address] }\n'))).toMatch(/acme\.yaml: reports\.email\.0: .*email.* \(got "not-an-address"\)/i);
    expect(errorOf(tenant('expect: { everyHours: 0 }\n'))).toMatch(/acme\.yaml: expect\.everyHours: .* \(got 0\)/);
    expect(errorOf(tenant('expect: { everyDays: 1 }\n'))).toMatch(/expect: unknown key "everyDays"/);
  });

  it('replaceTenantFile refuses an edit that would not load, leaving the file as it was', () => {
    tenant('');
    const file = path.join(dir, 'tenants/acme.yaml');
    expect(errorOf(() => replaceTenantFile(path.join(dir, 'tenants'), 'acme', minimal + 'expect: { everyHours: -1 }\n'))).toMatch(/expect\.everyHours/);
    expect(fs.readFileSync(file, 'utf8')).toBe(minimal);
    expect(fs.readdirSync(path.join(dir, 'tenants'))).toEqual(['acme.yaml']);
  });
});

describe('service smtp', () => {
  it('is off without a host; TLS follows port 465 unless said otherwise', () => {
    expect(mailSettings(service('{}\n')().service, {})).toBeNull();
    expect(mailSettings(service('smtp: { host: mail.example, port: 465 }\n')().service, {})).toMatchObject({ host: 'mail.example', port: 465, secure: true, attempts: 6, initialDelayMs: 30_000 });
    expect(mailSettings(service('smtp: { host: mail.example }\n')().service, {})).toMatchObject({ port: 587, secure: false, from: 'wt-sync <wt-sync@localhost>' });
    expect(mailSettings(service('smtp: { host: mail.example, port: 465, secure: false }\n')().service, {})).toMatchObject({ secure: false });
  });

  it('names a bad key', () => {
    expect(errorOf(service('smtp: { host: x, port: 70000 }\n'))).toMatch(/wt-sync\.yaml: smtp\.port: .* \(got 70000\)/);
    expect(errorOf(service('smtp: { host: x, tls: true }\n'))).toMatch(/smtp: unknown key "tls"/);
  });
});
