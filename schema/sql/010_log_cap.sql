-- Each job's output is capped (--job-log-max-bytes, coordinator/log_cap.h): the first half
-- is kept as it comes (the head), past it only the last half (the tail), whose oldest
-- chunks are deleted in batches. These counts let an append decide without reading the
-- chunks, and let readers put a marker saying how much was cut before the first tail
-- chunk kept.
ALTER TABLE jobs
  ADD COLUMN log_head_bytes BIGINT NOT NULL DEFAULT 0,
  ADD COLUMN log_head_seq   BIGINT,  -- log_chunks.seq of the head's last chunk; NULL while it fills
  ADD COLUMN log_tail_bytes BIGINT NOT NULL DEFAULT 0,
  ADD COLUMN log_cut_bytes  BIGINT NOT NULL DEFAULT 0,
  ADD COLUMN log_seam_seq   BIGINT,  -- log_chunks.seq of the first tail chunk kept after a cut
  -- The last chunk stored: a chunk at or before it is a replay, stored before even if it
  -- has been cut since.
  ADD COLUMN log_attempt    INTEGER NOT NULL DEFAULT 0,
  ADD COLUMN log_chunk_seq  BIGINT NOT NULL DEFAULT 0;
-- A job's tail chunks, oldest first, for the cut.
CREATE INDEX log_chunks_job ON log_chunks (job_id, seq);
