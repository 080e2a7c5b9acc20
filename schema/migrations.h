// The SQL migrations in schema/sql/, embedded at build time, in the order they apply.
//
// The coordinator applies those not yet recorded in schema_migrations at start-up, each
// in its own transaction. Immutable after static initialisation.
#pragma once

#include <string>
#include <vector>

namespace manifold {

struct Migration {
  std::string name;  // file name without ".sql", e.g. "001_initial"
  std::string sql;
};

extern const std::vector<Migration> kMigrations;

}  // namespace manifold
