#include "http/router.h"

#include <algorithm>
#include <boost/container/small_vector.hpp>
#include <cctype>
#include <stdexcept>

#include "http/url_decode.h"

namespace dither::http {
namespace {

// Decoded path segments; most paths have a handful of short ones (no allocation).
using Segments = boost::container::small_vector<std::string, 8>;

bool is_placeholder(std::string_view segment) {
  return segment.size() >= 2 && segment.front() == '{' && segment.back() == '}';
}

bool is_rest_placeholder(std::string_view segment) {
  return is_placeholder(segment) && segment.size() > 5 && segment.ends_with("...}");
}

std::string_view placeholder_name(std::string_view segment) {
  segment.remove_prefix(1);
  segment.remove_suffix(segment.ends_with("...}") ? 4 : 1);
  return segment;
}

// "/a/b%20c" -> {"a", "b c"}; "/" -> {""}; false when the path does not start with '/' or has a
// malformed escape.
bool split_path(std::string_view path, Segments& out) {
  if (path.empty() || path.front() != '/') return false;
  path.remove_prefix(1);
  for (;;) {
    const size_t slash = path.find('/');
    std::string& segment = out.emplace_back();
    if (!percent_decode_append(path.substr(0, slash), false, segment)) return false;
    if (slash == std::string_view::npos) return true;
    path.remove_prefix(slash + 1);
  }
}

// Whether `route_segments` matches `path`; fills `params` when given.
bool matches(const std::vector<std::string>& route_segments, bool rest, const Segments& path,
             std::vector<std::pair<std::string, std::string>>* params) {
  const size_t fixed = rest ? route_segments.size() - 1 : route_segments.size();
  if (rest ? path.size() <= fixed : path.size() != fixed) return false;
  for (size_t i = 0; i < fixed; ++i) {
    const std::string& pattern = route_segments[i];
    if (is_placeholder(pattern)) {
      if (path[i].empty()) return false;
    } else if (pattern != path[i]) {
      return false;
    }
  }
  if (rest) {
    // The rest must not be empty ("/files/" does not match "/files/{key...}").
    bool empty = true;
    for (size_t i = fixed; i < path.size() && empty; ++i) empty = path[i].empty();
    if (empty) return false;
  }
  if (params == nullptr) return true;
  for (size_t i = 0; i < fixed; ++i) {
    if (is_placeholder(route_segments[i])) {
      params->emplace_back(placeholder_name(route_segments[i]), path[i]);
    }
  }
  if (rest) {
    std::string joined = path[fixed];
    for (size_t i = fixed + 1; i < path.size(); ++i) {
      joined += '/';
      joined += path[i];
    }
    params->emplace_back(placeholder_name(route_segments.back()), std::move(joined));
  }
  return true;
}

std::vector<std::string> parse_pattern(std::string_view pattern, bool& rest) {
  if (pattern.empty() || pattern.front() != '/') {
    throw std::invalid_argument("route pattern must start with '/': " + std::string(pattern));
  }
  std::vector<std::string> segments;
  pattern.remove_prefix(1);
  for (;;) {
    const size_t slash = pattern.find('/');
    segments.emplace_back(pattern.substr(0, slash));
    if (slash == std::string_view::npos) break;
    pattern.remove_prefix(slash + 1);
  }
  rest = false;
  for (size_t i = 0; i < segments.size(); ++i) {
    const std::string& s = segments[i];
    const bool brace = s.find_first_of("{}") != std::string::npos;
    if (!brace) continue;
    if (!is_placeholder(s) || placeholder_name(s).empty() ||
        placeholder_name(s).find_first_of("{}/") != std::string_view::npos) {
      throw std::invalid_argument("malformed route placeholder: " + s);
    }
    if (is_rest_placeholder(s)) {
      if (i + 1 != segments.size()) {
        throw std::invalid_argument("{name...} must be the last segment: " + s);
      }
      rest = true;
    }
  }
  return segments;
}

}  // namespace

std::string_view RequestContext::param(std::string_view name) const {
  for (const auto& [key, value] : params) {
    if (key == name) return value;
  }
  return {};
}

std::optional<std::string_view> RequestContext::query_value(std::string_view name) const {
  for (const auto& [key, value] : query) {
    if (key == name) return std::string_view(value);
  }
  return std::nullopt;
}

bool RequestContext::has_json_body_type() const {
  const std::string_view type = header("Content-Type");
  std::string media;
  for (char ch : type.substr(0, type.find(';'))) {
    if (ch != ' ' && ch != '\t') {
      media.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(ch))));
    }
  }
  return media == "application/json";
}

std::string RequestContext::take_body() const {
  if (movable != nullptr) return std::move(movable->body());
  return request.body();
}

std::string_view RequestContext::header(std::string_view name) const {
  const auto it = request.find(boost::beast::string_view(name.data(), name.size()));
  if (it == request.end()) return {};
  const auto value = it->value();
  return {value.data(), value.size()};
}

// The pattern is kept as given (Match::pattern, the route label of the metrics) and as segments.
void Router::add(Verb verb, std::string pattern, SyncHandler handler, Dispatch dispatch,
                 Precheck precheck) {
  Route route{verb,     std::move(pattern), {}, false, std::move(handler),
              dispatch, std::move(precheck)};
  route.segments = parse_pattern(route.pattern, route.rest);
  routes_.push_back(std::move(route));
}

void Router::add_async(Verb verb, std::string pattern, AsyncHandler handler) {
  Route route{verb, std::move(pattern), {}, false, std::move(handler), Dispatch::kInline};
  route.segments = parse_pattern(route.pattern, route.rest);
  routes_.push_back(std::move(route));
}

Router::Match Router::match(Verb verb, std::string_view path) const {
  Match result;
  Segments segments;
  if (!split_path(path, segments)) return result;
  for (const Route& route : routes_) {
    const bool verb_ok = route.verb == verb || (verb == Verb::head && route.verb == Verb::get);
    if (!verb_ok) {
      result.path_known =
          result.path_known || matches(route.segments, route.rest, segments, nullptr);
      continue;
    }
    if (!matches(route.segments, route.rest, segments, &result.params)) continue;
    result.handler = &route.handler;
    result.pattern = route.pattern;
    result.dispatch = route.dispatch;
    if (route.precheck) result.precheck = &route.precheck;
    result.path_known = true;
    return result;
  }
  if (!result.path_known) return result;
  // 405: list what the path answers, in route order, without repeats.
  std::vector<Verb> verbs;
  const auto add_verb = [&verbs](Verb v) {
    if (std::find(verbs.begin(), verbs.end(), v) == verbs.end()) verbs.push_back(v);
  };
  for (const Route& route : routes_) {
    if (!matches(route.segments, route.rest, segments, nullptr)) continue;
    add_verb(route.verb);
    if (route.verb == Verb::get) add_verb(Verb::head);
  }
  for (const Verb v : verbs) {
    if (!result.allow.empty()) result.allow += ", ";
    const auto name = boost::beast::http::to_string(v);
    result.allow.append(name.data(), name.size());
  }
  return result;
}

}  // namespace dither::http
