# Writes OUTPUT, a C++ file defining manifold::kMigrations from the INPUTS .sql files
# (separated by "|").
set(body "// Generated from schema/sql/*.sql; do not edit.\n#include \"schema/migrations.h\"\n\nnamespace manifold {\nconst std::vector<Migration> kMigrations = {\n")
string(REPLACE "|" ";" INPUTS "${INPUTS}")
foreach(input ${INPUTS})
  get_filename_component(name ${input} NAME_WE)
  file(READ ${input} sql)
  string(APPEND body "  {\"${name}\", R\"manifold_sql(${sql})manifold_sql\"},\n")
endforeach()
string(APPEND body "};\n}  // namespace manifold\n")
file(WRITE ${OUTPUT} "${body}")
