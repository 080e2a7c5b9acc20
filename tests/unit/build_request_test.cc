#include "coordinator/build_request.h"

#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/digest.h"
#include "common/docker_config.h"
#include "common/validate.h"

namespace manifold {
namespace {

using nlohmann::json;

const std::string kContext = Sha256Digest("context");

// The smallest request the API accepts.
json Minimal() {
  return {{"platforms", {"linux/amd64"}},
          {"tags", {"127.0.0.1:5000/team/app:1"}},
          {"context", kContext},
          {"dockerfile", "FROM busybox\n"}};
}

// Minimal() with `field` set to `value`.
json With(const std::string& field, const json& value) {
  json request = Minimal();
  request[field] = value;
  return request;
}

// The message of a refusal; fails the test when the request was accepted or the refusal is
// not an InvalidArgument.
std::string Refusal(const std::string& body) {
  std::map<std::string, std::string> secrets;
  Result<BuildSpec> spec = ParseBuildRequest(body, &secrets);
  EXPECT_FALSE(spec.ok()) << body.substr(0, 200);
  if (spec.ok()) return "";
  EXPECT_EQ(spec.status().code(), Status::Code::kInvalidArgument);
  EXPECT_FALSE(spec.status().message().empty());
  return spec.status().message();
}
std::string Refusal(const json& request) { return Refusal(request.dump()); }

bool StartsWith(const std::string& text, const std::string& prefix) {
  return text.rfind(prefix, 0) == 0;
}

TEST(BuildRequestTest, AFullRequestMapsEveryField) {
  json request = {
      {"platforms", {"linux/amd64", "linux/x86_64", "linux/arm64/v8", "linux/armhf"}},
      {"tags", {"127.0.0.1:5000/team/app:1.2", "127.0.0.1:5000/team/app:latest"}},
      {"context", kContext},
      {"dockerfile", "FROM busybox\nRUN uname -m\n"},
      {"dockerfile_path", "docker/Dockerfile.release"},
      {"target", "final"},
      {"build_args", {{"VERSION", "1.2"}, {"http_proxy", ""}}},
      {"labels", {{"maintainer", "team"}}},
      {"manifest_annotations", {{"org.opencontainers.image.title", "app"}}},
      {"index_annotations", {{"org.opencontainers.image.description", "the app, for all"}}},
      {"no_cache", true},
      {"pull", true},
      {"source", "https://example.com/team/app"},
      {"revision", "0123abcd"},
      {"job_timeout_seconds", 600},
      {"emulation", "never"},
      {"secrets", {{"npm_token", Base64Encode("s3cret")}, {"ssh.key", Base64Encode("")}}},
  };
  std::map<std::string, std::string> secrets;
  Result<BuildSpec> spec = ParseBuildRequest(request.dump(), &secrets);
  ASSERT_TRUE(spec.ok()) << spec.status().message();
  std::vector<std::string> platforms;
  for (const Platform& platform : spec->platforms) platforms.push_back(platform.ToString());
  // Normalised, duplicates (two spellings of amd64) once, in the order given.
  EXPECT_EQ(platforms, (std::vector<std::string>{"linux/amd64", "linux/arm64", "linux/arm/v7"}));
  EXPECT_EQ(spec->tags, (std::vector<std::string>{"127.0.0.1:5000/team/app:1.2",
                                                  "127.0.0.1:5000/team/app:latest"}));
  EXPECT_EQ(spec->context_digest, kContext);
  EXPECT_EQ(spec->dockerfile, "FROM busybox\nRUN uname -m\n");
  EXPECT_EQ(spec->dockerfile_path, "docker/Dockerfile.release");
  EXPECT_EQ(spec->target, "final");
  EXPECT_EQ(spec->build_args,
            (std::map<std::string, std::string>{{"VERSION", "1.2"}, {"http_proxy", ""}}));
  EXPECT_EQ(spec->labels, (std::map<std::string, std::string>{{"maintainer", "team"}}));
  EXPECT_EQ(spec->manifest_annotations,
            (std::map<std::string, std::string>{{"org.opencontainers.image.title", "app"}}));
  EXPECT_EQ(spec->index_annotations,
            (std::map<std::string, std::string>{
                {"org.opencontainers.image.description", "the app, for all"}}));
  EXPECT_TRUE(spec->no_cache);
  EXPECT_TRUE(spec->pull);
  EXPECT_EQ(spec->source, "https://example.com/team/app");
  EXPECT_EQ(spec->revision, "0123abcd");
  EXPECT_EQ(spec->job_timeout_s, 600u);
  EXPECT_EQ(spec->emulation, EmulationPolicy::kNever);
  EXPECT_EQ(spec->secret_ids, (std::vector<std::string>{"npm_token", "ssh.key"}));
  EXPECT_EQ(secrets,
            (std::map<std::string, std::string>{{"npm_token", "s3cret"}, {"ssh.key", ""}}));
}

TEST(BuildRequestTest, SecretBytesNeverLandInTheSpec) {
  std::map<std::string, std::string> secrets;
  Result<BuildSpec> spec = ParseBuildRequest(
      With("secrets", {{"token", Base64Encode("hunter2-bytes")}}).dump(), &secrets);
  ASSERT_TRUE(spec.ok()) << spec.status().message();
  EXPECT_EQ(secrets.at("token"), "hunter2-bytes");
  EXPECT_EQ(spec->secret_ids, std::vector<std::string>{"token"});
  // No string of the spec holds the bytes (or their base64).
  std::vector<std::string> texts = {spec->context_digest, spec->dockerfile, spec->dockerfile_path,
                                    spec->target,         spec->source,     spec->revision};
  for (const auto* map :
       {&spec->build_args, &spec->labels, &spec->manifest_annotations, &spec->index_annotations}) {
    for (const auto& [key, value] : *map) texts.insert(texts.end(), {key, value});
  }
  for (const std::string& text : texts) {
    EXPECT_EQ(text.find("hunter2"), std::string::npos) << text;
    EXPECT_EQ(text.find(Base64Encode("hunter2-bytes")), std::string::npos) << text;
  }
}

TEST(BuildRequestTest, AMinimalRequestGetsTheDefaults) {
  std::map<std::string, std::string> secrets;
  Result<BuildSpec> spec = ParseBuildRequest(Minimal().dump(), &secrets);
  ASSERT_TRUE(spec.ok()) << spec.status().message();
  EXPECT_EQ(spec->dockerfile_path, "Dockerfile");
  EXPECT_EQ(spec->target, "");
  EXPECT_TRUE(spec->build_args.empty());
  EXPECT_FALSE(spec->no_cache);
  EXPECT_FALSE(spec->pull);
  EXPECT_EQ(spec->job_timeout_s, 3600u);
  EXPECT_EQ(spec->emulation, EmulationPolicy::kFallback);
  EXPECT_TRUE(spec->secret_ids.empty());
  EXPECT_TRUE(secrets.empty());

  // null is the same as leaving an optional field out.
  json request = Minimal();
  for (const char* field :
       {"dockerfile_path", "target", "build_args", "labels", "manifest_annotations",
        "index_annotations", "no_cache", "pull", "source", "revision", "job_timeout_seconds",
        "secrets", "emulation", "network", "entitlements", "limits"}) {
    request[field] = nullptr;
  }
  spec = ParseBuildRequest(request.dump(), &secrets);
  ASSERT_TRUE(spec.ok()) << spec.status().message();
  EXPECT_EQ(spec->dockerfile_path, "Dockerfile");
  EXPECT_EQ(spec->job_timeout_s, 3600u);
  EXPECT_EQ(spec->emulation, EmulationPolicy::kFallback);
}

TEST(BuildRequestTest, TheContextNeedNotExistYet) {
  // Whether the context was uploaded is the API's question, asked after parsing.
  std::map<std::string, std::string> secrets;
  EXPECT_TRUE(
      ParseBuildRequest(With("context", Sha256Digest("never uploaded")).dump(), &secrets).ok());
}

TEST(BuildRequestTest, TheBodyMustBeAJsonObject) {
  for (const char* body : {"", "not json", "[]", "\"text\"", "42", "null", "{\"platforms\":"}) {
    EXPECT_EQ(Refusal(std::string(body)), "the request body is not a JSON object") << body;
  }
}

TEST(BuildRequestTest, RequiredFields) {
  for (const char* list : {"platforms", "tags"}) {
    const std::string expected =
        std::string("field \"") + list + "\" must be a non-empty list of strings";
    json missing = Minimal();
    missing.erase(list);
    EXPECT_EQ(Refusal(missing), expected);
    EXPECT_EQ(Refusal(With(list, json::array())), expected);
    EXPECT_EQ(Refusal(With(list, "linux/amd64")), expected);
    EXPECT_EQ(Refusal(With(list, nullptr)), expected);
    EXPECT_EQ(Refusal(With(list, {"linux/amd64", 1})),
              std::string("field \"") + list + "\" must contain only strings");
  }
  for (const char* text : {"context", "dockerfile"}) {
    json missing = Minimal();
    missing.erase(text);
    EXPECT_EQ(Refusal(missing), std::string("field \"") + text + "\" is required");
    EXPECT_EQ(Refusal(With(text, nullptr)), std::string("field \"") + text + "\" is required");
    EXPECT_EQ(Refusal(With(text, 7)), std::string("field \"") + text + "\" must be a string");
  }
}

TEST(BuildRequestTest, Platforms) {
  std::string message = Refusal(With("platforms", {"linux/amd64", "linux/sparc"}));
  EXPECT_TRUE(StartsWith(message, "field \"platforms\": invalid platform \"linux/sparc\""))
      << message;
  EXPECT_TRUE(StartsWith(Refusal(With("platforms", {""})), "field \"platforms\": "));

  // At most kMaxPlatforms after duplicates are removed: many copies of one count once.
  std::map<std::string, std::string> secrets;
  EXPECT_TRUE(ParseBuildRequest(
                  With("platforms", std::vector<std::string>(100, "linux/amd64")).dump(), &secrets)
                  .ok());
  std::vector<std::string> distinct;
  for (const char* os : {"linux", "windows", "darwin", "freebsd"}) {
    for (const char* arch : {"amd64", "arm64", "arm/v5", "arm/v6", "arm/v7", "386", "ppc64le",
                             "s390x", "riscv64", "mips64le"}) {
      distinct.push_back(std::string(os) + "/" + arch);
    }
  }
  ASSERT_GT(distinct.size(), kMaxPlatforms);
  distinct.resize(kMaxPlatforms);
  EXPECT_TRUE(ParseBuildRequest(With("platforms", distinct).dump(), &secrets).ok());
  distinct.push_back("freebsd/mips64le");
  EXPECT_EQ(Refusal(With("platforms", distinct)),
            "field \"platforms\" lists more than 32 platforms");
}

TEST(BuildRequestTest, Tags) {
  std::string message = Refusal(With("tags", {"127.0.0.1:5000/App:1"}));
  EXPECT_TRUE(StartsWith(message, "field \"tags\": ")) << message;
  EXPECT_NE(message.find("127.0.0.1:5000/App:1"), std::string::npos) << message;
  EXPECT_TRUE(StartsWith(Refusal(With("tags", {""})), "field \"tags\": "));

  const std::string pinned = "127.0.0.1:5000/app@" + Sha256Digest("x");
  EXPECT_EQ(Refusal(With("tags", {pinned})),
            "field \"tags\": \"" + pinned + "\" names a digest; an index is pushed under a tag");

  // Counted as written, before they are parsed.
  std::vector<std::string> tags;
  for (size_t i = 0; i < kMaxTags; ++i) tags.push_back("127.0.0.1:5000/app:" + std::to_string(i));
  std::map<std::string, std::string> secrets;
  EXPECT_TRUE(ParseBuildRequest(With("tags", tags).dump(), &secrets).ok());
  tags.push_back("127.0.0.1:5000/app:one-more");
  EXPECT_EQ(Refusal(With("tags", tags)), "field \"tags\" lists more than 64 tags");
  EXPECT_EQ(Refusal(With("tags", std::vector<std::string>(kMaxTags + 1, "127.0.0.1:5000/app:1"))),
            "field \"tags\" lists more than 64 tags");
}

TEST(BuildRequestTest, Context) {
  for (const std::string& digest :
       {std::string("latest"), std::string("sha256:abc"), "sha512:" + std::string(128, 'a'),
        kContext + "0", std::string("")}) {
    EXPECT_EQ(Refusal(With("context", digest)), "field \"context\" must be a sha256 digest")
        << digest;
  }
}

TEST(BuildRequestTest, Dockerfile) {
  EXPECT_EQ(Refusal(With("dockerfile", "")), "field \"dockerfile\" is empty");
  std::map<std::string, std::string> secrets;
  EXPECT_TRUE(
      ParseBuildRequest(With("dockerfile", std::string(kMaxDockerfileBytes, '#')).dump(), &secrets)
          .ok());
  std::string message = Refusal(With("dockerfile", std::string(kMaxDockerfileBytes + 1, '#')));
  EXPECT_TRUE(StartsWith(message, "field \"dockerfile\": the value ")) << message;
  EXPECT_NE(message.find("is 1048577 bytes; at most 1048576 are allowed"), std::string::npos)
      << message;
  message = Refusal(With("dockerfile", std::string("FROM busybox\0\n", 14)));
  EXPECT_TRUE(StartsWith(message, "field \"dockerfile\": ")) << message;
  EXPECT_NE(message.find("NUL byte at offset 12"), std::string::npos) << message;
}

TEST(BuildRequestTest, OptionalTextFields) {
  std::map<std::string, std::string> secrets;
  for (const char* field : {"dockerfile_path", "source", "revision"}) {
    EXPECT_EQ(Refusal(With(field, 1)), std::string("field \"") + field + "\" must be a string");
    EXPECT_TRUE(
        ParseBuildRequest(With(field, std::string(kMaxPathBytes, 'p')).dump(), &secrets).ok());
    std::string message = Refusal(With(field, std::string(kMaxPathBytes + 1, 'p')));
    EXPECT_TRUE(StartsWith(message, std::string("field \"") + field + "\": ")) << message;
    EXPECT_NE(message.find("at most 4096 are allowed"), std::string::npos) << message;
    // JSON cannot carry bytes that are not UTF-8, but it can carry a NUL (\u0000).
    message = Refusal(With(field, std::string("a\0b", 3)));
    EXPECT_TRUE(StartsWith(message, std::string("field \"") + field + "\": ")) << message;
  }
}

TEST(BuildRequestTest, Target) {
  EXPECT_EQ(Refusal(With("target", false)), "field \"target\" must be a string");
  std::string message = Refusal(With("target", "1st"));
  EXPECT_TRUE(StartsWith(message, "field \"target\": the stage name \"1st\"")) << message;
  EXPECT_TRUE(StartsWith(Refusal(With("target", std::string(129, 't'))), "field \"target\": "));
  // An empty target means the last stage.
  std::map<std::string, std::string> secrets;
  EXPECT_TRUE(ParseBuildRequest(With("target", "").dump(), &secrets).ok());
}

TEST(BuildRequestTest, BuildArgsLabelsAndAnnotations) {
  std::map<std::string, std::string> secrets;
  for (const char* field : {"build_args", "labels", "manifest_annotations", "index_annotations"}) {
    const std::string name = std::string("field \"") + field + "\"";
    EXPECT_EQ(Refusal(With(field, {"a", "b"})), name + " must be an object of strings");
    EXPECT_EQ(Refusal(With(field, "k=v")), name + " must be an object of strings");
    std::string message = Refusal(With(field, {{"1 bad key", "x"}}));
    EXPECT_TRUE(StartsWith(message, name + ": the ")) << message;
    EXPECT_NE(message.find("\"1 bad key\""), std::string::npos) << message;
    EXPECT_EQ(Refusal(With(field, {{"K", 1}})), name + ": the value of \"K\" must be a string");
    EXPECT_EQ(Refusal(With(field, {{"K", nullptr}})),
              name + ": the value of \"K\" must be a string");

    EXPECT_TRUE(ParseBuildRequest(With(field, {{"K", std::string(kMaxMapValueBytes, 'v')}}).dump(),
                                  &secrets)
                    .ok());
    message = Refusal(With(field, {{"K", std::string(kMaxMapValueBytes + 1, 'v')}}));
    EXPECT_TRUE(StartsWith(message, "the value of K: " + name + ": the value ")) << message;
    EXPECT_NE(message.find("at most 65536 are allowed"), std::string::npos) << message;

    json entries = json::object();
    for (size_t i = 0; i < kMaxMapEntries; ++i) entries["K" + std::to_string(i)] = "v";
    EXPECT_TRUE(ParseBuildRequest(With(field, entries).dump(), &secrets).ok());
    entries["K_one_more"] = "v";
    EXPECT_EQ(Refusal(With(field, entries)), name + " has more than 1000 entries");
  }
  // Build-arg names follow ARG's grammar; labels and annotations the OCI key grammar.
  EXPECT_TRUE(ParseBuildRequest(With("build_args", {{"_under_score", "x"}}).dump(), &secrets).ok());
  EXPECT_TRUE(StartsWith(Refusal(With("build_args", {{"org.example", "x"}})),
                         "field \"build_args\": the argument name"));
  EXPECT_TRUE(ParseBuildRequest(With("labels", {{"org.example/team", "x"}}).dump(), &secrets).ok());
  EXPECT_TRUE(
      StartsWith(Refusal(With("labels", {{"_under_score", "x"}})), "field \"labels\": the key"));
}

TEST(BuildRequestTest, Booleans) {
  for (const char* field : {"no_cache", "pull"}) {
    for (const json& value : {json("true"), json(1), json::array()}) {
      EXPECT_EQ(Refusal(With(field, value)),
                std::string("field \"") + field + "\" must be true or false");
    }
  }
}

TEST(BuildRequestTest, JobTimeout) {
  const std::string expected =
      "field \"job_timeout_seconds\" must be a whole number of seconds from 1 to 604800";
  for (const json& value : {json(0), json(-1), json(604801), json(1.5), json("60"),
                            json(int64_t{1} << 40), json(true)}) {
    EXPECT_EQ(Refusal(With("job_timeout_seconds", value)), expected) << value.dump();
  }
  std::map<std::string, std::string> secrets;
  for (uint32_t seconds : {1u, kMaxJobTimeoutSeconds}) {
    Result<BuildSpec> spec =
        ParseBuildRequest(With("job_timeout_seconds", seconds).dump(), &secrets);
    ASSERT_TRUE(spec.ok()) << spec.status().message();
    EXPECT_EQ(spec->job_timeout_s, seconds);
  }
}

TEST(BuildRequestTest, Emulation) {
  std::map<std::string, std::string> secrets;
  for (const auto& [text, policy] : std::vector<std::pair<std::string, EmulationPolicy>>{
           {"never", EmulationPolicy::kNever},
           {"fallback", EmulationPolicy::kFallback},
           {"allow", EmulationPolicy::kAllow},
           {"", EmulationPolicy::kFallback}}) {
    Result<BuildSpec> spec = ParseBuildRequest(With("emulation", text).dump(), &secrets);
    ASSERT_TRUE(spec.ok()) << spec.status().message();
    EXPECT_EQ(spec->emulation, policy) << text;
  }
  EXPECT_EQ(Refusal(With("emulation", "Allow")),
            "field \"emulation\" must be one of never, fallback, allow, not \"Allow\"");
  EXPECT_EQ(Refusal(With("emulation", true)), "field \"emulation\" must be a string");
}

TEST(BuildRequestTest, Secrets) {
  const std::string shape =
      "field \"secrets\" must be an object of at most 64 ids, each with its bytes in base64";
  EXPECT_EQ(Refusal(With("secrets", {"token"})), shape);
  EXPECT_EQ(Refusal(With("secrets", "token")), shape);
  json many = json::object();
  for (size_t i = 0; i < kMaxSecrets; ++i) many["s" + std::to_string(i)] = Base64Encode("x");
  std::map<std::string, std::string> secrets;
  EXPECT_TRUE(ParseBuildRequest(With("secrets", many).dump(), &secrets).ok());
  many["one_more"] = Base64Encode("x");
  EXPECT_EQ(Refusal(With("secrets", many)), shape);

  for (const char* id : {"", ".hidden", "a/b", "with space"}) {
    std::string message = Refusal(With("secrets", {{id, Base64Encode("x")}}));
    EXPECT_TRUE(StartsWith(message, "field \"secrets\": the secret id ")) << message;
  }
  EXPECT_TRUE(StartsWith(Refusal(With("secrets", {{std::string(129, 's'), Base64Encode("x")}})),
                         "field \"secrets\": the secret id "));

  // Errors name the id, never the value.
  for (const json& value : {json("not base64!"), json(7), json(nullptr)}) {
    EXPECT_EQ(Refusal(With("secrets", {{"token", value}})),
              "field \"secrets\": the value of \"token\" must be its bytes in base64");
  }
  EXPECT_TRUE(
      ParseBuildRequest(
          With("secrets", {{"big", Base64Encode(std::string(kMaxSecretBytes, 'k'))}}).dump(),
          &secrets)
          .ok());
  std::string message =
      Refusal(With("secrets", {{"big", Base64Encode(std::string(kMaxSecretBytes + 1, 'k'))}}));
  EXPECT_EQ(message,
            "field \"secrets\": secret \"big\" is 512001 bytes; at most 512000 are allowed");
}

TEST(BuildRequestTest, NetworkEntitlementsAndLimits) {
  std::map<std::string, std::string> secrets;
  Result<BuildSpec> plain = ParseBuildRequest(Minimal().dump(), &secrets);
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain->network, "");
  EXPECT_TRUE(plain->entitlements.empty());
  EXPECT_EQ(plain->limits, JobLimits{});

