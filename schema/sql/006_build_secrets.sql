-- The ids of a build's secrets (--secret id=NAME), never their bytes: those are held only in
-- the coordinator's memory until the build ends, so a job that must run after a restart
-- can be failed with a clear reason instead of building without them.
ALTER TABLE builds ADD COLUMN secret_ids jsonb NOT NULL DEFAULT '[]';
