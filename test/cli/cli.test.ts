// The CLI as a user drives it: real processes, exit codes 0/1/2, --json field names.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeWorkspace, REPO, SEED, type Workspace } from '../helpers/workspace.js';

const EXAMPLES = ['wt_groups.csv', 'wt_segments.csv', 'wt_users.csv'].map((f) => path.join(REPO, 'examples', f));
const USER_FIELDS = ['externalId', 'firstName', 'lastName', 'username', 'email', 'phone', 'title', 'birthday', 'employedSince', 'employedUntil', 'gender', 'memberOf', 'adminOf', 'segments', 'status', 'language'];

let ws: Workspace;
beforeAll(() => {
  ws = makeWorkspace();
});
afterAll(() => ws.cleanup());

describe('wt-sync tenant', () => {
  it('adds a tenant with the guide column order, and refuses to overwrite it', () => {
    const r = ws.cli(['tenant', 'add', 'acme', '--name', 'Acme AB']);
    expect(r.status, r.stderr).toBe(0);
    const body = YAML.parse(fs.readFileSync(path.join(ws.dir, 'config/tenants/acme.yaml'), 'utf8'));
    expect(body.files.users.columns).toEqual(USER_FIELDS);
    expect(body.files.users.header[0]).toBe('Unique ID');
    expect(body.files.groups.columns).toEqual(['name', 'externalId', 'parentId']);
    const again = ws.cli(['tenant', 'add', 'acme']);
    expect(again.status).toBe(2);
    expect(again.stderr).toMatch(/tenant "acme" already exists/);
  });

  it('guesses the user columns from a sample header and records it', () => {
    const sample = ws.file('sample_users.csv', '\uFEFFEmployee ID;E-mail;Given name;Surname;Login;Groups;Manager;Shoe size\n1;a@x.se;A;B;ab;dev;7;42\n');
    const key = ws.file('id.pub', 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGJx0tBKHFzNvL8bW0j5k3Fkq6h3sbmEoW1h6kK0JbQt it@acme\n');
    const r = ws.cli(['tenant', 'add', 'beta', '--sample', sample, '--key', key, '--json']);
    expect(r.status, r.stderr).toBe(0);
    const t = JSON.parse(r.stdout);
    // "Manager" holds people, not group IDs: it is not guessed as adminOf.
    expect(t.files.users.columns).toEqual(['externalId', 'email', 'firstName', 'lastName', 'username', 'memberOf', 'ignore', 'ignore']);
    expect(t.files.users.header).toEqual(['Employee ID', 'E-mail', 'Given name', 'Surname', 'Login', 'Groups', 'Manager', 'Shoe size']);
    expect(t.keys).toEqual(['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGJx0tBKHFzNvL8bW0j5k3Fkq6h3sbmEoW1h6kK0JbQt it@acme']);
  });

  it('refuses a sample whose mandatory columns cannot be told, writing nothing', () => {
    const sample = ws.file('odd_users.csv', 'Person;Department;Manager\n1;Sales;2\n');
    const r = ws.cli(['tenant', 'add', 'gamma', '--sample', sample]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/could not tell which columns of .*odd_users\.csv hold externalId, firstName, lastName, username/);
    expect(fs.existsSync(path.join(ws.dir, 'config/tenants/gamma.yaml'))).toBe(false);
  });

  it('lists and shows tenants', () => {
    const list = JSON.parse(ws.cli(['tenant', 'list', '--json']).stdout);
    expect(list.map((t: { id: string }) => t.id)).toEqual(['acme', 'beta']);
    const show = JSON.parse(ws.cli(['tenant', 'show', 'acme', '--json']).stdout);
    expect(show).toMatchObject({ id: 'acme', name: 'Acme AB', rules: { userRemoval: 'externalIdOnly' }, safeguards: { maxRemovals: 500 } });
  });
});

describe('wt-sync check', () => {
  it('reports the seed files, exits 1 for the rejected users file, and records nothing', () => {
    const r = ws.cli(['check', '--tenant', 'acme', ...['wt_groups.csv', 'wt_segments.csv', 'wt_users.csv'].map((f) => path.join(SEED, f)), '--json']);
    expect(r.status).toBe(1);
    const report = JSON.parse(r.stdout);
    expect(report.files.map((f: { status: string }) => f.status)).toEqual(['accepted', 'accepted', 'rejected']);
    expect(report.counts).toMatchObject({ created: 12, fileErrors: 1, rowErrors: 1, warnings: 1 });
    expect(report.operations.every((o: { status: string }) => o.status === 'planned')).toBe(true);
    expect(JSON.parse(ws.cli(['status', '--tenant', 'acme', '--json']).stdout)[0]).toMatchObject({ files: [], runs: [] });
    expect(JSON.parse(ws.cli(['directory', 'groups', '--tenant', 'acme', '--json']).stdout)).toEqual([]);
  });

  it('exits 0 for valid files and shows the plan as text', () => {
    const r = ws.cli(['check', '--tenant', 'acme', ...EXAMPLES]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/status: check: would apply/);
    expect(r.stdout).toMatch(/create user "[0-9a-f-]{36}": firstName="Mark"/);
  });
});

describe('wt-sync ingest, status, report, directory', () => {
  it('ingests the examples and prints the report', () => {
    const r = ws.cli(['ingest', '--tenant', 'acme', ...EXAMPLES]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/counts: created 37, updated 0, removed 0/);
  });

  it('lists users with the contract field names', () => {
    const users = JSON.parse(ws.cli(['directory', 'users', '--tenant', 'acme', '--json']).stdout);
    expect(users).toHaveLength(25);
    expect(Object.keys(users[0]).slice(0, USER_FIELDS.length).sort()).toEqual([...USER_FIELDS].sort());
    const mark = users.find((u: { firstName: string }) => u.firstName === 'Mark');
    expect(mark).toMatchObject({ memberOf: ['dev-team-1', 'prod'], adminOf: ['prod'], segments: ['dev', 'uk'], gender: 'male', status: 'active', language: 'en-GB' });
    const groups = JSON.parse(ws.cli(['directory', 'groups', '--tenant', 'acme', '--json']).stdout);
    expect(groups[2]).toEqual({ externalId: 'dev-team-1', name: 'Team 1 Engineering', parentId: 'prod' });
  });

  it('shows status and the latest report', () => {
    const status = JSON.parse(ws.cli(['status', '--tenant', 'acme', '--json']).stdout)[0];
    expect(status.runs[0]).toMatchObject({ id: 1, status: 'applied', trigger: { kind: 'ingest' } });
    expect(status.files.map((f: { status: string }) => f.status)).toEqual(['accepted', 'accepted', 'accepted']);
    const report = JSON.parse(ws.cli(['report', '--tenant', 'acme', '--json']).stdout);
    expect(report).toMatchObject({ runId: 1, tenant: 'acme', status: 'applied' });
    expect(Object.keys(report.counts)).toEqual(['created', 'updated', 'removed', 'restored', 'purged', 'linked', 'unlinked', 'unchanged', 'held', 'failed', 'fileErrors', 'rowErrors', 'warnings']);
  });

  it('exits 1 when a file is rejected, naming line and byte of bad UTF-8', () => {
    const latin1 = Buffer.concat([Buffer.from('SegmentName;SegmentID\nSverige;swe\n'), Buffer.from([0x53, 0x6b, 0xe5, 0x6e, 0x65]), Buffer.from(';skane\n')]);
    const r = ws.cli(['ingest', '--tenant', 'acme', ws.file('bad_segments.csv', latin1)]);
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(/bad_segments\.csv, line 3, byte 37: the file is not valid UTF-8/);
    expect(r.stdout).toMatch(/CSV UTF-8/);
    expect(JSON.parse(ws.cli(['directory', 'segments', '--tenant', 'acme', '--json']).stdout)).toHaveLength(4);
  });
});

describe('usage errors exit 2', () => {
  it('checks every file argument before receiving any', () => {
    const filesBefore = JSON.parse(ws.cli(['status', '--tenant', 'acme', '--json']).stdout)[0].files.length;
    const r = ws.cli(['ingest', '--tenant', 'acme', path.join(REPO, 'examples/wt_segments.csv'), 'nonexistent_users.csv']);
    expect(r.status).toBe(2);
    expect(r.stderr).toBe('wt-sync: file not found: nonexistent_users.csv\n');
    expect(JSON.parse(ws.cli(['status', '--tenant', 'acme', '--json']).stdout)[0].files).toHaveLength(filesBefore);
  });

  it.each([
    [['frobnicate']],
    [['ingest', 'x.csv']],
    [['report', '--tenant', 'ghost']],
    [['approve', '--tenant', 'acme', 'abc']],
    [['approve', '--tenant', 'acme', '1']],
    [['check', '--tenant', 'acme', 'missing.csv']],
    [['ingest', '--tenant', 'acme', 'missing_users.csv']],
    [['check', '--tenant', 'acme', '.']],
  ])('%j', (args) => {
    const r = ws.cli(args);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^(error|wt-sync): /m);
    expect(r.stderr).not.toMatch(/\n\s+at /); // a message, not a stack trace
  });
});

describe('the built CLI', () => {
  it('runs from dist/ after the TypeScript build', () => {
    // Inside the repository, so the build resolves node_modules as the installed package does.
    const out = fs.mkdtempSync(path.join(REPO, '.test-dist-'));
    const tsc = spawnSync(process.execPath, [path.join(REPO, 'node_modules/typescript/bin/tsc'), '-p', path.join(REPO, 'tsconfig.json'), '--outDir', out], { encoding: 'utf8' });
    expect(tsc.status, tsc.stdout + tsc.stderr).toBe(0);
    const r = spawnSync(process.execPath, [path.join(out, 'cli.js'), '--config', ws.configPath, 'tenant', 'list'], { encoding: 'utf8', cwd: REPO });
    expect(r.status, r.stderr).toBe(0);
    fs.rmSync(out, { recursive: true, force: true });
    expect(r.stdout).toMatch(/acme +Acme AB/);
  }, 120_000);
});
