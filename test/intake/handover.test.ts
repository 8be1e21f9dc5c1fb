// The hand-over every source uses: temp name → fsync → atomic move into a new inbox folder, the sha256 carried
// through to the receive step (not computed twice).
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { arrivalPath, carriedFor, deliver, inboxRelativeName } from '../../src/intake/handover.js';
import { Inbox } from '../../src/intake/inbox.js';
import { claimInbox } from '../../src/intake/inbox-claim.js';
import { spawn } from 'node:child_process';
import { sha256File } from '../../src/intake/sha256.js';
import { loadTenants } from '../../src/config/load.js';
import { listFiles } from '../../src/store/files.js';
import { makeWorkspace, REPO, SEED, type Workspace } from '../helpers/workspace.js';

let ws: Workspace;
afterEach(() => ws?.cleanup());

describe('intake hand-over', () => {
  it('moves a completed file into its own inbox folder and carries its sha256', async () => {
    ws = makeWorkspace();
    ws.tenant('acme');
    const app = ws.open();
    const root = app.config.paths.tenantsRoot;
    const tmp = arrivalPath(root, 'acme', 'wt_users.csv');
    expect(path.dirname(tmp)).toBe(path.join(root, 'acme/partial'));
    expect(path.basename(tmp).startsWith('.')).toBe(true); // never taken for a finished file
    fs.copyFileSync(path.join(SEED, 'wt_users.csv'), tmp);
    const first = await deliver(root, 'acme', tmp, 'wt_users.csv');
    expect(fs.existsSync(tmp)).toBe(false);
    expect(first.sha256).toBe(await sha256File(first.inboxPath));
    expect(inboxRelativeName(path.join(root, 'acme/inbox'), first.inboxPath)).toBe('wt_users.csv');
    // The same name again never overwrites the first, unprocessed file.
    const tmp2 = arrivalPath(root, 'acme', 'wt_users.csv');
    fs.writeFileSync(tmp2, 'other');
    const second = await deliver(root, 'acme', tmp2, 'wt_users.csv');
    expect(second.inboxPath).not.toBe(first.inboxPath);
    expect(fs.readFileSync(first.inboxPath, 'utf8')).toBe(fs.readFileSync(path.join(SEED, 'wt_users.csv'), 'utf8'));
    expect(carriedFor(first.inboxPath)?.sha256).toBe(first.sha256);
    // A file changed after delivery carries nothing: the receive step hashes what is there.
    fs.appendFileSync(second.inboxPath, 'x');
    expect(carriedFor(second.inboxPath)).toBeUndefined();
  });

  it('the receive step uses the carried sha256 instead of hashing the file again', async () => {
    ws = makeWorkspace();
    ws.tenant('acme');
    const app = ws.open();
    const root = app.config.paths.tenantsRoot;
    const inbox = new Inbox(app, () => loadTenants(app.config.paths.tenantsDir), { archiveDays: 30, settleSecondsOverride: 0, stabilityMs: 100 });
    await inbox.start();
    try {
      const tmp = arrivalPath(root, 'acme', 'wt_users.csv');
      fs.copyFileSync(path.join(REPO, 'examples/wt_users.csv'), tmp);
      // A marker value the file cannot hash to shows which one the receive step used.
      const marker = 'f'.repeat(64);
      const d = await deliver(root, 'acme', tmp, 'wt_users.csv', { sha256: marker });
      inbox.fileArrived(d.inboxPath, d);
      await inbox.idle();
      const [f] = listFiles(app.db, 'acme');
      expect(f.sha256).toBe(marker);
      expect(f.status, JSON.stringify(f.problems)).toBe('accepted');
    } finally {
      await inbox.stop(1000);
    }
  });

  it('a tenant claimed by another process (wt-sync pull) is left alone by the running inbox until the claim is gone', async () => {
    ws = makeWorkspace();
    ws.tenant('acme');
    const app = ws.open();
    const root = app.config.paths.tenantsRoot;
    // Another live process holds the claim.
    const other = spawn('sleep', ['30'], { stdio: 'ignore' });
    const claimFile = path.join(root, 'acme/inbox.claim');
    fs.mkdirSync(path.dirname(claimFile), { recursive: true });
    fs.writeFileSync(claimFile, String(other.pid));
    expect(claimInbox(root, 'acme')).toEqual({ heldBy: other.pid });
    const inbox = new Inbox(app, () => loadTenants(app.config.paths.tenantsDir), { archiveDays: 30, settleSecondsOverride: 0, stabilityMs: 100 });
    await inbox.start();
    try {
      const tmp = arrivalPath(root, 'acme', 'wt_users.csv');
      fs.copyFileSync(path.join(REPO, 'examples/wt_users.csv'), tmp);
      const d = await deliver(root, 'acme', tmp, 'wt_users.csv');
      inbox.fileArrived(d.inboxPath, d);
      await inbox.idle();
      expect(listFiles(app.db, 'acme')).toEqual([]);
      expect(fs.existsSync(d.inboxPath)).toBe(true);
      // Its process ends: the claim is stale, the file is received.
      other.kill('SIGKILL');
      await new Promise((r) => other.once('exit', r));
      inbox.fileArrived(d.inboxPath, d);
      await inbox.idle();
      expect(listFiles(app.db, 'acme').map((f) => f.status)).toEqual(['accepted']);
      const mine = claimInbox(root, 'acme');
      expect('release' in mine).toBe(true);
      if ('release' in mine) mine.release();
      expect(fs.existsSync(claimFile)).toBe(false);
    } finally {
      other.kill('SIGKILL');
      await inbox.stop(1000);
    }
  });
});
