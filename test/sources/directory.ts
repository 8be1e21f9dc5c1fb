// What the embedded WT directory holds for a tenant, as `wt-sync directory users` shows it.
import type { App } from '../../src/app.js';
import { directoryView } from '../../src/targets/directory-view.js';
import { readDirectory } from '../../src/targets/embedded.js';

export function listDirectoryUsers(app: App, tenant: string) {
  return directoryView(readDirectory(app.db, tenant)).users.filter((u) => !u.removedAt);
}
