#include "cli/logs.h"

#include "cli/api_client.h"
#include "cli/follow.h"
#include "cli/format.h"
#include "cli/log_printer.h"

namespace manifold {

int RunLogs(const std::string& server, int64_t id, bool follow, std::chrono::milliseconds interval,
            std::ostream* out, std::ostream* err) {
  Result<std::string> url = NormalizeServerUrl(server);
  if (!url.ok()) return PrintFailure(err, url.status());
  ApiClient api(*url);
  LogPrinter printer(out);
  if (!follow) {
    Status status = PrintAvailableLogs(api, id, &printer);
    return status.ok() ? 0 : PrintFailure(err, status);
  }
  FollowOptions options;
  options.print_job_changes = false;  // logs only, as the command's name promises
  options.interval = interval;
  Result<BuildInfo> build = FollowBuild(api, id, options, &printer, err);
  return build.ok() ? 0 : PrintFailure(err, build.status());
}

}  // namespace manifold
