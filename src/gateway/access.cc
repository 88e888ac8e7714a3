#include "gateway/access.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cctype>
#include <optional>

#include "auth/api_keys.h"
#include "common/crypto.h"
#include "http/errors.h"
#include "messaging/events.h"
#include "ports/records.h"
#include "services/common/paging.h"

namespace dither {
namespace {

namespace json = boost::json;
using http::RequestContext;
using http::Response;

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// "host[:port]" of an http(s) URL, lower-case.
std::string authority_of(std::string_view url) {
  const size_t scheme = url.find("://");
  if (scheme != std::string_view::npos) url.remove_prefix(scheme + 3);
  return lower(url.substr(0, url.find_first_of("/?#")));
}

// ("host", "port") of "host[:port]" or "[v6][:port]".
std::pair<std::string_view, std::string_view> split_host(std::string_view authority) {
  if (authority.starts_with('[')) {
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) return {authority, {}};
    const std::string_view rest = authority.substr(close + 1);
    return {authority.substr(0, close + 1), rest.starts_with(':') ? rest.substr(1) : ""};
  }
  const size_t colon = authority.rfind(':');
  if (colon == std::string_view::npos) return {authority, {}};
  return {authority.substr(0, colon), authority.substr(colon + 1)};
}

Response unauthorized(std::string_view message) {
  Response r = http::error_response(401, "unauthorized", message);
  r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"dither\"");
  return r;
}

constexpr std::string_view kHowToGetAKey =
    "this API needs a caller: send 'Authorization: Bearer <key>' (an admin creates keys with "
    "`dither-keys create` or POST /api/keys; see docs/SECURITY.md), or open the web page at / "
    "for a browser session";

std::string_view cookie_value(std::string_view header, std::string_view name) {
  while (!header.empty()) {
    const size_t semi = header.find(';');
    std::string_view item = header.substr(0, semi);
    header = semi == std::string_view::npos ? std::string_view{} : header.substr(semi + 1);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    if (item.size() > name.size() && item.starts_with(name) && item[name.size()] == '=') {
      return item.substr(name.size() + 1);
    }
  }
  return {};
}

bool is_safe_method(http::Verb v) {
  return v == http::Verb::get || v == http::Verb::head || v == http::Verb::options;
}

json::object key_object(const ApiKeyRecord& k) {
  json::object o;
  o["id"] = k.id;
  o["owner"] = k.owner;
  o["name"] = k.name;
  o["admin"] = k.admin;
  o["created_at"] = iso_time(k.created_at);
  o["revoked_at"] = time_or_null(k.revoked_at);
  return o;
}

Response forbidden_unless_admin(const Caller& caller) {
  if (caller.admin) return {};
  return http::error_response(403, "forbidden", "only an admin key may manage keys");
}

}  // namespace

Access::Access(AccessOptions options) : options_(std::move(options)), peppered_(options_.pepper) {
  secure_ = options_.public_base_url.starts_with("https://");
  public_host_ = authority_of(options_.public_base_url);
  public_origin_ = (secure_ ? "https://" : "http://") + public_host_;
  for (std::string& h : options_.allowed_hosts) h = lower(h);
}

bool Access::host_allowed(std::string_view host_header) const {
  const std::string host = lower(host_header);
  if (host.empty()) return false;
  // Not a structured binding: the lambda below captures these (clang before 16 cannot).
  const std::pair<std::string_view, std::string_view> split = split_host(host);
  const std::string_view name = split.first;
  const std::string_view port = split.second;
  const auto matches = [&](std::string_view entry) {
    if (entry == "*") return true;
    const auto [entry_name, entry_port] = split_host(entry);
    return entry_name == name && (entry_port.empty() || entry_port == port);
  };
  // PUBLIC_BASE_URL's host and port; a Host without a port also matches (a proxy in front may
  // drop a default port it listens on).
  if (host == public_host_ || split_host(public_host_).first == host) return true;
  if (std::any_of(options_.allowed_hosts.begin(), options_.allowed_hosts.end(), matches)) {
    return true;
  }
  return options_.loopback && (name == "localhost" || name == "127.0.0.1" || name == "[::1]");
}