  json request = Minimal();
  request["network"] = "host";
  request["entitlements"] = {"network.host", "network.host"};
  request["limits"] = {
      {"memory_bytes", 1 << 30}, {"cpu_millis", 1500}, {"pids", 256}, {"disk_bytes", kMaxJobLimit}};
  Result<BuildSpec> spec = ParseBuildRequest(request.dump(), &secrets);
  ASSERT_TRUE(spec.ok()) << spec.status().message();
  EXPECT_EQ(spec->network, "host");
  EXPECT_EQ(spec->entitlements, std::vector<std::string>{"network.host"});
  EXPECT_EQ(spec->limits, (JobLimits{1 << 30, 1500, 256, kMaxJobLimit}));
  for (const char* network : {"default", "none"}) {
    spec = ParseBuildRequest(With("network", network).dump(), &secrets);
    ASSERT_TRUE(spec.ok()) << spec.status().message();
    EXPECT_EQ(spec->network, network == std::string("none") ? "none" : "");
  }
  spec = ParseBuildRequest(With("limits", json::object()).dump(), &secrets);
  ASSERT_TRUE(spec.ok());
  EXPECT_EQ(spec->limits, JobLimits{});
}

TEST(BuildRequestTest, NetworkEntitlementsAndLimitsRefusals) {
  EXPECT_EQ(Refusal(With("network", "host")),
            "field \"network\": --network host needs the network.host entitlement: add --allow "
            "network.host to the build (\"entitlements\": [\"network.host\"] in the API); the "
            "agent must also run with --allow-insecure-entitlement network.host");
  EXPECT_EQ(Refusal(With("network", "")),
            "field \"network\": network \"\" is not one of default, none or host (as buildx "
            "--network)");
  EXPECT_EQ(Refusal(With("network", 1)), "field \"network\" must be a string");
  EXPECT_EQ(Refusal(With("entitlements", {"security.insecure"})),
            "field \"entitlements\": entitlement \"security.insecure\" is not supported: build "
            "steps never run privileged here; the only entitlement is network.host");
  const std::string shape =
      "field \"entitlements\" must be a list of at most 8 strings, e.g. [\"network.host\"]";
  EXPECT_EQ(Refusal(With("entitlements", "network.host")), shape);
  EXPECT_EQ(Refusal(With("entitlements", json(std::vector<std::string>(9, "network.host")))),
            shape);
  EXPECT_EQ(Refusal(With("entitlements", {1})), "field \"entitlements\" must contain only strings");

  EXPECT_TRUE(StartsWith(Refusal(With("limits", 5)), "field \"limits\" must be an object"));
  EXPECT_EQ(Refusal(With("limits", {{"memory", 1}})),
            "field \"limits\": unknown limit \"memory\"; the limits are memory_bytes, "
            "cpu_millis, pids and disk_bytes");
  for (const json& value : {json(-1), json(1.5), json("1g"), json(kMaxJobLimit + 1), json(true)}) {
    EXPECT_EQ(Refusal(With("limits", {{"pids", value}})),
              "field \"limits\": \"pids\" must be a whole number from 0 (the agent's default) "
              "to 9007199254740991")
        << value.dump();
  }
}

}  // namespace
}  // namespace manifold
