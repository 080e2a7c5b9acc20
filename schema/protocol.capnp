# The agent protocol: messages between manifold-agent (ZeroMQ DEALER) and
# manifold-coordinator (ZeroMQ ROUTER). One Cap'n Proto message per ZeroMQ frame.
#
# Every message about a job names the job and its attempt. The coordinator ignores a
# message whose (job, attempt, agent) is not the job's current assignment (fencing), so
# an agent that comes back late cannot overwrite a retried job.

@0xc3a1f2d4e5b60718;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("manifold::proto");

const protocolVersion :UInt32 = 1;

struct Platform {
  os @0 :Text;
  architecture @1 :Text;
  variant @2 :Text;
}

struct PlatformOffer {
  platform @0 :Platform;
  emulated @1 :Bool;  # served through QEMU binfmt, not natively
}

struct KeyValue {
  key @0 :Text;
  value @1 :Text;
}

struct JobRef {
  jobId @0 :UInt64;
  attempt @1 :UInt32;
}

struct Descriptor {
  mediaType @0 :Text;
  digest @1 :Text;
  size @2 :UInt64;
}

# ---- agent to coordinator ----

struct AgentMessage {
  union {
    hello @0 :Hello;
    heartbeat @1 :Heartbeat;
    jobUpdate @2 :JobUpdate;
    logChunk @3 :LogChunk;
    jobResult @4 :JobResult;
    draining @5 :Void;
    goodbye @6 :Void;
  }
}

struct Hello {
  protocolVersion @0 :UInt32;
  agentId @1 :Text;
  version @2 :Text;
  hostname @3 :Text;
  platforms @4 :List(PlatformOffer);
  slots @5 :UInt32;
  labels @6 :List(KeyValue);
  runningJobs @7 :List(JobRef);  # jobs still running on the agent after a reconnect
}

struct Heartbeat {
  runningJobs @0 :List(JobRef);
  assignsReceived @1 :UInt64;  # assigns read since the agent's last welcome
}

enum JobPhase {
  accepted @0;
  building @1;
  pushing @2;
}

struct JobUpdate {
  job @0 :JobRef;
  phase @1 :JobPhase;
}

struct LogChunk {
  job @0 :JobRef;
  seq @1 :UInt64;  # per attempt, from 1, so a resent chunk is stored once
  data @2 :Data;
}

struct JobResult {
  job @0 :JobRef;
  union {
    image @1 :Descriptor;  # the pushed single-platform manifest
    failure @2 :Failure;
  }
  cachePushed @3 :Text;  # the repository this job's cache was pushed to, "" if none
}

struct Failure {
  message @0 :Text;
  retryable @1 :Bool;  # true for transient causes (registry 5xx, context fetch failed)
  # The agent had no free slot (the coordinator's view of it was stale): the job goes back
  # to the queue without using one of its retries.
  refused @2 :Bool;
}

# ---- coordinator to agent ----

struct CoordinatorMessage {
  union {
    welcome @0 :Welcome;
    assign @1 :Assign;
    cancel @2 :JobRef;
    ack @3 :JobRef;  # the result for this job attempt is stored; drop it from the outbox
    reject @4 :Reject;
    drain @5 :Void;  # stop taking jobs, finish the running ones, say goodbye and exit
    logFlow @6 :LogFlow;
  }
}

# Back-pressure on build output: while the coordinator's output waiting for its database
# is past its cap, it tells the agents that send more to hold their log chunks (each keeps
# a bounded head and tail per job) until it says to resume. Heartbeats, phases and
# results are never held.
struct LogFlow {
  hold @0 :Bool;  # true: keep log chunks back; false: send them again
}

struct Welcome {
  sessionId @0 :Text;
  heartbeatIntervalMs @1 :UInt32;
  # Registry caches of the agent's platforms pushed within the cache TTL, newest first:
  # an agent that has just started loads them before a build needs them (warm start).
  warmStartCaches @2 :List(WarmStartCache);
  cacheTtlSeconds @3 :UInt32;  # a cache pushed longer ago is not loaded; 0: no limit
}

struct WarmStartCache {
  repository @0 :Text;  # the image repository the cache is of ("registry/team/app")
  platform @1 :Platform;
  cacheRef @2 :Text;    # the platform's cache ref, as builds read it
}

struct Assign {
  job @0 :JobRef;
  buildId @1 :UInt64;
  platform @2 :Platform;
  contextDigest @3 :Text;
  contextUrl @4 :Text;       # where to GET the context tar
  dockerfile @5 :Text;       # the Dockerfile's text
  dockerfilePath @6 :Text;   # its name as the user gave it, for messages
  buildArgs @7 :List(KeyValue);
  target @8 :Text;
  repositories @9 :List(Text);  # "registry/repository" names to push the image to
  labels @10 :List(KeyValue);      # image config labels
  annotations @11 :List(KeyValue); # annotations of the platform's image manifest
  noCache @12 :Bool;               # build every step afresh, using no cached layer
  pull @13 :Bool;                  # pull base images even when a local copy exists
  secrets @14 :List(Secret);       # the build's secrets, for this attempt only
  network @15 :Text;               # RUN steps' network: "" (the agent's sandbox), none, host
  entitlements @16 :List(Text);    # --allow: "network.host"; each must be allowed by the agent
  limits @17 :JobLimits;           # --job-*: zero fields take the agent's defaults
  cache @18 :RegistryCache;
}

# What one job may use on the agent; the agent fills zeros from its defaults and refuses a
# value over its maximum.
struct JobLimits {
  memoryBytes @0 :UInt64;
  cpuMillis @1 :UInt64;  # thousandths of a CPU
  pids @2 :UInt64;
  diskBytes @3 :UInt64;
}

# A build secret (--secret): bytes a RUN step reads from a secret mount. It travels only in
# Assign, over the CURVE-encrypted link, and is never stored by either side.
struct Secret {
  id @0 :Text;
  value @1 :Data;
}

# The build's registry cache for this job's platform (--cache-from/--cache-to or the
# coordinator's --cache-repo-template), already resolved to this platform's repositories.
struct RegistryCache {
  from @0 :List(Text);  # repositories to read cache from, in order
  to @1 :Text;          # repository to write cache to; "" = none
  mode @2 :Text;        # "min" or "max", as buildx
  ttlSeconds @3 :UInt32;  # cache older than this is not used (0: no limit)
}

struct Reject {
  reason @0 :Text;  # a sentence a person can act on
  fatal @1 :Bool;   # true: the agent cannot serve as configured and should exit;
                    # false: its session is unknown (e.g. the coordinator restarted), say hello
}