std::optional<Response> Access::check_host(const RequestContext& c) const {
  if (host_allowed(c.header("Host"))) return std::nullopt;
  return http::error_response(421, "unknown_host",
                              "this server does not answer for that host name (set "
                              "PUBLIC_BASE_URL or ALLOWED_HOSTS)");
}

bool Access::believed(const Cached& cached, std::chrono::steady_clock::time_point now,
                      const std::optional<uint64_t>& stamp) const {
  return cached.until > now && cached.stamp == stamp &&
         (cached.expires_at == 0 || cached.expires_at > options_.wall_clock_ms());
}

Result<Caller> Access::from_key(std::string_view key) {
  // The cache is keyed by the HMAC's bytes: its hex form (as stored) is made only on a miss.
  const std::string digest = peppered_(key);
  const auto now = std::chrono::steady_clock::now();
  // Read before the look-up: a revocation that returns after this moves it (identity.h).
  const std::optional<uint64_t> stamp =
      options_.cache_seconds > 0 ? options_.store->revocation_stamp(IdentityStore::Credential::kKey)
                                 : std::nullopt;
  if (options_.cache_seconds > 0) {
    std::shared_lock lock(mutex_);
    if (auto it = keys_.find(digest); it != keys_.end() && believed(it->second, now, stamp)) {
      return it->second.caller;
    }
  }
  const std::optional<std::string> id = api_key_id(key);
  if (!id) return make_error(ErrorKind::kNotFound, "malformed key");
  Result<ApiKeyRecord> record = options_.store->get_key(*id);
  if (!record) return record.error();
  const std::string hash = to_hex(digest);  // api_key_hash(peppered_, key)
  if (!constant_time_equal(record->hash, hash) || record->revoked_at != 0) {
    return make_error(ErrorKind::kNotFound, "unknown or revoked key");
  }
  Caller caller;
  caller.owner = record->owner;
  caller.admin = record->admin;
  caller.via = "key";
  caller.key_id = record->id;
  caller.key_name = record->name;
  if (options_.cache_seconds > 0) {
    std::lock_guard lock(mutex_);
    if (keys_.size() > 10000) keys_.clear();
    keys_[digest] = {caller, now + std::chrono::seconds{options_.cache_seconds}, stamp};
  }
  return caller;
}

Result<Caller> Access::from_session(std::string_view session_id, std::string* hash_out) {
  if (session_id.size() != 43 || !from_base64url(session_id)) {
    return make_error(ErrorKind::kNotFound, "malformed session");
  }
  const std::string hash = to_hex(sha256(session_id));
  *hash_out = hash;
  const auto now = std::chrono::steady_clock::now();
  const std::optional<uint64_t> stamp =
      options_.cache_seconds > 0
          ? options_.store->revocation_stamp(IdentityStore::Credential::kSession)
          : std::nullopt;
  if (options_.cache_seconds > 0) {
    std::shared_lock lock(mutex_);
    if (auto it = sessions_.find(hash); it != sessions_.end() && believed(it->second, now, stamp)) {
      return it->second.caller;
    }
  }
  Result<SessionRecord> record = options_.store->get_session(hash);
  if (!record) return record.error();
  if (record->revoked_at != 0 || record->expires_at <= options_.wall_clock_ms()) {
    return make_error(ErrorKind::kNotFound, "ended session");
  }
  Caller caller;
  caller.owner = record->owner;
  caller.via = "session";
  if (options_.cache_seconds > 0) {
    std::lock_guard lock(mutex_);
    if (sessions_.size() > 10000) sessions_.clear();
    sessions_[hash] = {caller, now + std::chrono::seconds{options_.cache_seconds}, stamp,
                       record->expires_at};
  }
  return caller;
}

