-- Build options beyond args and target (issue #5) and index annotations (issue #4).
-- The existing builds.annotations column holds the custom annotations of the index.
ALTER TABLE builds
  ADD COLUMN labels               JSONB NOT NULL DEFAULT '{}',  -- image config labels
  ADD COLUMN no_cache             BOOLEAN NOT NULL DEFAULT false,
  ADD COLUMN pull                 BOOLEAN NOT NULL DEFAULT false,  -- always pull base images
  ADD COLUMN manifest_annotations JSONB NOT NULL DEFAULT '{}',  -- on each platform's manifest
  ADD COLUMN source               TEXT NOT NULL DEFAULT '',     -- org.opencontainers.image.source
  ADD COLUMN revision             TEXT NOT NULL DEFAULT '',     -- org.opencontainers.image.revision
  ADD COLUMN merge_started_at     TIMESTAMPTZ;                  -- the index's created time
COMMENT ON COLUMN builds.annotations IS 'custom annotations of the pushed image index';
