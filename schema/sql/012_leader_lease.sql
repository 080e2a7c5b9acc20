-- Leadership among several coordinators on one database: the one holding this lease runs
-- the agent loop, scheduling and merges. The expiry is in the database's clock, so the
-- coordinators' clocks need not agree; the epoch grows with every new holder, and the
-- writes only the leader may make check it (fencing), so a leader deposed while paused
-- changes nothing once it resumes. api_url is the holder's --public-url, where the other
-- coordinators' APIs send what only the leader can answer. One row.
CREATE TABLE leader_lease (
  id         INTEGER PRIMARY KEY CHECK (id = 1),
  holder     TEXT NOT NULL,
  api_url    TEXT NOT NULL DEFAULT '',
  epoch      BIGINT NOT NULL,
  expires_at TIMESTAMPTZ NOT NULL
);
INSERT INTO leader_lease (id, holder, epoch, expires_at) VALUES (1, '', 0, '-infinity');

-- The key of the context grants (coordinator/api_auth.h), shared by every coordinator so
-- that an agent's grant holds at whichever one serves the context. Drawn by the first
-- coordinator to start. One row.
CREATE TABLE context_grant_key (
  id  INTEGER PRIMARY KEY CHECK (id = 1),
  key TEXT NOT NULL  -- hex
);
