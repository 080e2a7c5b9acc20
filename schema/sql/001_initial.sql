-- The store is the truth: builds, their per-platform jobs, agents, attempts and logs.

CREATE TABLE builds (
  id               BIGSERIAL PRIMARY KEY,
  idempotency_key  TEXT UNIQUE,
  platforms        JSONB NOT NULL,  -- ["linux/amd64", "linux/arm64"]
  tags             JSONB NOT NULL,  -- ["registry/repo:tag", ...]
  context_digest   TEXT NOT NULL,
  dockerfile       TEXT NOT NULL,
  dockerfile_path  TEXT NOT NULL DEFAULT 'Dockerfile',
  build_args       JSONB NOT NULL DEFAULT '{}',
  target           TEXT NOT NULL DEFAULT '',
  annotations      JSONB NOT NULL DEFAULT '{}',
  job_timeout_s    INTEGER NOT NULL DEFAULT 3600 CHECK (job_timeout_s > 0),
  state            TEXT NOT NULL DEFAULT 'queued'
                   CHECK (state IN ('queued','running','merging','succeeded','failed','canceled')),
  index_digest     TEXT NOT NULL DEFAULT '',
  index_media_type TEXT NOT NULL DEFAULT '',
  error            TEXT NOT NULL DEFAULT '',
  created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
  updated_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
  finished_at      TIMESTAMPTZ
);
CREATE INDEX builds_unfinished ON builds (id) WHERE state IN ('queued','running','merging');

CREATE TABLE agents (
  id          TEXT PRIMARY KEY,
  hostname    TEXT NOT NULL,
  platforms   JSONB NOT NULL,  -- [{"platform": "linux/arm64", "emulated": true}]
  slots       INTEGER NOT NULL,
  labels      JSONB NOT NULL DEFAULT '{}',
  version     TEXT NOT NULL DEFAULT '',
  state       TEXT NOT NULL CHECK (state IN ('online','draining','lost')),
  first_seen  TIMESTAMPTZ NOT NULL DEFAULT now(),
  last_seen   TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE jobs (
  id                  BIGSERIAL PRIMARY KEY,
  build_id            BIGINT NOT NULL REFERENCES builds(id),
  platform            TEXT NOT NULL,
  state               TEXT NOT NULL DEFAULT 'pending'
                      CHECK (state IN ('pending','assigned','building','pushing','succeeded',
                                       'failed','timed_out','canceled')),
  attempt             INTEGER NOT NULL DEFAULT 0,
  agent_id            TEXT REFERENCES agents(id),
  emulated            BOOLEAN NOT NULL DEFAULT false,
  deadline            TIMESTAMPTZ,  -- the current attempt ends as timed_out after this
  manifest_digest     TEXT NOT NULL DEFAULT '',
  manifest_media_type TEXT NOT NULL DEFAULT '',
  manifest_size       BIGINT NOT NULL DEFAULT 0,
  error               TEXT NOT NULL DEFAULT '',
  created_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
  updated_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
  UNIQUE (build_id, platform)
);
CREATE INDEX jobs_unfinished ON jobs (state)
  WHERE state NOT IN ('succeeded','failed','timed_out','canceled');

-- One row per job state change: the audit trail, and metrics that survive a restart.
CREATE TABLE job_events (
  id         BIGSERIAL PRIMARY KEY,
  job_id     BIGINT NOT NULL REFERENCES jobs(id),
  attempt    INTEGER NOT NULL,
  state      TEXT NOT NULL,
  agent_id   TEXT,
  detail     TEXT NOT NULL DEFAULT '',
  at         TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX job_events_job ON job_events (job_id);

-- Build output, appended per job attempt; (job, attempt, chunk_seq) makes a resent chunk
-- a no-op. seq orders the chunks of a whole build for followers.
CREATE TABLE log_chunks (
  seq        BIGSERIAL PRIMARY KEY,
  build_id   BIGINT NOT NULL REFERENCES builds(id),
  job_id     BIGINT NOT NULL REFERENCES jobs(id),
  attempt    INTEGER NOT NULL,
  chunk_seq  BIGINT NOT NULL,
  data       BYTEA NOT NULL,
  at         TIMESTAMPTZ NOT NULL DEFAULT now(),
  UNIQUE (job_id, attempt, chunk_seq)
);
CREATE INDEX log_chunks_build ON log_chunks (build_id, seq);
