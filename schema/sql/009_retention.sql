-- Retention (--retention): finished builds are deleted with their jobs, events and logs
-- once they ended longer ago than the retention, oldest first and a batch at a time, and
-- agents gone as long (with no job left that names them) are deleted too. Builds' logs are
-- no longer deleted apart from their builds, so the index on builds whose logs were kept
-- gives way to one on every finished build; the one on jobs' agents finds an agent's jobs
-- without reading them all.
DROP INDEX builds_finished_unpruned;
CREATE INDEX builds_finished ON builds (finished_at) WHERE finished_at IS NOT NULL;
CREATE INDEX jobs_agent ON jobs (agent_id) WHERE agent_id IS NOT NULL;
