// Where a tenant's files live under <dataDir>/tenants/<id>/: the one place that knows the layout
// (the SFTP server, the inbox watcher and report publishing all go through it).
import path from 'node:path';

export interface TenantDirs {
  root: string;
  /** The jail root a customer sees over SFTP as `/`. */
  home: string;
  /** `/reports/` in the customer's view: run reports, readable and deletable, not writable. */
  reports: string;
  /** Uploads in progress, outside the customer's view. */
  partial: string;
  /** Completed files waiting to be received. */
  inbox: string;
  /** Processed files, one folder per day. */
  archive: string;
  /** One folder per fetch of a pulling source (api, sftp-pull): its record and the raw responses, secrets removed. */
  fetches: string;
  /** A pulling source's own state (what sftp-pull fetched before). */
  sourceState: string;
}

export const REPORTS_DIR = 'reports';

export function tenantDirs(tenantsRoot: string, tenant: string): TenantDirs {
  const root = path.join(tenantsRoot, tenant);
  const home = path.join(root, 'home');
  return {
    root, home, reports: path.join(home, REPORTS_DIR), partial: path.join(root, 'partial'),
    inbox: path.join(root, 'inbox'), archive: path.join(root, 'archive'),
    fetches: path.join(root, 'fetches'), sourceState: path.join(root, 'source-state'),
  };
}
