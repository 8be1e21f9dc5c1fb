// A tenant's inbox is received by one process at a time. `wt-sync pull` (a command, in its own process) claims
// the tenant while it hands files over and receives them; a running service leaves that tenant's inbox alone
// meanwhile and picks up whatever is left once the claim is gone. A claim whose process has died is stale.
import fs from 'node:fs';
import path from 'node:path';
import { tenantDirs } from '../config/tenant-dirs.js';

function claimFile(tenantsRoot: string, tenant: string): string {
  return path.join(tenantDirs(tenantsRoot, tenant).root, 'inbox.claim');
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function holder(file: string): number | null {
  try {
    const pid = Number(fs.readFileSync(file, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

/** Claims the tenant's inbox for this process; returns the release, or the pid of the live process that holds it. */
export function claimInbox(tenantsRoot: string, tenant: string): { release: () => void } | { heldBy: number } {
  const file = claimFile(tenantsRoot, tenant);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      fs.writeFileSync(file, String(process.pid), { flag: 'wx' });
      return { release: () => { if (holder(file) === process.pid) fs.rmSync(file, { force: true }); } };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const pid = holder(file);
      if (pid !== null && pid !== process.pid && alive(pid)) return { heldBy: pid };
      fs.rmSync(file, { force: true }); // stale: its process is gone
    }
  }
  return { heldBy: holder(file) ?? 0 };
}

/** True while another live process holds the tenant's inbox. */
export function claimedElsewhere(tenantsRoot: string, tenant: string): boolean {
  const pid = holder(claimFile(tenantsRoot, tenant));
  return pid !== null && pid !== process.pid && alive(pid);
}