Access::Outcome Access::authenticate(const RequestContext& c) {
  Outcome out;
  const std::string_view authorization = c.header("Authorization");
  if (!authorization.empty()) {
    // Exactly "Bearer <key>": the scheme is case-insensitive (RFC 9110), the key is not.
    constexpr std::string_view kScheme = "bearer ";
    if (authorization.size() <= kScheme.size() ||
        lower(authorization.substr(0, kScheme.size())) != kScheme) {
      out.refusal = unauthorized("the Authorization header must be 'Bearer <key>'");
      return out;
    }
    Result<Caller> caller = from_key(authorization.substr(kScheme.size()));
    if (!caller) {
      if (caller.error().kind == ErrorKind::kNotFound) {
        out.refusal = unauthorized("the API key is not valid (malformed, unknown or revoked)");
      } else {
        out.refusal = http::error_response(caller.error());
      }
      return out;
    }
    out.caller = std::move(*caller);
    return out;
  }
  const std::string_view session = cookie_value(c.header("Cookie"), kSessionCookie);
  if (session.empty()) {
    out.refusal = unauthorized(kHowToGetAKey);
    return out;
  }
  Result<Caller> caller = from_session(session, &out.session_hash);
  if (!caller) {
    out.refusal = caller.error().kind == ErrorKind::kNotFound
                      ? unauthorized("the browser session has ended: reload the page")
                      : http::error_response(caller.error());
    return out;
  }
  // The cookie travels with cross-site requests too: a change must come from our own page.
  if (!is_safe_method(c.request.method())) {
    const std::string_view site = c.header("Sec-Fetch-Site");
    const std::string_view origin = c.header("Origin");
    const std::string host = lower(c.header("Host"));
    // Our origins: this request's own (its Host is one of ours, checked before) and
    // PUBLIC_BASE_URL's (behind a proxy that rewrites Host).
    const std::string o = lower(origin);
    const std::string scheme = secure_ ? "https://" : "http://";
    const bool same_origin =
        !site.empty() ? site == "same-origin" : (o == scheme + host || o == public_origin_);
    if (!same_origin) {
      out.refusal = http::error_response(
          403, "cross_origin",
          "a change made with the browser session must come from this site's own page");
      return out;
    }
  }
  out.caller = std::move(*caller);
  return out;
}

std::string Access::cookie(std::string_view value, int64_t max_age) const {
  std::string out = std::string(kSessionCookie) + "=" + std::string(value) +
                    "; Path=/; Max-Age=" + std::to_string(max_age) + "; HttpOnly; SameSite=Lax";
  if (secure_) out += "; Secure";
  return out;
}

Result<bool> Access::has_live_session(const RequestContext& c) {
  const std::string_view existing = cookie_value(c.header("Cookie"), kSessionCookie);
  if (existing.empty()) return false;
  std::string hash;
  Result<Caller> caller = from_session(existing, &hash);
  if (caller) return true;
  if (caller.error().kind != ErrorKind::kNotFound) return caller.error();
  return false;
}

Result<std::string> Access::new_session() {
  const std::string id = random_token(32);
  const int64_t lifetime_ms = int64_t{options_.session_lifetime_days} * 86400 * 1000;
  SessionRecord record;
  record.id_hash = to_hex(sha256(id));
  record.owner = "session:" + random_hex(8);
  record.created_at = options_.wall_clock_ms();
  record.expires_at = record.created_at + lifetime_ms;
  if (Status s = options_.store->insert_session(record); !s) return s.error();
  return cookie(id, lifetime_ms / 1000);
}

Response Access::me(const Outcome& who) const {
  const Caller& c = *who.caller;
  json::object o;
  o["owner"] = c.owner;
  o["via"] = c.via;
  o["admin"] = c.admin;
  o["key_id"] = c.key_id.empty() ? json::value(nullptr) : json::value(c.key_id);
  o["key_name"] = c.via == "key" ? json::value(c.key_name) : json::value(nullptr);
  return http::json_response(200, json::serialize(o));
}

