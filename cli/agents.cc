#include "cli/agents.h"

#include "cli/format.h"
#include "common/strings.h"

namespace manifold {

std::string FormatAgentList(const std::vector<AgentInfo>& agents) {
  if (agents.empty()) return "no agents connected\n";
  std::vector<std::vector<std::string>> rows = {
      {"ID", "PLATFORMS", "SLOTS USED", "STATE", "LAST SEEN", "VERSION", "HOST", "COORDINATOR"}};
  for (const AgentInfo& agent : agents) {
    rows.push_back({agent.id, Join(agent.platforms, ", "),
                    std::to_string(agent.busy) + "/" + std::to_string(agent.slots), agent.state,
                    std::to_string(agent.last_seen_ms_ago / 1000) + " s ago", agent.version,
                    agent.hostname, agent.coordinator.empty() ? "-" : agent.coordinator});
  }
  return FormatTable(rows);
}

int RunAgents(const std::string& server, std::ostream* out, std::ostream* err) {
  Result<std::string> url = NormalizeServerUrl(server);
  if (!url.ok()) return PrintFailure(err, url.status());
  Result<std::vector<AgentInfo>> agents = ApiClient(*url).ListAgents();
  if (!agents.ok()) return PrintFailure(err, agents.status());
  *out << FormatAgentList(*agents);
  out->flush();
  return 0;
}

}  // namespace manifold
