// dither-keys: create, list and revoke API keys, and end browser sessions, in whichever identity
// store the environment configures (the same variables as the servers: DITHER_DATA_DIR for
// SQLite, POSTGRES_* for PostgreSQL, API_KEY_PEPPER). docs/SECURITY.md.
//
//   dither-keys create --name laptop [--owner alice] [--admin] [--json]
//   dither-keys list [--json]
//   dither-keys revoke <id>
//   dither-keys end-sessions [--owner OWNER]
//
// A new key is printed once, on standard output, and nowhere else. Exit 0 on success, 1 when the
// store refuses (e.g. an unknown id) or cannot be reached, 2 for bad usage.
#include <spdlog/spdlog.h>

#include <boost/json.hpp>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>
#include <string_view>
#include <vector>

#include "app/adapters.h"
#include "app/config.h"
#include "auth/api_keys.h"

namespace {

using namespace dither;
namespace json = boost::json;

constexpr std::string_view kUsage =
    "usage: dither-keys create --name NAME [--owner OWNER] [--admin] [--json]\n"
    "       dither-keys list [--json]\n"
    "       dither-keys revoke ID\n"
    "       dither-keys end-sessions [--owner OWNER]\n"
    "The store and the pepper come from the same environment as the servers (DITHER_DATA_DIR, or\n"
    "POSTGRES_HOST...; API_KEY_PEPPER). A new key is printed once and never shown again.\n";

int usage(std::string_view problem) {
  if (!problem.empty())
    std::fprintf(stderr, "dither-keys: %.*s\n", static_cast<int>(problem.size()), problem.data());
  std::fputs(std::string(kUsage).c_str(), stderr);
  return 2;
}

int fail(const Error& e) {
  std::fprintf(stderr, "dither-keys: %s\n", e.message.c_str());
  return 1;
}

std::string time_text(int64_t millis) {
  if (millis == 0) return "-";
  const std::time_t t = static_cast<std::time_t>(millis / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buffer;
}

json::object key_json(const ApiKeyRecord& k) {
  json::object o;
  o["id"] = k.id;
  o["owner"] = k.owner;
  o["name"] = k.name;
  o["admin"] = k.admin;
  o["created_at"] = time_text(k.created_at);
  o["revoked_at"] = k.revoked_at == 0 ? json::value(nullptr) : json::value(time_text(k.revoked_at));
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  spdlog::set_level(spdlog::level::warn);
  std::vector<std::string_view> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h") return usage("");
  const std::string_view command = args[0];
  std::string name, owner, id;
  bool admin = false, as_json = false;
  for (size_t i = 1; i < args.size(); ++i) {
    const std::string_view a = args[i];
    const auto value = [&](std::string& out) {
      if (i + 1 >= args.size()) return false;
      out = std::string(args[++i]);
      return true;
    };
    if (a == "--name") {
      if (!value(name)) return usage("--name needs a value");
    } else if (a == "--owner") {
      if (!value(owner)) return usage("--owner needs a value");
    } else if (a == "--admin") {
      admin = true;
    } else if (a == "--json") {
      as_json = true;
    } else if (command == "revoke" && id.empty() && !a.starts_with("--")) {
      id = std::string(a);
    } else {
      return usage("unknown argument '" + std::string(a) + "'");
    }
  }
  if (command != "create" && command != "list" && command != "revoke" &&
      command != "end-sessions") {
    return usage("unknown command '" + std::string(command) + "'");
  }
  if (command == "revoke" && id.empty()) return usage("revoke needs a key id");

  Result<Config> config = load_config([](const char* n) { return std::getenv(n); });
  if (!config) return usage(config.error().message);
  if (Status s = load_secrets(*config); !s) return fail(s.error());
  Result<std::unique_ptr<IdentityStore>> store = open_identity_store(*config);
  if (!store) return fail(store.error());

  if (command == "create") {
    Result<NewApiKey> key = make_api_key(owner, name, admin, config->security.api_key_pepper);
    if (!key) return fail(key.error());
    if (Status s = (*store)->insert_key(key->record); !s) return fail(s.error());
    if (as_json) {
      json::object o = key_json(key->record);
      o["key"] = key->key;
      std::printf("%s\n", json::serialize(o).c_str());
    } else {
      std::printf("%s\n", key->key.c_str());
      std::fprintf(stderr, "key %s (owner %s%s) created; it is shown this once\n",
                   key->record.id.c_str(), key->record.owner.c_str(), admin ? ", admin" : "");
    }
    return 0;
  }
  if (command == "list") {
    Result<std::vector<ApiKeyRecord>> keys = (*store)->list_keys();
    if (!keys) return fail(keys.error());
    if (as_json) {
      json::array items;
      for (const ApiKeyRecord& k : *keys) items.push_back(key_json(k));
      json::object o;
      o["items"] = std::move(items);
      std::printf("%s\n", json::serialize(o).c_str());
    } else {
      std::printf("%-13s %-24s %-20s %-5s %-20s %s\n", "ID", "OWNER", "NAME", "ADMIN", "CREATED",
                  "REVOKED");
      for (const ApiKeyRecord& k : *keys) {
        std::printf("%-13s %-24s %-20s %-5s %-20s %s\n", k.id.c_str(), k.owner.c_str(),
                    k.name.c_str(), k.admin ? "yes" : "no", time_text(k.created_at).c_str(),
                    time_text(k.revoked_at).c_str());
      }
    }
    return 0;
  }
  if (command == "revoke") {
    Result<bool> revoked = (*store)->revoke_key(id, now_millis());
    if (!revoked) return fail(revoked.error());
    std::fprintf(stderr, "key %s %s\n", id.c_str(), *revoked ? "revoked" : "was revoked already");
    return 0;
  }
  Result<int> ended = (*store)->revoke_sessions(owner, now_millis());
  if (!ended) return fail(ended.error());
  std::fprintf(stderr, "%d session(s) ended\n", *ended);
  return 0;
}
