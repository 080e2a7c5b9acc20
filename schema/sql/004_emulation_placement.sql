-- Per build, whether its jobs may run on agents that emulate the platform; per job, why
-- the scheduler chose its agent (for people reading the job's record).
ALTER TABLE builds ADD COLUMN emulation text NOT NULL DEFAULT 'fallback'
  CHECK (emulation IN ('never', 'fallback', 'allow'));
ALTER TABLE jobs ADD COLUMN placement text NOT NULL DEFAULT '';
