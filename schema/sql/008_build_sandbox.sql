-- How a build's RUN steps are sandboxed (issue #17): their network ('' is the agent's
-- sandbox network, buildx's "default"), the entitlements the build asked for, and its job
-- limits (0: the agent's default). Checked at submit; kept so that a job assigned after a
-- restart runs as it was asked to.
ALTER TABLE builds
  ADD COLUMN network          TEXT NOT NULL DEFAULT '' CHECK (network IN ('', 'none', 'host')),
  ADD COLUMN entitlements     JSONB NOT NULL DEFAULT '[]',
  ADD COLUMN job_memory_bytes BIGINT NOT NULL DEFAULT 0 CHECK (job_memory_bytes >= 0),
  ADD COLUMN job_cpu_millis   BIGINT NOT NULL DEFAULT 0 CHECK (job_cpu_millis >= 0),
  ADD COLUMN job_pids         BIGINT NOT NULL DEFAULT 0 CHECK (job_pids >= 0),
  ADD COLUMN job_disk_bytes   BIGINT NOT NULL DEFAULT 0 CHECK (job_disk_bytes >= 0);
