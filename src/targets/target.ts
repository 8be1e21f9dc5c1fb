// A target is the WT directory that plans are applied to. Adding a backend (SCIM, …) means adding a file beside
// this one that implements `Target` (docs/engine.md).
//
// The engine (src/apply/engine.ts) plans a run into the journal, then hands the target the journal's operations in
// order, in batches; the target applies them and returns each one's outcome, and the engine records the outcomes.
// Order holds across batches (groups parents-first, segments, users, links, removals children-first, purges), so
// every prefix of a run is a valid directory state and a run cut off anywhere can continue where it stopped.
import type { JournalOperation, Outcome } from '../store/journal.js';
import type { DirectoryGroup, DirectorySegment, DirectoryState, DirectoryUserEntry } from '../plan/types.js';

export type { JournalOperation, Outcome } from '../store/journal.js';

export interface ApplySettings {
  /** ISO timestamp of the run. */
  now: string;
  removalGraceDays: number;
}

/** What the planner reads of a target's directory. */
export interface DirectoryReader {
  /** Groups and segments: thousands, held whole. */
  tree(): { groups: DirectoryGroup[]; segments: DirectorySegment[] };
  /**
   * Users with an external ID ordered by it (src/plan/order.ts), then those without, each with its memberships,
   * links and sync mark; read in chunks, so memory does not grow with the directory.
   */
  users(): Iterable<DirectoryUserEntry>;
  /** Optional: about what share of users (0–1) carry a sync mark (lets the planner read the snapshot the cheaper way). */
  markedShare?(): number;
}

export interface Target {
  readonly kind: string;
  /** Operations per `applyBatch` call (default 500). */
  readonly batchSize?: number;
  /** The whole directory (CLI, API, tests); a run never needs it whole. */
  load(tenant: string): Promise<DirectoryState>;
  /**
   * The directory as the planner streams it. Synchronous: the engine plans inside one read of the directory; a
   * remote target reads a local mirror it refreshes (e.g. in `prepare`).
   */
  reader(tenant: string): DirectoryReader;
  /** Optional: brought up to date before a run plans (a remote target refreshes its mirror here). */
  prepare?(tenant: string): Promise<void>;
  /**
   * Applies a batch of journal operations, in order. A failed operation is reported (`failed`, with an error a
   * person can act on) and the rest go on; an exception means the target could not go on at all (connection
   * lost): the operations without an outcome stay planned and the run continues there on its next start.
   *
   * `record` stores outcomes in the journal; the target calls it with every outcome, at the latest before
   * returning, as soon as it knows them (a remote target after each call, so a crash loses at most the call in
   * flight). A target with transactions calls it inside the batch's transaction, so outcomes and changes commit
   * together and nothing is ever applied twice. An operation carrying a `mark` sets the user's sync mark once
   * done; any other operation on a user clears it.
   */
  applyBatch(tenant: string, batch: JournalOperation[], settings: ApplySettings, record: (outcomes: Outcome[]) => void): Promise<Outcome[]>;
  /**
   * Optional, for a target with local transactions (the embedded directory): applies the batches `next` hands it, in
   * order, until `next` gives an empty one, taking as many batches per transaction as it likes; each batch's
   * outcomes go to `record` inside the transaction that applied it, as with `applyBatch`. The engine uses it instead
   * of `applyBatch` when it is there: committing every 5,000 operations rewrote most pages of the directory's
   * random-keyed indexes (usernames) at every commit, ~5 GB through SQLite's WAL for a first load of 1M users.
   * `remaining`: the operations still planned (how large a transaction may be).
   */
  applyBatches?(tenant: string, next: () => JournalOperation[], settings: ApplySettings, record: (outcomes: Outcome[]) => void, remaining: number): void | Promise<void>;
  /** Optional: sync marks the target keeps (src/apply/sync-marks.ts). Without them every run plans in full. */
  syncMarks?(tenant: string): Promise<Map<string, string>>;
  /** Optional, with `syncMarks`: set (or, with null, clear) users' marks; inside the engine's transaction. */
  markSynced?(tenant: string, marks: [externalId: string, mark: string | null][]): void;
  /**
   * Optional: why the target stopped taking changes (a remote target refused by its server, or failing too much),
   * or null. The engine asks before each batch and applies nothing more while it is set (docs/targets.md).
   */
  quarantine?(tenant: string): { reason: string; since: string } | null;
}
