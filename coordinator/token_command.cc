#include "coordinator/token_command.h"

#include <regex>

#include "coordinator/api_auth.h"

namespace manifold {

int RunTokenCommand(Store& store, const TokenCommand& command, std::ostream* out,
                    std::ostream* err) {
  auto fail = [&](const Status& status) {
    *err << "manifold-coordinator token " << command.action << ": " << status.message() << "\n";
    return 1;
  };
  if (command.action == "list") {
    Result<std::vector<ApiTokenRecord>> tokens = store.ListApiTokens();
    if (!tokens.ok()) return fail(tokens.status());
    *out << "NAME\tID\tCREATED\tREVOKED\n";
    for (const ApiTokenRecord& token : *tokens) {
      *out << token.name << "\t" << token.id << "\t" << token.created_at << "\t"
           << (token.revoked_at.empty() ? "-" : token.revoked_at) << "\n";
    }
    return 0;
  }
  static const std::regex kName("[A-Za-z0-9][A-Za-z0-9._@-]{0,62}");
  if (!std::regex_match(command.name, kName)) {
    return fail(Status::InvalidArgument(
        "--name must be 1 to 63 letters, digits, '.', '_', '@' or '-', starting with a "
        "letter or digit"));
  }
  if (command.action == "revoke") {
    Status revoked = store.RevokeApiToken(command.name);
    if (!revoked.ok()) return fail(revoked);
    *out << "revoked token " << command.name << "\n";
    return 0;
  }
  Result<NewApiToken> token = MakeApiToken();
  if (!token.ok()) return fail(token.status());
  Status created = store.CreateApiToken(command.name, token->id, token->hash);
  if (!created.ok()) return fail(created);
  *err << "token " << command.name
       << " created; it is shown only now. Clients send it as \"Authorization: Bearer "
          "TOKEN\" (manifold: MANIFOLD_TOKEN).\n";
  *out << token->token << "\n";
  return 0;
}

}  // namespace manifold
