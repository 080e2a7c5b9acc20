// RegistryAuth's answer to a Bearer challenge, with the token server played by a function:
// whatever the token server answers, no credential reaches the error.
#include "common/registry_auth.h"

#include <gtest/gtest.h>

namespace manifold {
namespace {

const char kChallenge[] =
    R"(Bearer realm="https://robot:realm-secret@auth.example/token?key=realm-secret",)"
    R"(service="registry.example")";

Status Answer(const RegistryAuth::TokenSender& send) {
  RegistryAuth auth("registry.example", RegistryCredentials{"ci", "password-secret", ""},
                    std::nullopt);
  return auth.AnswerChallenge(kChallenge, {PushScope("app")}, "push blob", send);
}

void ExpectNoSecret(const Status& status) {
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.message().find("secret"), std::string::npos) << status.message();
  EXPECT_NE(status.message().find("https://auth.example/token"), std::string::npos)
      << status.message();
}

TEST(RegistryAuth, AnAnswerWithoutATokenNamesItsFieldsNotTheirValues) {
  Status status = Answer([](HttpRequest) -> Result<HttpResponse> {
    HttpResponse response;
    response.status = 200;
    response.body = R"({"id_token":"token-secret","expires_in":60})";
    return response;
  });
  ExpectNoSecret(status);
  EXPECT_NE(status.message().find("its fields: expires_in, id_token"), std::string::npos)
      << status.message();
}

TEST(RegistryAuth, ATokenServerOutOfReachIsNamedWithoutTheRealmsCredentials) {
  ExpectNoSecret(Answer([](HttpRequest request) -> Result<HttpResponse> {
    return Status::Unavailable(DescribeRequest(request) + " failed: Couldn't connect to server");
  }));
}

}  // namespace
}  // namespace manifold
