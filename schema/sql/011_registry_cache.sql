-- The per-platform registry cache (issue #19). A build's --cache-from refs, its --cache-to
-- ref and mode, as given (each platform's job uses its own repository under them), kept so
-- that a job assigned after a restart uses the same cache. registry_cache_pushes holds the
-- last successful cache push per image repository and platform: placement prefers, after a
-- warm agent, any agent for a (repository, platform) whose cache is younger than
-- --cache-ttl. One row per pair, replaced on every push, so it never grows with builds.
ALTER TABLE builds
  ADD COLUMN cache_from JSONB NOT NULL DEFAULT '[]',
  ADD COLUMN cache_to   TEXT NOT NULL DEFAULT '',
  ADD COLUMN cache_mode TEXT NOT NULL DEFAULT 'min' CHECK (cache_mode IN ('min', 'max'));

CREATE TABLE registry_cache_pushes (
  repository TEXT NOT NULL,
  platform   TEXT NOT NULL,
  cache_ref  TEXT NOT NULL,
  pushed_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
  PRIMARY KEY (repository, platform)
);
