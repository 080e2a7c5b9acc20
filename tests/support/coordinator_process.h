// CoordinatorProcess: one manifold-coordinator process on 127.0.0.1, for the tests and
// benchmarks of several coordinators on one database: free ports of its own, its API, its
// metrics, and starting it again as it was (a killed leader that comes back). Used from one
// thread.
#pragma once

#include <string>
#include <vector>

#include "common/http_client.h"
#include "common/status.h"
#include "tests/support/subprocess.h"

namespace manifold::test {

class CoordinatorProcess {
 public:
  // `flags` come after the ones that place it: database, ports, state dir, public URL,
  // leader name (`name`). The log goes to `log_file`, appended on a restart.
  CoordinatorProcess(std::string name, std::string database_url, std::string state_dir,
                     std::vector<std::string> flags, std::string log_file);

  Status Start();
  Subprocess& process() { return process_; }
  const std::string& name() const { return name_; }
  std::string Url() const { return "http://127.0.0.1:" + std::to_string(api_port_); }
  const std::string& agent_endpoint() const { return agent_endpoint_; }

  // A request to its API (5 s timeout, redirects not followed); status 0 if none came.
  HttpResponse Request(const std::string& method, const std::string& path,
                       const std::string& body = "",
                       const std::string& type = "application/json") const;
  bool Ready() const { return Request("GET", "/readyz").status == 200; }
  // Whether it holds the leader lease, by its manifold_leader gauge.
  bool Leading() const { return Metric("manifold_leader") == "1"; }
  // The value of a series in its /metrics ("" if absent).
  std::string Metric(const std::string& series) const;

 private:
  const std::string name_;
  const std::string database_url_;
  const std::string state_dir_;
  const std::vector<std::string> flags_;
  const std::string log_file_;
  const int api_port_;
  const int metrics_port_;
  const std::string agent_endpoint_;
  Subprocess process_;
};

}  // namespace manifold::test
