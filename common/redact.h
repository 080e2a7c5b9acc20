// Redaction: what of a URL may appear in an error, a log line or a stored job error.
//
// URLs carry credentials in two places: the userinfo ("https://user:token@host/") and the
// query (a context URL's "?grant=", a blob store's presigned signature). Every message that
// names a URL names it through RedactUrl, so no credential reaches a person's screen, a
// log file or the database. Pure function; thread-safe.
#pragma once

#include <string>
#include <string_view>

namespace manifold {

// `url` without its userinfo, query and fragment: "https://u:p@host:8443/a/b?grant=x#f"
// becomes "https://host:8443/a/b". Text that is not a URL with "://" keeps everything up
// to its query ("git@host:repo.git" names no secret and stays whole).
std::string RedactUrl(std::string_view url);

}  // namespace manifold
