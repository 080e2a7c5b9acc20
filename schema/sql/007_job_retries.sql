-- How many times a job was put back in the queue after a fault outside its build (its
-- agent lost, restarted, drained or revoked; a registry or network error). They have a cap
-- of their own (--max-retries), apart from `attempt`, which also counts refusals and
-- fences every message about the job.
ALTER TABLE jobs ADD COLUMN retries INTEGER NOT NULL DEFAULT 0;
