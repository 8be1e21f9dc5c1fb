// Append-only: each entry is one schema version. Never edit a released entry; add a new one.
export const MIGRATIONS: string[] = [
  `
  CREATE TABLE files (
    id INTEGER PRIMARY KEY,
    tenant TEXT NOT NULL,
    name TEXT NOT NULL,
    type TEXT,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    received_at TEXT NOT NULL,
    processed_at TEXT,
    -- interrupted: the process stopped while parsing it; the file stayed in the inbox and is received again.
    status TEXT NOT NULL CHECK (status IN ('received', 'accepted', 'rejected', 'duplicate', 'interrupted')),
    problems TEXT NOT NULL DEFAULT '[]',
    data_rows INTEGER,
    valid_rows INTEGER,
    run_id INTEGER
  );
  CREATE INDEX files_by_tenant ON files (tenant, type, id);

  -- An accepted snapshot's rows live in their own SQLite file under <data>/snapshots/ (rows_file): the staging
  -- file of the parse, moved there whole, so accepting a large file copies nothing.
  CREATE TABLE snapshots (
    id INTEGER PRIMARY KEY,
    tenant TEXT NOT NULL,
    type TEXT NOT NULL CHECK (type IN ('users', 'groups', 'segments')),
    file_id INTEGER NOT NULL REFERENCES files (id),
    fields TEXT NOT NULL,
    rows_file TEXT NOT NULL,
    created_at TEXT NOT NULL
  );
  CREATE INDEX snapshots_latest ON snapshots (tenant, type, id);

  CREATE TABLE snapshot_problems (
    snapshot_id INTEGER NOT NULL REFERENCES snapshots (id) ON DELETE CASCADE,
    entity_id TEXT,
    problem TEXT NOT NULL
  );
  CREATE INDEX snapshot_problems_by_snapshot ON snapshot_problems (snapshot_id);

  CREATE TABLE dir_users (
    id INTEGER PRIMARY KEY,
    tenant TEXT NOT NULL,
    external_id TEXT,
    first_name TEXT NOT NULL,
    last_name TEXT NOT NULL,
    username TEXT NOT NULL,
    email TEXT, phone TEXT, title TEXT, birthday TEXT, employed_since TEXT, employed_until TEXT,
    gender TEXT, status TEXT, language TEXT,
    removed_at TEXT,
    purge_after TEXT,
    -- The sync mark of the row a run last applied in full (src/apply/sync-marks.ts); cleared by any other write.
    synced TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
  );
  CREATE UNIQUE INDEX dir_users_external ON dir_users (tenant, external_id) WHERE external_id IS NOT NULL;
  CREATE INDEX dir_users_username ON dir_users (tenant, username);

  -- Bumped by every write to a tenant's directory (a run's apply, a hand-made change): a planner that read it
  -- before and after its reads knows nobody wrote in between.
  CREATE TABLE dir_versions (
    tenant TEXT PRIMARY KEY,
    version INTEGER NOT NULL
  ) WITHOUT ROWID;

  CREATE TABLE dir_groups (
    id INTEGER PRIMARY KEY,
    tenant TEXT NOT NULL,
    external_id TEXT,
    name TEXT NOT NULL,
    parent_id TEXT
  );
  CREATE UNIQUE INDEX dir_groups_external ON dir_groups (tenant, external_id) WHERE external_id IS NOT NULL;

  CREATE TABLE dir_segments (
    id INTEGER PRIMARY KEY,
    tenant TEXT NOT NULL,
    external_id TEXT,
    name TEXT NOT NULL
  );
  CREATE UNIQUE INDEX dir_segments_external ON dir_segments (tenant, external_id) WHERE external_id IS NOT NULL;

  CREATE TABLE dir_memberships (
    user_id INTEGER NOT NULL REFERENCES dir_users (id) ON DELETE CASCADE,
    group_id INTEGER NOT NULL REFERENCES dir_groups (id) ON DELETE CASCADE,
    role TEXT NOT NULL CHECK (role IN ('member', 'admin')),
    origin TEXT NOT NULL CHECK (origin IN ('integration', 'manual')),
    PRIMARY KEY (user_id, group_id)
  ) WITHOUT ROWID;
  CREATE INDEX dir_memberships_by_group ON dir_memberships (group_id);

  CREATE TABLE dir_segment_links (
    user_id INTEGER NOT NULL REFERENCES dir_users (id) ON DELETE CASCADE,
    segment_id INTEGER NOT NULL REFERENCES dir_segments (id) ON DELETE CASCADE,
    origin TEXT NOT NULL CHECK (origin IN ('integration', 'manual')),
    PRIMARY KEY (user_id, segment_id)
  ) WITHOUT ROWID;
  CREATE INDEX dir_segment_links_by_segment ON dir_segment_links (segment_id);

  CREATE TABLE runs (
    id INTEGER PRIMARY KEY,
    tenant TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'applied', 'held', 'approved', 'superseded', 'rejected', 'failed')),
    trigger TEXT NOT NULL,
    created_at TEXT NOT NULL,
    finished_at TEXT,
    -- The report without its operations; those are in run_operations (a first load can have millions).
    report TEXT,
    -- When the report reached the customer's /reports/ folder; a crash before that is caught up on restart.
    published_at TEXT
  );
  CREATE INDEX runs_by_tenant ON runs (tenant, id);

  -- The plan's operations with their outcome, as JSON arrays of up to a few thousand operations each: the plan
  -- is stored once, as part of its run's report, and no single string has to hold millions of operations.
  CREATE TABLE run_operations (
    run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    first_seq INTEGER NOT NULL,
    operations TEXT NOT NULL,
    PRIMARY KEY (run_id, first_seq)
  ) WITHOUT ROWID;
  `,
  `
  -- The journal: a run's plan as stored data, one row per operation in apply order, each with its outcome
  -- (docs/engine.md). planned -> done | failed (error) ; held (safeguard, awaits approval) ; moot (an approval
  -- found it no longer applies). A restart continues at the first operation still planned.
  CREATE TABLE journal (
    run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    op TEXT NOT NULL,
    entity TEXT NOT NULL,
    -- The external ID of the entity (for links: the user's), to find a user's operations.
    entity_id TEXT,
    -- The whole operation as JSON: before -> after, IDs, names.
    data TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('planned', 'done', 'failed', 'held', 'moot')),
    error TEXT,
    -- The sync mark the user gets once this, its last operation of the run, is done (src/apply/sync-marks.ts).
    mark TEXT,
    PRIMARY KEY (run_id, seq)
  ) WITHOUT ROWID;
  -- What the planner decided as a whole (problems, unchanged counts, safeguard): with the journal, all a restart
  -- needs to finish the run and write its report.
  ALTER TABLE runs ADD COLUMN plan TEXT;
  -- Users made by hand (no external ID), read after the others by the streaming planner.
  CREATE INDEX dir_users_manual ON dir_users (tenant, id) WHERE external_id IS NULL;
  `,
  `
  -- Outcomes as a watermark (docs/engine.md): every operation of a run up to runs.applied_seq has its outcome, so
  -- one stored there as 'planned' is done; a failed one is stored 'failed'. Recording a batch is then one small
  -- UPDATE instead of rewriting every operation's row. The stored rows are journal_ops; the view journal shows
  -- each operation's status as it is (planned, done, failed, held, moot), for people and tools reading the database.
  ALTER TABLE runs ADD COLUMN applied_seq INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE journal RENAME TO journal_ops;
  CREATE VIEW journal AS
    SELECT j.run_id, j.seq, j.op, j.entity, j.entity_id, j.data,
      CASE WHEN j.status = 'planned' AND j.seq <= r.applied_seq THEN 'done' ELSE j.status END AS status,
      j.error, j.mark
    FROM journal_ops j JOIN runs r ON r.id = j.run_id;
  `,
  `
  -- When a finished run's journal was dropped after journalDays (its summary and counts stay; docs/engine.md).
  ALTER TABLE runs ADD COLUMN journal_pruned_at TEXT;
  `,
];
