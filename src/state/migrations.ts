/**
 * Schema history. Each entry runs once, in order, inside a transaction, and is recorded in
 * `migrations`. Never edit an entry that has shipped; add the next one.
 */
export const MIGRATIONS: ReadonlyArray<{ version: number; name: string; sql: string }> = [
  {
    version: 1,
    name: 'watches, runs, jobs',
    sql: `
      CREATE TABLE watches (
        id              INTEGER PRIMARY KEY,
        pattern         TEXT NOT NULL,
        input_bucket    TEXT NOT NULL,
        output_bucket   TEXT NOT NULL,
        endpoint        TEXT,
        access_key_file TEXT,
        secret_key_file TEXT,
        region          TEXT NOT NULL,
        schedule        TEXT NOT NULL,
        executor        TEXT NOT NULL DEFAULT 'local',
        max_running     INTEGER NOT NULL,
        retries         INTEGER NOT NULL,
        retry_delay_ms  INTEGER NOT NULL,
        created_at      TEXT NOT NULL,
        removed_at      TEXT
      );
      CREATE UNIQUE INDEX watches_live ON watches (pattern, input_bucket, output_bucket, IFNULL(endpoint, ''))
        WHERE removed_at IS NULL;

      -- One claimed manifest. (input_bucket, manifest_key, manifest_etag, manifest_mtime) identifies
      -- the uploaded object: the same object is never claimed twice, a re-upload is a new run.
      CREATE TABLE runs (
        id              INTEGER PRIMARY KEY,
        watch_id        INTEGER NOT NULL REFERENCES watches (id),
        input_bucket    TEXT NOT NULL,
        output_bucket   TEXT NOT NULL,
        manifest_key    TEXT NOT NULL,
        manifest_etag   TEXT NOT NULL,
        manifest_mtime  TEXT NOT NULL,
        base            TEXT NOT NULL,
        ts              TEXT NOT NULL,
        processing_key  TEXT NOT NULL,
        run_dir         TEXT NOT NULL UNIQUE,
        batch_name      TEXT NOT NULL,
        state           TEXT NOT NULL CHECK (state IN ('claiming', 'running', 'post', 'done')),
        claim_step      TEXT NOT NULL CHECK (claim_step IN ('claimed', 'downloaded', 'copied', 'raw-deleted')),
        rows_total      INTEGER,
        processed       INTEGER,
        failed          INTEGER,
        error           TEXT,            -- why the whole manifest was rejected
        post_error      TEXT,            -- why the last post attempt failed (cleared when post succeeds)
        remove_requested INTEGER NOT NULL DEFAULT 0,
        created_at      TEXT NOT NULL,
        finished_at     TEXT,
        UNIQUE (input_bucket, manifest_key, manifest_etag, manifest_mtime)
      );
      CREATE INDEX runs_state ON runs (state);

      -- One manifest row. Valid rows are jobs; rejected rows are stored failed, with their reason,
      -- so every row of a manifest is accounted for in one place.
      CREATE TABLE jobs (
        id              INTEGER PRIMARY KEY,
        run_id          INTEGER NOT NULL REFERENCES runs (id),
        line            INTEGER NOT NULL,
        raw             TEXT NOT NULL,
        image_key       TEXT,
        bands           INTEGER,
        log_name        TEXT,
        state           TEXT NOT NULL CHECK (state IN ('idle', 'running', 'converted', 'failed', 'removed')),
        attempts        INTEGER NOT NULL DEFAULT 0,
        error           TEXT,
        not_before      INTEGER NOT NULL DEFAULT 0,
        remove_requested INTEGER NOT NULL DEFAULT 0,
        updated_at      TEXT NOT NULL,
        UNIQUE (run_id, line)
      );
      CREATE INDEX jobs_run_state ON jobs (run_id, state);
    `,
  },
  {
    version: 2,
    name: 'claim markers, conditional-write probe',
    sql: `
      -- The token written into the run's claim marker in the bucket: a restart recognises its own.
      ALTER TABLE runs ADD COLUMN claim_token TEXT;
      -- Whether the watch's endpoint enforces If-None-Match on PutObject (NULL: not probed yet).
      ALTER TABLE watches ADD COLUMN conditional_writes INTEGER;
    `,
  },
  {
    version: 3,
    name: 'condor executor: held jobs, submissions, event log offsets',
    sql: `
      -- A job gains the state 'held' (HTCondor held it; released, it is idle again) and the
      -- HTCondor submission of its current attempt: batch N of the run (recorded before
      -- condor_submit runs), proc P of cluster C (recorded from condor_submit's output or from the
      -- submit event in the run's event log), and the attempt's outcome as read from the event log,
      -- kept until the scheduler has acted on it. A restart re-attaches to a job that has a cluster.
      CREATE TABLE jobs_v3 (
        id              INTEGER PRIMARY KEY,
        run_id          INTEGER NOT NULL REFERENCES runs (id),
        line            INTEGER NOT NULL,
        raw             TEXT NOT NULL,
        image_key       TEXT,
        bands           INTEGER,
        log_name        TEXT,
        state           TEXT NOT NULL CHECK (state IN ('idle', 'running', 'held', 'converted', 'failed', 'removed')),
        attempts        INTEGER NOT NULL DEFAULT 0,
        error           TEXT,
        not_before      INTEGER NOT NULL DEFAULT 0,
        remove_requested INTEGER NOT NULL DEFAULT 0,
        updated_at      TEXT NOT NULL,
        condor_batch    INTEGER,
        condor_cluster  INTEGER,
        condor_proc     INTEGER,
        condor_result   TEXT,
        UNIQUE (run_id, line)
      );
      INSERT INTO jobs_v3 (id, run_id, line, raw, image_key, bands, log_name, state, attempts, error, not_before, remove_requested, updated_at)
        SELECT id, run_id, line, raw, image_key, bands, log_name, state, attempts, error, not_before, remove_requested, updated_at FROM jobs;
      DROP TABLE jobs;
      ALTER TABLE jobs_v3 RENAME TO jobs;
      CREATE INDEX jobs_run_state ON jobs (run_id, state);
      CREATE INDEX jobs_condor ON jobs (run_id, condor_cluster, condor_proc) WHERE condor_cluster IS NOT NULL;
      CREATE INDEX jobs_condor_batch ON jobs (run_id, condor_batch, condor_proc) WHERE condor_batch IS NOT NULL;

      -- Per run: bytes of its HTCondor event log already applied, and the batches submitted so far.
      ALTER TABLE runs ADD COLUMN condor_offset INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE runs ADD COLUMN condor_batches INTEGER NOT NULL DEFAULT 0;
      -- The executor of a watch ('local' or 'condor') was stored since v1; nothing to add.
    `,
  },
  {
    version: 4,
    name: 'data safety: GDAL processes, skipped objects, watch warnings',
    sql: `
      -- Every GDAL process a job runs, recorded the moment it starts and dropped when it ends: a
      -- process of cogd killed with -9 leaves its rows behind, and the next start kills those process
      -- groups (where pid and start time still name the same process) before any job runs again.
      CREATE TABLE processes (
        pid         INTEGER PRIMARY KEY,
        job_id      INTEGER NOT NULL,
        command     TEXT NOT NULL,   -- the program, e.g. gdal_translate
        start_time  TEXT NOT NULL,   -- boot id and start time in clock ticks (/proc/<pid>/stat)
        owner_pid   INTEGER NOT NULL, -- the cogd process that started it
        started_at  TEXT NOT NULL
      );

      -- Objects a watch's pattern matched that are not manifests (binary content): never claimed,
      -- reported once, and not looked at again unless they change (new ETag).
      CREATE TABLE skipped_objects (
        bucket      TEXT NOT NULL,
        key         TEXT NOT NULL,
        etag        TEXT NOT NULL,
        mtime       TEXT NOT NULL,
        reason      TEXT NOT NULL,
        skipped_at  TEXT NOT NULL,
        PRIMARY KEY (bucket, key, etag, mtime)
      );

      -- Something a user should know about a watch (a key file readable by others), shown by status.
      ALTER TABLE watches ADD COLUMN warning TEXT;
    `,
  },
  {
    version: 5,
    name: 'settings: the home settings, and when each watch setting was given',
    sql: `
      -- Home settings given by flags (concurrency, timeouts, scratch, condor defaults), as JSON
      -- values: the daemon reads them from here. A setting never given is not stored (its default
      -- applies, and may differ between versions or machines, like the number of cores).
      CREATE TABLE home_settings (
        name        TEXT PRIMARY KEY,
        value       TEXT NOT NULL,
        updated_at  TEXT NOT NULL
      );
      -- Per watch: which settings were given by a flag, and when ({"maxRunning": "2026-11-30T…"});
      -- the others hold their defaults. cogd config shows it.
      ALTER TABLE watches ADD COLUMN given TEXT NOT NULL DEFAULT '{}';
    `,
  },
  {
    version: 6,
    name: 'conversion settings per watch',
    sql: `
      -- How a watch's images are converted: the COG profile, further creation options, overview
      -- resampling, LERC's error, the preview's background and size, as JSON. Watches made before
      -- profiles convert as they always did: lzw, white background, full-size previews.
      ALTER TABLE watches ADD COLUMN conversion TEXT NOT NULL DEFAULT '{}';
      -- The settings a run converts with, fixed when it is claimed: every row of a manifest gets the
      -- same profile, whatever happens to the watch's settings (or the daemon) while it runs.
      ALTER TABLE runs ADD COLUMN conversion TEXT;
      -- What a converted job's STAC item says of its image (bbox, datetime), for the collection the
      -- post step extends without reading the items back.
      ALTER TABLE jobs ADD COLUMN item TEXT;
    `,
  },
  {
    version: 7,
    name: 'run-end hooks and notifications',
    sql: `
      -- A watch's --on-run-end command (a JSON list: the program and its arguments; NULL: none) and
      -- --notify-url (as given: it may hold credentials, never printed unredacted; NULL: none).
      ALTER TABLE watches ADD COLUMN on_run_end TEXT;
      ALTER TABLE watches ADD COLUMN notify_url TEXT;

      -- What a run's end is due to do, copied from its watch by the very statement that makes the run
      -- final (so a crash right after it still leaves it to do), and how it went. NULL state: nothing
      -- was due (none set, or the run ended before version 7). 'pending' until the outcome is
      -- recorded; a pending one is (re)done by the next process of the home: at least once.
      ALTER TABLE runs ADD COLUMN hook_command TEXT;        -- JSON list, as run
      ALTER TABLE runs ADD COLUMN hook_state TEXT CHECK (hook_state IN ('pending', 'ok', 'failed', 'timeout'));
      ALTER TABLE runs ADD COLUMN hook_starts INTEGER NOT NULL DEFAULT 0; -- more than 1: started again after a restart
      ALTER TABLE runs ADD COLUMN hook_started_at TEXT;
      ALTER TABLE runs ADD COLUMN hook_exit_code INTEGER;   -- NULL: killed by a signal, or could not start
      ALTER TABLE runs ADD COLUMN hook_signal TEXT;         -- SIGTERM, SIGKILL…
      ALTER TABLE runs ADD COLUMN hook_result TEXT;         -- "exit code 3", "timed out after 600 s; …", "could not start: …"
      ALTER TABLE runs ADD COLUMN hook_ended_at TEXT;
      ALTER TABLE runs ADD COLUMN notify_url TEXT;          -- as given, like the watch's
      ALTER TABLE runs ADD COLUMN notify_state TEXT CHECK (notify_state IN ('pending', 'sent', 'failed'));
      ALTER TABLE runs ADD COLUMN notify_result TEXT;       -- "HTTP 204 after 1 attempt", "gave up after 5 attempts: …" (never the URL)
      ALTER TABLE runs ADD COLUMN notify_ended_at TEXT;
      CREATE INDEX runs_run_end_pending ON runs (id) WHERE hook_state = 'pending' OR notify_state = 'pending';
      -- processes.job_id < 0 names the hook of run -job_id: a restart kills the process group of a
      -- hook a dead cogd left running, before it runs the hook again.
    `,
  },
  {
    version: 8,
    name: 'holds, and retries of runs',
    sql: `
      -- A hold the user put on a watch (no polls), a run (no new jobs) or a job (not started), as
      -- JSON {reason, since, by, now}; NULL when not held. Holds survive restarts. (An HTCondor
      -- hold of a queued job is its state 'held', as before; a user hold there also asks condor_hold.)
      ALTER TABLE watches ADD COLUMN hold TEXT;
      ALTER TABLE runs ADD COLUMN hold TEXT;
      ALTER TABLE jobs ADD COLUMN hold TEXT;
      -- The run a run re-runs the failed rows of (cogd retry), NULL for runs claimed from the bucket.
      ALTER TABLE runs ADD COLUMN retry_of INTEGER REFERENCES runs (id);
    `,
  },
  {
    version: 9,
    name: 'slurm executor: array submissions, outcomes, requeues',
    sql: `
      -- The Slurm submission of a job's current attempt: task T of the run's batch N (recorded
      -- before sbatch runs; the batch is one job array), the array's job id A once known (from
      -- sbatch's answer, or found by the batch's job name after a crash), and the attempt's outcome
      -- as read from Slurm and the task's exit record, kept until the scheduler has acted on it.
      -- A restart re-attaches to a job that has an array id. Requeues (a node failure, a preemption:
      -- not the job's fault) and the memory asked for (doubled once after OUT_OF_MEMORY) belong to the
      -- attempt; note is what Slurm last said of a waiting task (Priority, Resources, JobHeldUser).
      ALTER TABLE jobs ADD COLUMN slurm_batch INTEGER;
      ALTER TABLE jobs ADD COLUMN slurm_task INTEGER;
      ALTER TABLE jobs ADD COLUMN slurm_array INTEGER;
      ALTER TABLE jobs ADD COLUMN slurm_result TEXT;
      ALTER TABLE jobs ADD COLUMN slurm_requeues INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE jobs ADD COLUMN slurm_mem TEXT;
      ALTER TABLE jobs ADD COLUMN slurm_note TEXT;
      CREATE INDEX jobs_slurm ON jobs (slurm_array, slurm_task) WHERE slurm_array IS NOT NULL;
      CREATE INDEX jobs_slurm_batch ON jobs (run_id, slurm_batch, slurm_task) WHERE slurm_batch IS NOT NULL;
      -- Per run: the batches submitted so far (batch numbers are never reused within a run).
      ALTER TABLE runs ADD COLUMN slurm_batches INTEGER NOT NULL DEFAULT 0;
    `,
  },
  {
    version: 10,
    name: 'status page: job timings, jobs paged by state',
    sql: `
      -- When a job's last attempt started running, and when the job reached its final state (ISO
      -- 8601): the status page shows each job's duration. Kept by a trigger, so every writer of a
      -- job's state (the scheduler, the HTCondor follower, removals) is covered without each one
      -- naming the columns. Recursive triggers are off (SQLite's default): its own UPDATE does not
      -- fire it again.
      ALTER TABLE jobs ADD COLUMN started_at TEXT;
      ALTER TABLE jobs ADD COLUMN finished_at TEXT;
      CREATE TRIGGER jobs_timing AFTER UPDATE OF state ON jobs WHEN NEW.state IS NOT OLD.state
      BEGIN
        UPDATE jobs SET
          started_at = CASE WHEN NEW.state = 'running' THEN NEW.updated_at ELSE started_at END,
          finished_at = CASE WHEN NEW.state IN ('converted', 'failed', 'removed') THEN NEW.updated_at ELSE NULL END
        WHERE id = NEW.id;
      END;
      -- A run's jobs in one state, in manifest order: a page of 100 failed jobs of a 100,000-row run
      -- is read from the index, never sorted. (run_id, state) alone is its prefix, so it goes.
      CREATE INDEX jobs_run_state_line ON jobs (run_id, state, line);
      DROP INDEX jobs_run_state;
      -- When a watch's input bucket was last listed, and why that failed if it did (status shows it).
      ALTER TABLE watches ADD COLUMN last_polled_at TEXT;
      ALTER TABLE watches ADD COLUMN last_poll_error TEXT;
    `,
  },
  {
    version: 11,
    name: 'holds cogd asked an executor for',
    sql: `
      -- 1 while cogd has asked HTCondor (condor_hold) or Slurm (scontrol hold) to hold the job for a
      -- user's hold: on release it asks them to release exactly these, never holds they made themselves.
      ALTER TABLE jobs ADD COLUMN executor_hold INTEGER NOT NULL DEFAULT 0;
    `,
  },
  {
    version: 12,
    name: 'waiting jobs the user holds, indexed',
    sql: `
      -- cogd status counts a run's jobs per state off (run_id, state, line) alone; the few a user
      -- holds are counted apart from this index instead of reading every row's hold.
      CREATE INDEX jobs_user_held ON jobs (run_id, state, line) WHERE hold IS NOT NULL;
    `,
  },
];
