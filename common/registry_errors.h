// Registry errors: what an unexpected answer from a registry means, as a Status a caller
// can act on.
//
// Every RegistryClient failure names the registry, the operation, the HTTP status and what
// the registry said. Here a body becomes readable text (the Distribution error list, a
// note that an HTML page answered, or the raw body shortened), and the HTTP status picks
// the Status code that tells a caller whether a retry may help (Unavailable) or a person
// must change credentials, rights or names. Pure functions; thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "common/http_client.h"
#include "common/status.h"

namespace manifold {

// 408, 429 and 5xx: answers a later try of the same request may not get.
bool IsTransientHttpStatus(long code);

// Whether a Content-Type is an HTML (or XHTML) page, which no registry API answers with.
bool IsHtmlContentType(const std::string& content_type);

// A readable excerpt of what the registry said: the Distribution error list when the body
// is one ({"errors":[{"code","message","detail"}]}), a note when it is an HTML page (which
// no registry API sends: something else answered), else the raw body, shortened.
std::string DescribeRegistryBody(const std::string& body);

// Whether the registry's error body ({"errors":[{"code":...}]}) lists `code`.
bool HasRegistryErrorCode(const std::string& body, std::string_view code);

// Turns an unexpected HTTP answer to `operation` on registry `host` into a Status whose
// code tells callers whether a retry may help: 5xx, 408 and 429 are transient
// (Unavailable); 401 and 403 say how to log in or what right is missing.
Status RegistryHttpError(const std::string& host, const std::string& operation,
                         const HttpResponse& response);

}  // namespace manifold
