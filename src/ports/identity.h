// Port: who may call the API (issue 12, docs/SECURITY.md). API keys (stored as a peppered HMAC,
// never in clear) and browser sessions (stored as the SHA-256 of the session id), each naming the
// owner whose images it reaches.
//
// Adapters: SQLite (embedded, `auth.db` in the data directory) and PostgreSQL (schema `auth`).
// Thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace dither {

// What the prototype's message bodies create, and what existed before owners did.
inline constexpr std::string_view kSystemOwner = "system";

// The authenticated caller of one request, as the gateway tells the services.
struct Caller {
  std::string owner{};
  bool admin = false;
  std::string via{};       // "key" or "session"
  std::string key_id{};    // with a key
  std::string key_name{};  // with a key
  // Whether this caller may reach an item of `item_owner`.
  bool may_reach(std::string_view item_owner) const { return admin || item_owner == owner; }
  // The owner filter of this caller's lists: "" (everything) for admins.
  std::string list_filter() const { return admin ? std::string() : owner; }
};

struct ApiKeyRecord {
  std::string id;     // public: "k" + 11 hex digits; names the key in lists and logs
  std::string owner;  // whose items the key reaches
  std::string name;   // a label for people
  bool admin = false;
  std::string hash;        // hex HMAC-SHA256(pepper, whole key)
  int64_t created_at = 0;  // Unix ms
  int64_t revoked_at = 0;  // Unix ms; 0 while the key is valid
};

struct SessionRecord {
  std::string id_hash;  // hex SHA-256 of the session id (the cookie's value)
  std::string owner;    // "session:<16 hex>"
  int64_t created_at = 0;
  int64_t expires_at = 0;  // Unix ms
  int64_t revoked_at = 0;  // Unix ms; 0 while not revoked
};

class IdentityStore {
 public:
  virtual ~IdentityStore() = default;

  // kInvalidArgument when a key with this id exists already.
  virtual Status insert_key(const ApiKeyRecord& key) = 0;
  virtual Result<ApiKeyRecord> get_key(std::string_view id) = 0;  // kNotFound
  // Every key, revoked ones included, newest first.
  virtual Result<std::vector<ApiKeyRecord>> list_keys() = 0;
  // Sets revoked_at (once: a revoked key keeps its first time). kNotFound for an unknown id;
  // false when it was revoked already.
  virtual Result<bool> revoke_key(std::string_view id, int64_t at) = 0;

  // kInvalidArgument when a session with this hash exists already. Also forgets the sessions
  // that expired before `session.created_at`: page loads cannot grow the table for ever.
  virtual Status insert_session(const SessionRecord& session) = 0;
  virtual Result<SessionRecord> get_session(std::string_view id_hash) = 0;  // kNotFound
  // kNotFound for an unknown hash; false when it was revoked already.
  virtual Result<bool> revoke_session(std::string_view id_hash, int64_t at) = 0;
  // Revokes every session not yet revoked (of `owner` only, unless it is ""); returns how many.
  // Also forgets sessions that expired (the table does not grow for ever).
  virtual Result<int> revoke_sessions(std::string_view owner, int64_t at) = 0;

  // A number that moves whenever a revocation of that kind of credential (a key; a session or an
  // owner's sessions) returns, made through this store by this process or by any other on the
  // same data (`dither-keys` beside `ditherd`). Read before a look-up, it tells the gateway how
  // long to believe the answer: until the number moves (docs/SECURITY.md). Keys and sessions
  // have one each: the sessions any browser may end never send keys back to the store. Costs no
  // I/O. nullopt when the store cannot tell (PostgreSQL: AUTH_CACHE_SECONDS alone bounds
  // revocation there).
  enum class Credential { kKey, kSession };
  virtual std::optional<uint64_t> revocation_stamp(Credential kind) = 0;

  virtual Status ping() = 0;
};

}  // namespace dither
