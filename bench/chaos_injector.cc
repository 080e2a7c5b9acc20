#include "bench/chaos_injector.h"

#include <signal.h>

#include <algorithm>
#include <thread>

#include "tests/support/wait.h"

namespace manifold::bench {

using std::chrono::milliseconds;
using std::chrono::seconds;

double EpochSeconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

void FaultInjector::Restart(const std::string& name, bool kill, milliseconds hold,
                            InjectedFault* record) {
  record->began = EpochSeconds();
  Status down = kill ? farm_->Kill(name) : farm_->Stop(name);
  // `stop` answers 4 when the grace ran out and the script had to SIGKILL: the process is
  // gone either way, which is what the fault needs; the record says it.
  if (!down.ok()) {
    const std::string& message = down.message();
    record->note += (record->note.empty() ? "" : "; ") + message.substr(0, message.find('\n'));
  }
  std::this_thread::sleep_for(hold);
  Status up = farm_->Start(name);
  if (!up.ok()) record->error = up.message();
  record->ended = EpochSeconds();
}

std::string FaultInjector::AgentToHit(const Fault& fault, std::string* note) const {
  std::vector<std::string> busy;
  test::WaitFor(
      [&] {
        busy = probes_.busy_agents();
        return !busy.empty();
      },
      seconds(10), milliseconds(100));
  if (busy.empty()) {
    *note = "no agent ran a job within 10 s; hit the scheduled one";
    return fault.target;
  }
  if (std::find(busy.begin(), busy.end(), fault.target) != busy.end()) return fault.target;
  *note = "scheduled " + fault.target + " was idle";
  // Which busy agent follows from the schedule too (its time), not from this run's timing.
  return busy[static_cast<size_t>(fault.at.count()) % busy.size()];
}

InjectedFault FaultInjector::Inject(int number, const Fault& scheduled) {
  InjectedFault record;
  record.number = number;
  record.fault = scheduled;
  const Fault& fault = record.fault;
  if (fault.kind == FaultKind::kAgentKill || fault.kind == FaultKind::kAgentPause ||
      fault.kind == FaultKind::kAgentDrain) {
    record.fault.target = AgentToHit(scheduled, &record.note);
  }
  switch (fault.kind) {
    case FaultKind::kAgentKill:
    case FaultKind::kCoordinatorKill:
      Restart(fault.target, /*kill=*/true, fault.hold, &record);
      break;
    case FaultKind::kAgentDrain:
    case FaultKind::kPostgresRestart:
      Restart(fault.target, /*kill=*/false, fault.hold, &record);
      break;
    case FaultKind::kRegistryRestart:
      // "Mid-push": wait (bounded) for a job that pushes, so the outage cuts an upload.
      if (!test::WaitFor(probes_.job_pushing, seconds(30), milliseconds(100))) {
        record.note = "no job was pushing within 30 s; restarted anyway";
      }
      Restart(fault.target, /*kill=*/false, fault.hold, &record);
      break;
    case FaultKind::kAgentPause: {
      record.began = EpochSeconds();
      pid_t pid = farm_->Pid(fault.target);
      if (pid <= 0 || kill(pid, SIGSTOP) != 0) {
        record.error = fault.target + " is not running; nothing to pause";
        record.ended = record.began;
        break;
      }
      std::this_thread::sleep_for(fault.hold);
      if (kill(pid, SIGCONT) != 0) record.error = "SIGCONT to " + fault.target + " failed";
      record.ended = EpochSeconds();
      break;
    }
  }
  return record;
}

}  // namespace manifold::bench