Response Access::create_key(const RequestContext& c, const Caller& caller) {
  if (Response r = forbidden_unless_admin(caller); r.status != 200) return r;
  const std::string& body = c.request.body();
  std::optional<std::string> owner;  // absent: an owner of its own; given: 1-64 characters
  std::optional<std::string> name;
  bool admin = false;
  // The body and its name are required (the OpenAPI document says so; `dither-keys create` needs
  // --name too): an empty POST makes no key.
  if (body.find_first_not_of(" \t\r\n") == std::string::npos) {
    return http::error_response(400, "invalid_argument",
                                "the body must be a JSON object {name, owner?, admin?}");
  }
  if (!c.has_json_body_type()) {
    return http::error_response(415, "unsupported_media_type",
                                "the body must be sent as Content-Type: application/json");
  }
  boost::system::error_code ec;
  json::value v = json::parse(body, ec);
  if (ec || !v.is_object()) {
    return http::error_response(400, "invalid_argument",
                                "the body must be a JSON object {name, owner?, admin?}");
  }
  for (const auto& [k, value] : v.as_object()) {
    if (k == "name" && value.is_string()) {
      name = std::string(value.as_string());
    } else if (k == "owner" && value.is_string()) {
      owner = std::string(value.as_string());
    } else if (k == "admin" && value.is_bool()) {
      admin = value.as_bool();
    } else {
      return http::error_response(400, "invalid_argument",
                                  "unknown or mistyped field '" + std::string(k) +
                                      "' (name: string, owner: string, admin: boolean)");
    }
  }
  if (!name) return http::error_response(400, "invalid_argument", "a key needs a name");
  if (owner && !is_valid_owner(*owner)) {
    return http::error_response(400, "invalid_argument",
                                "an owner is 1-64 characters of A-Z a-z 0-9 . _ : @ -");
  }
  Result<NewApiKey> key = make_api_key(owner.value_or(""), *name, admin, options_.pepper);
  if (!key) return http::error_response(key.error());
  if (Status s = options_.store->insert_key(key->record); !s)
    return http::error_response(s.error());
  spdlog::info("key {} created for owner {} by key {}{}", key->record.id, key->record.owner,
               caller.key_id, admin ? " (admin)" : "");
  json::object o = key_object(key->record);
  o["key"] = key->key;  // shown this once
  Response r = http::json_response(201, json::serialize(o));
  r.headers.emplace_back("Cache-Control", "no-store");
  return r;
}

Response Access::list_keys(const Caller& caller) {
  if (Response r = forbidden_unless_admin(caller); r.status != 200) return r;
  Result<std::vector<ApiKeyRecord>> keys = options_.store->list_keys();
  if (!keys) return http::error_response(keys.error());
  json::array items;
  for (const ApiKeyRecord& k : *keys) items.push_back(key_object(k));
  json::object o;
  o["items"] = std::move(items);
  return http::json_response(200, json::serialize(o));
}

Response Access::revoke_key(std::string_view id, const Caller& caller) {
  if (Response r = forbidden_unless_admin(caller); r.status != 200) return r;
  if (!is_valid_key_id(id)) return http::error_response(404, "not_found", "no such key");
  Result<bool> revoked = options_.store->revoke_key(id, now_millis());
  if (!revoked) {
    return revoked.error().kind == ErrorKind::kNotFound
               ? http::error_response(404, "not_found", "no such key")
               : http::error_response(revoked.error());
  }
  {
    std::lock_guard lock(mutex_);
    std::erase_if(keys_, [&](const auto& entry) { return entry.second.caller.key_id == id; });
  }
  spdlog::info("key {} revoked by key {}", id, caller.key_id);
  json::object o;
  o["id"] = id;
  o["revoked"] = true;
  return http::json_response(200, json::serialize(o));
}

Response Access::end_session(const Outcome& who) {
  if (who.session_hash.empty()) {
    return http::error_response(400, "invalid_argument",
                                "this request is not made with a browser session");
  }
  Result<bool> ended = options_.store->revoke_session(who.session_hash, now_millis());
  if (!ended && ended.error().kind != ErrorKind::kNotFound) {
    return http::error_response(ended.error());
  }
  {
    std::lock_guard lock(mutex_);
    sessions_.erase(who.session_hash);
  }
  json::object o;
  o["ended"] = true;
  Response r = http::json_response(200, json::serialize(o));
  r.headers.emplace_back("Set-Cookie", cookie("", 0));
  return r;
}

}  // namespace dither
