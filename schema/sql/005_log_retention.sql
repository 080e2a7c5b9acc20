-- When the coordinator deleted a finished build's log under its --log-retention, so that
-- a reader is told the log is gone rather than shown an empty one.
ALTER TABLE builds ADD COLUMN logs_pruned_at timestamptz;
CREATE INDEX builds_finished_unpruned ON builds (finished_at)
  WHERE finished_at IS NOT NULL AND logs_pruned_at IS NULL;
