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
  load(tenant: string): Promise<DirectoryState>;
  /**
   * Applies the operations in order; a failed one is reported and the rest go on.
   * `record` receives the results inside the target's own transaction where it has one,
   * so that the run's bookkeeping commits together with the changes.
   */
  apply(tenant: string, ops: PlannedOperation[], settings: ApplySettings, record: (results: OperationResult[]) => void): Promise<OperationResult[]>;
}
