// A target is the WT directory that plans are applied to. Adding a backend (SCIM, …) means adding a file beside this one.
import type { DirectoryState, PlannedOperation } from '../plan/types.js';

export interface OperationResult {
  seq: number;
  status: 'done' | 'failed' | 'held';
  error?: string;
}

export interface ApplySettings {
  /** ISO timestamp of the run. */
  now: string;
  removalGraceDays: number;
}

export interface Target {
  readonly kind: string;
  /**
   * The directory. Users named in `inSync` (known unchanged since their row was applied, see
   * src/apply/sync-marks.ts) may come back with their IDs only, and without memberships or links.
   */
  load(tenant: string, inSync?: ReadonlySet<string>): Promise<DirectoryState>;
  /** Optional: the sync mark each live user got when a run last applied its row in full. */
  syncMarks?(tenant: string): Promise<Map<string, string>>;
  /** Optional, with `syncMarks`: a number that changes with every write to the tenant's directory. */
  version?(tenant: string): Promise<number>;
  /** Optional, called inside `apply`'s `record`: these users' rows are now applied in full (null: clear the mark). */
  markSynced?(tenant: string, marks: [externalId: string, mark: string | null][]): void;
  /**
   * Applies the operations in order; a failed one is reported and the rest go on.
   * `record` receives the results inside the target's own transaction where it has one,
   * so that the run's bookkeeping commits together with the changes.
   */
  apply(tenant: string, ops: PlannedOperation[], settings: ApplySettings, record: (results: OperationResult[]) => void): Promise<OperationResult[]>;
}
