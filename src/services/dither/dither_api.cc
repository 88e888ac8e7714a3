#include "services/dither/dither_api.h"

#include <algorithm>
#include <boost/json.hpp>
#include <cmath>

#include "http/errors.h"
#include "messaging/events.h"
#include "pipeline/process_options.h"
#include "services/common/outbox_api.h"
#include "services/common/paging.h"

namespace dither {
namespace {

namespace json = boost::json;
using http::RequestContext;
using http::Response;

// Options as a record stores them: canonical already (DitherService::make_record), shown as is.
json::object stored_options(const std::string& options_json) {
  boost::system::error_code ec;
  json::value v = json::parse(options_json, ec);
  if (ec || !v.is_object()) return {};
  return std::move(v.as_object());
}

json::object dither_object(const DitherRecord& d, const LinkPolicy& links) {
  json::object o;
  o["id"] = d.id.value;
  o["uuid"] = d.uuid.value;
  o["channels"] = d.channels;
  o["url_dither"] = links.sign(d.url_dither);
  o["status"] = d.status;
  o["algorithm"] = d.algorithm;
  o["palette"] = d.palette;
  o["format"] = d.format;
  o["options"] = stored_options(d.options_json);
  o["source"] = DitherService::source_of(d);
  o["error"] = text_or_null(d.error);
  o["created_at"] = iso_time(d.created_at);
  o["updated_at"] = iso_time(d.updated_at);
  return o;
}

// A JSON body's option value as the text set_option() reads. JSON has types, so a value must have
// its option's type (docs/API.md): a boolean option takes true or false, a whole-number option an
// integer (64, or 64.0: a number without a fraction), a number option any number, a text option a
// string, a JSON option (kernel, matrix) its JSON value or that value's text. The text spellings
// ("on", "1", "64") are the query string's, where every value is text.
Result<std::string> json_option_text(std::string_view name, const json::value& v) {
  const pipeline::OptionInfo* info = pipeline::find_option(name);
  if (name == "preset") {
    if (!v.is_string()) return make_error(ErrorKind::kInvalidArgument, "'preset' is a name");
    return std::string(v.as_string());
  }
  if (info == nullptr) {
    return make_error(ErrorKind::kInvalidArgument, "unknown option '" + std::string(name) + "'");
  }
  const auto wrong = [&](std::string_view expected) {
    std::string got = json::serialize(v);
    if (got.size() > 40) got = got.substr(0, 40) + "...";
    return make_error(ErrorKind::kInvalidArgument, "option '" + std::string(name) + "': expected " +
                                                       std::string(expected) +
                                                       " in a JSON body, got " + got);
  };
  switch (info->type) {
    case pipeline::OptionType::kBoolean:
      if (!v.is_bool()) return wrong("true or false");
      return std::string(v.as_bool() ? "true" : "false");
    case pipeline::OptionType::kInteger:
      if (v.is_int64()) return std::to_string(v.as_int64());
      if (v.is_uint64()) return std::to_string(v.as_uint64());
      if (v.is_double()) {
        // 2^63: every whole double below it converts exactly; set_option checks the range.
        const double d = v.as_double();
        if (std::trunc(d) == d && std::fabs(d) < 9223372036854775808.0) {
          return std::to_string(static_cast<long long>(d));
        }
      }
      return wrong("a whole number");
    case pipeline::OptionType::kNumber:
      if (!v.is_number()) return wrong("a number");
      return json::serialize(v);
    case pipeline::OptionType::kString:
      if (!v.is_string()) return wrong("a string");
      return std::string(v.as_string());
    case pipeline::OptionType::kJson:
      // The value itself (a kernel's rows), or its text as the query string gives it.
      if (v.is_string()) return std::string(v.as_string());
      if (v.is_array() || v.is_object()) return json::serialize(v);
      return wrong("a JSON array or object, or its text");
  }
  return wrong("a value");
}

// A JSON object of options as (name, text) pairs, appended to `pairs`.
Status append_options(const json::object& object, pipeline::OptionPairs& pairs) {
  for (const auto& [name, value] : object) {
    Result<std::string> text = json_option_text(name, value);
    if (!text) return text.error();
    pairs.emplace_back(std::string(name), std::move(*text));
  }
  return {};
}

json::object preset_object(const PresetRecord& p) {
  json::object o;
  o["name"] = p.name;
  o["builtin"] = p.owner.empty();
  if (!p.owner.empty()) o["owner"] = p.owner;
  o["description"] = p.description;
  o["options"] = stored_options(p.options_json);
  if (!p.owner.empty()) {
    o["created_at"] = iso_time(p.created_at);
    o["updated_at"] = iso_time(p.updated_at);
  }
  return o;
}

// POST /presets: {"name": ..., "description": ..., "options": {...}}.
Response save_preset(DitherService& service, const RequestContext& c, const Caller& caller) {
  if (!c.has_json_body_type()) {
    return http::error_response(
        make_error(ErrorKind::kUnsupported,
                   "a preset must be sent as Content-Type: application/json"),
        "unsupported_media_type");
  }
  boost::system::error_code ec;
  json::value v = json::parse(c.request.body(), ec);
  if (ec || !v.is_object()) {
    return http::error_response(make_error(
        ErrorKind::kInvalidArgument,
        R"(the body must be a JSON object: {"name": ..., "description": ..., "options": {...}})"));
  }
  const json::object& body = v.as_object();
  for (const auto& [key, value] : body) {
    if (key != "name" && key != "description" && key != "options") {
      return http::error_response(make_error(ErrorKind::kInvalidArgument,
                                             "unknown field '" + std::string(key).substr(0, 64) +
                                                 "' (a preset has name, description and options)"));
    }
  }
  const json::value* name = body.if_contains("name");
  const json::value* description = body.if_contains("description");
  const json::value* options = body.if_contains("options");
  if (name == nullptr || !name->is_string() ||
      (description != nullptr && !description->is_string()) || options == nullptr ||
      !options->is_object()) {
    return http::error_response(make_error(
        ErrorKind::kInvalidArgument,
        "a preset needs a name (text), options (an object) and may have a description (text)"));
  }
  pipeline::OptionPairs pairs;
  if (Status s = append_options(options->as_object(), pairs); !s) {
    return http::error_response(s.error());
  }
  bool replaced = false;
  Refusal refusal;
  Result<PresetRecord> saved = service.save_preset(
      name->as_string(), description != nullptr ? std::string_view(description->as_string()) : "",
      pairs, caller, &replaced, &refusal);
  if (!saved) return refused_or_error_response(saved.error(), refusal);
  return http::json_response(replaced ? 200 : 201, json::serialize(preset_object(*saved)));
}

// GET /options (the option table) and the presets: GET /presets, POST /presets,
// DELETE /presets/{name}.
void add_preset_routes(http::Router& router, DitherService& service) {
  // The option table (process_options.h): what the page builds its form from.
  router.add(http::Verb::get, "/options", [](const RequestContext&) -> Response {
    static const std::string body = pipeline::options_api_json();
    return http::json_response(200, body);
  });

  router.add(http::Verb::get, "/presets",
             with_caller([&service](const RequestContext&, const Caller& caller) -> Response {
               Result<std::vector<PresetRecord>> r = service.presets(caller);
               if (!r) return http::error_response(r.error());
               json::array items;
               for (const PresetRecord& p : *r) items.push_back(preset_object(p));
               json::object o;
               o["items"] = std::move(items);
               return http::json_response(200, json::serialize(o));
             }),
             http::Dispatch::kBlocking);

  router.add(http::Verb::post, "/presets",
             with_caller([&service](const RequestContext& c, const Caller& caller) -> Response {
               return save_preset(service, c, caller);
             }),
             http::Dispatch::kBlocking);

  router.add(http::Verb::delete_, "/presets/{name}",
             with_caller([&service](const RequestContext& c, const Caller& caller) -> Response {
               Refusal refusal;
               if (Status s = service.delete_preset(c.param("name"), caller, &refusal); !s) {
                 return refused_or_error_response(s.error(), refusal);
               }
               json::object o;
               o["name"] = c.param("name");
               o["deleted"] = true;
               return http::json_response(200, json::serialize(o));
             }),
             http::Dispatch::kBlocking);
}

}  // namespace

std::string dither_json(const DitherRecord& dither, const LinkPolicy& links) {
  return json::serialize(dither_object(dither, links));
}

Result<pipeline::OptionPairs> request_options(const RequestContext& c) {
  pipeline::OptionPairs pairs = c.query;
  const std::string& body = c.request.body();
  if (body.find_first_not_of(" \t\r\n") == std::string::npos) return pairs;
  if (!c.has_json_body_type()) {
    return make_error(ErrorKind::kUnsupported,
                      "a body of options must be sent as Content-Type: application/json");
  }
  boost::system::error_code ec;
  json::value v = json::parse(body, ec);
  if (ec) {
    return make_error(ErrorKind::kInvalidArgument, "the body is not valid JSON: " + ec.message());
  }
  if (!v.is_object()) {
    return make_error(ErrorKind::kInvalidArgument, "the body must be a JSON object of options");
  }
  if (Status s = append_options(v.as_object(), pairs); !s) return s.error();
  return pairs;
}

http::Router dither_routes(DitherService& service, LinkPolicy links) {
  http::Router router;
  router.add(http::Verb::get, "/images", owned_list_route(service, [links](const DitherRecord& d) {
               return dither_object(d, links);
             }));

  router.add(
      http::Verb::get, "/images/{uuid}",
      with_caller([&service, links](const RequestContext& c, const Caller& caller) -> Response {
        Result<std::vector<DitherRecord>> r = service.dithers_of(c.param("uuid"), caller);
        if (!r) return http::error_response(r.error());
        json::array items;
        for (const DitherRecord& d : *r) items.push_back(dither_object(d, links));
        json::object o;
        o["uuid"] = c.param("uuid");
        o["items"] = std::move(items);
        return http::json_response(200, json::serialize(o));
      }));

  router.add(
      http::Verb::post, "/images/{uuid}/{channels}",
      with_caller([&service, links](const RequestContext& c, const Caller& caller) -> Response {
        Result<pipeline::OptionPairs> options = request_options(c);
        if (!options) {
          const bool media = options.error().kind == ErrorKind::kUnsupported;
          return http::error_response(options.error(), media ? "unsupported_media_type" : "");
        }
        std::string_view key = c.header("Idempotency-Key");
        if (key.empty() || key.size() > 128) key = c.request_id;
        // Idempotency keys are the caller's own: another owner's key never returns this dither.
        const std::string scoped_key = caller.owner + "/" + std::string(key);
        Refusal refusal;  // a quota's or the queue's (code set), answered as such
        Result<DitherRecord> r = service.request(c.param("uuid"), c.param("channels"), *options,
                                                 scoped_key, caller, c.traceparent, &refusal);
        if (!r) return refused_or_error_response(r.error(), refusal);
        return http::json_response(202, dither_json(*r, links));
      }),
      http::Dispatch::kBlocking);

  router.add(http::Verb::delete_, "/images/{uuid}",
             with_caller([&service](const RequestContext& c, const Caller& caller) -> Response {
               Result<int> removed = service.remove_dithers(c.param("uuid"), caller, c.traceparent);
               if (!removed) return http::error_response(removed.error());
               json::object o;
               o["uuid"] = c.param("uuid");
               o["deleted"] = *removed;
               return http::json_response(200, json::serialize(o));
             }),
             http::Dispatch::kBlocking);

  router.add(http::Verb::delete_, "/images/{uuid}/{dither_id}",
             with_caller([&service](const RequestContext& c, const Caller& caller) -> Response {
               Result<ImageId> uuid = parse_image_id(c.param("uuid"));
               if (!uuid) return http::error_response(uuid.error(), "invalid_uuid");
               Result<DitherId> id = parse_dither_id(c.param("dither_id"));
               if (!id) return http::error_response(id.error());
               Result<DitherRecord> removed =
                   service.remove_dither(uuid->value, *id, caller, c.traceparent);
               if (!removed) return http::error_response(removed.error());
               json::object o;
               o["uuid"] = uuid->value;
               o["dither_id"] = removed->id.value;
               o["deleted"] = true;
               return http::json_response(200, json::serialize(o));
             }),
             http::Dispatch::kBlocking);

  add_preset_routes(router, service);

  router.add(http::Verb::get, "/health", [&service](const RequestContext&) -> Response {
    return health_response("dither", service.health());
  });
  add_outbox_routes(router, service.outbox());  // admins: parked outbox messages
  return router;
}

}  // namespace dither
