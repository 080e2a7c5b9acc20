-- Bearer tokens for the HTTP API. Only a sha256 of each token is kept; the token itself
-- is printed once by `manifold-coordinator token create`. `id` is the token's public
-- part, used to find the row; the hash is then compared in constant time.

CREATE TABLE api_tokens (
  id          TEXT PRIMARY KEY,
  name        TEXT NOT NULL,
  token_hash  TEXT NOT NULL,
  created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
  revoked_at  TIMESTAMPTZ
);
-- A name stays unique among tokens in force; a revoked name may be used again.
CREATE UNIQUE INDEX api_tokens_active_name ON api_tokens (name) WHERE revoked_at IS NULL;
